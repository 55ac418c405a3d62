"""Behler–Parrinello neural-network potentials (n2p2 / RuNNer files), evaluated in JAX.

The files are read by ``nemd.models.n2p2_potential`` (its docstring lists the n2p2
conventions a port must follow); this module evaluates the potential on a nemd
``NeighborList``. Every atom's neighbours are laid out densely (N, K) per neighbour
element. Radial functions are sums over neighbours. For the angular functions the sum
over neighbour pairs (j, k) factorises into per-neighbour weights
``a_j = exp(-eta (r_ij - rs)^2) fc(r_ij)`` times a pair kernel
``P_jk = (1 + lambda cos)^zeta [exp(-eta (r_jk - rs)^2) fc(r_jk)]``, so each centre needs
``onehot_j a_j P_jk a_k onehot_k`` — two small matrix products per distinct
(eta, rs, rc, zeta, lambda) instead of a loop over triplets. Atoms are processed in
blocks (rematerialised in the backward pass) to bound memory.

Units: positions, cells, cutoffs at the interface in Å, energies in eV; the files are in
Bohr and Hartree (converted here).
"""

from __future__ import annotations

import dataclasses
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from ..neighbors import NeighborList, build_neighbor_list
from ..units import BOHR, HARTREE, symbols_of
from .graph import dense_neighbors_by_kind, safe_norm, within_cutoff
from .n2p2_potential import ACTIVATIONS, CUTOFF_FUNCTIONS, BPNNParameters, read_n2p2
from .potential import Potential


@dataclasses.dataclass(frozen=True)
class _ElementPlan:
    """How to compute the symmetry functions of one centre element (static numpy).

    Radial terms are grouped by neighbour element, angular ones by neighbour-element
    pair; ``order`` maps that computed layout to n2p2's order, ``factor`` applies
    2^(1-zeta) and 1/2 for like-element pairs (the kernels sum over ordered pairs).
    """

    radial: tuple  # ((e, (n, 3) eta, rs, rc), ...)
    angular: tuple  # (((e1, e2), (n, 6) eta, rs, rc, zeta, lambda, narrow), ...)
    order: np.ndarray
    factor: np.ndarray
    slope: np.ndarray  # n2p2 scaling: G_scaled = slope * G + offset
    offset: np.ndarray


def _element_plan(p: BPNNParameters, z: int) -> _ElementPlan:
    el = {zz: i for i, zz in enumerate(p.elements)}
    radial, angular, where, factor = {}, {}, [], []
    for sf in p.functions[z]:
        if sf.kind == 2:
            rows = radial.setdefault(el[sf.e1], [])
            where.append(("r", el[sf.e1], len(rows)))
            rows.append((sf.eta, sf.rs, sf.rc))
            factor.append(1.0)
        else:
            key = (el[sf.e1], el[sf.e2])
            rows = angular.setdefault(key, [])
            where.append(("a", key, len(rows)))
            rows.append((sf.eta, sf.rs, sf.rc, sf.zeta, sf.lam, 1.0 if sf.kind == 3 else 0.0))
            factor.append(2.0 ** (1.0 - sf.zeta) * (0.5 if sf.e1 == sf.e2 else 1.0))
    start, position = 0, {}
    for e in sorted(radial):
        position[("r", e)] = start
        start += len(radial[e])
    for key in sorted(angular):
        position[("a", key)] = start
        start += len(angular[key])
    order = np.array([position[(kind, key)] + i for kind, key, i in where])
    gmin, gmax, gmean = p.scaling[z].T
    width = np.where(gmax > gmin, gmax - gmin, 1.0)
    if p.scale:
        slope = (p.scale_max - p.scale_min) / width
        offset = p.scale_min - slope * (gmean if p.center else gmin)
    elif p.center:
        slope, offset = np.ones_like(gmin), -gmean
    else:
        slope, offset = np.ones_like(gmin), np.zeros_like(gmin)
    return _ElementPlan(
        radial=tuple((e, np.asarray(radial[e])) for e in sorted(radial)),
        angular=tuple((key, np.asarray(angular[key])) for key in sorted(angular)),
        order=order, factor=np.asarray(factor), slope=slope, offset=offset,
    )


def _cutoff(cutoff_fn, r, rc):
    """fc(r), exactly zero (with zero gradient) for r >= rc."""
    return jnp.where(r < rc, cutoff_fn(jnp.minimum(r, rc) / rc), 0.0)


