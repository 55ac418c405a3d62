"""Liquid water NVT with a machine-learned potential: the run users try first.

    python simulations/water_nvt.py --atoms 512            # ~171 molecules, a few minutes on 2 cores
    python simulations/water_nvt.py --molecules 512 --steps 20000 --equilibration 4000   # production-like

Builds a water box (or reads --structure), minimises it briefly (FIRE), equilibrates in
NVT with a Langevin thermostat (every atom, so the O–H vibrations equilibrate too), then
runs --steps NVT steps (Nose–Hoover by default) writing an H5MD trajectory (--out) every
--every steps, with a checkpoint next to it. Prints progress, then a summary with speed,
neighbour-list statistics, O and H kinetic temperatures and the O–O, O–H and H–H RDF first
peaks, and saves an RDF plot. Ctrl-C stops
cleanly (trajectory and checkpoint flushed, summary printed); --resume continues.
Units: Å, fs (input), ps (trajectory), K, eV.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import signal
import sys
import time
from pathlib import Path

MODELS = {
    "bpnn-rpbe-d3": "RPBE-D3 Behler–Parrinello water potential (n2p2 example; Morawietz et al., PNAS 2016)",
    "bpnn-revpbe0-d3": "revPBE0-D3 Behler–Parrinello water potential (Cheng et al., PNAS 2019)",
}


class UserError(Exception):
    """Bad input: reported as one line, exit status 2, nothing written."""


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    size = p.add_mutually_exclusive_group()
    size.add_argument("--atoms", type=int, help="build the water box with the whole number of molecules closest to this")
    size.add_argument("--molecules", type=int, help="build exactly this many molecules")
    size.add_argument("--structure", type=Path, help="start from a structure file ASE reads (with its cell)")
    p.add_argument("--density", type=float, default=0.997, help="g/cm^3 for built boxes (default 0.997)")
    p.add_argument("--model", default="bpnn-rpbe-d3", help=f"one of {', '.join(MODELS)}")
    p.add_argument("--model-dir", type=Path, default=None,
                   help="directory holding the model directories (default: $NEMD_DATA or ../shared/data/water)")
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


def paths(out: Path):
    return out.with_suffix(".ckpt.npz"), out.with_suffix(".run.json"), out.with_name(out.stem + "_rdf.png")


def locate_model(args) -> Path:
    from nemd.data import water_data_dir

    if args.model not in MODELS:
        raise UserError(f"unknown model {args.model!r}; available: {', '.join(MODELS)}")
    base = args.model_dir or water_data_dir()
    if base is None:
        raise UserError(f"no weight files for {args.model}: pass --model-dir or set NEMD_DATA to the "
                        f"directory that holds {args.model}/ (input.nn, scaling.data, weights.*.data)")
    directory = Path(base) / args.model
    missing = [f for f in ("input.nn", "scaling.data") if not (directory / f).is_file()]
    if not directory.is_dir() or missing:
        raise UserError(f"weight files for {args.model} not found in {directory} "
                        f"(missing {', '.join(missing) or 'the directory'}); set --model-dir or NEMD_DATA")
    return directory


def build_structure(args):
    import numpy as np

    from nemd.io import molecules_for_atoms, read_structure, water_box

    if args.structure is not None:
        try:
            s = read_structure(args.structure)
        except (FileNotFoundError, ValueError) as exc:
            raise UserError(str(exc)) from None
        if not s.pbc.all() or abs(float(np.linalg.det(s.cell))) == 0:
            raise UserError(f"{args.structure} has no periodic cell: liquid water NVT needs one")
        return s, f"--structure {args.structure}: {s.n_atoms} atoms"
    if args.molecules is not None:
        if args.molecules < 1:
            raise UserError(f"--molecules must be positive, got {args.molecules}")
        n = args.molecules
        label = f"--molecules {n}"
    else:
        atoms = 512 if args.atoms is None else args.atoms
        if atoms < 1:
            raise UserError(f"--atoms must be positive, got {atoms}")
        n = molecules_for_atoms(atoms)
        label = f"--atoms {atoms}"
    try:
        s = water_box(n, density=args.density, seed=args.seed)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    return s, f"{label}: {n} H2O = {s.n_atoms} atoms in a {s.cell[0, 0]:.2f} Å cubic box ({args.density} g/cm3)"


def validate(args) -> None:
    if not args.temperature > 0:
        raise UserError(f"--temperature must be positive (K), got {args.temperature}")
    if not args.timestep > 0:
        raise UserError(f"--timestep must be positive (fs), got {args.timestep}")
    for name in ("steps", "equilibration", "minimize_steps"):
        if getattr(args, name) < 0:
            raise UserError(f"--{name.replace('_', '-')} must be >= 0")
    if args.every < 1 or args.checkpoint_every < 1:
        raise UserError("--every and --checkpoint-every must be >= 1")
    if args.resume and not paths(args.out)[0].is_file():
        raise UserError(f"--resume: no checkpoint {paths(args.out)[0]} to continue from")


def min_oo_distance(s) -> float:
    import numpy as np

    from nemd.neighbors import build

    pairs = build(s.positions, s.cell, s.pbc, 4.0)
    oxygen = s.numbers == 8
    sel = oxygen[pairs.senders] & oxygen[pairs.receivers]
    if not sel.any():
        return float("nan")
    vec = s.positions[pairs.senders[sel]] + pairs.shifts[sel] @ s.cell - s.positions[pairs.receivers[sel]]
    return float(np.linalg.norm(vec, axis=1).min())


class StopOnInterrupt:
    """While active, Ctrl-C asks the simulation to stop at the end of the running chunk
    (state, trajectory and checkpoint stay consistent); a second Ctrl-C interrupts at once."""

    def __init__(self):
        self.requested = False

    def __enter__(self):
        self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.requested:
            signal.signal(signal.SIGINT, self._previous)
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc):
        signal.signal(signal.SIGINT, self._previous)

    def __call__(self) -> bool:
        return self.requested


class Progress:
    """tqdm bar over steps with T, potential energy, steps/s and ns/day."""

    def __init__(self, total: int, n_atoms: int, timestep_fs: float, label: str):
        from tqdm import tqdm

        self.bar = tqdm(total=total, unit="step", desc=label, dynamic_ncols=True, file=sys.stdout,
                        mininterval=0.5 if sys.stdout.isatty() else 10.0)
        self.n_atoms, self.timestep = n_atoms, timestep_fs
        self.t0, self.done = time.perf_counter(), 0
        self.temperatures = []

    def __call__(self, report) -> None:
        self.done += report.n_steps
        self.temperatures.append(report.temperature)
        rate = self.done / max(time.perf_counter() - self.t0, 1e-9)
        # postfix first and without its own refresh, so update() redraws at most every mininterval
        self.bar.set_postfix_str(f"T={report.temperature:6.1f} K  Epot={report.potential / self.n_atoms:.4f} eV/atom  "
                                 f"{rate:.1f} steps/s  {rate * self.timestep * 86400e-6:.3f} ns/day", refresh=False)
        self.bar.update(report.n_steps)

    def close(self) -> None:
        self.bar.close()


def prepare(args, model, model_dir, settings):
    """The simulation at the start of production: restored from the checkpoint, or built,
    minimised and equilibrated. Returns (simulation, production start step, target step)."""
    import jax

    from nemd.md import Simulation
    from nemd.md.minimize import fire_minimize

    checkpoint, run_file, _ = paths(args.out)
    if args.resume:
        info = json.loads(run_file.read_text())
        sim = Simulation.from_checkpoint(checkpoint, model, neighbor_mode=settings.neighbor_mode)
        production_start, target = info["production_start"], info["production_start"] + info["steps"]
        print(f"resuming {args.out} at step {sim.step} (production {sim.step - production_start}/{info['steps']})")
    else:
        structure, description = build_structure(args)
        print(description)
        try:
            model.energy_fn(structure.numbers, structure.cell)  # species check before any output
        except ValueError as exc:
            raise UserError(str(exc)) from None
        print(f"minimum O–O distance {min_oo_distance(structure):.2f} Å; model {args.model} from {model_dir}; "
              f"{'float64' if args.x64 else 'float32'}, JAX on {jax.default_backend()}")
        t0 = time.perf_counter()
        relaxed = fire_minimize(model, structure.numbers, structure.positions, structure.cell, structure.pbc,
                                fmax=args.fmax, max_steps=args.minimize_steps, skin=args.skin, chunk_steps=args.chunk_steps)
        print(f"minimised: {relaxed.steps} FIRE steps, max force {relaxed.max_force:.2f} eV/Å, "
              f"E = {relaxed.energy / structure.n_atoms:.4f} eV/atom ({time.perf_counter() - t0:.0f} s)")
        equilibration = dataclasses.replace(settings, thermostat=args.equilibration_thermostat)
        sim = Simulation(model, structure.numbers, relaxed.positions, structure.cell, structure.pbc,
                         equilibration if args.equilibration else settings)
        if args.equilibration:
            progress = Progress(args.equilibration, structure.n_atoms, args.timestep,
                                f"equilibration ({args.equilibration_thermostat})")
            try:
                with StopOnInterrupt() as stop:
                    sim.run(args.equilibration, on_chunk=progress, stop=stop)
            finally:
                progress.close()
            if stop.requested:
                sim.close()
                raise KeyboardInterrupt
            if equilibration != settings:  # production continues the same trajectory with its thermostat
                sim.continue_with(thermostat=settings.thermostat)
        production_start, target = sim.step, sim.step + args.steps
        args.out.parent.mkdir(parents=True, exist_ok=True)
        run_file.write_text(json.dumps(dict(production_start=production_start, steps=args.steps,
                                            model=args.model, argv=sys.argv[1:])))
    return sim, production_start, target


def run(args) -> int:
    import jax

    if args.x64:
        jax.config.update("jax_enable_x64", True)
    from nemd.io.h5md import TrajectoryWriter
    from nemd.md import MDSettings, SimulationError
    from nemd.models import load

    validate(args)
    model_dir = locate_model(args)
    model = load("bpnn", model_dir)
    checkpoint, run_file, plot = paths(args.out)
    settings = MDSettings(timestep_fs=args.timestep, temperature_K=args.temperature, thermostat=args.thermostat,
                          tau_fs=args.tau, chunk_steps=args.chunk_steps, skin=args.skin,
                          neighbor_mode="sync" if args.sync_neighbors else "async",
                          backend=args.neighbor_backend, seed=args.seed)
    try:
        sim, production_start, target = prepare(args, model, model_dir, settings)
    except KeyboardInterrupt:
        print("interrupted before production: no trajectory written", file=sys.stderr)
        return 130
    except SimulationError as exc:
        print(f"error before production: {exc}; no trajectory written", file=sys.stderr)
        return 1
    stop = StopOnInterrupt()  # from here on Ctrl-C stops at a chunk boundary
    with stop:
        writer = TrajectoryWriter(args.out, sim.numbers, sim.cell, sim.pbc, velocities=True, flush_every=10,
                                  append=args.resume, precision="float64" if args.x64 else "float32")
        if not args.resume:
            writer.write_frame(sim.frame())
            sim.save_checkpoint(checkpoint)  # there is always a state to resume from
        progress = Progress(target - sim.step, sim.numbers.size, args.timestep, "production")
        saved = [sim.step]

        def on_frame(frame):
            writer.write_frame(frame)
            if frame.step - saved[0] >= args.checkpoint_every:  # frames end chunks: the state is consistent
                sim.save_checkpoint(checkpoint)
                saved[0] = frame.step

        t0, step0, hard_interrupt, failure = time.perf_counter(), sim.step, False, None
        try:
            sim.run(target - sim.step, every=args.every, on_frame=on_frame, on_chunk=progress, stop=stop)
        except KeyboardInterrupt:  # a second Ctrl-C, anywhere in the loop: keep the last good checkpoint
            hard_interrupt = True
        except SimulationError as exc:
            failure = exc
        finally:
            progress.close()
            writer.close()
            if not hard_interrupt:
                sim.save_checkpoint(checkpoint)
            sim.close()
    interrupted = stop.requested
    wall = time.perf_counter() - t0
    summary(args, sim, progress, wall, sim.step - step0, plot)
    if interrupted:
        where = f"the checkpoint of step {saved[0]}" if hard_interrupt else "the checkpoint"
        print(f"interrupted at step {sim.step}: trajectory flushed; --resume continues from {where}")
        return 130
    if failure is not None:
        print(f"error: {failure}", file=sys.stderr)
        return 1
    return 0


def summary(args, sim, progress, wall, steps, plot) -> None:
    import numpy as np

    from nemd.analysis import describe_peaks, kinetic_temperatures, radial_distribution
    from nemd.analysis.plots import plot_rdf
    from nemd.io.h5md import read_frames

    n = sim.numbers.size
    print("\nsummary")
    print(f"  atoms {n}, steps {steps} ({steps * args.timestep / 1000:.3f} ps simulated, dt {args.timestep} fs), "
          f"wall {wall:.1f} s")
    if steps:
        print(f"  speed {1e6 * wall / (steps * n):.1f} µs/atom/step, {steps / wall:.2f} steps/s, "
              f"{steps / wall * args.timestep * 86400e-6:.4f} ns/day")
    print(f"  neighbour lists: {sim.rebuilds} rebuilds, {sim.violations} skin violations (redone), "
          f"{sim.recompilations} recompilations, waited {sim.wait_seconds:.2f} s for builds "
          f"({sim.builder.build_seconds:.1f} s building)")
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
    plot_rdf(result, plot, f"{args.model}, {n} atoms, {args.temperature:.0f} K, {result.n_frames} frames")
    print(f"  RDF plot: {plot}; trajectory: {args.out} (open with nemd.io.h5md.universe or MDAnalysis)")


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        return run(args)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
