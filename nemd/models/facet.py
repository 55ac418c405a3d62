"""Facet: spline radial filters, S2-MLP-Mixer self-interaction, trainable cutoff
(Miklaucic et al., "Facet: highly efficient E(3)-equivariant networks for interatomic
potentials").

Per block: an interaction (edge harmonics ⊗ sender features by Clebsch–Gordan tensor
product, each output irrep weighted by a *spline* filter — a linear map of a Bessel basis
with trainable frequencies times a smooth envelope at the trainable ``r_max`` — summed and
divided by ``k(r_max)^0.7``, plus a linear self-connection), then a self-interaction (the
S2-MLP-Mixer: channel mixing, projection of the irreps on an 18 x 17 spherical grid, an MLP
per grid point within heads of channels, projection back; scalars through their own MLP).
Each layer is followed by an equivariant layer norm and a residual connection whose layer
scale starts at zero. The last block keeps scalars only and uses a plain MLP. Readout: a
linear head per atom, species-wise scale and shift, a global scale and shift.

The envelope is flat (exactly 1) below 0.8 r_max and falls smoothly to 0 at r_max, as
the authors' "exp" envelope, so that training r_max changes the filters only near the
cutoff (``envelope="polynomial"``: the p = 6 polynomial over [0, r_max], nemd before
2026-12). Remaining deviations from the authors: a radius graph (theirs: 32 nearest
neighbours, discontinuous in MD), a Gauss–Legendre grid (theirs: SOFT), separate MLP
weights per mixer head, the mixer's scalar branch concatenated after its MLP, lmax 2 with
O(3) parity (theirs: lmax 3, SO(3)).

Layout: the edge work of every interaction (tensor product, filters, neighbour sum) runs
over blocks of atoms under ``jax.checkpoint`` (``graph.in_blocks``), so memory is O(N x
node state) plus one block of messages. Features are e3nn ``IrrepsArray``s; edges come in
blocks of atoms (``nemd.models.blocks.BlockedGraph``). Lengths Å, energies eV.
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

from .blocks import in_blocks, per_atom
from .flax_model import GraphModel
from .graph import flat_envelope, polynomial_envelope, safe_norm, sinc_basis, unit_vectors
from .s2_mixer import S2MLPMixer, from_grid, grid_matrices, s2_irreps, to_grid  # noqa: F401 (re-exported)

ENVELOPES = ("flat", "polynomial")

#: Water has ~0.1003 atoms/Å^3; without structure the mean count within r is rho 4/3 pi r^3.
#: Presets use this as k(r_max); ``average_degree_table`` measures it on training data.
WATER_DEGREES = tuple((r, 0.1003 * 4.0 / 3.0 * math.pi * r**3) for r in (2.0, 3.0, 4.0, 5.0, 6.0, 7.0))


@dataclasses.dataclass(frozen=True)
class FacetConfig:
    """Hyper-parameters of a Facet model (lengths in Å)."""

    species: tuple[str, ...]
    cutoff: float = 5.0  # the list cutoff; r_max is trained below it
    r_max: float = 4.5  # initial r_max
    hidden: str = "64x0e + 32x1o + 32x2e"  # node irreps between blocks
    lmax: int = 2  # edge harmonics
    n_blocks: int = 3  # the last one keeps scalars only
    n_basis: int = 8  # Bessel functions of the spline filters
    mixer_channels: int = 32  # irreps per l fed to the S2-MLP-Mixer
    mixer_heads: int = 2
    mixer_hidden: int = 32  # MLP width per head on the grid
    grid: tuple[int, int] = (18, 17)  # (beta, alpha) points of the spherical grid
    degree_table: tuple = WATER_DEGREES  # ((r_max, mean neighbour count), ...)
    degree_power: float = 0.7
    layer_scale_init: float = 0.0  # 0 as in the paper: every block starts as the identity
    envelope: str = "flat"  # "flat": 1 below 0.8 r_max (authors); "polynomial": p = envelope_power
    envelope_power: int = 6
    # Layer norms' epsilon per order l of the hidden irreps (empty: 1e-6 each); pruning
    # raises it where the norm averages over fewer channels (nemd.train.prune_facet).
    norm_epsilon: tuple[float, ...] = ()

    def __post_init__(self):
        if not 0 < self.r_max < self.cutoff:
            raise ValueError(f"r_max ({self.r_max}) must be in (0, cutoff = {self.cutoff}) Å")
        if self.mixer_channels % self.mixer_heads:
            raise ValueError("mixer_channels must be a multiple of mixer_heads")
        if self.envelope not in ENVELOPES:
            raise ValueError(f"envelope must be one of {ENVELOPES}, got {self.envelope!r}")
        irreps = e3nn.Irreps(self.hidden)
        if self.norm_epsilon and len(self.norm_epsilon) != irreps.lmax + 1:
            raise ValueError(f"norm_epsilon needs one value per order l <= {irreps.lmax}, got {self.norm_epsilon}")
        if any(ir.p != (-1) ** ir.l for _, ir in irreps) or irreps.lmax > self.lmax:
            raise ValueError(f"hidden irreps {self.hidden} must have parity (-1)^l and l <= lmax")


PRESETS = {
    # Facet-Small of the paper (~270k parameters, 3 blocks, 128 scalars) cut to what a
    # two-element liquid needs: 64 scalars, 32 vectors and 32 l=2 irreps, 5 Å list cutoff
    # with r_max starting at 4.5 Å (first O-O shell plus most of the second). ~109k
    # parameters: 2 elements need far less embedding and width than 89-element MPTrj.
    "facet": FacetConfig(species=("H", "O"), cutoff=5.0, r_max=4.5, hidden="64x0e + 32x1o + 32x2e",
                         n_blocks=3, mixer_channels=32, mixer_heads=2, mixer_hidden=32),
    # Half the channels and two blocks: the cheap variant for large systems (~15k parameters).
    "facet-small": FacetConfig(species=("H", "O"), cutoff=4.5, r_max=4.0, hidden="32x0e + 16x1o + 16x2e",
                               n_blocks=2, mixer_channels=16, mixer_heads=2, mixer_hidden=16),
}


def average_degree_table(structures, radii, *, backend: str = "auto") -> tuple:
    """``((r, mean neighbour count within r), ...)`` over ``structures`` (for k(r_max))."""
    from ..neighbors import build

    out = []
    for r in radii:
        pairs = sum(build(s.positions, s.cell if np.any(s.pbc) else None, s.pbc, r, backend=backend)
                    .senders.size for s in structures)
        out.append((float(r), pairs / sum(s.n_atoms for s in structures)))
    return tuple(out)


def scale_irreps(x: e3nn.IrrepsArray, weights: jax.Array) -> e3nn.IrrepsArray:
    """Multiply each irrep (all its 2l+1 components) by its own weight ``(..., num_irreps)``,
    by broadcasting over the components (a repeat would be a gather, its transpose a scatter)."""
    chunks, start = [], 0
    for (mul, ir), chunk in zip(x.irreps, x.chunks):
        w = weights[..., start:start + mul, None]
        chunks.append(None if chunk is None else chunk * w)
        start += mul
    return e3nn.from_chunks(x.irreps, chunks, x.shape[:-1], x.dtype)


def match_irreps(x: e3nn.IrrepsArray, irreps: e3nn.Irreps) -> e3nn.IrrepsArray:
    """``x`` laid out as ``irreps``: missing irreps are zeros, extra ones are dropped."""
    have = {(mul, ir): chunk for (mul, ir), chunk in zip(x.irreps, x.chunks)}
    return e3nn.from_chunks(irreps, [have.get((mul, ir)) for mul, ir in irreps], x.shape[:-1], x.dtype)


def equivariant_layer_norm(x: e3nn.IrrepsArray, eps: tuple[float, ...] = ()) -> e3nn.IrrepsArray:
    """Scalars: zero mean, unit variance over channels. Each l > 0: divide by the RMS
    norm of its irreps (rotation invariant), so every kind of irrep averages 1. ``eps``:
    the epsilon per order l (empty: 1e-6 each)."""
    chunks = []
    for (mul, ir), chunk in zip(x.irreps, x.chunks):
        eps_l = eps[ir.l] if eps else 1e-6
        if chunk is None:
            chunks.append(None)
            continue
        if ir.l == 0:
            centred = chunk - jnp.mean(chunk, axis=-2, keepdims=True)
            chunks.append(centred * jax.lax.rsqrt(jnp.mean(centred**2, axis=(-2, -1), keepdims=True) + eps_l))
        else:
            mean_square = jnp.mean(jnp.sum(chunk**2, axis=-1), axis=-1)[..., None, None] / ir.dim
            chunks.append(chunk * jax.lax.rsqrt(mean_square + eps_l))
    return e3nn.from_chunks(x.irreps, chunks, x.shape[:-1], x.dtype)


class ScaledResidual(nn.Module):
    """``x + layer_scale * LN(update)``, layer scale per irrep channel (starts at zero)."""

    init_scale: float
    epsilon: tuple[float, ...] = ()

    @nn.compact
    def __call__(self, x: e3nn.IrrepsArray, update: e3nn.IrrepsArray) -> e3nn.IrrepsArray:
        update = equivariant_layer_norm(update, self.epsilon)
        scale = self.param("layer_scale", nn.initializers.constant(self.init_scale), (update.irreps.num_irreps,))
        update = scale_irreps(update, scale.astype(update.dtype))
        return update + match_irreps(x, update.irreps)


class Interaction(nn.Module):
    """Message passing: spline-weighted CG products of sender features and edge harmonics.

    ``edges(block) -> (radial (B, K, n_basis), harmonics (B, K, sh))`` gives a block's
    edge geometry; the products, filters and neighbour sums run block by block."""

    irreps_out: str
    n_basis: int
    lmax: int
    block_atoms: int = 1

    @nn.compact
    def __call__(self, h, edges, per_block, norm):
        irreps_out = e3nn.Irreps(self.irreps_out)
        message_irreps = e3nn.tensor_product(e3nn.zeros(h.irreps, ()), e3nn.zeros(s2_irreps(self.lmax), ()),
                                             filter_ir_out=irreps_out).irreps
        # The spline filter: one weight per output irrep, linear in the radial basis (no
        # bias, no MLP), so edges beyond r_max (radial = 0) send nothing.
        spline = self.param("spline", nn.initializers.lecun_normal(), (self.n_basis, message_irreps.num_irreps))

        def block(blk):
            radial, harmonics = edges(blk)
            messages = e3nn.tensor_product(h[blk["senders"]], harmonics, filter_ir_out=irreps_out)
            messages = scale_irreps(messages, radial @ spline.astype(radial.dtype))
            return jax.ops.segment_sum(messages.array, blk["receivers"] - blk["start"], num_segments=self.block_atoms,
                                       indices_are_sorted=True)

        summed = per_atom(in_blocks(block, per_block), h.shape[0])
        summed = e3nn.IrrepsArray(message_irreps, summed / norm)
        out = e3nn.flax.Linear(self.irreps_out, force_irreps_out=True, name="mix")(summed)
        return out + e3nn.flax.Linear(self.irreps_out, force_irreps_out=True, name="self_connection")(h)


class Facet(nn.Module):
    """Atomic energies (eV) of atoms with kinds ``kinds`` (indices into config.species)
    from the edges of a ``BlockedGraph`` (arrays (blocks, capacity)) of ``block_atoms``
    atoms per block."""

    config: FacetConfig
    block_atoms: int = 1

    @nn.compact
    def __call__(self, vectors: jax.Array, mask: jax.Array, senders: jax.Array, receivers: jax.Array,
                 kinds: jax.Array):
        cfg = self.config
        n_kinds = len(cfg.species)
        dtype = vectors.dtype
        hidden = e3nn.Irreps(cfg.hidden)
        scalars = e3nn.Irreps(f"{hidden.count('0e')}x0e")

        # Trainable r_max in (0, cutoff): a sigmoid keeps it inside the list cutoff.
        start = cfg.r_max / cfg.cutoff
        logit = self.param("r_max_logit", nn.initializers.constant(math.log(start / (1 - start))), ())
        r_max = cfg.cutoff * jax.nn.sigmoid(logit.astype(dtype))
        radii, degrees = (jnp.asarray(v, dtype) for v in zip(*cfg.degree_table))
        norm = jnp.interp(r_max, radii, degrees) ** cfg.degree_power  # k(r_max)^p
        frequencies = self.param("frequencies", lambda *_: jnp.pi * jnp.arange(1.0, cfg.n_basis + 1), ())

        def edges(blk):
            """Radial basis (times the envelope) and harmonics of a block's edges."""
            r = safe_norm(blk["vectors"])
            envelope = flat_envelope(r, r_max) if cfg.envelope == "flat" else \
                polynomial_envelope(r, r_max, cfg.envelope_power)
            radial = sinc_basis(r, frequencies.astype(dtype), r_max) * jnp.where(blk["mask"], envelope, 0.0)[..., None]
            harmonics = e3nn.spherical_harmonics(s2_irreps(cfg.lmax), unit_vectors(blk["vectors"], r),
                                                 normalize=False, normalization="component")
            return radial, harmonics

        per_block = dict(vectors=vectors, mask=mask, senders=senders, receivers=receivers,
                         start=jnp.arange(vectors.shape[0], dtype=jnp.int32) * self.block_atoms)
        embedding = self.param("embedding", nn.initializers.normal(1.0), (n_kinds, scalars.num_irreps))
        h = e3nn.IrrepsArray(scalars, embedding[kinds].astype(dtype))
        for b in range(cfg.n_blocks):
            last = b == cfg.n_blocks - 1
            irreps_out = scalars if last else hidden
            update = Interaction(str(irreps_out), cfg.n_basis, cfg.lmax, self.block_atoms,
                                 name=f"interaction_{b}")(h, edges, per_block, norm)
            h = ScaledResidual(cfg.layer_scale_init, cfg.norm_epsilon, name=f"residual_{b}a")(h, update)
            if last:  # scalars only: a plain two-layer MLP
                update = e3nn.flax.MultiLayerPerceptron([scalars.dim, scalars.dim], jax.nn.silu,
                                                        output_activation=False, name="scalar_mlp")(h)
            else:  # recomputed in the backward pass: its node activations are large
                update = nn.remat(SelfInteraction)(cfg, 16 * self.block_atoms, name=f"self_interaction_{b}")(h)
            h = ScaledResidual(cfg.layer_scale_init, cfg.norm_epsilon, name=f"residual_{b}b")(h, update)

        energy = nn.Dense(1, name="head")(h.array)[:, 0]
        scale = self.param("species_scale", nn.initializers.ones, (n_kinds,))
        shift = self.param("species_shift", nn.initializers.zeros, (n_kinds,))
        global_scale = self.param("global_scale", nn.initializers.ones, ())
        self.param("global_shift", nn.initializers.zeros, ())  # added once per structure
        return global_scale.astype(dtype) * (energy * scale[kinds].astype(dtype) + shift[kinds].astype(dtype))



