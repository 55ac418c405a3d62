"""JAX-MD's NequIP as a nemd ``Potential``: the edge-equivariant peer of NEMP and Facet.

``JaxMDNequIP.like(load("nemp-small").config)`` is ``jax_md.nn.nequip`` configured like
that preset (cutoff, layers, node irreps, edge harmonics, radial-network width), with
random weights: benchmarks compare our models with it on the same lists, and the trainer
trains it on the same data (the baseline of the NEMP paper's claim). Edges reach it as a
jraph graph in JAX-MD's layout (padding edges point at an extra node) and sign convention
(receiver minus sender); JAX-MD's own list builder is not used. Per-element reference
energies are added outside JAX-MD's network (a trainable ``element_energy``).
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from ..neighbors import NeighborList, build_neighbor_list, edge_vectors
from .potential import Potential

_PARITY = "eoeoeo"


@dataclasses.dataclass(frozen=True)
class JaxMDNequIP(Potential):
    """NequIP (JAX-MD's implementation, a ``jax_md.nn.nequip`` ``config``) with ``params``
    ``{"network": ..., "element_energy": (species,)}``."""

    config: object = dataclasses.field(compare=False)
    species: tuple[str, ...] = ()
    params: dict = dataclasses.field(default_factory=dict, compare=False)

    name = "nequip"
    prefers_huge_pages = True  # as the models it is the peer of (docs/benchmarks.md)

    @property
    def cutoff(self) -> float:
        return float(self.config.r_max)

    @property
    def network(self):
        return _network(self.config)

    @property
    def n_parameters(self) -> int:
        return sum(int(np.prod(p.shape)) for p in jax.tree_util.tree_leaves(self.params))

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
        model = cls(cfg, tuple(p.species), {})
        return dataclasses.replace(model, params=model._initial_params(jax.random.PRNGKey(seed)))

    def _initial_params(self, key) -> dict:
        """Random weights, made once on a two-atom placeholder graph (their shapes depend
        on the irreps only), so that evaluations never re-run the initialiser."""
        positions = np.array([[0.0, 0.0, 0.0], [0.5, 0.6, 0.7]]) * self.cutoff / 2
        nl = build_neighbor_list(positions, None, False, self.cutoff)
        graph = _jraph(jax.nn.one_hot(jnp.zeros(2, jnp.int32), len(self.species)), -edge_vectors(jnp.asarray(positions), nl, None),
                       nl.senders, nl.receivers, nl.mask, jnp.zeros(2, jnp.int32), 1)
        network = jax.jit(self.network.init)(key, graph)
        return {"network": network, "element_energy": jnp.zeros(len(self.species))}

    def with_energy_statistics(self, reference_energies, scale: float) -> "JaxMDNequIP":
        """Per-element energies (eV, species order) and the network's output scale (eV)."""
        cfg = self.config.copy_and_resolve_references()
        cfg.scale = float(scale)
        return dataclasses.replace(self, config=cfg, params={**self.params, "element_energy":
                                                             jnp.asarray(reference_energies, jnp.float32)})

    def _per_graph(self, positions, kinds, vectors, senders, receivers, mask, graph_index, n_graphs):
        params = jax.tree_util.tree_map(lambda p: jnp.asarray(p, positions.dtype), self.params)
        atoms = jax.nn.one_hot(kinds, len(self.species), dtype=positions.dtype)
        graph = _jraph(atoms, vectors, senders, receivers, mask, graph_index, n_graphs)
        energies = self.network.apply(params["network"], graph)[:n_graphs, 0]
        return energies + jax.ops.segment_sum(params["element_energy"][kinds], graph_index, num_segments=n_graphs)

    def graph_energies(self, positions, kinds, graph) -> jax.Array:
        """Energy (eV) of every structure of a batched ``BlockedGraph``, ``(n_graphs,)``."""
        vectors = -graph.edge_vectors(positions).reshape(-1, 3)  # receiver - sender
        return self._per_graph(positions, jnp.asarray(kinds), vectors, graph.senders.ravel(), graph.receivers.ravel(),
                               graph.mask.ravel(), graph.graph_index, graph.n_graphs)

    def _energy(self, numbers, kinds):
        kinds = jnp.asarray(kinds)

        def energy(R, neighbor: NeighborList, cell):
            n = R.shape[0]
            return self._per_graph(R, kinds, -edge_vectors(R, neighbor, cell), neighbor.senders, neighbor.receivers,
                                   neighbor.mask, jnp.zeros(n, jnp.int32), 1)[0]

        return energy

    def save(self, path):
        """Weights and the configuration (a JSON-like dict) in one file (``params_io``)."""
        from .params_io import save_params

        return save_params(path, {"model": self.name, "species": list(self.species),
                                  "config": self.config.to_dict()}, self.params)

    @classmethod
    def load(cls, path) -> "JaxMDNequIP":
        """A model written by ``save`` (checked against the shapes its config gives)."""
        from ml_collections import ConfigDict

        from .params_io import load_params, same_shapes

        metadata, params = load_params(path)
        if metadata.get("model") != cls.name:
            raise ValueError(f"{path} holds a {metadata.get('model')!r} model, not {cls.name!r}")
        model = cls(ConfigDict(metadata["config"]), tuple(metadata["species"]), {})
        reference = jax.eval_shape(model._initial_params, jax.random.PRNGKey(0))
        if not same_shapes(reference, params):
            raise ValueError(f"{path}: parameters do not match the stored configuration")
        return dataclasses.replace(model, params=jax.tree_util.tree_map(jnp.asarray, params))


@functools.lru_cache(maxsize=None)
def _network_from_json(config_json: str):
    from jax_md.nn import nequip
    from ml_collections import ConfigDict
    import json

    return nequip.model_from_config(ConfigDict(json.loads(config_json)))


def _network(config):
    import json

    return _network_from_json(json.dumps(config.to_dict(), sort_keys=True))


def _jraph(atoms, vectors, senders, receivers, mask, graph_index, n_graphs: int):
    """A jraph graph in JAX-MD's layout: padding edges go to an extra node in an extra
    graph; ``vectors`` receiver minus sender (Å)."""
    import jraph

    n = atoms.shape[0]
    pad = lambda x: jnp.concatenate([x, jnp.zeros((1,) + x.shape[1:], x.dtype)])  # noqa: E731
    n_node = jnp.concatenate([jax.ops.segment_sum(jnp.ones(n, jnp.int32), graph_index, num_segments=n_graphs),
                              jnp.ones(1, jnp.int32)])
    real = jax.ops.segment_sum(mask.astype(jnp.int32), graph_index[receivers], num_segments=n_graphs)
    n_edge = jnp.concatenate([real, jnp.reshape(mask.shape[0] - jnp.sum(real), (1,))])
    return jraph.GraphsTuple(
        nodes=pad(atoms), edges=jnp.where(mask[:, None], vectors, 1.0),
        receivers=jnp.where(mask, receivers, n), senders=jnp.where(mask, senders, n),
        globals=None, n_node=n_node, n_edge=n_edge)
