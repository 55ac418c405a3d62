"""Reader for n2p2/RuNNer ``input.data`` files (structures with energies and forces)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from ..structure import Structure
from ..units import BOHR, HARTREE, atomic_number


@dataclasses.dataclass(frozen=True)
class LabelledFrame:
    """A structure with its reference energy (eV) and forces (eV/Å), converted from the
    file's Bohr/Hartree."""

    structure: Structure
    energy: float | None
    forces: np.ndarray | None
    comment: str = ""


def read_input_data(path, *, length_unit: float = BOHR, energy_unit: float = HARTREE) -> list[LabelledFrame]:
    """Read every frame of an n2p2 ``input.data`` file.

    ``length_unit``/``energy_unit``: Å and eV per file unit (default Bohr and Hartree,
    as in n2p2's water examples; pass 1.0 for files already in Å/eV).
    Frames without ``lattice`` lines are non-periodic clusters (zero cell).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"n2p2 input.data file not found: {path}")
    frames, current = [], None
    for number, line in enumerate(path.read_text().splitlines(), 1):
        tokens = line.split()
        if not tokens:
            continue
        key = tokens[0]
        if key == "begin":
            current = dict(lattice=[], positions=[], numbers=[], forces=[], energy=None, comment="")
        elif current is None:
            raise ValueError(f"{path}:{number}: '{key}' outside a begin/end block")
        elif key == "comment":
            current["comment"] = line.split(None, 1)[1] if len(tokens) > 1 else ""
        elif key == "lattice":
            current["lattice"].append([float(t) for t in tokens[1:4]])
        elif key == "atom":
            try:
                z = atomic_number(tokens[4])
            except ValueError:
                raise ValueError(f"{path}:{number}: unknown element {tokens[4]!r}") from None
            current["positions"].append([float(t) for t in tokens[1:4]])
            current["numbers"].append(z)
            current["forces"].append([float(t) for t in tokens[7:10]])
        elif key == "energy":
            current["energy"] = float(tokens[1])
        elif key == "charge":
            pass
        elif key == "end":
            frames.append(_finish(current, length_unit, energy_unit, path, number))
            current = None
        else:
            raise ValueError(f"{path}:{number}: unknown keyword {key!r}")
    if current is not None:
        raise ValueError(f"{path}: last frame has no 'end'")
    return frames


def _finish(raw, length_unit, energy_unit, path, number) -> LabelledFrame:
    if len(raw["lattice"]) not in (0, 3):
        raise ValueError(f"{path}:{number}: a frame needs 0 or 3 lattice lines")
    periodic = len(raw["lattice"]) == 3
    cell = np.asarray(raw["lattice"]) * length_unit if periodic else np.zeros((3, 3))
    structure = Structure(
        positions=np.asarray(raw["positions"], dtype=np.float64).reshape(-1, 3) * length_unit,
        numbers=np.asarray(raw["numbers"], dtype=np.int64),
        cell=cell, pbc=np.full(3, periodic),
    )
    forces = np.asarray(raw["forces"], dtype=np.float64).reshape(-1, 3) * (energy_unit / length_unit)
    energy = None if raw["energy"] is None else raw["energy"] * energy_unit
    return LabelledFrame(structure, energy, forces, raw["comment"])
