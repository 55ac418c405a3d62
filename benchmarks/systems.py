"""Liquid-water systems shared by the benchmark scripts (built from ../shared data)."""

from __future__ import annotations

import numpy as np

from nemd.data import water_data_dir
from nemd.io import Structure, read_structure, replicate


def liquid_water(n_atoms: int) -> Structure:
    """Equilibrated RPBE-D3 liquid water with about ``n_atoms`` atoms.

    Multiples k x 8640 are replicas of the 8640-atom liquid, a x b x c = k as cubic as
    possible (311040 = 3 x 3 x 4); smaller sizes are a cube cut from it at its density
    (molecules at the faces are cut: fine for timing, not for physics).
    """
    directory = water_data_dir()
    if directory is None:
        raise SystemExit("needs ../shared/data/water (or NEMD_DATA) for the liquid water structure")
    liquid = read_structure(directory / "liquid-8640-rpbe-d3.lammps-data")
    if n_atoms % liquid.n_atoms == 0:
        return replicate(liquid, replicas(n_atoms // liquid.n_atoms))
    frac = np.linalg.solve(liquid.cell.T, liquid.positions.T).T % 1.0
    wrapped = frac @ liquid.cell
    side = (n_atoms / liquid.n_atoms * abs(np.linalg.det(liquid.cell))) ** (1 / 3)
    inside = np.all(wrapped < side, axis=1)
    return Structure(wrapped[inside], liquid.numbers[inside], np.eye(3) * side, np.ones(3, bool))


def replicas(k: int) -> tuple[int, int, int]:
    """The most cubic (a, b, c) with a * b * c = k."""
    best = min(((a, b, k // (a * b)) for a in range(1, k + 1) for b in range(a, k + 1) if k % (a * b) == 0
                and k // (a * b) >= b), key=lambda r: max(r) / min(r))
    return best


def md_water(model, n_atoms: int, skin: float, chunk_steps: int) -> Structure:
    """Water for MD benchmarks: replicas of the equilibrated liquid for multiples of 8640
    atoms; otherwise ``water_box(n_atoms // 3)`` after 60 FIRE steps with ``model`` (a cut
    cube has molecules broken across its faces, which MD rejects as overlapping atoms)."""
    from nemd.io import water_box
    from nemd.md import ListSettings, fire_minimize

    if n_atoms % 8640 == 0:
        return liquid_water(n_atoms)
    s = water_box(n_atoms // 3, seed=0)
    relaxed = fire_minimize(model, s.numbers, s.positions, s.cell, True, fmax=1.0, max_steps=60,
                            lists=ListSettings(skin=skin), chunk_steps=chunk_steps)
    return Structure(relaxed.positions, s.numbers, s.cell, s.pbc)
