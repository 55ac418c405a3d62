"""Atomic structures as plain arrays, converted from anything ASE reads."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np


@dataclasses.dataclass(frozen=True)
class Structure:
    """Positions (N, 3) in Å, atomic numbers (N,), cell rows (3, 3) in Å, pbc (3,)."""

    positions: np.ndarray
    numbers: np.ndarray
    cell: np.ndarray
    pbc: np.ndarray

    def __post_init__(self):
        if self.positions.shape != (self.numbers.shape[0], 3):
            raise ValueError(
                f"positions {self.positions.shape} do not match {self.numbers.shape[0]} atomic numbers"
            )

    @property
    def n_atoms(self) -> int:
        return int(self.numbers.shape[0])

    @classmethod
    def from_ase(cls, atoms) -> "Structure":
        return cls(
            positions=np.asarray(atoms.get_positions(), dtype=np.float64),
            numbers=np.asarray(atoms.get_atomic_numbers(), dtype=np.int64),
            cell=np.asarray(atoms.cell.array, dtype=np.float64),
            pbc=np.asarray(atoms.pbc, dtype=bool),
        )

    def to_ase(self):
        import ase

        return ase.Atoms(numbers=self.numbers, positions=self.positions, cell=self.cell, pbc=self.pbc)


#: LAMMPS data files carry types, not elements; nemd's water files use 1 = H, 2 = O.
WATER_LAMMPS_TYPES = {1: 1, 2: 8}


def read_structure(path, *, lammps_types: dict[int, int] | None = None, index=0) -> Structure:
    """Read a structure file with ASE (any format it knows), keeping its cell.

    LAMMPS data files (``.lammps-data``, ``.data``, ``.lmp``) need the atomic number of
    each type: ``lammps_types`` (default ``WATER_LAMMPS_TYPES``). Image flags in them are
    applied, so positions come back unwrapped.
    """
    import ase.io

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"structure file not found: {path}")
    name = path.name.lower()
    try:
        if name.endswith((".lammps-data", ".data", ".lmp")):
            atoms = ase.io.read(
                path, format="lammps-data", atom_style="atomic", sort_by_id=True,
                Z_of_type=lammps_types or WATER_LAMMPS_TYPES,
            )
        else:
            atoms = ase.io.read(path, index=index)
    except Exception as exc:  # ASE raises many kinds; the user needs the file name.
        raise ValueError(f"could not read structure file {path}: {exc}") from exc
    return Structure.from_ase(atoms)


def replicate(structure: Structure, reps) -> Structure:
    """Periodic supercell with ``reps = (na, nb, nc)`` copies along the lattice vectors."""
    reps = np.asarray(reps, dtype=np.int64)
    if reps.shape != (3,) or np.any(reps < 1):
        raise ValueError(f"reps must be three positive integers, got {reps.tolist()}")
    grid = np.stack(np.meshgrid(*[np.arange(r) for r in reps], indexing="ij"), -1).reshape(-1, 3)
    offsets = grid @ structure.cell
    positions = (structure.positions[None] + offsets[:, None]).reshape(-1, 3)
    return Structure(
        positions=positions,
        numbers=np.tile(structure.numbers, len(grid)),
        cell=structure.cell * reps[:, None],
        pbc=structure.pbc.copy(),
    )
