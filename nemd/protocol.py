"""A run on disk: minimise, equilibrate, produce an H5MD trajectory, with checkpoints and
resume (the protocol behind ``simulations/water_nvt.py``).

Equilibration uses Langevin by default because a Nose–Hoover chain is global: it fixes
the total kinetic energy only, and the stiff O–H vibrations of a freshly built water box
exchange energy with the molecular motion so slowly that with Nose–Hoover alone they
stay cold (and the rest hot) for picoseconds. Production then continues the same
trajectory with the production thermostat.

Files, next to the trajectory ``out`` (``run.h5``): ``run.ckpt.npz`` (checkpoint: saved when
production starts, every ``checkpoint_every`` steps at a frame, and at the end) and
``run.run.json`` (the production's first step and length, for ``resume``). Stage messages
go to the ``nemd`` logger; progress goes to the ``on_chunk`` callbacks.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from pathlib import Path
from typing import Callable

import jax.numpy as jnp

from .files import atomic_write
from .io.h5md import TrajectoryWriter
from .md import ChunkReport, ListSettings, MDSettings, Simulation, SimulationError, fire_minimize
from .md.driver import THERMOSTATS
from .structure import Structure

log = logging.getLogger("nemd")


@dataclasses.dataclass(frozen=True)
class Protocol:
    """Stages of a run (steps, eV/Å): at most ``minimize_steps`` FIRE steps (until max |F|
    < ``fmax``), ``equilibration_steps`` with ``equilibration_thermostat`` (not written),
    then ``production_steps`` with the MD settings' thermostat, a frame every ``every``
    steps and a checkpoint at the first frame after every ``checkpoint_every`` steps."""

    minimize_steps: int = 200
    fmax: float = 0.1
    equilibration_steps: int = 400
    equilibration_thermostat: str = "langevin"
    production_steps: int = 300
    every: int = 10
    checkpoint_every: int = 1000

    def __post_init__(self):
        for name in ("minimize_steps", "equilibration_steps", "production_steps"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.every < 1 or self.checkpoint_every < 1:
            raise ValueError("every and checkpoint_every must be >= 1")
        if not self.fmax > 0:
            raise ValueError(f"fmax must be positive (eV/Å), got {self.fmax}")
        if self.equilibration_thermostat not in THERMOSTATS:
            raise ValueError(f"unknown thermostat {self.equilibration_thermostat!r}; choose one of {THERMOSTATS}")


@dataclasses.dataclass(frozen=True)
class Production:
    """How production ended: steps done (s), whether a ``stop`` request or a second
    interrupt ended it early, the step of the last checkpoint, and the error if any."""

    steps: int
    wall_s: float
    stopped: bool
    hard_interrupt: bool
    checkpoint_step: int
    error: SimulationError | None = None


class Run:
    """The files of one run, named after its trajectory ``out`` (``.h5``)."""

    def __init__(self, out):
        self.trajectory = Path(out)
        self.checkpoint = self.trajectory.with_suffix(".ckpt.npz")
        self.run_file = self.trajectory.with_suffix(".run.json")

    @property
    def resumable(self) -> bool:
        return self.checkpoint.is_file() and self.run_file.is_file()

    def info(self) -> dict:
        """The run file: ``production_start``, ``steps`` and what the caller stored."""
        if not self.run_file.is_file():
            raise FileNotFoundError(f"no run file {self.run_file} to continue from")
        return json.loads(self.run_file.read_text())

    def equilibrated(self, model, structure: Structure, md: MDSettings, lists: ListSettings, protocol: Protocol,
                     *, dtype=None, info: dict | None = None, on_chunk: Callable[[ChunkReport], None] | None = None,
                     stop: Callable[[], bool] | None = None, momenta=None) -> Simulation:
        """Minimise (unless ``protocol.minimize_steps`` is 0) and equilibrate ``structure``,
        starting from ``momenta`` (internal units, e.g. of a pre-equilibrated box) or
        Maxwell–Boltzmann ones; returns the simulation at the start of
        production (thermostat ``md.thermostat``) and writes the run file (with ``info``).
        ``stop`` returning True during equilibration closes the simulation and raises
        KeyboardInterrupt: nothing is written."""
        positions = structure.positions
        if protocol.minimize_steps:
            t0 = time.perf_counter()
            relaxed = fire_minimize(model, structure.numbers, positions, structure.cell, structure.pbc,
                                    fmax=protocol.fmax, max_steps=protocol.minimize_steps, lists=lists,
                                    chunk_steps=md.chunk_steps, dtype=dtype)
            log.info("minimised: %d FIRE steps, max force %.2f eV/Å, E = %.4f eV/atom (%.0f s)", relaxed.steps,
                     relaxed.max_force, relaxed.energy / structure.n_atoms, time.perf_counter() - t0)
            positions = relaxed.positions
        equilibration = dataclasses.replace(md, thermostat=protocol.equilibration_thermostat)
        sim = Simulation(model, structure.numbers, positions, structure.cell, structure.pbc,
                         equilibration if protocol.equilibration_steps else md, lists, dtype=dtype,
                         momenta=None if momenta is None else jnp.asarray(momenta, dtype or jnp.zeros(()).dtype))
        if protocol.equilibration_steps:
            sim.run(protocol.equilibration_steps, on_chunk=on_chunk, stop=stop)
            if stop is not None and stop():
                sim.close()
                raise KeyboardInterrupt
            if equilibration != md:  # production continues the same trajectory with its thermostat
                sim.continue_with(thermostat=md.thermostat)
        self.trajectory.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(self.run_file, "w") as f:
            json.dump(dict(info or {}, production_start=sim.step, steps=protocol.production_steps,
                           every=protocol.every, checkpoint_every=protocol.checkpoint_every), f)
        return sim

    def resumed(self, model, *, neighbor_mode: str | None = None) -> Simulation:
        """The simulation saved in the checkpoint (same model)."""
        sim = Simulation.from_checkpoint(self.checkpoint, model, neighbor_mode=neighbor_mode)
        info = self.info()
        log.info("resuming %s at step %d (production %d/%d)", self.trajectory, sim.step,
                 sim.step - info["production_start"], info["steps"])
        return sim

    def produce(self, sim: Simulation, *, resume: bool = False, precision: str = "float32",
                on_chunk: Callable[[ChunkReport], None] | None = None,
                stop: Callable[[], bool] | None = None) -> Production:
        """Run production up to the run file's last step, appending to the trajectory when
        ``resume``. A ``stop`` request ends it at a chunk boundary; a KeyboardInterrupt
        (e.g. a second Ctrl-C) ends it at once, keeping the last periodic checkpoint.
        Otherwise the checkpoint is saved at the end, also after a ``SimulationError``
        (the last good state). Closes ``sim``."""
        info = self.info()
        target = info["production_start"] + info["steps"]
        every, checkpoint_every = info["every"], info["checkpoint_every"]
        writer = TrajectoryWriter(self.trajectory, sim.numbers, sim.cell, sim.pbc, velocities=True, flush_every=10,
                                  append=resume, precision=precision)
        if not resume:
            writer.write_frame(sim.frame())
            sim.save_checkpoint(self.checkpoint)  # there is always a state to resume from
        saved = [sim.step]

        def on_frame(frame):
            writer.write_frame(frame)
            if frame.step - saved[0] >= checkpoint_every:  # frames end chunks: the state is consistent
                sim.save_checkpoint(self.checkpoint)
                saved[0] = frame.step

        t0, step0, hard_interrupt, error = time.perf_counter(), sim.step, False, None
        try:
            sim.run(target - sim.step, every=every, on_frame=on_frame, on_chunk=on_chunk, stop=stop)
        except KeyboardInterrupt:
            hard_interrupt = True
        except SimulationError as exc:
            error = exc
        finally:
            writer.close()
            if not hard_interrupt:
                sim.save_checkpoint(self.checkpoint)
                saved[0] = sim.step
            sim.close()
        stopped = hard_interrupt or (stop is not None and stop() and sim.step < target)
        return Production(sim.step - step0, time.perf_counter() - t0, stopped, hard_interrupt, saved[0], error)
