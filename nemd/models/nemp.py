"""NEMP: node-equivariant message passing (Zhang & Guo, Chem. Sci. 2026, 17, 3793).

Equivariant message passing whose Clebsch–Gordan tensor product runs over nodes, not
edges (equation numbers of the paper; "authors" = github.com/zhangylch/NEMP):

* layer 0: an element-pair embedding s_ij (eq. 1) gives per-pair radial frequencies and
  coefficients (eq. 2); Bessel-type radial functions (eq. 3) and the pair coefficients,
  times the smooth cutoff f(r), feed an edge network whose outputs are the layer-0 edge
  coefficients (eq. 4): weights of the node-equivariant features I_lm = Σ_j c_ij,l Y_lm
  (eq. 5), of the node invariants (eq. 6) and the layer-0 edge invariants;
* layer t: edge invariants from both ends (eq. 7) extend the edge state [layer-0 edge
  coefficients, q^1 .. q^t]; networks on it give the coefficients of the central
  expansion (eq. 9), of the virtual summed node Σ_j c_ij,l (U_Zj φ_j)_lm (eq. 10) and of
  the next layer's edge and node invariants (eq. 8); a channel-wise CG product with
  per-(element, path, channel) weights couples the central and virtual nodes (eq. 11) and
  a residual with element-dependent mixing updates φ (eq. 13), RMS-normalised per node;
* readout: a network on the node invariants of every layer, scaled and shifted per element.

Normalisation as the authors': each atom's smooth neighbour count n_i = Σ_j f(r_ij)
divides I_lm, the CG product is divided by n_i^2 sqrt(paths into l), and the readout's
input by n_i (``normalization="smooth-count"``; ``"constant"`` divides by
``avg_neighbors`` instead). Remaining deviations from the authors' code: n_i enters as
sqrt(1 + n_i^2), so that an atom losing its last neighbour keeps a continuous energy (the
authors' n_i + 1e-8 jumps there; identical in a liquid, n_i ~ 40); plain MLPs instead of
ResNet blocks; per-l weights of the final invariants from one head (the authors sum
three heads: the same function); one-hot element pairs as embedding input; constant
factors of the edge invariants. ``edge_inputs="basis"`` feeds later layers the pair
embedding and raw radial basis instead of the layer-0 coefficients (nemd before 2026-12).

Layout: edges inside the cutoff in blocks of atoms (``nemd.models.blocks``), each layer's
edge work one block at a time under ``jax.checkpoint``, neighbour sums as sorted segment
sums, so memory is O(N x node state) plus one block of edge state; ``store_edges`` keeps
each layer's edge state for the next (fast) or recomputes it from the stored node
features (least memory).
Features are arrays (atoms, (l+1)^2 components, channels) in e3nn order. Lengths Å, eV.
"""

from __future__ import annotations

import dataclasses
import math
from typing import ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from ase.data import atomic_numbers

from .blocks import in_blocks, padded, per_atom
from .clebsch_gordan import cg_paths, cg_product, check_paths
from .flax_model import GraphModel
from .graph import polynomial_envelope, safe_norm, spherical_harmonics, unit_vectors
from .layers import MLPWeights, first_layer, mlp

NORMALIZATIONS = ("smooth-count", "constant")
EDGE_INPUTS = ("coefficients", "basis")