class SelfInteraction(nn.Module):
    """Scalars through an MLP; all irreps (with a scalar part) through the S2-MLP-Mixer
    (``block_atoms`` atoms of sphere grids at a time)."""

    config: FacetConfig
    block_atoms: int = 0

    @nn.compact
    def __call__(self, h: e3nn.IrrepsArray) -> e3nn.IrrepsArray:
        cfg = self.config
        m = cfg.mixer_channels
        sphere = s2_irreps(cfg.lmax)
        # m copies of each l (forced: zeros for an l that h lacks, e.g. after pruning an order)
        mixed = e3nn.flax.Linear(m * sphere, force_irreps_out=True, name="mixer_in")(h)
        coeffs = mixed.mul_to_axis(m)  # (N, m, (lmax+1)^2): m functions on the sphere
        out = S2MLPMixer(cfg.lmax, cfg.mixer_heads, cfg.mixer_hidden, cfg.grid, self.block_atoms, name="mixer")(coeffs)
        out = out.axis_to_mul()  # (N, m x each l)
        h_scalars = h.filter(keep="0e")
        scalars = e3nn.flax.MultiLayerPerceptron([h_scalars.irreps.dim, h_scalars.irreps.dim], jax.nn.silu,
                                                 output_activation=False, name="scalar_mlp")(h_scalars)
        return e3nn.flax.Linear(cfg.hidden, name="mixer_out")(e3nn.concatenate([scalars, out]))


