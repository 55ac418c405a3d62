"""Behler–Parrinello neural-network potentials in n2p2 / RuNNer format, evaluated in JAX.

Reads ``input.nn``, ``scaling.data`` and ``weights.NNN.data`` and evaluates the potential
on a nemd ``NeighborList``. The conventions that decide whether a port is right are the
ones n2p2 documents (see ``../shared/notes/n2p2-conventions.md``): symmetry functions
sorted per element by (type, cutoff type, alpha, rc, eta, rs, [zeta, lambda], e1, [e2]),
weights per layer with the previous neuron as outer loop then the biases,
``cutoff_type 2`` = tanh^3(1 - r/rc), angular terms normalised by 2^(1 - zeta),
E = E_nn / conv_energy + N mean_energy.

Evaluation. Every atom's neighbours are laid out densely (N, K). Radial functions are
sums over neighbours. For the angular functions the sum over neighbour pairs (j, k)
factorises into per-neighbour weights ``a_j = exp(-eta (r_ij - rs)^2) fc(r_ij)`` times
a pair kernel ``P_jk = (1 + lambda cos)^zeta [exp(-eta (r_jk - rs)^2) fc(r_jk)]``, so
each centre needs ``onehot_j a_j P_jk a_k onehot_k`` — two small matrix products per
distinct (eta, rs, rc, zeta, lambda) instead of a loop over triplets. Atoms are
processed in blocks (rematerialised in the backward pass) to bound memory.

Units: positions, cells, cutoffs at the interface in Å, energies in eV; the files are in
Bohr and Hartree (converted here).
"""

from __future__ import annotations

import dataclasses
import math
import re
from functools import partial
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from ..neighbors import NeighborList
from .graph import dense_neighbors_by_kind, safe_norm, within_cutoff

BOHR = 0.529177210903  # Å
HARTREE = 27.211386245988  # eV

_ELEMENTS = ("X H He Li Be B C N O F Ne Na Mg Al Si P S Cl Ar K Ca Sc Ti V Cr Mn Fe Co Ni "
             "Cu Zn Ga Ge As Se Br Kr").split()
ATOMIC_NUMBER = {symbol: z for z, symbol in enumerate(_ELEMENTS) if z > 0}

#: n2p2 activation codes; input.nn's ``global_activation_short``.
ACTIVATIONS = {
    "l": lambda x: x,
    "t": jnp.tanh,
    "s": jax.nn.sigmoid,
    "p": jax.nn.softplus,
    "r": jax.nn.relu,
    "g": lambda x: jnp.exp(-0.5 * x * x),
    "c": jnp.cos,
    "S": lambda x: 1.0 - jax.nn.sigmoid(x),
    "e": lambda x: jnp.exp(-x),
    "h": lambda x: x * x,
}

#: Keywords that change what the network computes and that this port does not implement.
UNSUPPORTED_KEYWORDS = {
    "scale_symmetry_functions_sigma": "symmetry-function scaling by standard deviation",
    "normalize_nodes": "node normalisation",
    "element_nodes_short": "per-element network architectures",
    "nnp_type": "non-short-range (e.g. 4G) network types",
    "nnp_generation": "non-2G network generations",
    "use_electrostatics": "electrostatics",
}
#: Keywords that only concern training or output and do not change the energy.
_IGNORED_PREFIXES = ("random_seed", "epochs", "test_fraction", "use_short_forces", "updater_type",
                     "parallel_mode", "jacobian_mode", "update_strategy", "selection_mode",
                     "task_batch_size", "memorize", "write_", "gradient_", "kalman_", "force_",
                     "short_energy", "short_force", "main_error", "repeated_energy", "weights_min",
                     "weights_max", "precondition", "nguyen_widrow", "rmse_", "energy_", "points_",
                     "runner_mode", "use_", "calculate_", "test_", "optmode", "fitting_unit",
                     "symfunction_correlation", "remove_atom_energies", "analyze_", "print_",
                     "max_", "wconstraint", "node_activation", "elements_", "mix_", "read_",
                     "initialization", "number_of_", "global_output", "lmd", "center_energies")