@dataclasses.dataclass(frozen=True)
class NEMPConfig:
    """Hyper-parameters of an NEMP model (lengths in Å)."""

    species: tuple[str, ...]  # element symbols; model kind k is species[k]
    cutoff: float = 5.0
    channels: int = 16  # N_c: channels of every feature
    n_radial: int = 16  # Bessel functions of the initial layer
    lmax: int = 2  # harmonics of edges and of the central node in the tensor product
    lmax_node: int = 2  # node-equivariant features carried between layers
    n_layers: int = 2  # T message-passing layers
    pair_features: int = 32  # width of the element-pair embedding
    edge_hidden: int = 64  # hidden width of the edge networks
    edge_layers: int = 2  # hidden layers of the edge networks
    readout_hidden: int = 64  # hidden width of the readout network
    envelope_power: int = 6  # f(r) = e(r)^2 with the polynomial envelope e of this power
    normalization: str = "smooth-count"
    avg_neighbors: float = 50.0  # normalises neighbour sums when normalization="constant"
    edge_inputs: str = "coefficients"
    #: One network per layer t >= 1 for its coefficients and the next heads (False: two,
    #: as the authors; sharing the hidden layer halves most of the edge work).
    shared_edge_networks: bool = True
    rms_epsilon: float = 1e-6  # ε of φ's RMS normalisation (pruning rescales it: nemd.train.prune)
    #: The CG paths (l1, l2, l) of the node tensor product (eq. 11); None: every parity-allowed
    #: one (l1 <= lmax, l2, l <= lmax_node). A subset is a model pruned by paths.
    cg_paths: tuple[tuple[int, int, int], ...] | None = None

    def __post_init__(self):
        if self.lmax_node > self.lmax:
            raise ValueError(f"lmax_node ({self.lmax_node}) cannot exceed lmax ({self.lmax})")
        for name in ("channels", "n_radial", "n_layers", "pair_features", "edge_hidden", "readout_hidden"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.edge_layers < 0:
            raise ValueError(f"edge_layers must be >= 0, got {self.edge_layers}")
        if self.normalization not in NORMALIZATIONS:
            raise ValueError(f"normalization must be one of {NORMALIZATIONS}, got {self.normalization!r}")
        if self.edge_inputs not in EDGE_INPUTS:
            raise ValueError(f"edge_inputs must be one of {EDGE_INPUTS}, got {self.edge_inputs!r}")
        if self.cg_paths is not None:
            check_paths(self.cg_paths, self.lmax, self.lmax_node)
        unknown = [s for s in self.species if s not in atomic_numbers]
        if unknown or not self.species:
            raise ValueError(f"unknown species {unknown or self.species}")


PRESETS = {
    # The authors' example (16 channels, lmax 2, several layers) with a 5 Å cutoff: the
    # first two O-O shells (2.8, 4.5 Å) are inside one hop. Edge networks with one hidden
    # layer of 64 (the authors use ResNet MLPs; the notes measured smaller edge networks to
    # be what makes NEMP faster than NequIP on CPUs).
    "nemp": NEMPConfig(species=("H", "O"), cutoff=5.0, channels=16, n_radial=16, lmax=2, lmax_node=2,
                       n_layers=3, pair_features=32, edge_hidden=64, edge_layers=1, readout_hidden=128,
                       avg_neighbors=52.0),
    # Angular order 3 everywhere: where the node tensor product pays most against NequIP
    # (4-5x at lmax 3, 1.1-1.3x at lmax 1 on 2 CPU cores, benchmarks/crossover.py).
    "nemp-l3": NEMPConfig(species=("H", "O"), cutoff=5.0, channels=16, n_radial=16, lmax=3, lmax_node=3,
                          n_layers=3, pair_features=32, edge_hidden=64, edge_layers=1, readout_hidden=128,
                          avg_neighbors=52.0),
    # The cheap variant (the paper's NEMP-Small is not published): 8 channels, vector node
    # features, two layers, 4.5 Å, hidden 32.
    "nemp-small": NEMPConfig(species=("H", "O"), cutoff=4.5, channels=8, n_radial=8, lmax=2, lmax_node=1,
                             n_layers=2, pair_features=16, edge_hidden=32, edge_layers=1, readout_hidden=64,
                             avg_neighbors=38.0),
}


def _l_of_component(lmax: int) -> np.ndarray:
    return np.concatenate([np.full(2 * l + 1, l) for l in range(lmax + 1)])


class NEMP(nn.Module):
    """Atomic energies (eV) of atoms with kinds ``kinds`` (indices into config.species)
    from the edges of a ``BlockedGraph`` (arrays (blocks, capacity)) of ``block_atoms``
    atoms per block; ``store_edges``: keep each layer's edge state, else recompute it.
    """

    config: NEMPConfig
    block_atoms: int = 1
    store_edges: bool = True

    @nn.compact
    def __call__(self, vectors: jax.Array, mask: jax.Array, senders: jax.Array, receivers: jax.Array,
                 kinds: jax.Array):
        cfg = self.config
        nk, c, p, la = len(cfg.species), cfg.channels, cfg.lmax_node + 1, cfg.lmax + 1
        hidden = (cfg.edge_hidden,) * cfg.edge_layers
        n_paths = len(cg_paths(cfg.lmax, cfg.lmax_node, cfg.cg_paths)[0])
        width0 = 2 * c if cfg.edge_inputs == "coefficients" else cfg.pair_features + cfg.n_radial
        pair_net = MLPWeights((2 * nk, cfg.pair_features, cfg.pair_features), name="pair_embedding")()
        w = dict(
            pair=pair_net,
            frequencies=(self.param("frequencies_kernel", nn.initializers.normal(0.1),
                                    (cfg.pair_features, cfg.n_radial)),
                         self.param("frequencies_bias", lambda *_: jnp.pi * jnp.arange(1.0, cfg.n_radial + 1),
                                    (cfg.n_radial,))),
            pair_coefficients=self.param("pair_coefficients", nn.initializers.lecun_normal(),
                                         (cfg.pair_features, cfg.n_radial + c)),
            radial=MLPWeights((cfg.n_radial + cfg.n_radial, *hidden, (p + 2) * c), name="radial")(),
            heads_0=MLPWeights((width0, *hidden, 3 * p * c), name="heads_0")(),
            layers=[self._edge_networks(t, width0 + t * c, hidden) for t in range(1, cfg.n_layers + 1)],
            mix_0=self.param("mix_0", nn.initializers.normal(c**-0.5), (nk, c, c)),
            mixes=[[self.param(f"{kind}_mix_{t}", nn.initializers.normal(c**-0.5), (nk, c, c))
                    for kind in ("virtual", "self", "product")] for t in range(1, cfg.n_layers + 1)],
            paths=[self.param(f"path_weights_{t}", nn.initializers.normal(n_paths**-0.5), (nk, n_paths, c))
                   for t in range(1, cfg.n_layers + 1)],
            readout=MLPWeights(((cfg.n_layers + 2) * c, cfg.readout_hidden, cfg.readout_hidden, 1), name="readout")(),
            scale=self.param("element_scale", nn.initializers.ones, (nk,)),
            shift=self.param("element_energy", nn.initializers.zeros, (nk,)),
        )
        w = jax.tree_util.tree_map(lambda a: jnp.asarray(a, vectors.dtype), w)
        edges = dict(vectors=vectors, mask=mask, senders=senders, receivers=receivers)
        # Optional "gates" collection: multipliers of irreps blocks (pruning importance, nemd.train.prune)
        gates = self.variables.get("gates")
        return atomic_energies(w, cfg, edges, kinds, self.block_atoms, self.store_edges, gates)

    def _edge_networks(self, t: int, width: int, hidden: tuple) -> list:
        """Layer t's networks on its edge state: [coefficients and next heads] or, not
        shared, [coefficients, next heads] (the last layer's heads: the final one)."""
        cfg = self.config
        c, p, la = cfg.channels, cfg.lmax_node + 1, cfg.lmax + 1
        heads = (p if t == cfg.n_layers else 3 * p) * c
        if cfg.shared_edge_networks:
            return [MLPWeights((width, *hidden, (p + la) * c + heads), name=f"edge_{t}")()]
        return [MLPWeights((width, *hidden, (p + la) * c), name=f"coefficients_{t}")(),
                MLPWeights((width, *hidden, heads), name=f"heads_{t}")()]


def atomic_energies(w, cfg: NEMPConfig, edges: dict, kinds, block_atoms: int, store_edges: bool = True,
                    gates: dict | None = None):
    """NEMP atomic energies (eV) from weights ``w`` on the blocked edges ``edges``
    (``vectors`` Å, ``mask``, ``senders``, ``receivers``: (blocks, capacity)) of atoms of
    ``kinds`` (N,), ``block_atoms`` per block. ``gates``: multipliers of irreps blocks
    (``nemd.train.prune.block_gate_shapes``) and, optional, ``gates["layers"]`` (T,) of what
    each message-passing layer adds to the readout and ``gates["paths"]`` (T, paths) of
    each layer's CG paths (all ones: the same energies)."""
    n, nk, c, p = kinds.shape[0], len(cfg.species), cfg.channels, cfg.lmax_node + 1
    vectors = edges["vectors"]
    n_blocks = vectors.shape[0]
    dtype = vectors.dtype
    lc_node = jnp.asarray(_l_of_component(cfg.lmax_node))
    lc_all = jnp.asarray(_l_of_component(cfg.lmax))
    eye = jnp.eye(nk, dtype=dtype)
    pair_onehot = jnp.concatenate([jnp.repeat(eye, nk, 0), jnp.tile(eye, (nk, 1))], axis=1)
    pair_table = jax.nn.silu(mlp(w["pair"], pair_onehot))  # (nk^2, P) per (Z_i, Z_j), eq. 1
    freq_table = pair_table @ w["frequencies"][0] + w["frequencies"][1]  # eq. 2-3
    coefficient_table = pair_table @ w["pair_coefficients"]  # (nk^2, n_radial + C)
    if gates is not None:
        coefficient_table = coefficient_table * jnp.concatenate([gates["e0a"], jnp.ones(cfg.n_radial, dtype)])
        layer0_gate = jnp.concatenate([gates["pre"], gates["rho0"][None], gates["e0b"][None]])
    block_gate = (lambda x, key: x) if gates is None else (lambda x, key: x * gates[key][lc_node])
    per_block = dict(edges, start=jnp.arange(n_blocks, dtype=jnp.int32) * block_atoms)

    def geometry(blk):
        r = safe_norm(blk["vectors"])
        env = polynomial_envelope(r, cfg.cutoff, cfg.envelope_power)
        cut = jnp.where(blk["mask"], env * env, 0.0)
        harmonics = spherical_harmonics(unit_vectors(blk["vectors"], r), cfg.lmax)
        pair = kinds[blk["receivers"]] * nk + kinds[blk["senders"]]
        return r, cut, harmonics, pair

    def summed(x, blk):
        """Σ over each block atom's edges: one sorted segment sum."""
        return jax.ops.segment_sum(x, blk["receivers"] - blk["start"], num_segments=block_atoms,
                                   indices_are_sorted=True)

    def own(x, blk):
        """The rows of node array ``x`` (padded to whole blocks) of the block's atoms."""
        return jax.lax.dynamic_slice_in_dim(x, blk["start"], block_atoms)

    def base_tables(geo):
        """The layer-0 edge-state pieces that depend on the element pair only (times f(r)
        for the coefficients): their first-layer products are per-pair tables."""
        _, cut, _, pair = geo
        if cfg.edge_inputs == "coefficients":
            return ((coefficient_table[:, :c], pair, cut),)
        return ((pair_table, pair, jnp.ones_like(cut)),)

    def layer0(blk):
        """Edge coefficients of layer 0 (eq. 4): node weights and the edge state."""
        geo = geometry(blk)
        r, cut, _, pair = geo
        radial = jnp.sinc(freq_table[pair] * (r / cfg.cutoff)[..., None] / jnp.pi) * cut[..., None]  # eq. 3
        first = first_layer(w["radial"][0][0], [radial], ((coefficient_table[:, c:], pair, cut),))
        weights = (mlp(w["radial"], None, first) * cut[..., None]).reshape(*cut.shape, p + 2, c)
        if gates is not None:
            weights = weights * layer0_gate
        pieces = [weights[..., p + 1, :]] if cfg.edge_inputs == "coefficients" else [radial]
        return geo, weights, dict(tables=base_tables(geo), pieces=pieces)

    def network(net, state, cut):
        return mlp(net, None, first_layer(net[0][0], state["pieces"], state["tables"])) * cut[..., None]

    def outputs(t, state, cut, coefficients=True):
        """Layer t's (coefficients of eqs. 9-10 or None, heads of the next edge and node
        invariants (3, P, C), or the final node head (P, C) after the last layer)."""
        if t == 0:
            return None, network(w["heads_0"], state, cut).reshape(*cut.shape, 3, p, c)
        nets, split = w["layers"][t - 1], (p + cfg.lmax + 1) * c
        if cfg.shared_edge_networks:
            out = network(nets[0], state, cut)
            coefficient, head = out[..., :split], out[..., split:]
        else:
            coefficient = network(nets[0], state, cut) if coefficients else None
            head = network(nets[1], state, cut)
        if coefficient is not None:
            coefficient = coefficient.reshape(*cut.shape, p + cfg.lmax + 1, c)
        return coefficient, head.reshape(*cut.shape, *((p, c) if t == cfg.n_layers else (3, p, c)))

    def per_component(x, lc):  # (..., l, C) -> (..., (l+1)^2, C)
        return jnp.take(x, lc, axis=-2)

    def edge_state(blk, phis, upto):
        """(geometry, state, heads) after layer ``upto`` (recomputed from the stored φ)."""
        geo, _, state = layer0(blk)
        h = outputs(0, state, geo[1])[1]
        for t in range(1, upto + 1):
            state = dict(state, pieces=state["pieces"] + [edge_invariant(blk, geo, h, phis[t - 1])])
            h = outputs(t, state, geo[1], coefficients=False)[1]
        return geo, state, h

    def edge_invariant(blk, geo, h, phi):  # eq. 7
        y = geo[2][..., :p * p, None]
        hi, hj = per_component(h[..., 0, :, :], lc_node), per_component(h[..., 1, :, :], lc_node)
        both = hi * phi[blk["receivers"]] + hj * phi[blk["senders"]]
        return jnp.sum(y * both, axis=-2) / math.sqrt(2.0)

    def node_invariant(blk, geo, h_node, phi):  # eq. 8
        expansion = summed(per_component(h_node, lc_node) * geo[2][..., :p * p, None], blk)
        return jnp.sum(expansion * own(phi, blk), axis=1)

    # ---- layer 0: node features (eq. 5) and invariants (eq. 6)
    def block0(blk):
        geo, weights, state = layer0(blk)
        r, cut, y, _ = geo
        out = dict(count=summed(cut, blk), rho=summed(weights[..., p, :], blk),
                   features=summed(y[..., :p * p, None] * per_component(weights[..., :p, :], lc_node), blk))
        if store_edges:
            out["edge"] = dict(pieces=state["pieces"], heads=outputs(0, state, cut)[1])
        return out

    out = in_blocks(block0, per_block)
    nodes = {key: per_atom(value, n) for key, value in out.items() if key != "edge"}
    count = nodes["count"]
    norm = jnp.sqrt(1.0 + count * count) if cfg.normalization == "smooth-count" else \
        jnp.full_like(count, cfg.avg_neighbors)
    phi = _mix(nodes["features"] / norm[:, None, None], w["mix_0"], kinds)
    phi = block_gate(_rms(phi, cfg.rms_epsilon), "phi_0")
    phis, invariants = [padded(phi, n_blocks, block_atoms)], [nodes["rho"]]
    stored = out.get("edge")

    # ---- layers 1..T: central (eq. 9) and virtual (eq. 10) nodes, CG product (eq. 11), update (eq. 13)
    for t in range(1, cfg.n_layers + 1):
        virtual_mix, self_mix, product_mix = w["mixes"][t - 1]
        phi_virtual = _mix(phi, virtual_mix, kinds)

        def block(blk, t=t, phi=phis[-1], phi_virtual=phi_virtual):
            if store_edges:
                geo = geometry(blk)
                state = dict(tables=base_tables(geo), pieces=blk["edge"]["pieces"])
                h = blk["edge"]["heads"]
            else:
                geo, state, h = edge_state(blk, phis, t - 1)
            cut, y = geo[1], geo[2]
            q = edge_invariant(blk, geo, h, phi)
            state = dict(state, pieces=state["pieces"] + [q])
            coefficients, next_heads = outputs(t, state, cut)
            res = dict(rho=node_invariant(blk, geo, h[..., 2, :, :], phi),
                       virtual=summed(per_component(coefficients[..., :p, :], lc_node) * phi_virtual[blk["senders"]],
                                      blk),
                       central=summed(y[..., None] * per_component(coefficients[..., p:, :], lc_all), blk))
            if store_edges:
                res["edge"] = dict(pieces=state["pieces"], heads=next_heads)
            return res

        if store_edges:
            per_block = dict(per_block, edge=stored)
        out = in_blocks(block, per_block)
        stored = out.get("edge")
        nodes = {key: per_atom(value, n) for key, value in out.items() if key != "edge"}
        path_weights = w["paths"][t - 1][kinds]
        if gates is not None and "paths" in gates:  # a gate per CG path (nemd.train.prune.prune_paths)
            path_weights = path_weights * gates["paths"][t - 1][None, :, None]
        product, paths_into = cg_product(nodes["central"], nodes["virtual"], path_weights,
                                          cfg.lmax, cfg.lmax_node, cfg.cg_paths)
        scale = jnp.asarray(np.repeat(paths_into, 2 * np.arange(p) + 1) ** -0.5, dtype)
        product = block_gate(product * scale[None, :, None] / (norm * norm)[:, None, None], f"msg_{t}")
        phi = (_mix(phi, self_mix, kinds) + _mix(product, product_mix, kinds)) / math.sqrt(2.0)
        phi = block_gate(_rms(phi, cfg.rms_epsilon), f"phi_{t}")
        phis.append(padded(phi, n_blocks, block_atoms))
        invariants.append(nodes["rho"])

    # ---- final node invariants (eq. 8 with the last layer's features), readout
    def final(blk, phi=phis[-1]):
        if store_edges:
            geo, h = geometry(blk), blk["edge"]["heads"]
        else:
            geo, _, h = edge_state(blk, phis, cfg.n_layers)
        return node_invariant(blk, geo, h, phi)

    if store_edges:
        per_block = dict(per_block, edge=stored)
    invariants.append(per_atom(in_blocks(final, per_block), n))
    if gates is not None and "layers" in gates:  # layer t brings readout piece t + 1 (nemd.train.prune.prune_layers)
        invariants = invariants[:2] + [x * g for x, g in zip(invariants[2:], gates["layers"])]
    energy = mlp(w["readout"], jnp.concatenate(invariants, axis=-1) / norm[:, None])[:, 0]
    return energy * w["scale"][kinds] + w["shift"][kinds]


def _mix(features, u, kinds):  # channel mixing, one matrix per element of the atom owning the features
    return jnp.einsum("nac,ncd->nad", features, u[kinds])


def _rms(features, epsilon):
    return features * jax.lax.rsqrt(jnp.mean(features**2, axis=(1, 2), keepdims=True) + epsilon)


@dataclasses.dataclass(frozen=True)
class NEMPModel(GraphModel):
    """An NEMP network with its parameters; ``energy_fn(numbers, cell)`` for MD."""

    config: NEMPConfig
    name: ClassVar[str] = "nemp"
    shift_param: ClassVar[str] = "element_energy"
    scale_param: ClassVar[str] = "element_scale"
    presets: ClassVar[dict] = PRESETS
    config_class: ClassVar[type] = NEMPConfig

    def make_module(self, block_atoms: int = 1) -> NEMP:
        return NEMP(self.config, block_atoms, self.store_edges)


def load(params_path=None, preset: str | None = None, seed: int = 0) -> NEMPModel:
    """A saved NEMP model or random (untrained) weights for ``preset`` (default "nemp")."""
    return NEMPModel.load(params_path, preset, seed)
