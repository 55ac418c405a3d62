"""NEMP: node-equivariant message passing (Zhang et al., Chem. Sci. 2026, 17, 3793).

Equivariant message passing whose Clebsch–Gordan tensor product runs over nodes, not
edges. Per layer t (equation numbers of the paper):

* edge coefficients ``c_ij`` come from a network on edge invariants, every output times
  the smooth cutoff ``f(r_ij)``, so an edge beyond the cutoff contributes exactly zero
  (eq. 4); the layer-0 invariants are a pair embedding of (Z_i, Z_j) and Bessel-type
  radial functions with pair-dependent frequencies (eqs. 1-3);
* node-equivariant features ``I_lm = sum_j c_ij,l Y_lm(r_ij)`` (eqs. 5, 9) and node
  invariants (eqs. 6, 8);
* edge invariants contract node features of both ends with the edge's weighted harmonics
  (eq. 7) and are appended to the edge state, from which the next coefficients follow;
* a virtual summed node ``sum_j c_ij,l (U_Zj phi_j)_lm`` (eq. 10) is coupled to the central
  node by a channel-wise CG product with element-dependent path weights (eq. 11), and a
  residual update with element-dependent channel mixing gives the new features (eq. 13);
* a readout network on the node invariants of all layers gives atomic energies, scaled and
  shifted per element (the shift is the element's reference energy).

Only parity-preserving CG paths (l1 + l2 + l_out even) are used, so the energy is
invariant under reflections as well as rotations. Features are arrays
``(atoms, (l+1)^2 components, channels)`` in e3nn order; neighbours come as a dense
per-atom table (``nemd.models.graph.DenseGraph``). Lengths Å, energies eV.
"""

from __future__ import annotations

import dataclasses
import math
from typing import ClassVar

import e3nn_jax as e3nn
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from ase.data import atomic_numbers

from .flax_model import GraphModel
from .graph import polynomial_envelope, safe_norm, sinc_basis, spherical_harmonics, unit_vectors


