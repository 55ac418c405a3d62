"""Labelled structures for training: read, write, split, reference energies.

A ``Sample`` is a structure with its energy (eV) and forces (eV/Å) and the trajectory it
comes from: neighbouring frames of one trajectory are correlated, so data sets are split
by trajectory, never by frame. Readers: extended XYZ (ASE), n2p2 ``input.data`` and nemd
H5MD trajectories written with forces.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from ..structure import Structure
from ..units import symbols_of


@dataclasses.dataclass(frozen=True)
class Sample:
    structure: Structure
    energy: float  # eV
    forces: np.ndarray  # (N, 3) eV/Å
    trajectory: str = ""

    def __post_init__(self):
        if np.shape(self.forces) != (self.structure.n_atoms, 3):
            raise ValueError(f"forces {np.shape(self.forces)} do not match {self.structure.n_atoms} atoms")
        if not np.isfinite(self.energy) or not np.all(np.isfinite(self.forces)):
            raise ValueError(f"non-finite energy or forces in a frame of trajectory {self.trajectory!r}")


def read_extxyz(path, *, trajectory: str | None = None) -> list[Sample]:
    """Frames of an extended XYZ file with energies and forces (ASE's ``energy`` and
    ``forces``); ``trajectory`` defaults to the frame's ``trajectory`` info, else the file stem."""
    import ase.io

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"data file not found: {path}")
    try:
        frames = ase.io.read(path, index=":", format="extxyz")
    except Exception as exc:
        raise ValueError(f"could not read extended XYZ file {path}: {exc}") from exc
    samples = []
    for k, atoms in enumerate(frames):
        calc = atoms.calc
        energy = atoms.info.get("energy", calc.results.get("energy") if calc is not None else None)
        forces = atoms.arrays.get("forces", calc.results.get("forces") if calc is not None else None)
        if energy is None or forces is None:
            raise ValueError(f"{path}: frame {k} has no {'energy' if energy is None else 'forces'}")
        samples.append(Sample(Structure.from_ase(atoms), float(energy), np.asarray(forces, np.float64),
                              str(trajectory or atoms.info.get("trajectory", path.stem))))
    return samples


def write_extxyz(samples, path) -> Path:
    """Write ``samples`` (energies, forces, trajectory names) as extended XYZ, atomically."""
    import ase.io
    from ase.calculators.singlepoint import SinglePointCalculator

    from ..files import atomic_write

    frames = []
    for s in samples:
        atoms = s.structure.to_ase()
        atoms.info["trajectory"] = s.trajectory
        atoms.calc = SinglePointCalculator(atoms, energy=s.energy, forces=s.forces)
        frames.append(atoms)
    path = Path(path)
    with atomic_write(path, "w") as f:
        ase.io.write(f, frames, format="extxyz")
    return path


def read_n2p2(path) -> list[Sample]:
    """Frames of an n2p2 ``input.data`` file (Bohr, Hartree; converted)."""
    from ..io.n2p2 import read_input_data

    path = Path(path)
    samples = []
    for k, frame in enumerate(read_input_data(path)):
        if frame.energy is None:
            raise ValueError(f"{path}: frame {k} has no energy")
        samples.append(Sample(frame.structure, frame.energy, frame.forces, f"{path.stem}:{k}"))
    return samples


def read_h5md(path) -> list[Sample]:
    """Frames of a nemd H5MD trajectory written with forces (and the potential energy
    observable nemd writes)."""
    from ..io.h5md import read_frames

    t = read_frames(path)
    if t.forces is None or "potential_energy" not in t.observables:
        raise ValueError(f"{path} has no forces or potential energies: write trajectories with forces to train on")
    return [Sample(Structure(t.positions[k], t.numbers, t.cell[k] if t.cell is not None else np.zeros((3, 3)),
                             t.pbc), float(t.observables["potential_energy"][k]), t.forces[k], Path(path).stem)
            for k in range(t.n_frames)]


def read_samples(path) -> list[Sample]:
    """A data file by its extension: ``.xyz``/``.extxyz``, ``.data`` (n2p2), ``.h5`` (H5MD)."""
    name = Path(path).name.lower()
    if name.endswith((".xyz", ".extxyz")):
        return read_extxyz(path)
    if name.endswith(".data"):
        return read_n2p2(path)
    if name.endswith((".h5", ".h5md")):
        return read_h5md(path)
    raise ValueError(f"unknown data format of {path}: use .extxyz/.xyz, n2p2 .data or .h5 (H5MD)")


def split_by_trajectory(samples, valid_fraction: float, seed: int = 0):
    """``(train, valid)``: whole trajectories, drawn at random, until the validation set
    holds at least ``valid_fraction`` of the frames."""
    if not 0 <= valid_fraction < 1:
        raise ValueError(f"valid_fraction must be in [0, 1), got {valid_fraction}")
    names = sorted({s.trajectory for s in samples})
    order = np.random.default_rng(seed).permutation(len(names))
    target, valid_names, held = valid_fraction * len(samples), set(), 0
    sizes = {n: sum(s.trajectory == n for s in samples) for n in names}
    for k in order:
        if held >= target or len(valid_names) == len(names) - 1:
            break
        valid_names.add(names[k])
        held += sizes[names[k]]
    return [s for s in samples if s.trajectory not in valid_names], [s for s in samples if s.trajectory in valid_names]


def reference_energies(samples, species) -> np.ndarray:
    """Per-element energies (eV) by least squares, E ≈ Σ_Z n_Z μ_Z, in ``species`` order;
    ValueError for elements outside ``species``."""
    index = {s: k for k, s in enumerate(species)}
    counts = np.zeros((len(samples), len(species)))
    for row, s in enumerate(samples):
        for symbol in symbols_of(s.structure.numbers):
            if symbol not in index:
                raise ValueError(f"element {symbol!r} in trajectory {s.trajectory!r} is not in {tuple(species)}")
            counts[row, index[symbol]] += 1
    mu, *_ = np.linalg.lstsq(counts, np.array([s.energy for s in samples]), rcond=None)
    return mu
