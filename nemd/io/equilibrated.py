"""Pre-equilibrated liquid-water boxes shipped with nemd, and starts made from them.

Each box in ``nemd/io/liquids/`` was made by the engine itself (``simulations/
equilibrate_water.py``; the command, model, length and final temperatures are stored in the
file): a built box, minimised, then a long Langevin NVT run with the RPBE-D3 BPNN. A
request for ``n`` molecules at a density is served from the box of that density whose
cubic replication (k x k x k copies) is the smallest with at least ``n`` molecules, when at
most ``MAX_TRIM`` of them are surplus: the surplus whole molecules are removed at random
and the molecule centres scaled to restore the density (intramolecular geometry kept), a
perturbation the run's own Langevin equilibration absorbs. Velocities come with the
positions, rescaled to the requested temperature.

Units: Å, g/cm^3, K; momenta in the engine's internal units (amu·Å per internal time).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from ..structure import Structure

LIQUIDS_DIR = Path(__file__).with_name("liquids")
#: Largest share of surplus molecules removed from a replicated box.
MAX_TRIM = 0.02
#: Relative density difference within which a shipped box is used.
DENSITY_TOLERANCE = 0.005


@dataclasses.dataclass(frozen=True)
class EquilibratedBox:
    """A shipped box: structure, momenta and how it was made (``info``: model, command,
    density, temperature_K, steps, timestep_fs, per-element temperatures...)."""

    structure: Structure
    momenta: np.ndarray  # (N, 3), internal units
    info: dict

    @property
    def n_molecules(self) -> int:
        return int(np.sum(self.structure.numbers == 8))


def save_box(path, structure: Structure, momenta, info: dict) -> None:
    """Write a box (npz: numbers, positions, cell, momenta, info as JSON)."""
    np.savez_compressed(path, numbers=structure.numbers, positions=structure.positions, cell=structure.cell,
                        momenta=np.asarray(momenta, np.float64), info=np.array(json.dumps(info)))


def load_box(path) -> EquilibratedBox:
    with np.load(path) as f:
        s = Structure(np.array(f["positions"]), np.array(f["numbers"]), np.array(f["cell"]), np.ones(3, bool))
        return EquilibratedBox(s, np.array(f["momenta"]), json.loads(str(f["info"])))


def shipped_boxes(directory: Path = LIQUIDS_DIR) -> list[EquilibratedBox]:
    return [load_box(p) for p in sorted(Path(directory).glob("water_*.npz"))]


def _molecules(numbers) -> np.ndarray:
    """(M, 3) atom indices of each molecule; boxes store atoms as O, H, H per molecule."""
    numbers = np.asarray(numbers)
    if numbers.size % 3 or not (np.all(numbers[0::3] == 8) and np.all(numbers[1::3] == 1)
                                and np.all(numbers[2::3] == 1)):
        raise ValueError("a water box must list its atoms as O, H, H per molecule")
    return np.arange(numbers.size).reshape(-1, 3)


def replicate(box: EquilibratedBox, k: int) -> EquilibratedBox:
    """k x k x k copies of the box, atoms still O, H, H per molecule."""
    s = box.structure
    shifts = np.stack(np.meshgrid(*[np.arange(k)] * 3, indexing="ij"), -1).reshape(-1, 3) @ s.cell
    molecules = s.positions[_molecules(s.numbers)]  # (M, 3, 3)
    positions = (molecules[None] + shifts[:, None, None, :]).reshape(-1, 3)
    numbers = np.tile(s.numbers, len(shifts))
    momenta = np.tile(box.momenta, (len(shifts), 1))
    return EquilibratedBox(Structure(positions, numbers, s.cell * k, s.pbc.copy()), momenta, box.info)


def trim(box: EquilibratedBox, n_molecules: int, seed: int = 0) -> EquilibratedBox:
    """Remove surplus molecules at random, then scale the cell and the molecule centres so
    the density is unchanged (each molecule's internal geometry kept)."""
    s = box.structure
    index = _molecules(s.numbers)
    surplus = len(index) - n_molecules
    if surplus < 0:
        raise ValueError(f"cannot trim {len(index)} molecules to {n_molecules}")
    keep = np.sort(np.random.default_rng(seed).permutation(len(index))[surplus:])
    index = index[keep]
    oxygen = s.positions[index[:, 0]]
    inverse = np.linalg.inv(s.cell)
    bonds = s.positions[index[:, 1:]] - oxygen[:, None]
    bonds -= np.round(bonds @ inverse) @ s.cell  # minimum image: a molecule may straddle the boundary
    scale = (n_molecules / len(s.numbers[::3])) ** (1 / 3)
    centre = oxygen * scale
    positions = np.concatenate([centre[:, None], centre[:, None] + bonds], axis=1).reshape(-1, 3)
    numbers = s.numbers[index.ravel()]
    return EquilibratedBox(Structure(positions, numbers, s.cell * scale, s.pbc.copy()),
                           box.momenta[index.ravel()], box.info)


def equilibrated_water(n_molecules: int, density: float, temperature_K: float, seed: int = 0,
                       boxes: list[EquilibratedBox] | None = None) -> EquilibratedBox | None:
    """A start for ``n_molecules`` of liquid water at ``density`` (g/cm^3) from the shipped
    boxes, momenta rescaled to ``temperature_K``; None when no box allows it."""
    best = None
    for box in shipped_boxes() if boxes is None else boxes:
        if abs(box.info["density"] - density) > DENSITY_TOLERANCE * density:
            continue
        k = max(1, int(np.ceil((n_molecules / box.n_molecules) ** (1 / 3) - 1e-9)))
        surplus = box.n_molecules * k**3 - n_molecules
        if surplus > MAX_TRIM * n_molecules:
            continue
        if best is None or surplus < best[2]:
            best = box, k, surplus
    if best is None:
        return None
    box, k, surplus = best
    start = replicate(box, k) if k > 1 else box
    if surplus:
        start = trim(start, n_molecules, seed)
    scale = np.sqrt(temperature_K / box.info["temperature_K"])
    return dataclasses.replace(start, momenta=start.momenta * scale)