def _symmetry_block(vecs, valids, plan: _ElementPlan, cutoff_fn):
    """Raw symmetry functions (n2p2 order) of a block of centres of one element.

    ``vecs[e]`` (B, K_e, 3): vectors (Bohr) to the neighbours of element e, ``valids[e]``
    (B, K_e) their masks.
    """
    dtype = vecs[0].dtype
    dists = [safe_norm(v) for v in vecs]
    parts = []
    for e, terms in plan.radial:
        eta, rs, rc = terms.T.astype(dtype)
        r = dists[e][..., None]
        g = jnp.exp(-eta * (r - rs) ** 2) * _cutoff(cutoff_fn, r, rc) * valids[e][..., None]
        parts.append(jnp.sum(g, axis=1))
    for (e1, e2), terms in plan.angular:
        v1, v2, r1, r2 = vecs[e1], vecs[e2], dists[e1], dists[e2]
        pair = valids[e1][:, :, None] & valids[e2][:, None, :]
        if e1 == e2:  # j == k is not a pair
            pair = pair & ~jnp.eye(v1.shape[1], dtype=bool)
        dot = jnp.einsum("bji,bki->bjk", v1, v2)
        norms = r1[:, :, None] * r2[:, None, :]
        cos = dot / jnp.where(pair, norms, 1.0)
        r_jk2 = (r1 * r1)[:, :, None] + (r2 * r2)[:, None, :] - 2.0 * dot
        r_jk = jnp.sqrt(jnp.where(pair & (r_jk2 > 0), r_jk2, 1.0))
        powers, thirds, columns = {}, {}, []
        for eta, rs, rc, zeta, lam, narrow in terms.astype(dtype):
            if (lam, zeta) not in powers:  # (1 + lambda cos)^zeta, integer zeta by multiplication
                base = jnp.maximum(1.0 + lam * cos, 0.0)
                powers[(lam, zeta)] = base ** int(zeta) if float(zeta).is_integer() else base ** zeta
            kernel = powers[(lam, zeta)]
            if narrow:
                if (eta, rs, rc) not in thirds:
                    thirds[(eta, rs, rc)] = jnp.exp(-eta * (r_jk - rs) ** 2) * _cutoff(cutoff_fn, r_jk, rc)
                kernel = kernel * thirds[(eta, rs, rc)]
            a1 = jnp.exp(-eta * (r1 - rs) ** 2) * _cutoff(cutoff_fn, r1, rc) * valids[e1]
            a2 = jnp.exp(-eta * (r2 - rs) ** 2) * _cutoff(cutoff_fn, r2, rc) * valids[e2]
            columns.append(jnp.einsum("bj,bjk,bk->b", a1, jnp.where(pair, kernel, 0.0), a2))
        parts.append(jnp.stack(columns, axis=1))
    computed = jnp.concatenate(parts, axis=1)
    return computed[:, plan.order] * jnp.asarray(plan.factor, computed.dtype)


def _network(x, layers, activations):
    for (w, b), act in zip(layers, activations):
        x = ACTIVATIONS[act](x @ w + b)
    return x[..., 0]


