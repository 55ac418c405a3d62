"""Liquid water NVT with a machine-learned potential: the run users try first.

    python simulations/water_nvt.py --atoms 512            # ~171 molecules, a few minutes on 2 cores
    python simulations/water_nvt.py --molecules 512 --steps 20000 --equilibration 4000   # production-like

Builds a water box (or reads --structure), minimises it briefly (FIRE), equilibrates in
NVT with a Langevin thermostat (every atom, so the O–H vibrations equilibrate too), then
runs --steps NVT steps (Nose–Hoover by default) writing an H5MD trajectory (--out) every
--every steps, with a checkpoint next to it. Prints progress, then a summary with speed,
neighbour-list statistics, O and H kinetic temperatures and the O–O, O–H and H–H RDF first
peaks, and saves an RDF plot. Ctrl-C stops cleanly (trajectory and checkpoint flushed,
summary printed); --resume continues. Units: Å, fs (input), ps (trajectory), K, eV.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from ..ui import UserError


def parse_args(argv=None):
    from ..models import MODELS

    p = argparse.ArgumentParser(prog="water_nvt.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    size = p.add_mutually_exclusive_group()
    size.add_argument("--atoms", type=int, help="build the water box with the whole number of molecules closest to this")
    size.add_argument("--molecules", type=int, help="build exactly this many molecules")
    size.add_argument("--structure", type=Path, help="start from a structure file ASE reads (with its cell)")
    p.add_argument("--density", type=float, default=0.997, help="g/cm^3 for built boxes (default 0.997)")
    p.add_argument("--model", default="bpnn-rpbe-d3",
                   help="a registered model (default bpnn-rpbe-d3): "
                        + "; ".join(f"{name}: {entry.description}" for name, entry in MODELS.items()))
    p.add_argument("--model-dir", type=Path, default=None,
                   help="directory holding the BPNN model directories (default: $NEMD_DATA or ../shared/data/water)")
    p.add_argument("--temperature", type=float, default=300.0, help="K (default 300)")
    p.add_argument("--timestep", type=float, default=0.5, help="fs (default 0.5)")
    p.add_argument("--steps", type=int, default=300, help="production steps written to the trajectory (default 300)")
    p.add_argument("--equilibration", type=int, default=400,
                   help="NVT steps after the minimisation, not written (default 400)")
    p.add_argument("--minimize-steps", type=int, default=200, help="FIRE steps at most before NVT (default 200)")
    p.add_argument("--fmax", type=float, default=0.1,
                   help="stop minimising when the largest force is below this, eV/Å (default 0.1)")
    p.add_argument("--thermostat", default="nose-hoover", choices=["nose-hoover", "langevin"],
                   help="production thermostat (default nose-hoover)")
    p.add_argument("--equilibration-thermostat", default="langevin", choices=["nose-hoover", "langevin"],
                   help="equilibration thermostat (default langevin: it thermostats every atom, so the stiff "
                        "O–H vibrations reach the target temperature too; a global Nose–Hoover chain leaves "
                        "them cold and the rest hot for picoseconds)")
    p.add_argument("--tau", type=float, default=None, help="thermostat time constant in fs (default 100 steps)")
    p.add_argument("--out", type=Path, default=Path("runs/water_nvt.h5"), help="H5MD trajectory")
    p.add_argument("--every", type=int, default=10, help="write a frame every this many steps")
    p.add_argument("--checkpoint-every", type=int, default=1000,
                   help="save the checkpoint at the first frame after every this many steps (default 1000), "
                        "so that a killed run can be resumed")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--skin", type=float, default=1.0, help="neighbour-list skin in Å (default 1.0)")
    p.add_argument("--chunk-steps", type=int, default=5, help="steps per jitted chunk (default 5)")
    p.add_argument("--sync-neighbors", action="store_true", help="build lists between chunks instead of overlapping")
    p.add_argument("--neighbor-backend", default="auto", choices=["auto", "numba", "fortran"])
    p.add_argument("--x64", action="store_true", help="float64 everywhere (default float32)")
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint next to --out and append")
    return p.parse_args(argv)


def rdf_plot_path(out: Path) -> Path:
    return out.with_name(out.stem + "_rdf.png")


def settings_from(args):
    """(MD settings, list settings, protocol) of the command line; UserError when invalid."""
    from ..md import ListSettings, MDSettings
    from ..protocol import Protocol

    if not args.temperature > 0:
        raise UserError(f"--temperature must be positive (K), got {args.temperature}")
    if not args.timestep > 0:
        raise UserError(f"--timestep must be positive (fs), got {args.timestep}")
    for name in ("steps", "equilibration", "minimize_steps"):
        if getattr(args, name) < 0:
            raise UserError(f"--{name.replace('_', '-')} must be >= 0")
    if args.every < 1 or args.checkpoint_every < 1:
        raise UserError("--every and --checkpoint-every must be >= 1")
    try:
        md = MDSettings(timestep_fs=args.timestep, temperature_K=args.temperature, thermostat=args.thermostat,
                        tau_fs=args.tau, chunk_steps=args.chunk_steps, seed=args.seed)
        lists = ListSettings(skin=args.skin, mode="sync" if args.sync_neighbors else "async",
                             backend=args.neighbor_backend)
        protocol = Protocol(minimize_steps=args.minimize_steps, fmax=args.fmax,
                            equilibration_steps=args.equilibration,
                            equilibration_thermostat=args.equilibration_thermostat,
                            production_steps=args.steps, every=args.every, checkpoint_every=args.checkpoint_every)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    return md, lists, protocol


def build_structure(args):
    from ..io import molecules_for_atoms, read_structure, water_box

    if args.structure is not None:
        try:
            s = read_structure(args.structure)
        except (FileNotFoundError, ValueError) as exc:
            raise UserError(str(exc)) from None
        if s.periodic_cell is None or not s.pbc.all() or abs(float(np.linalg.det(s.cell))) == 0:
            raise UserError(f"{args.structure} has no periodic cell: liquid water NVT needs one")
        return s, f"--structure {args.structure}: {s.n_atoms} atoms"
    if args.molecules is not None:
        if args.molecules < 1:
            raise UserError(f"--molecules must be positive, got {args.molecules}")
        n, label = args.molecules, f"--molecules {args.molecules}"
    else:
        atoms = 512 if args.atoms is None else args.atoms
        if atoms < 1:
            raise UserError(f"--atoms must be positive, got {atoms}")
        n, label = molecules_for_atoms(atoms), f"--atoms {atoms}"
    try:
        s = water_box(n, density=args.density, seed=args.seed)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    return s, f"{label}: {n} H2O = {s.n_atoms} atoms in a {s.cell[0, 0]:.2f} Å cubic box ({args.density} g/cm3)"


def min_oo_distance(s) -> float:
    from ..neighbors import build

    pairs = build(s.positions, s.cell, s.pbc, 4.0)
    oxygen = s.numbers == 8
    sel = oxygen[pairs.senders] & oxygen[pairs.receivers]
    if not sel.any():
        return float("nan")
    vec = s.positions[pairs.senders[sel]] + pairs.shifts[sel] @ s.cell - s.positions[pairs.receivers[sel]]
    return float(np.linalg.norm(vec, axis=1).min())


def load_model(args, restart: bool = False):
    """The model; with ``restart``, the program first re-executes itself with malloc's
    huge pages set as the model prefers (``nemd.runtime``)."""
    from ..models import MODELS, load
    from ..runtime import restart_with_huge_pages

    if args.model not in MODELS:
        raise UserError(f"unknown model {args.model!r}; available: {', '.join(MODELS)}")
    try:
        model = load(args.model, args.model_dir)
    except (FileNotFoundError, ValueError) as exc:
        raise UserError(f"{exc}" + ("; set --model-dir" if args.model_dir is None else "")) from None
    if restart:
        restart_with_huge_pages(model)
    if not MODELS[args.model].trained:
        print(f"warning: {args.model} has random (untrained) weights: good for timing, not for physics")
    return model


def run(args, restart: bool = False) -> int:
    import jax

    if args.x64:
        jax.config.update("jax_enable_x64", True)
    from ..md import SimulationError
    from ..protocol import Run
    from ..ui import Progress, StopOnInterrupt, show_messages

    show_messages()
    md, lists, protocol = settings_from(args)
    files = Run(args.out)
    if args.resume and not files.resumable:
        raise UserError(f"--resume: no checkpoint {files.checkpoint} to continue from")
    model = load_model(args, restart)
    try:
        if args.resume:
            sim = files.resumed(model, neighbor_mode=lists.mode)
        else:
            structure, description = build_structure(args)
            print(description)
            try:
                model.kinds(structure.numbers)  # species check before any output
            except ValueError as exc:
                raise UserError(str(exc)) from None
            print(f"minimum O–O distance {min_oo_distance(structure):.2f} Å; model {args.model}; "
                  f"{'float64' if args.x64 else 'float32'}, JAX on {jax.default_backend()}")
            with StopOnInterrupt() as stop, Progress(protocol.equilibration_steps, structure.n_atoms, args.timestep,
                                                     f"equilibration ({protocol.equilibration_thermostat})") as bar:
                sim = files.equilibrated(model, structure, md, lists, protocol,
                                         info=dict(model=args.model, argv=sys.argv[1:]), on_chunk=bar, stop=stop)
    except KeyboardInterrupt:
        print("interrupted before production: no trajectory written", file=sys.stderr)
        return 130
    except SimulationError as exc:
        print(f"error before production: {exc}; no trajectory written", file=sys.stderr)
        return 1
    info = files.info()
    target = info["production_start"] + info["steps"]
    with StopOnInterrupt() as stop, Progress(target - sim.step, sim.numbers.size, args.timestep, "production") as bar:
        production = files.produce(sim, resume=args.resume, precision="float64" if args.x64 else "float32",
                                   on_chunk=bar, stop=stop)
    summary(args, sim, bar, production)
    if production.stopped:
        where = f"the checkpoint of step {production.checkpoint_step}" if production.hard_interrupt else "the checkpoint"
        print(f"interrupted at step {sim.step}: trajectory flushed; --resume continues from {where}")
        return 130
    if production.error is not None:
        print(f"error: {production.error}", file=sys.stderr)
        return 1
    return 0


def summary(args, sim, progress, production) -> None:
    from ..analysis import describe_peaks, kinetic_temperatures, radial_distribution
    from ..analysis.plots import plot_rdf
    from ..io.h5md import read_frames

    n, steps, wall = sim.numbers.size, production.steps, production.wall_s
    lists = sim.stream
    print("\nsummary")
    print(f"  atoms {n}, steps {steps} ({steps * args.timestep / 1000:.3f} ps simulated, dt {args.timestep} fs), "
          f"wall {wall:.1f} s")
    if steps:
        print(f"  speed {1e6 * wall / (steps * n):.1f} µs/atom/step, {steps / wall:.2f} steps/s, "
              f"{steps / wall * args.timestep * 86400e-6:.4f} ns/day")
    print(f"  neighbour lists: {lists.rebuilds} rebuilds, {lists.violations} skin violations (redone), "
          f"{lists.recompilations} recompilations, waited {lists.wait_seconds:.2f} s for builds "
          f"({lists.build_seconds:.1f} s building)")
    if progress.temperatures:
        print(f"  mean temperature {np.mean(progress.temperatures):.1f} K (target {args.temperature} K)")
    trajectory = read_frames(args.out)
    if trajectory.n_frames == 0:
        return
    # All periodic images are counted, so r_max may exceed half the box.
    result = radial_distribution(zip(trajectory.positions, trajectory.cell), trajectory.numbers,
                                 ["O-O", "O-H", "H-H"], r_max=6.0, n_bins=200)
    if trajectory.velocities is not None:
        by_element = kinetic_temperatures(trajectory.velocities, trajectory.numbers)
        print("  kinetic temperature by element (equal in equilibrium): "
              + ", ".join(f"{el} {t:.1f} K" for el, t in sorted(by_element.items())))
    print(f"  RDF over {result.n_frames} frames of {args.out}:")
    for pair in result.g:
        p = describe_peaks(result, pair)
        print(f"    {pair}: first peak {p.peak_r:.2f} Å (g = {p.peak_g:.2f}), first minimum {p.minimum_r:.2f} Å, "
              f"coordination {p.coordination:.2f}")
    plot = rdf_plot_path(args.out)
    plot_rdf(result, plot, f"{args.model}, {n} atoms, {args.temperature:.0f} K, {result.n_frames} frames")
    print(f"  RDF plot: {plot}; trajectory: {args.out} (open with nemd.io.h5md.universe or MDAnalysis)")


def main(argv=None, *, restart: bool | None = None) -> int:
    """The program on ``argv`` (default: the command line). ``restart`` (default: when
    reading the command line) lets it re-execute itself to set malloc's huge pages for the
    model; calls from Python (tests) keep their process."""
    args = parse_args(argv)
    try:
        return run(args, restart=argv is None if restart is None else restart)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