# Cutoff functions fc(x), x = r / rc, zero for x >= 1 (n2p2 numbering).
_TANH_NORM = ((math.e + 1.0) / (math.e - 1.0)) ** 3
CUTOFF_FUNCTIONS = {
    1: lambda x: 0.5 * (jnp.cos(jnp.pi * x) + 1.0),  # cos
    2: lambda x: jnp.tanh(1.0 - x) ** 3,  # tanhu (no prefactor)
    3: lambda x: _TANH_NORM * jnp.tanh(1.0 - x) ** 3,  # tanh, fc(0) = 1
}


@dataclasses.dataclass(frozen=True, order=True)
class SymmetryFunction:
    """One n2p2 symmetry function (lengths in Bohr). Field order = n2p2's sort order."""

    kind: int  # 2 radial, 3 angular narrow, 9 angular wide
    rc: float
    eta: float
    rs: float
    zeta: float  # angular only (0 for radial)
    lam: float  # angular only (0 for radial)
    e1: int  # atomic number of the (first) neighbour
    e2: int  # atomic number of the second neighbour (0 for radial); e1 <= e2


@dataclasses.dataclass
class BPNNParameters:
    """Everything read from an n2p2/RuNNer potential directory (Bohr, Hartree)."""

    elements: tuple[int, ...]  # atomic numbers, ascending (n2p2's element index order)
    functions: dict[int, list[SymmetryFunction]]  # per element, sorted
    scaling: dict[int, np.ndarray]  # per element (n_sf, 3): min, max, mean
    scale: bool
    center: bool
    scale_min: float
    scale_max: float
    cutoff_type: int
    layers: dict[int, list[tuple[np.ndarray, np.ndarray]]]  # per element [(W (in, out), b)]
    activations: tuple[str, ...]
    mean_energy: float = 0.0
    conv_energy: float = 1.0
    conv_length: float = 1.0
    atom_energy: dict[int, float] = dataclasses.field(default_factory=dict)

    @property
    def cutoff_bohr(self) -> float:
        return max(sf.rc for sfs in self.functions.values() for sf in sfs)


def _strip(line: str) -> str:
    return re.split(r"[#!]", line, maxsplit=1)[0].strip()


def _element(token: str) -> int:
    if token not in ATOMIC_NUMBER:
        raise ValueError(f"unknown element symbol {token!r} in input.nn")
    return ATOMIC_NUMBER[token]


def _parse_symfunction(tokens: list[str]) -> tuple[int, SymmetryFunction]:
    centre, kind = _element(tokens[0]), int(tokens[1])
    if kind == 2:
        e1, eta, rs, rc = _element(tokens[2]), *map(float, tokens[3:6])
        return centre, SymmetryFunction(2, rc, eta, rs, 0.0, 0.0, e1, 0)
    if kind in (3, 9):
        e1, e2 = sorted((_element(tokens[2]), _element(tokens[3])))
        eta, lam, zeta, rc = map(float, tokens[4:8])
        rs = float(tokens[8]) if len(tokens) > 8 else 0.0
        if lam not in (-1.0, 1.0):
            raise ValueError(f"symfunction_short: lambda must be +1 or -1, got {lam}")
        return centre, SymmetryFunction(kind, rc, eta, rs, zeta, lam, e1, e2)
    raise ValueError(f"symfunction_short type {kind} is not supported (supported: 2, 3, 9)")


def _sort_key(sf: SymmetryFunction):
    # n2p2: (type, cutoff type, alpha, rc, eta, rs, [zeta, lambda], e1, [e2]); the cutoff
    # type and alpha are global here.
    if sf.kind == 2:
        return (sf.kind, sf.rc, sf.eta, sf.rs, sf.e1)
    return (sf.kind, sf.rc, sf.eta, sf.rs, sf.zeta, sf.lam, sf.e1, sf.e2)


