"""Structures from anything ASE reads."""

from __future__ import annotations

from pathlib import Path

from ..structure import Structure

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