@dataclasses.dataclass
class BPNNModel(Potential):
    """A loaded Behler–Parrinello potential (``Potential`` contract).

    ``species``: element symbols it knows (ascending atomic number, n2p2's element order);
    ``cutoff``: its largest symmetry-function cutoff in Å. ``block_size`` atoms are
    evaluated together (default: sized so the (B, K, K) pair arrays stay in cache).
    """

    parameters: BPNNParameters
    block_size: int | None = None
    name: str = "bpnn"
    #: Lays out only the edges inside its cutoff when a list carries in-cutoff bounds
    #: (a 1 Å skin more than doubles the K^2 angular work otherwise).
    uses_within_cutoff_bounds = True

    def __post_init__(self):
        self._plans = {z: _element_plan(self.parameters, z) for z in self.parameters.elements}

    @property
    def species(self) -> tuple[str, ...]:
        return tuple(symbols_of(self.parameters.elements))

    @property
    def cutoff(self) -> float:
        return self.parameters.cutoff_bohr * BOHR

    def descriptor_fn(self, numbers):
        """``G(R, neighbor, cell) -> {Z: (atoms of element Z, n_sf)}`` raw symmetry functions
        (``cell`` (3, 3) Å or None). The list must carry per-kind bounds
        (``kinds=model.kinds(numbers)``)."""
        numbers = np.asarray(numbers)
        kinds = jnp.asarray(self.kinds(numbers))
        p = self.parameters
        groups = {z: np.flatnonzero(numbers == z) for z in p.elements}
        cutoff_fn = CUTOFF_FUNCTIONS[p.cutoff_type]
        n_atoms = numbers.size

        def descriptors(R, neighbor: NeighborList, cell):
            tables = dense_neighbors_by_kind(neighbor, n_atoms, kinds, len(p.elements))
            widths = neighbor.shape.within_cutoff_by_kind
            out = {}
            for z, atoms in groups.items():
                if atoms.size == 0:
                    continue
                vecs, valids = [], []
                for edges, valid in tables:
                    edges, valid = edges[atoms], valid[atoms]
                    vec = R[neighbor.senders[edges]] - R[atoms][:, None, :]
                    if cell is not None:
                        vec = vec + neighbor.shifts[edges].astype(R.dtype) @ jnp.asarray(cell, R.dtype)
                    vecs.append(jnp.where(valid[..., None], vec / BOHR, 0.0))  # the files are in Bohr
                    valids.append(valid)
                symmetry = partial(self._blocked_symmetry, z, cutoff_fn=cutoff_fn)
                if not widths or all(w >= v.shape[1] for w, v in zip(widths, vecs)):
                    out[z] = symmetry(vecs, valids)
                    continue
                # The angular sums cost ~K^2 per atom: lay out only the edges inside the
                # cutoff. A list whose in-cutoff bounds were outgrown gives NaN: callers
                # check the bounds (exceeds_within_cutoff_bounds).
                compact = [within_cutoff(v, m, p.cutoff_bohr, w) for v, m, w in zip(vecs, valids, widths)]
                fits = jnp.all(jnp.stack([c[2] for c in compact]))
                g = symmetry([c[0] for c in compact], [c[1] for c in compact])
                out[z] = jnp.where(fits, g, jnp.nan)
            return out

        return descriptors

    def _blocked_symmetry(self, z, vecs, valids, *, cutoff_fn):
        """Symmetry functions of all centres of element ``z`` from their dense neighbour
        tables (one per neighbour element), in blocks rematerialised in the backward pass."""
        n = vecs[0].shape[0]
        widest = max(v.shape[1] for v in vecs)
        # On a CPU small blocks keep the (B, K, K) pair arrays in cache (measured: ~8 atoms
        # at K ~ 90); an accelerator runs blocks one after another and needs large ones.
        pairs = 2**16 if jax.default_backend() == "cpu" else 2**24
        block = self.block_size or max(1, min(n, pairs // max(widest * widest, 1)))
        n_blocks = -(-n // block)

        def padded(x):
            x = jnp.pad(x, [(0, n_blocks * block - n)] + [(0, 0)] * (x.ndim - 1))
            return x.reshape(n_blocks, block, *x.shape[1:])

        block_fn = jax.checkpoint(partial(_symmetry_block, plan=self._plans[z], cutoff_fn=cutoff_fn))
        g = jax.lax.map(lambda xs: block_fn(*xs), ([padded(v) for v in vecs], [padded(v) for v in valids]))
        return g.reshape(n_blocks * block, -1)[:n]

    def atomic_energy_fn(self, numbers, cell=None):
        """``E_i(R, neighbor, cell=None) -> (N,)`` atomic energies in eV (``cell`` (3, 3) Å
        overrides the default one)."""
        numbers = np.asarray(numbers)
        p = self.parameters
        descriptors = self.descriptor_fn(numbers)
        groups = {z: np.flatnonzero(numbers == z) for z in p.elements}
        default_cell = cell

        def atomic_energies(R, neighbor: NeighborList, cell=None):
            box = default_cell if cell is None else cell
            energies = jnp.zeros(numbers.size, R.dtype)
            for z, g in descriptors(R, neighbor, box).items():
                plan = self._plans[z]
                x = g * jnp.asarray(plan.slope, R.dtype) + jnp.asarray(plan.offset, R.dtype)
                layers = [(jnp.asarray(w, R.dtype), jnp.asarray(b, R.dtype)) for w, b in p.layers[z]]
                e_ha = _network(x, layers, p.activations) / p.conv_energy + p.mean_energy \
                    + p.atom_energy.get(z, 0.0)
                energies = energies.at[groups[z]].set(e_ha * HARTREE)
            return energies

        return atomic_energies

    def _energy(self, numbers, kinds):
        atomic = self.atomic_energy_fn(numbers)
        return lambda R, neighbor, cell: jnp.sum(atomic(R, neighbor, cell))


def load(directory) -> BPNNModel:
    """Load an n2p2/RuNNer potential directory as a ``BPNNModel``."""
    return BPNNModel(read_n2p2(directory))


def count_extrapolations(model: BPNNModel, structure) -> dict[str, int]:
    """Symmetry-function values outside the ``scaling.data`` [min, max] ranges, per element
    (what n2p2 reports as extrapolation warnings): large counts mean the structure is
    outside the training data and the energies are not to be trusted."""
    cell = structure.periodic_cell
    nl = build_neighbor_list(structure.positions, cell, structure.pbc, model.cutoff, 0.0,
                             kinds=model.kinds(structure.numbers))
    descriptors = model.descriptor_fn(structure.numbers)
    features = jax.jit(lambda R, nl: descriptors(R, nl, cell))(jnp.asarray(structure.positions), nl)
    counts = {}
    for z, g in features.items():
        gmin, gmax, _ = model.parameters.scaling[z].T
        g = np.asarray(g)
        counts[symbols_of([z])[0]] = int(np.sum((g < gmin) | (g > gmax)))
    return counts