def read_input_nn(path: Path) -> dict:
    """Parse ``input.nn`` into a dict of the settings the energy depends on."""
    settings = dict(scale=False, center=False, scale_min=0.0, scale_max=1.0, cutoff_type=None,
                    mean_energy=0.0, conv_energy=1.0, conv_length=1.0, atom_energy={},
                    functions={}, elements=None, hidden=None, nodes=None, activations=None)
    for raw in path.read_text().splitlines():
        tokens = _strip(raw).split()
        if not tokens:
            continue
        key, args = tokens[0], tokens[1:]
        if key in UNSUPPORTED_KEYWORDS:
            raise ValueError(f"{path}: keyword '{key}' ({UNSUPPORTED_KEYWORDS[key]}) is not supported")
        if key == "elements":
            settings["elements"] = tuple(sorted(_element(t) for t in args))
        elif key == "number_of_elements":
            settings["number_of_elements"] = int(args[0])
        elif key == "cutoff_type":
            ctype = int(args[0])
            alpha = float(args[1]) if len(args) > 1 else 0.0
            if ctype not in CUTOFF_FUNCTIONS:
                raise ValueError(f"{path}: keyword 'cutoff_type' {ctype} is not supported "
                                 f"(supported: {sorted(CUTOFF_FUNCTIONS)})")
            if alpha != 0.0:
                raise ValueError(f"{path}: keyword 'cutoff_type' with inner cutoff alpha={alpha} is not supported")
            settings["cutoff_type"] = ctype
        elif key == "scale_symmetry_functions":
            settings["scale"] = True
        elif key == "center_symmetry_functions":
            settings["center"] = True
        elif key == "scale_min_short":
            settings["scale_min"] = float(args[0])
        elif key == "scale_max_short":
            settings["scale_max"] = float(args[0])
        elif key in ("mean_energy", "conv_energy", "conv_length"):
            settings[key] = float(args[0])
        elif key == "atom_energy":
            settings["atom_energy"][_element(args[0])] = float(args[1])
        elif key == "global_hidden_layers_short":
            settings["hidden"] = int(args[0])
        elif key == "global_nodes_short":
            settings["nodes"] = [int(a) for a in args]
        elif key == "global_activation_short":
            for code in args:
                if code not in ACTIVATIONS:
                    raise ValueError(f"{path}: keyword 'global_activation_short': activation "
                                     f"'{code}' is not supported (supported: {sorted(ACTIVATIONS)})")
            settings["activations"] = tuple(args)
        elif key == "symfunction_short":
            try:
                centre, sf = _parse_symfunction(args)
            except (IndexError, ValueError) as exc:
                raise ValueError(f"{path}: keyword 'symfunction_short': {exc} in line {raw.strip()!r}") from None
            settings["functions"].setdefault(centre, []).append(sf)
        elif key.startswith(_IGNORED_PREFIXES) or key in ("description", "comment"):
            continue
        else:
            raise ValueError(f"{path}: keyword '{key}' is not supported")
    missing = [k for k in ("elements", "cutoff_type", "hidden", "nodes", "activations") if settings[k] is None]
    if missing:
        raise ValueError(f"{path}: missing keywords {missing}")
    if settings["hidden"] != len(settings["nodes"]) or len(settings["activations"]) != settings["hidden"] + 1:
        raise ValueError(f"{path}: global_hidden_layers_short, global_nodes_short and "
                         "global_activation_short disagree")
    for z in settings["elements"]:
        if z not in settings["functions"]:
            raise ValueError(f"{path}: no symfunction_short for element {_ELEMENTS[z]}")
    return settings


def _read_numbers(path: Path) -> list[list[str]]:
    if not path.is_file():
        raise FileNotFoundError(f"missing n2p2 file: {path}")
    return [line.split() for line in path.read_text().splitlines() if _strip(line)]


def _read_scaling(path: Path, elements, functions) -> dict[int, np.ndarray]:
    rows = [r for r in _read_numbers(path) if len(r) >= 5]  # RuNNer appends a 2-column energy line
    scaling = {z: np.full((len(functions[z]), 3), np.nan) for z in elements}
    for r in rows:
        element_index, sf_index = int(r[0]), int(r[1])
        z = elements[element_index - 1]
        scaling[z][sf_index - 1] = [float(r[2]), float(r[3]), float(r[4])]
    for z, table in scaling.items():
        if np.isnan(table).any():
            raise ValueError(f"{path}: scaling data missing for some symmetry functions of {_ELEMENTS[z]}")
    return scaling


def _read_weights(path: Path, sizes: list[int]) -> list[tuple[np.ndarray, np.ndarray]]:
    values = np.array([float(r[0]) for r in _read_numbers(path)])
    expected = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
    if values.size != expected:
        raise ValueError(f"{path}: {values.size} weights, but the architecture {sizes} needs {expected}")
    layers, pos = [], 0
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        w = values[pos: pos + n_in * n_out].reshape(n_in, n_out)  # previous neuron outer loop
        pos += n_in * n_out
        b = values[pos: pos + n_out]
        pos += n_out
        layers.append((w, b))
    return layers


