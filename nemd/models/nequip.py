"""JAX-MD's NequIP as a nemd ``Potential``: the edge-equivariant peer of NEMP and Facet.

``JaxMDNequIP.like(load("nemp-small").config)`` is ``jax_md.energy.nequip_neighbor_list`` configured like
that preset (cutoff, layers, node irreps, edge harmonics, radial-network width), with
random weights: benchmarks compare our models with it on the same lists. Edges come from
the nemd ``NeighborList`` through a featurizer into JAX-MD's jraph layout (padding edges
point at an extra node) and sign convention (receiver minus sender); JAX-MD's own list
builder is not used.
"""

from __future__ import annotations

import numpy as np

from ..neighbors import edge_vectors
from .potential import Potential

_PARITY = "eoeoeo"


class JaxMDNequIP(Potential):
    """NequIP (JAX-MD's implementation) with a ``jax_md.nn.nequip`` config ``config``."""

    name = "nequip"
    prefers_huge_pages = True  # as the models it is the peer of (docs/benchmarks.md)

    def __init__(self, config, species: tuple[str, ...], seed: int = 0):
        import jax
        from jax_md import energy, space

        self.config, self.species = config, tuple(species)
        displacement, _ = space.free()
        _, self._init, self._apply = energy.nequip_neighbor_list(
            displacement, None, config, neighbor_list_fn=lambda *a, **k: None,  # lists come from nemd
            featurizer_fn=lambda _: _featurize)
        self.params = self._initial_params(jax.random.PRNGKey(seed))

    def _initial_params(self, key):
        """Random weights, made once on a two-atom placeholder graph (their shapes depend
        on the irreps only), so that evaluations do not re-run the initialiser."""
        import jax
        import jax.numpy as jnp

        from ..neighbors import build_neighbor_list

        positions = np.array([[0.0, 0.0, 0.0], [0.5, 0.6, 0.7]]) * self.cutoff / 2
        nl = build_neighbor_list(positions, None, False, self.cutoff)
        atoms = jax.nn.one_hot(jnp.zeros(2, jnp.int32), len(self.species))
        return jax.jit(lambda key, R, nl: self._init(key, R, nl, atoms=atoms))(key, jnp.asarray(positions), nl)

    @property
    def cutoff(self) -> float:
        return float(self.config.r_max)

    @classmethod
    def like(cls, p, seed: int = 0) -> "JaxMDNequIP":
        """The peer of an NEMP or Facet model of config ``p``: same cutoff, layers and edge
        harmonics; node irreps ``channels`` copies of every l up to lmax_node (NEMP) or
        Facet's hidden irreps; radial network as wide as NEMP's edge networks (64 for Facet)."""
        from jax_md.nn import nequip

        cfg = nequip.default_config()
        cfg.r_max = p.cutoff
        cfg.n_elements = len(p.species)
        cfg.sh_irreps = " + ".join(f"1x{l}{_PARITY[l]}" for l in range(p.lmax + 1))
        if hasattr(p, "n_layers"):  # NEMP
            cfg.graph_net_steps = p.n_layers
            cfg.hidden_irreps = " + ".join(f"{p.channels}x{l}{_PARITY[l]}" for l in range(p.lmax_node + 1))
            cfg.radial_net_n_hidden = p.edge_hidden
            cfg.n_neighbors = p.avg_neighbors
        else:
            cfg.graph_net_steps = p.n_blocks
            cfg.hidden_irreps = p.hidden
            cfg.radial_net_n_hidden = 64
            cfg.n_neighbors = float(np.interp(p.cutoff, *zip(*p.degree_table)))
        cfg.shift, cfg.scale = 0.0, 1.0
        return cls(cfg, p.species, seed)

    def _energy(self, numbers, kinds):
        import jax
        import jax.numpy as jnp

        atoms = jax.nn.one_hot(kinds, len(self.species))

        def energy(R, neighbor, cell):
            params = jax.tree_util.tree_map(lambda p: jnp.asarray(p, R.dtype), self.params)
            return self._apply(params, R, neighbor, atoms=atoms.astype(R.dtype), cell=cell)

        return energy


def _featurize(atoms, position, neighbor, cell=None):
    import jax.numpy as jnp
    import jraph

    n = position.shape[0]
    vec = -edge_vectors(position, neighbor, cell)  # receiver - sender, as JAX-MD
    pad = lambda x: jnp.concatenate([x, jnp.zeros((1,) + x.shape[1:], x.dtype)])  # noqa: E731
    return jraph.GraphsTuple(
        nodes=pad(atoms), edges=jnp.where(neighbor.mask[:, None], vec, 1.0),
        receivers=jnp.where(neighbor.mask, neighbor.receivers, n),
        senders=jnp.where(neighbor.mask, neighbor.senders, n),
        globals=None, n_node=jnp.array([n, 1]),
        n_edge=jnp.array([neighbor.n_pairs, neighbor.mask.shape[0] - neighbor.n_pairs]))
