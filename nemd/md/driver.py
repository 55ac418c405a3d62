"""MD of one system with one model: JAX-MD integrators over CPU-streamed neighbour lists.

The integrator runs in jitted chunks (``ChunkRunner``) while a ``ListStream`` builds the
next list on the CPU (docs/design.md, streaming). Async and sync lists give the same
trajectory; a chunk that outran its list is redone, never accepted.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax_md import simulate, space

from .. import units
from ..neighbors import ListSettings, ListStream, build
from .chunks import ChunkRunner, SimulationError, jitted_force

THERMOSTATS = ("nose-hoover", "langevin", "nve")
#: Atoms closer than this (Å) at the start are reported as overlapping.
MIN_DISTANCE = 0.5


@dataclasses.dataclass(frozen=True)
class MDSettings:
    """Integrator settings (fs, K). List settings are ``ListSettings``."""

    timestep_fs: float = 0.5
    temperature_K: float = 300.0
    thermostat: str = "nose-hoover"
    #: Thermostat time constant: Nose–Hoover period / Langevin 1/friction (default 100 steps).
    tau_fs: float | None = None
    chunk_steps: int = 10
    seed: int = 0

    def __post_init__(self):
        if not self.timestep_fs > 0:
            raise ValueError(f"timestep must be positive (fs), got {self.timestep_fs}")
        if not self.temperature_K >= 0 or (self.thermostat != "nve" and not self.temperature_K > 0):
            raise ValueError(f"temperature must be positive (K) for NVT, got {self.temperature_K}")
        if self.thermostat not in THERMOSTATS:
            raise ValueError(f"unknown thermostat {self.thermostat!r}; choose one of {THERMOSTATS}")
        if self.tau_fs is not None and not self.tau_fs > 0:
            raise ValueError(f"thermostat time constant must be positive (fs), got {self.tau_fs}")
        if int(self.chunk_steps) < 1:
            raise ValueError(f"chunk_steps must be >= 1, got {self.chunk_steps}")

    @property
    def tau(self) -> float:
        return self.tau_fs if self.tau_fs is not None else 100.0 * self.timestep_fs


@dataclasses.dataclass(frozen=True)
class ChunkReport:
    """Observables at the end of a chunk (eV, K, Å) and cumulative list counters."""

    step: int
    time_ps: float
    n_steps: int
    temperature: float
    potential: float
    kinetic: float
    conserved: float  # NHC extended energy; PE + KE for NVE and Langevin
    max_displacement: float  # largest move from the list's reference positions in the chunk
    rebuilds: int
    violations: int
    recompilations: int
    wall_s: float


@dataclasses.dataclass(frozen=True)
class Frame:
    """What trajectory writers receive every ``every`` steps (host arrays)."""

    step: int
    time_ps: float
    positions: np.ndarray  # (N, 3) Å, unwrapped
    velocities: np.ndarray  # (N, 3) Å/ps
    forces: np.ndarray  # (N, 3) eV/Å
    cell: np.ndarray | None
    numbers: np.ndarray
    observables: dict


class Simulation:
    """NVT (Nose–Hoover chain, Langevin) or NVE MD of one system with one ``Potential``.

    ``momenta`` (amu Å per internal time unit, as in ``state.momentum``) continue a
    previous run, otherwise they are drawn from Maxwell–Boltzmann; ``step`` is the first
    step number. ``stream`` owns the neighbour lists (and their counters).

    The Nose–Hoover chain is global: it fixes the total kinetic energy only. Systems with
    stiff, weakly coupled modes (O–H stretches in flexible water) that start far from
    equilibrium should be equilibrated with ``langevin`` (every atom thermostatted) first.
    """

    def __init__(self, model, numbers, positions, cell=None, pbc=True, settings: MDSettings = MDSettings(),
                 lists: ListSettings = ListSettings(), *, dtype=None, momenta=None, step: int = 0):
        self.settings = settings
        self.numbers = np.asarray(numbers, dtype=np.int64)
        positions = np.asarray(positions, dtype=np.float64)
        if positions.ndim != 2 or positions.shape != (self.numbers.size, 3):
            raise ValueError(f"positions {positions.shape} do not match {self.numbers.size} species")
        if not np.all(np.isfinite(positions)):
            raise ValueError("positions contain NaN or inf")
        self.pbc = np.broadcast_to(np.asarray(pbc, dtype=bool), (3,)).copy()
        self.cell = None if cell is None or not self.pbc.any() else np.asarray(cell, dtype=np.float64)
        _check_overlaps(positions, self.cell, self.pbc)
        self.model = model
        self.dtype = dtype or jnp.zeros(()).dtype
        self.masses = units.masses_of(self.numbers)
        self.energy_fn = model.energy_fn(self.numbers, self.cell)
        self.stream = ListStream(self.cell, self.pbc, model.cutoff, lists, kinds=model.kinds(self.numbers),
                                 within_cutoff=model.uses_within_cutoff_bounds, block_atoms=model.list_block_atoms)
        self._force_fn = jitted_force(self.energy_fn)
        self.stream.start(positions)
        self.step = int(step)  # e.g. continuing an equilibration run with another thermostat
        self.device_seconds = 0.0  # from dispatching each chunk to its results on the host
        self._start_integrator(jnp.asarray(positions, self.dtype), momenta)
        if not bool(jnp.all(jnp.isfinite(self.state.force))):
            raise SimulationError("non-finite forces in the initial structure (overlapping atoms?)", 0)

    def _start_integrator(self, positions, momenta) -> None:
        settings = self.settings
        self.kT = units.kT(settings.temperature_K)
        init_fn, apply_fn = _integrator(self._force_fn, settings)
        key = jax.random.PRNGKey(settings.seed)
        mass = jnp.asarray(self.masses, self.dtype)
        nl = self.stream.current
        with units.float64_requests_ignored():
            if settings.thermostat == "nve":
                self.state = init_fn(key, positions, self.kT, mass=mass, momenta=momenta, neighbor=nl)
            else:
                self.state = init_fn(key, positions, mass=mass, momenta=momenta, neighbor=nl)
        self.runner = ChunkRunner(apply_fn, self.stream, self._observe)

    def continue_with(self, **changes) -> None:
        """Continue this trajectory with other ``MDSettings`` (e.g. ``thermostat=
        "nose-hoover"`` after a Langevin equilibration; also temperature, time constant,
        timestep, chunk length, seed). Positions, momenta, step, neighbour lists and the
        compiled force are kept; the thermostat's own state (chain, random key) starts anew."""
        lists = [name for name in changes if name in {f.name for f in dataclasses.fields(ListSettings)}]
        if lists:
            raise ValueError(f"{', '.join(lists)} cannot change within a simulation (a list setting): "
                             "start a new one")
        self.settings = dataclasses.replace(self.settings, **changes)
        self._start_integrator(self.state.position, self.state.momentum)

    def _observe(self, state, nl):
        potential = self.energy_fn(state.position, neighbor=nl)
        kinetic = 0.5 * jnp.sum(state.momentum**2 / state.mass)
        temperature = 2.0 * kinetic / (3 * state.position.shape[0] * units.KB)
        if self.settings.thermostat == "nose-hoover":
            conserved = simulate.nvt_nose_hoover_invariant(lambda R, **kw: potential, state, self.kT)
        else:
            conserved = potential + kinetic
        return jnp.stack([temperature, potential, kinetic, conserved])

    def run(self, n_steps: int, *, every: int | None = None,
            on_frame: Callable[[Frame], None] | None = None,
            on_chunk: Callable[[ChunkReport], None] | None = None,
            stop: Callable[[], bool] | None = None) -> list[ChunkReport]:
        """Advance ``n_steps`` steps. ``on_frame`` gets a ``Frame`` whenever the step count
        is a multiple of ``every`` (chunks end there); ``on_chunk`` gets each report.
        ``stop`` is asked after every chunk (after the callbacks): when it returns True the
        run ends early, with state, step and frames consistent (e.g. for Ctrl-C)."""
        if n_steps < 0:
            raise ValueError(f"n_steps must be >= 0, got {n_steps}")
        if every is not None and every < 1:
            raise ValueError(f"every must be >= 1, got {every}")
        target = self.step + int(n_steps)
        reports = []
        while self.step < target:
            t0 = time.perf_counter()
            limit = target - self.step
            if every:
                limit = min(limit, every - self.step % every)
            chunk = self.runner.advance(self.state, self.step, limit, self.settings.chunk_steps)
            self.state, self.step = chunk.state, self.step + chunk.steps
            self.device_seconds += chunk.device_seconds
            temperature, potential, kinetic, conserved = (float(x) for x in chunk.observed)
            s = self.stream
            report = ChunkReport(
                step=self.step, time_ps=self.time_ps, n_steps=chunk.steps, temperature=temperature,
                potential=potential, kinetic=kinetic, conserved=conserved, max_displacement=chunk.max_displacement,
                rebuilds=s.rebuilds, violations=s.violations, recompilations=s.recompilations,
                wall_s=time.perf_counter() - t0)
            reports.append(report)
            if on_chunk:
                on_chunk(report)
            if on_frame and every and self.step % every == 0:
                on_frame(self.frame(report))
            if stop is not None and stop():
                break
        return reports

    @property
    def time_ps(self) -> float:
        return self.step * self.settings.timestep_fs * 1e-3

    def frame(self, report: ChunkReport | None = None) -> Frame:
        """Host copy of the current state."""
        s = self.state
        velocities = np.asarray(s.momentum / s.mass) * units.PER_FS * 1e3  # Å per internal time -> Å/ps
        observables = {} if report is None else dict(
            temperature=report.temperature, potential_energy=report.potential,
            kinetic_energy=report.kinetic, conserved_energy=report.conserved)
        return Frame(self.step, self.time_ps, np.asarray(s.position, np.float64), velocities,
                     np.asarray(s.force, np.float64), self.cell, self.numbers, observables)

    def close(self) -> None:
        self.stream.close()

    # ------------------------------------------------------------------ checkpoints

    def state_dict(self) -> dict:
        """Everything needed to continue this trajectory exactly (host values)."""
        return dict(settings=dataclasses.asdict(self.settings), lists=dataclasses.asdict(self.stream.settings),
                    step=self.step, dtype=np.dtype(self.dtype).name, numbers=self.numbers, pbc=self.pbc,
                    cell=self.cell, state=[np.asarray(leaf) for leaf in jax.tree_util.tree_leaves(self.state)],
                    stream=self.stream.state_dict())

    @classmethod
    def from_state_dict(cls, model, state: dict, *, neighbor_mode: str | None = None) -> "Simulation":
        """Continue a run from ``state_dict()`` with the same model; ``neighbor_mode``
        switches async/sync lists (same trajectory). The continued run reproduces the
        uninterrupted one."""
        settings = MDSettings(**state["settings"])
        lists = ListSettings(**state["lists"])
        if neighbor_mode is not None:
            lists = dataclasses.replace(lists, mode=neighbor_mode)
        leaves = state["state"]
        sim = cls(model, state["numbers"], leaves[0], state["cell"], state["pbc"], settings, lists,
                  dtype=np.dtype(state["dtype"]))
        fresh = jax.tree_util.tree_leaves(sim.state)
        if len(fresh) != len(leaves):
            raise ValueError(f"the saved state does not match a {settings.thermostat} simulation")
        sim.state = jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(sim.state),
                                                 [jnp.asarray(v, dtype=f.dtype) for v, f in zip(leaves, fresh)])
        sim.stream.load_state_dict(state["stream"])
        sim.step = int(state["step"])
        return sim

    def save_checkpoint(self, path) -> None:
        """Write ``state_dict()`` to ``path`` (``.npz``, atomically)."""
        from .checkpoint import save

        save(path, self.state_dict())

    @classmethod
    def from_checkpoint(cls, path, model, *, neighbor_mode: str | None = None) -> "Simulation":
        """Continue a run saved with ``save_checkpoint`` (same model)."""
        from .checkpoint import load

        return cls.from_state_dict(model, load(path), neighbor_mode=neighbor_mode)


def _integrator(force_fn, settings: MDSettings):
    _, shift = space.free()  # positions are integrated unwrapped
    dt = units.fs_to_internal(settings.timestep_fs)
    kT = units.kT(settings.temperature_K)
    tau = units.fs_to_internal(settings.tau)
    if settings.thermostat == "nose-hoover":
        return simulate.nvt_nose_hoover(force_fn, shift, dt, kT, tau=tau)
    if settings.thermostat == "langevin":
        return simulate.nvt_langevin(force_fn, shift, dt, kT, gamma=1.0 / tau)
    return simulate.nve(force_fn, shift, dt)


def _check_overlaps(positions, cell, pbc) -> None:
    pairs = build(positions, cell, pbc, MIN_DISTANCE, backend="numba", n_threads=1)
    if len(pairs.senders):
        i, j = int(pairs.receivers[0]), int(pairs.senders[0])
        vec = positions[j] + (pairs.shifts[0] @ cell if cell is not None else 0) - positions[i]
        raise ValueError(f"atoms {i} and {j} overlap ({np.linalg.norm(vec):.3f} Å apart, "
                         f"{len(pairs.senders) // 2} pairs closer than {MIN_DISTANCE} Å)")