def read_n2p2(directory) -> BPNNParameters:
    """Read an n2p2/RuNNer potential directory (input.nn, scaling.data, weights.NNN.data)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"BPNN potential directory not found: {directory}")
    settings = read_input_nn(directory / "input.nn")
    elements = settings["elements"]
    functions = {z: sorted(settings["functions"][z], key=_sort_key) for z in elements}
    scaling = _read_scaling(directory / "scaling.data", elements, functions)
    layers = {}
    for z in elements:
        sizes = [len(functions[z]), *settings["nodes"], 1]
        layers[z] = _read_weights(directory / f"weights.{z:03d}.data", sizes)
    return BPNNParameters(
        elements=elements, functions=functions, scaling=scaling, scale=settings["scale"],
        center=settings["center"], scale_min=settings["scale_min"], scale_max=settings["scale_max"],
        cutoff_type=settings["cutoff_type"], layers=layers, activations=settings["activations"],
        mean_energy=settings["mean_energy"], conv_energy=settings["conv_energy"],
        conv_length=settings["conv_length"], atom_energy=settings["atom_energy"],
    )


# ----------------------------------------------------------------------------- evaluation


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
class BPNNModel:
    """A loaded Behler–Parrinello potential.

    ``species``: element symbols it knows; ``cutoff``: its cutoff in Å.
    ``energy_fn(species, cell)`` returns ``energy(R, neighbor=nl) -> eV`` (R in Å).
    """

    parameters: BPNNParameters
    name: str = "bpnn"
    #: Evaluates only the edges inside its cutoff when a list carries in-cutoff bounds:
    #: the MD driver and FIRE then build such lists and check them every step.
    uses_within_cutoff_bounds = True

    def __post_init__(self):
        self._plans = {z: _element_plan(self.parameters, z) for z in self.parameters.elements}

    @property
    def species(self) -> tuple[str, ...]:
        return tuple(_ELEMENTS[z] for z in self.parameters.elements)

    @property
    def cutoff(self) -> float:
        return self.parameters.cutoff_bohr * BOHR

    def _species_numbers(self, species) -> np.ndarray:
        species = np.asarray(species)
        numbers = np.array([ATOMIC_NUMBER.get(s, -1) for s in species]) if species.dtype.kind in "US" \
            else species.astype(np.int64)
        unknown = sorted(set(numbers.tolist()) - set(self.parameters.elements))
        if unknown:
            names = [_ELEMENTS[z] if 0 < z < len(_ELEMENTS) else str(z) for z in unknown]
            raise ValueError(f"species {names} not covered by this potential (elements: {self.species})")
        return numbers

    def descriptor_fn(self, species, cell=None, *, block_size: int | None = None):
        """``G(R, neighbor) -> {element: (n_atoms_of_element, n_sf)}`` raw symmetry functions.

        The neighbour list must carry per-element bounds: build it with
        ``kinds=model.kinds(species)``.
        """
        numbers = self._species_numbers(species)
        p = self.parameters
        kinds = jnp.asarray(np.searchsorted(np.asarray(p.elements), numbers), jnp.int32)
        groups = {z: np.flatnonzero(numbers == z) for z in p.elements}
        cell = None if cell is None else np.asarray(cell, np.float64)
        cutoff_fn = CUTOFF_FUNCTIONS[p.cutoff_type]
        n_atoms = numbers.size

        def descriptors(R, neighbor: NeighborList, cell=cell):
            tables = dense_neighbors_by_kind(neighbor, n_atoms, kinds, len(p.elements))
            widths = neighbor.max_neighbors_within_cutoff_by_kind
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
                symmetry = partial(self._blocked_symmetry, z, cutoff_fn=cutoff_fn, block_size=block_size)
                if not widths or all(w >= v.shape[1] for w, v in zip(widths, vecs)):
                    out[z] = symmetry(vecs, valids)
                    continue
                # The angular sums cost ~K^2 per atom: lay out only the edges inside the
                # cutoff (a 1 Å skin more than doubles K^2). A list whose in-cutoff bounds
                # were outgrown gives NaN: callers check the bounds (exceeds_within_cutoff_bounds).
                compact = [within_cutoff(v, m, p.cutoff_bohr, w) for v, m, w in zip(vecs, valids, widths)]
                fits = jnp.all(jnp.stack([c[2] for c in compact]))
                g = symmetry([c[0] for c in compact], [c[1] for c in compact])
                out[z] = jnp.where(fits, g, jnp.nan)
            return out

        return descriptors

    def _blocked_symmetry(self, z, vecs, valids, *, cutoff_fn, block_size=None):
        """Symmetry functions of all centres of element ``z`` from their dense neighbour
        tables (one per neighbour element), in blocks rematerialised in the backward pass."""
        n = vecs[0].shape[0]
        widest = max(v.shape[1] for v in vecs)
        # Small blocks keep the (B, K, K) pair arrays in cache (measured: ~8 atoms at K ~ 90).
        block = block_size or max(1, min(n, 2**16 // max(widest * widest, 1)))
        n_blocks = -(-n // block)

        def padded(x):
            x = jnp.pad(x, [(0, n_blocks * block - n)] + [(0, 0)] * (x.ndim - 1))
            return x.reshape(n_blocks, block, *x.shape[1:])

        block_fn = jax.checkpoint(partial(_symmetry_block, plan=self._plans[z], cutoff_fn=cutoff_fn))
        g = jax.lax.map(lambda xs: block_fn(*xs), ([padded(v) for v in vecs], [padded(v) for v in valids]))
        return g.reshape(n_blocks * block, -1)[:n]

    def kinds(self, species) -> np.ndarray:
        """Per-atom element indices, the ``kinds`` to build neighbour lists for this model with."""
        return np.searchsorted(np.asarray(self.parameters.elements), self._species_numbers(species))

    def atomic_energy_fn(self, species, cell=None, *, block_size: int | None = None):
        """``E_i(R, neighbor) -> (N,)`` atomic energies in eV."""
        numbers = self._species_numbers(species)
        p = self.parameters
        descriptors = self.descriptor_fn(numbers, cell, block_size=block_size)
        groups = {z: np.flatnonzero(numbers == z) for z in p.elements}

        def atomic_energies(R, neighbor: NeighborList, **kwargs):
            energies = jnp.zeros(numbers.size, R.dtype)
            extra = {"cell": kwargs["cell"]} if kwargs.get("cell") is not None else {}
            for z, g in descriptors(R, neighbor, **extra).items():
                plan = self._plans[z]
                x = g * jnp.asarray(plan.slope, R.dtype) + jnp.asarray(plan.offset, R.dtype)
                layers = [(jnp.asarray(w, R.dtype), jnp.asarray(b, R.dtype)) for w, b in p.layers[z]]
                e_ha = _network(x, layers, p.activations) / p.conv_energy + p.mean_energy \
                    + p.atom_energy.get(z, 0.0)
                energies = energies.at[groups[z]].set(e_ha * HARTREE)
            return energies

        return atomic_energies

    def energy_fn(self, species, cell=None, *, block_size: int | None = None):
        """``energy(R, neighbor=nl) -> eV`` for MD (``R`` in Å, unwrapped is fine).

        ``cell`` (Å) is fixed here; ``energy(R, neighbor, cell=other)`` overrides it (same
        shapes, no recompilation). The list must be built with ``kinds=self.kinds(species)``.
        """
        atomic = self.atomic_energy_fn(species, cell, block_size=block_size)

        def energy(R, neighbor: NeighborList, **kwargs):
            return jnp.sum(atomic(R, neighbor, **kwargs))

        return energy


def load(directory) -> BPNNModel:
    """Load an n2p2/RuNNer potential directory as a ``BPNNModel``."""
    return BPNNModel(read_n2p2(directory))


def count_extrapolations(model: BPNNModel, structure) -> dict[str, int]:
    """Symmetry-function values outside the ``scaling.data`` [min, max] ranges, per element
    (what n2p2 reports as extrapolation warnings): large counts mean the structure is
    outside the training data and the energies are not to be trusted."""
    from ..neighbors import build_neighbor_list

    cell = structure.cell if structure.pbc.any() else None
    nl = build_neighbor_list(structure.positions, cell, structure.pbc, model.cutoff, 0.0,
                             kinds=model.kinds(structure.numbers))
    features = jax.jit(model.descriptor_fn(structure.numbers, cell))(jnp.asarray(structure.positions), nl)
    counts = {}
    for z, g in features.items():
        gmin, gmax, _ = model.parameters.scaling[z].T
        g = np.asarray(g)
        counts[_ELEMENTS[z]] = int(np.sum((g < gmin) | (g > gmax)))
    return counts
