"""Reader for Behler–Parrinello potentials in n2p2 / RuNNer format (``input.nn``,
``scaling.data``, ``weights.NNN.data``), and the meaning of the format's codes
(activation and cutoff functions).

The conventions that decide whether a port is right are the ones n2p2 documents (see
``../shared/notes/n2p2-conventions.md``): symmetry functions sorted per element by
(type, cutoff type, alpha, rc, eta, rs, [zeta, lambda], e1, [e2]), weights per layer with
the previous neuron as outer loop then the biases, ``cutoff_type 2`` = tanh^3(1 - r/rc),
angular terms normalised by 2^(1 - zeta), E = E_nn / conv_energy + N mean_energy. Values
stay in the files' units (Bohr, Hartree); ``nemd.models.bpnn`` converts.
"""

from __future__ import annotations

import dataclasses
import math
import re
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from ..units import atomic_number, symbols_of

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
    try:
        return atomic_number(token)
    except ValueError:
        raise ValueError(f"unknown element symbol {token!r} in input.nn") from None


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
            raise ValueError(f"{path}: no symfunction_short for element {symbols_of([z])[0]}")
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
            raise ValueError(f"{path}: scaling data missing for some symmetry functions of {symbols_of([z])[0]}")
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