@dataclasses.dataclass(frozen=True)
class FacetModel(GraphModel):
    """A Facet network with its parameters; ``energy_fn(species, cell)`` for MD."""

    config: FacetConfig
    name: ClassVar[str] = "facet"
    shift_param: ClassVar[str] = "species_shift"
    scale_param: ClassVar[str] = "species_scale"
    presets: ClassVar[dict] = PRESETS
    config_class: ClassVar[type] = FacetConfig

    def make_module(self, block_atoms: int = 1) -> Facet:
        return Facet(self.config, block_atoms)

    def structure_offset(self, dtype):
        return jnp.asarray(self.params["global_shift"], dtype)

    @property
    def interaction_cutoff(self) -> float:
        return self.r_max

    @property
    def r_max(self) -> float:
        """The current (trained) r_max in Å."""
        return float(self.config.cutoff * jax.nn.sigmoid(self.params["r_max_logit"]))

    def with_species_regression(self, counts, energies) -> "FacetModel":
        """Species-wise shifts from least squares ``E ≈ sum_Z n_Z mu_Z`` and scales from
        the residual RMS per atom, on training compositions ``counts (S, n_species)`` and
        energies (eV). Returns a new model (the paper's initialisation)."""
        counts = np.asarray(counts, np.float64)
        energies = np.asarray(energies, np.float64)
        mu, *_ = np.linalg.lstsq(counts, energies, rcond=None)
        residual = energies - counts @ mu
        per_atom = np.sqrt(np.mean(residual**2 / np.maximum(counts.sum(1), 1)))
        params = dict(self.params)
        params["species_shift"] = jnp.asarray(mu, jnp.float32)
        params["species_scale"] = jnp.full(len(mu), max(per_atom, 1e-3), jnp.float32)
        return dataclasses.replace(self, params=params)


def load(params_path=None, preset: str | None = None, seed: int = 0) -> FacetModel:
    """A saved Facet model or random (untrained) weights for ``preset`` (default "facet")."""
    return FacetModel.load(params_path, preset, seed)