@dataclasses.dataclass(frozen=True)
class NEMPConfig:
    """Hyper-parameters of an NEMP model (lengths in Å)."""

    species: tuple[str, ...]  # element symbols; model kind k is species[k]
    cutoff: float = 5.0
    channels: int = 16  # N_c: radial functions / channels of every equivariant feature
    n_radial: int = 16  # Bessel functions of the initial layer
    lmax: int = 2  # harmonics of edges and of the central node in the tensor product
    lmax_node: int = 2  # node-equivariant features carried between layers
    n_layers: int = 2  # T message-passing layers
    pair_features: int = 32  # width of the element-pair embedding
    edge_hidden: int = 64  # hidden width of the edge-coefficient networks
    readout_hidden: int = 64  # hidden width of the readout network
    avg_neighbors: float = 50.0  # normalises neighbour sums (about the mean count in cutoff)
    envelope_power: int = 6

    def __post_init__(self):
        if self.lmax_node > self.lmax:
            raise ValueError(f"lmax_node ({self.lmax_node}) cannot exceed lmax ({self.lmax})")
        for name in ("channels", "n_radial", "n_layers", "pair_features", "edge_hidden", "readout_hidden"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        unknown = [s for s in self.species if s not in atomic_numbers]
        if unknown or not self.species:
            raise ValueError(f"unknown species {unknown or self.species}")


# Liquid water presets. Water has ~0.1 atoms/Å^3, so a sphere of radius rc holds about
# 0.42 rc^3 neighbours (52 at 5 Å, 38 at 4.5 Å): that is avg_neighbors.
PRESETS = {
    # The authors' example configuration (16 channels, lmax 2, 3 layers) with a 5 Å cutoff:
    # the first two O-O shells (2.8, 4.5 Å) are inside one hop and three layers see 15 Å.
    # About 206k parameters, mid-range of the paper's 50k-500k.
    "nemp": NEMPConfig(species=("H", "O"), cutoff=5.0, channels=16, n_radial=16, lmax=2, lmax_node=2,
                       n_layers=3, pair_features=64, edge_hidden=96, readout_hidden=128, avg_neighbors=52.0),
    # Fewer everything, as the paper's NEMP-Small: 8 channels, vector node features, two
    # layers, 4.5 Å (first shell plus the start of the second). About 47k parameters, the
    # low end of the paper's range.
    "nemp-small": NEMPConfig(species=("H", "O"), cutoff=4.5, channels=8, n_radial=8, lmax=2, lmax_node=1,
                             n_layers=2, pair_features=32, edge_hidden=64, readout_hidden=64,
                             avg_neighbors=38.0),
}


def _component_blocks(lmax: int) -> list[slice]:
    return [slice(l * l, (l + 1) ** 2) for l in range(lmax + 1)]


def _cg_paths(lmax: int, lmax_node: int):
    """Parity-preserving paths (l1 <= lmax, l2 <= lmax_node -> l <= lmax_node) and one
    tensor ``(paths, (lmax+1)^2, (lmax_node+1)^2, (lmax_node+1)^2)`` holding their CG
    coefficients (scaled so that each output component has unit variance per path)."""
    paths = [(l1, l2, l) for l1 in range(lmax + 1) for l2 in range(lmax_node + 1)
             for l in range(abs(l1 - l2), min(l1 + l2, lmax_node) + 1) if (l1 + l2 + l) % 2 == 0]
    a, b = (lmax + 1) ** 2, (lmax_node + 1) ** 2
    cg = np.zeros((len(paths), a, b, b))
    for p, (l1, l2, l) in enumerate(paths):
        cg[p, l1 * l1:(l1 + 1) ** 2, l2 * l2:(l2 + 1) ** 2, l * l:(l + 1) ** 2] = \
            np.asarray(e3nn.clebsch_gordan(l1, l2, l)) * math.sqrt(2 * l + 1)
    return paths, cg


class MLP(nn.Module):
    """Dense layers with SiLU between them (none after the last)."""

    features: tuple[int, ...]

    @nn.compact
    def __call__(self, x):
        for i, width in enumerate(self.features):
            x = nn.Dense(width, name=f"dense_{i}")(x)
            if i < len(self.features) - 1:
                x = nn.silu(x)
        return x


class NEMP(nn.Module):
    """Atomic energies (eV) of atoms with kinds ``kinds`` (indices into config.species)."""

    config: NEMPConfig

    @nn.compact
    def __call__(self, vectors: jax.Array, valid: jax.Array, neighbors: jax.Array, kinds: jax.Array):
        cfg = self.config
        n_kinds, c = len(cfg.species), cfg.channels
        node_blocks, all_blocks = _component_blocks(cfg.lmax_node), _component_blocks(cfg.lmax)
        n_node_l = cfg.lmax_node + 1
        norm = 1.0 / cfg.avg_neighbors
        dtype = vectors.dtype

        r = safe_norm(vectors)
        envelope = jnp.where(valid, polynomial_envelope(r, cfg.cutoff, cfg.envelope_power), 0.0)
        harmonics = spherical_harmonics(unit_vectors(vectors, r), cfg.lmax)  # (N, K, (lmax+1)^2)

        # Element-pair embedding (eq. 1) and the pair-dependent radial frequencies (eqs. 2-3).
        eye = jnp.eye(n_kinds, dtype=dtype)
        pair_input = jnp.concatenate([jnp.repeat(eye, n_kinds, 0), jnp.tile(eye, (n_kinds, 1))], axis=1)
        pair = nn.silu(MLP((cfg.pair_features, cfg.pair_features), name="pair_embedding")(pair_input))
        start = jnp.pi * jnp.arange(1, cfg.n_radial + 1, dtype=dtype)
        frequencies = nn.Dense(cfg.n_radial, kernel_init=nn.initializers.normal(0.1),
                               bias_init=lambda *_: start, name="frequencies")(pair)
        pair_index = kinds[:, None] * n_kinds + kinds[neighbors]
        radial = sinc_basis(r, frequencies[pair_index], cfg.cutoff) * envelope[..., None]
        edge_state = jnp.concatenate([pair[pair_index], radial], axis=-1)

        def coefficients(name, groups):
            """Edge network -> named coefficient groups ``(N, K, n_l, C)``, each times f(r)."""
            sizes = [n for _, n in groups]
            out = MLP((cfg.edge_hidden, cfg.edge_hidden, sum(sizes) * c), name=name)(edge_state)
            out = out * envelope[..., None]
            parts = jnp.split(out, np.cumsum(sizes)[:-1] * c, axis=-1)
            return {g: p.reshape(p.shape[:-1] + (n, c)) for (g, n), p in zip(groups, parts)}

        def weighted_sum(weights, blocks, features=None):
            """``sum_j w_ij,l Y_lm(r_ij) [features_j]`` per node, for every l block."""
            out = []
            for l, block in enumerate(blocks):
                y = harmonics[..., block]
                if features is None:
                    out.append(jnp.einsum("nkm,nkc->nmc", y, weights[..., l, :]))
                else:
                    out.append(jnp.einsum("nkc,nkmc->nmc", weights[..., l, :], features[:, :, block]))
            return jnp.concatenate(out, axis=1) * norm

        def edge_invariants(weights_i, weights_j):
            """``sum_lm Y_lm(r_ij) (w_ij,l phi_i,lm + w'_ij,l phi_j,lm)`` per edge (eq. 7)."""
            phi_j = phi[neighbors]
            out = 0.0
            for l, block in enumerate(node_blocks):
                y = harmonics[..., block]
                out = out + weights_i[..., l, :] * jnp.einsum("nkm,nmc->nkc", y, phi[:, block]) \
                    + weights_j[..., l, :] * jnp.einsum("nkm,nkmc->nkc", y, phi_j[:, :, block])
            return out / math.sqrt(2 * n_node_l)

        def mix(features, name):
            """Channel mixing with one matrix per element (of the atom owning the features)."""
            u = self.param(name, nn.initializers.normal(c**-0.5), (n_kinds, c, c))
            return jnp.einsum("nac,ncd->nad", features, u[kinds].astype(dtype))

        def rms_normalise(features):
            return features * jax.lax.rsqrt(jnp.mean(features**2, axis=(1, 2), keepdims=True) + 1e-6)

        # Initial layer: node-equivariant features (eq. 5) and node invariants (eq. 6).
        coef = coefficients("edge_0", [("phi", n_node_l), ("rho", 1), ("edge_i", n_node_l),
                                       ("edge_j", n_node_l), ("node", n_node_l)])
        phi = rms_normalise(mix(weighted_sum(coef["phi"], node_blocks), "mix_0"))
        invariants = [jnp.sum(coef["rho"][..., 0, :], axis=1) * norm]

        paths, cg = _cg_paths(cfg.lmax, cfg.lmax_node)
        cg = jnp.asarray(cg, dtype)
        for t in range(1, cfg.n_layers + 1):
            # Edge invariants from both ends (eq. 7) refine the edge state; node invariants (eq. 8).
            edge_inv = edge_invariants(coef["edge_i"], coef["edge_j"])
            invariants.append(jnp.sum(weighted_sum(coef["node"], node_blocks) * phi, axis=1))
            edge_state = jnp.concatenate([edge_state, edge_inv], axis=-1)
            coef = coefficients(f"edge_{t}", [("central", cfg.lmax + 1), ("virtual", n_node_l),
                                              ("edge_i", n_node_l), ("edge_j", n_node_l),
                                              ("node", n_node_l)])
            central = weighted_sum(coef["central"], all_blocks)  # eq. 9
            virtual = weighted_sum(coef["virtual"], node_blocks, mix(phi, f"virtual_mix_{t}")[neighbors])  # eq. 10
            w = self.param(f"path_weights_{t}", nn.initializers.normal(len(paths) ** -0.5),
                           (n_kinds, len(paths), c))
            product = jnp.einsum("nac,nbc,pabd,npc->ndc", central, virtual, cg, w[kinds].astype(dtype))  # eq. 11
            phi = (mix(phi, f"self_mix_{t}") + mix(product, f"product_mix_{t}")) / math.sqrt(2.0)  # eq. 13
            phi = rms_normalise(phi)
        invariants.append(jnp.sum(weighted_sum(coef["node"], node_blocks) * phi, axis=1))

        out = MLP((cfg.readout_hidden, cfg.readout_hidden, 1), name="readout")(jnp.concatenate(invariants, -1))
        scale = self.param("element_scale", nn.initializers.ones, (n_kinds,))
        shift = self.param("element_energy", nn.initializers.zeros, (n_kinds,))
        return out[:, 0] * scale[kinds].astype(dtype) + shift[kinds].astype(dtype)


@dataclasses.dataclass(frozen=True)
class NEMPModel(GraphModel):
    """An NEMP network with its parameters; ``energy_fn(species, cell)`` for MD."""

    config: NEMPConfig
    name: ClassVar[str] = "nemp"
    presets: ClassVar[dict] = PRESETS
    config_class: ClassVar[type] = NEMPConfig

    def make_module(self) -> NEMP:
        return NEMP(self.config)


def load(params_path=None, preset: str | None = None, seed: int = 0) -> NEMPModel:
    """A saved NEMP model or random (untrained) weights for ``preset`` (default "nemp")."""
    return NEMPModel.load(params_path, preset, seed)
