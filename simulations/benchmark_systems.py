"""Liquid-water systems shared by the benchmark scripts (built from ../shared data)."""

from __future__ import annotations

import numpy as np

from nemd.data import water_data_dir
from nemd.io import Structure, read_structure, replicate


def liquid_water(n_atoms: int) -> Structure:
    """Equilibrated RPBE-D3 liquid water with about ``n_atoms`` atoms.

    Multiples k^3 x 8640 are replicas of the 8640-atom liquid; smaller sizes are a cube
    cut from it at its density (molecules at the faces are cut: fine for timing, not
    for physics).
    """
    directory = water_data_dir()
    if directory is None:
        raise SystemExit("needs ../shared/data/water (or NEMD_DATA) for the liquid water structure")
    liquid = read_structure(directory / "liquid-8640-rpbe-d3.lammps-data")
    if n_atoms % liquid.n_atoms == 0:
        k = round((n_atoms // liquid.n_atoms) ** (1 / 3))
        if k**3 * liquid.n_atoms != n_atoms:
            raise SystemExit(f"{n_atoms} atoms is not a cubic replica of the 8640-atom liquid")
        return replicate(liquid, (k, k, k))
    frac = np.linalg.solve(liquid.cell.T, liquid.positions.T).T % 1.0
    wrapped = frac @ liquid.cell
    side = (n_atoms / liquid.n_atoms * abs(np.linalg.det(liquid.cell))) ** (1 / 3)
    inside = np.all(wrapped < side, axis=1)
    return Structure(wrapped[inside], liquid.numbers[inside], np.eye(3) * side, np.ones(3, bool))
