"""Trajectory frames to extended XYZ, for tools that do not read H5MD (OVITO, ASE's GUI)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..files import atomic_write
from .h5md import read_frames


def h5md_to_extxyz(trajectory, out, start: int | None = None, stop: int | None = None,
                   step: int | None = None) -> int:
    """Write frames ``[start:stop:step]`` of a nemd H5MD file to ``out`` (extended XYZ,
    atomically): positions as stored (wrapped into the cell), cell and pbc, velocities
    (ASE units), forces (eV/Å) and the potential energy (eV) where the file has them, and
    step, time (ps) and the other observables in each frame's info. Returns the frames
    written."""
    import ase
    import ase.io
    from ase import units
    from ase.calculators.singlepoint import SinglePointCalculator

    t = read_frames(trajectory, start, stop, step)
    if t.n_frames == 0:
        raise ValueError(f"no frames of {trajectory} in [{start}:{stop}:{step}]")
    frames = []
    for k in range(t.n_frames):
        atoms = ase.Atoms(numbers=t.numbers, positions=t.wrapped[k], pbc=t.pbc,
                          cell=t.cell[k] if t.cell is not None else None)
        if t.velocities is not None:
            atoms.set_velocities(np.asarray(t.velocities[k]) * 1e-3 / units.fs)  # Å/ps -> ASE units
        info = {name: float(values[k]) for name, values in t.observables.items() if len(values) == t.n_frames}
        energy = info.pop("potential_energy", None)
        if energy is not None or t.forces is not None:
            atoms.calc = SinglePointCalculator(atoms, energy=energy,
                                               forces=None if t.forces is None else t.forces[k])
        atoms.info.update(step=int(t.step[k]), time_ps=float(t.time[k]), **info)
        frames.append(atoms)
    with atomic_write(Path(out), "w") as f:
        ase.io.write(f, frames, format="extxyz")
    return len(frames)
