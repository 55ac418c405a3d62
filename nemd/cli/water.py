"""Liquid water NVT with a machine-learned potential: the run users try first.

    python simulations/water_nvt.py --atoms 512            # ~171 molecules, a few minutes on 2 cores
    python simulations/water_nvt.py --molecules 512 --steps 20000 --equilibration 4000   # production-like

The water preset of ``nemd run``. It starts from a shipped pre-equilibrated RPBE-D3 liquid
(``nemd/io/liquids/``, with its velocities; replicated, or trimmed by up to 2 % of whole
molecules, to the requested size when a box of that density allows), else builds a water
box (or reads --structure) and minimises it briefly (FIRE). Then it equilibrates in NVT
with a Langevin thermostat (every atom, so the O–H vibrations equilibrate too) and runs
--steps NVT steps (Nose–Hoover by default) writing an H5MD trajectory (--out) every --every
steps, with a checkpoint next to it. Prints progress, then a summary with speed,
neighbour-list statistics, O and H kinetic temperatures and the O–O, O–H and H–H RDF first
peaks, and saves an RDF plot. Ctrl-C stops cleanly (trajectory and checkpoint flushed,
summary printed); --resume continues.
Units: Å, fs (input), ps (trajectory), K, eV.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from ..ui import UserError
from .run import add_run_arguments, read_input, run


# Langevin steps that settle a shipped box after replication and velocity rescaling, or a built
# box after minimisation; production steps of the default run (docs/benchmarks.md, issue 21).
SHIPPED_EQUILIBRATION, BUILT_EQUILIBRATION, PRODUCTION_STEPS = 200, 400, 1000


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="water_nvt.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    size = p.add_mutually_exclusive_group()
    size.add_argument("--atoms", type=int, help="build the water box with the whole number of molecules closest to this")
    size.add_argument("--molecules", type=int, help="build exactly this many molecules")
    size.add_argument("--structure", type=Path, help="start from a structure file ASE reads (with its cell)")
    p.add_argument("--density", type=float, default=0.997, help="g/cm^3 for built boxes (default 0.997)")
    p.add_argument("--build", action="store_true",
                   help="build a new box even when a shipped pre-equilibrated one fits the size and density")
    add_run_arguments(p, out=Path("runs/water_nvt.h5"), steps=PRODUCTION_STEPS, equilibration=None,
                      equilibration_help=f"default {SHIPPED_EQUILIBRATION} from a shipped equilibrated box, "
                                         f"{BUILT_EQUILIBRATION} for a built one")
    return p.parse_args(argv)


def build_structure(args):
    from ..io import molecules_for_atoms, water_box
    from ..io.equilibrated import equilibrated_water

    if args.structure is not None:
        s = read_input(args.structure)
        if not s.pbc.all():
            raise UserError(f"{args.structure} has no periodic cell: liquid water NVT needs one")
        return s, f"--structure {args.structure}: {s.n_atoms} atoms", None
    if args.molecules is not None:
        if args.molecules < 1:
            raise UserError(f"--molecules must be positive, got {args.molecules}")
        n, label = args.molecules, f"--molecules {args.molecules}"
    else:
        atoms = 512 if args.atoms is None else args.atoms
        if atoms < 1:
            raise UserError(f"--atoms must be positive, got {atoms}")
        n, label = molecules_for_atoms(atoms), f"--atoms {atoms}"
    if not args.build:
        start = equilibrated_water(n, args.density, args.temperature, seed=args.seed)
        if start is not None:
            made = start.info
            return start.structure, (
                f"{label}: {n} H2O = {start.structure.n_atoms} atoms in a {start.structure.cell[0, 0]:.2f} Å cubic "
                f"box ({args.density} g/cm3), from the pre-equilibrated {made['molecules']}-molecule liquid "
                f"({made['steps'] * made['timestep_fs'] / 1000:g} ps {made['thermostat']} NVT at "
                f"{made['temperature_K']:g} K with {made['model']}; --build makes a new box)"), start.momenta
    try:
        s = water_box(n, density=args.density, seed=args.seed)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    return s, f"{label}: {n} H2O = {s.n_atoms} atoms in a {s.cell[0, 0]:.2f} Å cubic box ({args.density} g/cm3)", None


def min_oo_distance(s) -> str:
    from ..neighbors import build

    pairs = build(s.positions, s.cell, s.pbc, 4.0)
    oxygen = s.numbers == 8
    sel = oxygen[pairs.senders] & oxygen[pairs.receivers]
    if not sel.any():
        return "no O–O pair within 4 Å"
    vec = s.positions[pairs.senders[sel]] + pairs.shifts[sel] @ s.cell - s.positions[pairs.receivers[sel]]
    return f"minimum O–O distance {np.linalg.norm(vec, axis=1).min():.2f} Å"


def main(argv=None, *, restart: bool | None = None) -> int:
    """The program on ``argv`` (default: the command line). ``restart`` (default: when
    reading the command line) lets it re-execute itself to set malloc's huge pages for the
    model; calls from Python (tests) keep their process."""
    args = parse_args(argv)
    try:
        start = None if args.resume else build_structure(args)
        if args.equilibration is None:
            shipped = start is not None and start[2] is not None
            args.equilibration = SHIPPED_EQUILIBRATION if shipped else BUILT_EQUILIBRATION
        return run(args, lambda: start, restart=argv is None if restart is None else restart,
                   describe=min_oo_distance)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
