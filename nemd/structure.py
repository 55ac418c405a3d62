"""Atomic structures as plain arrays (ground floor: no I/O, no JAX)."""

from __future__ import annotations

import dataclasses

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

    @property
    def periodic_cell(self) -> np.ndarray | None:
        """The cell when any direction is periodic, else None (what energy functions take)."""
        return self.cell if np.any(self.pbc) else None

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
