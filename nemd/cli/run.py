"""``nemd run structure.xyz``: NVT MD of any structure ASE reads, with any model.

    nemd run box.extxyz --model nemp-small --temperature 350 --steps 20000 --every 50
    nemd run box.extxyz --out runs/box.h5 --resume       # continue a stopped run

Minimises the structure (FIRE), equilibrates it with a Langevin thermostat (every atom, so
stiff vibrations reach the target temperature too), then runs --steps NVT steps
(Nose–Hoover by default) writing an H5MD trajectory (--out) every --every steps, with a
checkpoint next to it. Prints progress, then a summary: speed, neighbour lists, the
kinetic temperature of every element and, for periodic cells, the first peaks of the RDFs
of every element pair (plot next to the trajectory). Ctrl-C stops cleanly (trajectory and
checkpoint flushed, summary printed); --resume continues. Units: Å, fs (input), ps
(trajectory), K, eV. ``simulations/water_nvt.py`` (``nemd water``) is its preset for water.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import sys
from pathlib import Path

import numpy as np

from ..ui import UserError


def add_run_arguments(p: argparse.ArgumentParser, *, out: Path, model: str = "bpnn-rpbe-d3", steps: int = 300,
                      equilibration: int | None = 400, equilibration_help: str = "default 400") -> None:
    """The options every MD run has (model, thermostat, lengths, output, lists); a preset
    may change the default lengths (``equilibration=None``: it decides after parsing)."""
    from ..models import MODELS

    p.add_argument("--model", default=model,
                   help=f"a model file written by nemd train (*.nemd) or a registered model (default {model}): "
                        + "; ".join(f"{name}: {entry.description}" for name, entry in MODELS.items()))
    p.add_argument("--model-dir", type=Path, default=None,
                   help="directory holding the BPNN model directories (default: $NEMD_DATA or ../shared/data/water)")
    p.add_argument("--temperature", type=float, default=300.0, help="K (default 300)")
    p.add_argument("--timestep", type=float, default=0.5, help="fs (default 0.5)")
    p.add_argument("--steps", type=int, default=steps,
                   help=f"production steps written to the trajectory (default {steps})")
    p.add_argument("--equilibration", type=int, default=equilibration,
                   help=f"NVT steps after the minimisation, not written ({equilibration_help})")
    p.add_argument("--minimize-steps", type=int, default=200, help="FIRE steps at most before NVT (default 200)")
    p.add_argument("--fmax", type=float, default=0.1,
                   help="stop minimising when the largest force is below this, eV/Å (default 0.1)")
    p.add_argument("--thermostat", default="nose-hoover", choices=["nose-hoover", "langevin"],
                   help="production thermostat (default nose-hoover)")
    p.add_argument("--equilibration-thermostat", default="langevin", choices=["nose-hoover", "langevin"],
                   help="equilibration thermostat (default langevin: it thermostats every atom, so stiff "
                        "vibrations such as water's O–H reach the target temperature too; a global Nose–Hoover "
                        "chain leaves them cold and the rest hot for picoseconds)")
    p.add_argument("--tau", type=float, default=None, help="thermostat time constant in fs (default 100 steps)")
    p.add_argument("--out", type=Path, default=out, help=f"H5MD trajectory (default {out})")
    p.add_argument("--every", type=int, default=10, help="write a frame every this many steps (default 10)")
    p.add_argument("--checkpoint-every", type=int, default=1000,
                   help="save the checkpoint at the first frame after every this many steps (default 1000), "
                        "so that a killed run can be resumed")
    p.add_argument("--seed", type=int, default=0, help="random seed (velocities, Langevin noise; default 0)")
    p.add_argument("--skin", type=float, default=1.0, help="neighbour-list skin in Å (default 1.0)")
    p.add_argument("--chunk-steps", type=int, default=5, help="steps per jitted chunk (default 5)")
    p.add_argument("--sync-neighbors", action="store_true", help="build lists between chunks instead of overlapping")
    p.add_argument("--neighbor-backend", default="auto", choices=["auto", "numba", "fortran"],
                   help="CPU neighbour-list code (default auto: Fortran when built, else Numba)")
    p.add_argument("--x64", action="store_true", help="float64 everywhere (default float32)")
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint next to --out and append")


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


def load_model(args, restart: bool = False):
    """The model; with ``restart``, the program first re-executes itself with malloc's
    huge pages set as the model prefers (``nemd.runtime``)."""
    from ..models import MODELS, load
    from ..runtime import restart_with_huge_pages

    saved = args.model.endswith(".nemd")
    if args.model not in MODELS and not saved:
        raise UserError(f"unknown model {args.model!r}; available: {', '.join(MODELS)} or a saved .nemd file")
    try:
        model = load(args.model, args.model_dir)
    except (FileNotFoundError, ValueError) as exc:
        raise UserError(f"{exc}" + ("; set --model-dir" if args.model_dir is None else "")) from None
    if restart:
        restart_with_huge_pages(model)
    if not saved and not MODELS[args.model].trained:
        print(f"warning: {args.model} has random (untrained) weights: good for timing, not for physics")
    return model


def read_input(path: Path):
    """The structure file, with a one-line error for what MD cannot start from."""
    from ..io import read_structure

    try:
        s = read_structure(path)
    except (FileNotFoundError, ValueError) as exc:
        raise UserError(str(exc)) from None
    if s.pbc.any() and abs(float(np.linalg.det(s.cell))) == 0:
        raise UserError(f"{path} is periodic but has no cell: give its lattice vectors or make it non-periodic")
    return s


def run(args, structure_fn, restart: bool = False, describe=None) -> int:
    """The protocol on the start ``structure_fn()`` returns as ``(structure, description,
    momenta)``: momenta (internal units) of a pre-equilibrated start, which is then not
    minimised, or None; ``describe(structure)`` adds a line (e.g. the closest O–O distance)."""
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
            structure, description, momenta = structure_fn()
            if momenta is not None:
                protocol = dataclasses.replace(protocol, minimize_steps=0)
            print(description)
            try:
                model.kinds(structure.numbers)  # species check before any output
            except ValueError as exc:
                raise UserError(str(exc)) from None
            extra = f"{describe(structure)}; " if describe else ""
            print(f"{extra}model {args.model}; {'float64' if args.x64 else 'float32'}, JAX on {jax.default_backend()}")
            with StopOnInterrupt() as stop, Progress(protocol.equilibration_steps, structure.n_atoms, args.timestep,
                                                     f"equilibration ({protocol.equilibration_thermostat})") as bar:
                sim = files.equilibrated(model, structure, md, lists, protocol,
                                         info=dict(model=args.model, argv=sys.argv[1:]), on_chunk=bar, stop=stop,
                                         momenta=momenta)
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
    from ..analysis import describe_peaks, kinetic_temperature_errors, kinetic_temperatures, radial_distribution
    from ..analysis.plots import plot_rdf
    from ..io.h5md import read_frames
    from ..units import atomic_number, symbols_of

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
    if trajectory.velocities is not None:
        by_element = kinetic_temperatures(trajectory.velocities, trajectory.numbers)
        errors = kinetic_temperature_errors(trajectory.velocities, trajectory.numbers)
        print("  kinetic temperature by element (equal in equilibrium; ± standard error of 5 blocks): "
              + ", ".join(f"{el} {t:.1f} ± {errors[el]:.1f} K" for el, t in sorted(by_element.items())))
    if trajectory.cell is None or not trajectory.pbc.all():
        print(f"  trajectory: {args.out} (no RDF: the structure is not periodic)")
        return
    # All periodic images are counted, so r_max may exceed half the box.
    elements = sorted(set(symbols_of(trajectory.numbers)), key=lambda e: -atomic_number(e))
    pairs = [f"{a}-{b}" for a, b in itertools.combinations_with_replacement(elements, 2)]
    result = radial_distribution(zip(trajectory.positions, trajectory.cell), trajectory.numbers, pairs,
                                 r_max=6.0, n_bins=200)
    print(f"  RDF over {result.n_frames} frames of {args.out}:")
    for pair in result.g:
        p = describe_peaks(result, pair)
        print(f"    {pair}: first peak {p.peak_r:.2f} Å (g = {p.peak_g:.2f}), first minimum {p.minimum_r:.2f} Å, "
              f"coordination {p.coordination:.2f}")
    plot = rdf_plot_path(args.out)
    plot_rdf(result, plot, f"{args.model}, {n} atoms, {args.temperature:.0f} K, {result.n_frames} frames")
    print(f"  RDF plot: {plot}; trajectory: {args.out} (open with nemd.io.h5md.universe or MDAnalysis)")


def main(argv=None, *, restart: bool | None = None) -> int:
    """``nemd run`` on ``argv`` (default: the command line, which may restart the process
    to set malloc's huge pages for the model; calls from Python keep their process)."""
    p = argparse.ArgumentParser(prog="nemd run", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("structure", type=Path, help="structure file ASE reads (a cell for periodic systems)")
    add_run_arguments(p, out=Path("runs/<structure>.h5"))
    args = p.parse_args(argv)
    if args.out == Path("runs/<structure>.h5"):
        args.out = Path("runs") / f"{args.structure.stem}.h5"

    def structure():
        s = read_input(args.structure)
        return s, f"{args.structure}: {s.n_atoms} atoms", None

    try:
        return run(args, structure, restart=argv is None if restart is None else restart)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
