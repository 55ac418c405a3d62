"""Liquid-water boxes built from scratch (no input file needed)."""

from __future__ import annotations

import numpy as np

from ..structure import Structure
from ..units import AMU_PER_A3_IN_G_PER_CM3, density_g_cm3

OH_BOND = 0.9572  # Å (TIP3P/TIP4P geometry)
HOH_ANGLE = 104.52  # degrees
WATER_MASS = 18.01528  # amu
#: Closest approach allowed between atoms of different molecules when placing them (Å).
MIN_INTERMOLECULAR = 1.6


def _molecule() -> np.ndarray:
    half = np.radians(HOH_ANGLE) / 2
    return np.array([[0.0, 0.0, 0.0],
                     [OH_BOND * np.sin(half), 0.0, OH_BOND * np.cos(half)],
                     [-OH_BOND * np.sin(half), 0.0, OH_BOND * np.cos(half)]])


def _random_rotation(rng) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


_LATTICE_BASES = {  # fractional basis of the cubic cell: sc, bcc, fcc
    "sc": np.array([[0.5, 0.5, 0.5]]),
    "bcc": np.array([[0.25, 0.25, 0.25], [0.75, 0.75, 0.75]]),
    "fcc": np.array([[0.25, 0.25, 0.25], [0.75, 0.75, 0.25], [0.75, 0.25, 0.75], [0.25, 0.75, 0.75]]),
}


def _lattice_sites(n: int) -> np.ndarray:
    """Fractional coordinates of the cubic lattice with the fewest sites >= n.

    At fixed density, fewer spare sites means wider spacing; fcc wins ties (widest).
    """
    best = None
    for basis in _LATTICE_BASES.values():
        k = int(np.ceil((n / len(basis)) ** (1 / 3) - 1e-9))
        if best is None or len(basis) * k**3 <= len(best[0]) * best[1] ** 3:
            best = basis, k
    basis, k = best
    grid = np.stack(np.meshgrid(*[np.arange(k)] * 3, indexing="ij"), -1).reshape(-1, 1, 3)
    return ((grid + basis) / k).reshape(-1, 3)


def water_box(n_molecules: int, density: float = 0.997, seed: int = 0, max_tries: int = 200) -> Structure:
    """A cubic periodic box of ``n_molecules`` rigid water molecules at ``density`` (g/cm^3).

    Molecules (O–H 0.9572 Å, H–O–H 104.52°) sit on the sites of a simple cubic, bcc or
    fcc lattice (whichever has the fewest sites >= n, so that sites stay about 3 Å
    apart; a random subset when there are spare sites), each with a random orientation,
    re-drawn until no atom is closer than 1.6 Å to an atom of another molecule (a site
    where that fails is skipped for a spare one). Atoms are ordered O, H, H per molecule.
    Raises ValueError if no such packing is found.
    """
    if int(n_molecules) < 1:
        raise ValueError(f"need at least one water molecule, got {n_molecules}")
    if not density > 0:
        raise ValueError(f"density must be positive (g/cm^3), got {density}")
    n = int(n_molecules)
    rng = np.random.default_rng(seed)
    side = (n * WATER_MASS * AMU_PER_A3_IN_G_PER_CM3 / density) ** (1 / 3)
    fractional = _lattice_sites(n)
    sites = fractional[rng.permutation(len(fractional))] * side
    template = _molecule() - _molecule().mean(axis=0) * [1, 1, 1]
    placed = np.zeros((0, 3))
    for site in sites:
        if len(placed) == 3 * n:
            break
        for _ in range(max_tries):
            atoms = site + template @ _random_rotation(rng).T
            if placed.size == 0:
                break
            delta = atoms[:, None, :] - placed[None, :, :]
            delta -= side * np.round(delta / side)  # minimum image (cubic box)
            if np.sqrt((delta**2).sum(-1)).min() >= MIN_INTERMOLECULAR:
                break
        else:
            continue  # crowded site: try a spare one
        placed = np.vstack([placed, atoms])
    if len(placed) < 3 * n:
        raise ValueError(f"could not place {n} water molecules at {density} g/cm^3 without overlaps")
    numbers = np.tile([8, 1, 1], n)
    return Structure(placed, numbers, np.eye(3) * side, np.ones(3, bool))


def molecules_for_atoms(n_atoms: int) -> int:
    """Whole number of water molecules whose atom count is closest to ``n_atoms``."""
    if int(n_atoms) < 1:
        raise ValueError(f"the number of atoms must be positive, got {n_atoms}")
    return max(1, int(round(n_atoms / 3)))


def rescale_water(structure: Structure, density: float) -> Structure:
    """Water ``structure`` brought rigidly to ``density`` (g/cm^3): oxygen positions and
    the cell scaled, every O–H vector kept (an unrelaxed compression or expansion).

    Each H belongs to the O closest to it within 1.3 Å; ValueError when some H has none.
    """
    from ..neighbors import build

    if not density > 0:
        raise ValueError(f"density must be positive (g/cm^3), got {density}")
    s = structure
    pairs = build(s.positions, s.cell, s.pbc, 1.3)  # covalent O–H only
    owner = np.arange(s.n_atoms)
    oh = (s.numbers[pairs.receivers] == 1) & (s.numbers[pairs.senders] == 8)
    owner[pairs.receivers[oh]] = pairs.senders[oh]
    if np.any(owner[s.numbers == 1] == np.flatnonzero(s.numbers == 1)):
        raise ValueError("some H has no O within 1.3 Å: not a water structure")
    bond = s.positions - s.positions[owner]
    bond -= np.round(bond @ np.linalg.inv(s.cell)) @ s.cell
    scale = (density_g_cm3(s.numbers, s.cell) / density) ** (1 / 3)
    return Structure(s.positions[owner] * scale + bond, s.numbers, s.cell * scale, s.pbc)
