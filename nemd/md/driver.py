"""MD driver: JAX-MD integrators in jitted chunks, neighbour lists built on the CPU.

Schedule (DESIGN.md, streaming): the integrator runs ``chunk_steps`` steps per jitted
call. When chunk k starts from positions P_k, a background thread starts building the
list L(P_k) on the CPU; chunk k itself runs with L(P_{k-1}) (chunk 0 and 1 with
L(P_0)). Every step checks on the device that no atom has moved skin/2 or more from the
list's reference positions. A violation rolls the state back to P_k, rebuilds L(P_k)
synchronously and redoes the chunk (with halved chunks while violations repeat), so no
step is ever computed with a list that may miss a pair, and none is lost.

``neighbor_mode="sync"`` waits for each build before running the chunk (same lists, so
the same trajectory); ``"static"`` builds one list and never rebuilds (benchmarks).
Lists are built on the host with their exact size, so a list that outgrows the device
buffers arrives with larger buffers before it is used: the chunk recompiles for the new
shapes, nothing has to be redone.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax_md import quantity, simulate, space

from ..neighbors import NeighborList, build
from ..neighbors.neighbor_list import exceeds_within_cutoff_bounds, max_displacement
from ..neighbors.streaming import ListBuilder, shape_of
from . import units

THERMOSTATS = ("nose-hoover", "langevin", "nve")
NEIGHBOR_MODES = ("async", "sync", "static")
#: Atoms closer than this (Å) at the start are reported as overlapping.
MIN_DISTANCE = 0.5


class SimulationError(RuntimeError):
    """The simulation cannot continue (non-finite forces, unrecoverable list violation).

    ``step`` is the step at which it happened; the ``Simulation`` keeps the last good state.
    """

    def __init__(self, message: str, step: int):
        super().__init__(message)
        self.step = step


@dataclasses.dataclass(frozen=True)
class MDSettings:
    """User-facing settings (fs, K, Å)."""

    timestep_fs: float = 0.5
    temperature_K: float = 300.0
    thermostat: str = "nose-hoover"
    #: Thermostat time constant: Nose–Hoover period / Langevin 1/friction (default 100 steps).
    tau_fs: float | None = None
    chunk_steps: int = 10
    skin: float = 1.0  # Å
    neighbor_mode: str = "async"
    backend: str = "auto"
    n_threads: int | None = None
    seed: int = 0

    def validate(self) -> None:
        if not self.timestep_fs > 0:
            raise ValueError(f"timestep must be positive (fs), got {self.timestep_fs}")
        if not self.temperature_K >= 0 or (self.thermostat != "nve" and not self.temperature_K > 0):
            raise ValueError(f"temperature must be positive (K) for NVT, got {self.temperature_K}")
        if self.thermostat not in THERMOSTATS:
            raise ValueError(f"unknown thermostat {self.thermostat!r}; choose one of {THERMOSTATS}")
        if self.neighbor_mode not in NEIGHBOR_MODES:
            raise ValueError(f"unknown neighbor_mode {self.neighbor_mode!r}; choose one of {NEIGHBOR_MODES}")
        if self.tau_fs is not None and not self.tau_fs > 0:
            raise ValueError(f"thermostat time constant must be positive (fs), got {self.tau_fs}")
        if int(self.chunk_steps) < 1:
            raise ValueError(f"chunk_steps must be >= 1, got {self.chunk_steps}")
        if not self.skin > 0:
            raise ValueError(f"skin must be positive (Å), got {self.skin}")

    @property
    def tau(self) -> float:
        return self.tau_fs if self.tau_fs is not None else 100.0 * self.timestep_fs


@dataclasses.dataclass(frozen=True)
class ChunkReport:
    """Observables at the end of a chunk (eV, K, Å) and cumulative driver counters."""

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
    """NVT (Nose–Hoover chain, Langevin) or NVE MD of one system with one energy model.

    ``model`` has ``energy_fn(species, cell)``, ``cutoff`` (Å) and optionally
    ``kinds(species)`` (per-atom kinds for per-element neighbour bounds). ``momenta``
    (amu Å per internal time unit, as in ``state.momentum``) continue a previous run,
    otherwise they are drawn from Maxwell–Boltzmann; ``step`` is the first step number.

    The Nose–Hoover chain is global: it fixes the total kinetic energy only. Systems with
    stiff, weakly coupled modes (O–H stretches in flexible water) that start far from
    equilibrium should be equilibrated with ``langevin`` (every atom thermostatted) first.
    """

    def __init__(self, model, numbers, positions, cell=None, pbc=True, settings: MDSettings = MDSettings(),
                 *, dtype=None, momenta=None, step: int = 0):
        settings.validate()
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
        kinds = model.kinds(self.numbers) if hasattr(model, "kinds") else None
        self._kinds = None if kinds is None else jnp.asarray(kinds, jnp.int32)
        within = kinds is not None and getattr(model, "uses_within_cutoff_bounds", False)
        self.builder = ListBuilder(self.cell, self.pbc, model.cutoff, settings.skin, kinds=kinds, within_cutoff=within,
                                   backend=settings.backend, n_threads=settings.n_threads)
        self.kT = units.kT(settings.temperature_K)
        self._force_fn = jitted_force(self.energy_fn)
        self._init_fn, self._apply_fn = _integrator(self._force_fn, settings)
        self.nl = self.builder.build_now(positions)
        self._pending = _done(self.nl)  # chunk 1 also runs with L(P_0)
        self.step = int(step)  # e.g. continuing an equilibration run with another thermostat
        self.violations = 0
        self._shapes = {self._shape_key(self.nl)}
        self.recompilations = 0
        self.wait_seconds = 0.0  # time the driver waited for a list build
        self.device_seconds = 0.0  # from dispatching each chunk to its results on the host
        self.state = self._initial_state(jnp.asarray(positions, self.dtype), momenta)
        self._chunk = jax.jit(self._run_chunk)
        self._check_finite_start()

    def _initial_state(self, R, momenta):
        key = jax.random.PRNGKey(self.settings.seed)
        mass = jnp.asarray(self.masses, self.dtype)
        if self.settings.thermostat == "nve":
            return self._init_fn(key, R, self.kT, mass=mass, momenta=momenta, neighbor=self.nl)
        return self._init_fn(key, R, mass=mass, momenta=momenta, neighbor=self.nl)

    def continue_with(self, **changes) -> None:
        """Continue this trajectory with other settings (e.g. ``thermostat="nose-hoover"``
        after a Langevin equilibration; also temperature, time constant, timestep, chunk
        length, seed, neighbour mode). Positions, momenta, step, neighbour lists and the
        compiled force are kept; the thermostat's own state (chain, random key) starts anew.
        The list settings (skin, backend, threads) cannot change here."""
        fixed = [name for name in ("skin", "backend", "n_threads") if name in changes]
        if fixed:
            raise ValueError(f"{', '.join(fixed)} cannot change within a simulation; start a new one")
        settings = dataclasses.replace(self.settings, **changes)
        settings.validate()
        self.settings = settings
        self.kT = units.kT(settings.temperature_K)
        self._init_fn, self._apply_fn = _integrator(self._force_fn, settings)
        self.state = self._initial_state(self.state.position, self.state.momentum)
        self._chunk = jax.jit(self._run_chunk)

    # ------------------------------------------------------------------ device code

    def _observe(self, state, nl):
        potential = self.energy_fn(state.position, neighbor=nl)
        kinetic = 0.5 * jnp.sum(state.momentum**2 / state.mass)
        temperature = 2.0 * kinetic / (3 * state.position.shape[0] * units.KB)
        if self.settings.thermostat == "nose-hoover":
            conserved = simulate.nvt_nose_hoover_invariant(lambda R, **kw: potential, state, self.kT)
        else:
            conserved = potential + kinetic
        return jnp.stack([temperature, potential, kinetic, conserved])

    def _outgrown(self, positions, nl: NeighborList):
        """The list's in-cutoff bounds no longer hold (False for lists without them)."""
        if not nl.max_neighbors_within_cutoff_by_kind:
            return jnp.array(False)
        cell = None if self.cell is None else jnp.asarray(self.cell, positions.dtype)
        return exceeds_within_cutoff_bounds(positions, nl, self._kinds, cell)

    def _run_chunk(self, state, nl: NeighborList, n_steps):
        """Up to ``n_steps`` steps; stops at the first list violation or non-finite force.

        A violation is an atom having moved skin/2, or the list's in-cutoff bounds being
        outgrown. Returns (state, status, observables, max displacement) with status =
        (steps done, step index of the violation or -1, step index of the first
        non-finite or -1, 1 if the violation outgrew the in-cutoff bounds).
        """
        half_skin = 0.5 * nl.skin

        def cond(carry):
            _, i, bad, nan, _, _ = carry
            return (i < n_steps) & (bad < 0) & (nan < 0)

        def body(carry):
            state, i, bad, nan, worst, outgrown = carry
            new = self._apply_fn(state, neighbor=nl)
            disp = max_displacement(new.position, nl)
            over = self._outgrown(new.position, nl)  # the model returned NaN then: not a NaN error
            violated = (disp >= half_skin) | over
            finite = jnp.all(jnp.isfinite(new.force)) & jnp.all(jnp.isfinite(new.position))
            bad = jnp.where(violated, i, bad)
            nan = jnp.where(finite | violated, nan, i)
            keep = (bad < 0) & (nan < 0)
            state = jax.tree_util.tree_map(lambda a, b: jnp.where(keep, a, b), new, state)
            return state, i + 1, bad, nan, jnp.maximum(worst, disp), outgrown | over

        minus_one = jnp.array(-1, jnp.int32)
        zero = jnp.zeros((), state.position.dtype)
        state, done, bad, nan, worst, outgrown = jax.lax.while_loop(
            cond, body, (state, jnp.array(0, jnp.int32), minus_one, minus_one, zero, jnp.array(False)))
        status = jnp.stack([done, bad, nan, outgrown.astype(jnp.int32)])
        return state, status, self._observe(state, nl), worst

    # ------------------------------------------------------------------ host loop

    @staticmethod
    def _shape_key(nl: NeighborList):
        return tuple(shape_of(nl).values())

    def _use_list(self, nl: NeighborList) -> None:
        key = self._shape_key(nl)
        if key not in self._shapes:
            self._shapes.add(key)
            self.recompilations += 1
        self.nl = nl

    def _next_list(self) -> NeighborList:
        t0 = time.perf_counter()
        nl = self._pending.result()
        self.wait_seconds += time.perf_counter() - t0
        return nl

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
        mode = self.settings.neighbor_mode
        target = self.step + int(n_steps)
        reports = []
        length = self.settings.chunk_steps
        while self.step < target:
            t0 = time.perf_counter()
            n = min(length, target - self.step)
            if every:
                n = min(n, every - self.step % every)
            start = self.state
            if self._pending is None and mode != "static":
                self._pending = self.builder.submit(start.position)
                if mode == "sync":
                    self._next_list()  # build between chunks, no overlap (counted as waiting)
            dispatched = time.perf_counter()
            state, status, observed, worst = self._chunk(start, self.nl, n)
            done, bad, nan, outgrown = (int(x) for x in np.asarray(status))
            observed = np.asarray(observed)
            self.device_seconds += time.perf_counter() - dispatched
            if nan < 0 and bad < 0 and not np.all(np.isfinite(observed)):
                nan = done - 1  # finite forces but a non-finite energy at the end of the chunk
            if nan >= 0:
                raise SimulationError(
                    f"non-finite forces or positions at step {self.step + nan + 1}: the energy "
                    "function returned NaN/inf (overlapping atoms, or a timestep too large?); "
                    f"the state at step {self.step} is kept", self.step + nan + 1)
            if bad >= 0:
                self.violations += 1
                if outgrown:  # rebuild with larger in-cutoff bounds (a static list: same pairs)
                    self.builder.grow_within_cutoff_bounds()
                    reference = self.nl.reference_positions if mode == "static" else start.position
                    self._use_list(self.builder.build_now(reference))
                    continue
                if mode == "static":
                    raise SimulationError(
                        f"an atom moved more than skin/2 = {0.5 * self.settings.skin} Å at step "
                        f"{self.step + bad + 1} with a static list: increase the skin", self.step + bad + 1)
                fresh = self.builder.build_now(start.position)  # == the pending L(P_k)
                if self._reference_is(start.position):
                    if length == 1:
                        raise SimulationError(
                            f"atoms move more than skin/2 = {0.5 * self.settings.skin} Å in one step "
                            f"at step {self.step + 1}: reduce the timestep or increase the skin", self.step + 1)
                    length = max(1, length // 2)  # even a fresh list is outrun: shorter chunks
                self._use_list(fresh)
                continue
            self.state = state
            self.step += done
            length = self.settings.chunk_steps
            if mode != "static":
                self._use_list(self._next_list())
                self._pending = None
            temperature, potential, kinetic, conserved = (float(x) for x in observed)
            report = ChunkReport(
                step=self.step, time_ps=self.time_ps, n_steps=done, temperature=temperature,
                potential=potential, kinetic=kinetic, conserved=conserved,
                max_displacement=float(worst), rebuilds=self.rebuilds, violations=self.violations,
                recompilations=self.recompilations, wall_s=time.perf_counter() - t0)
            reports.append(report)
            if on_chunk:
                on_chunk(report)
            if on_frame and every and self.step % every == 0:
                on_frame(self.frame(report))
            if stop is not None and stop():
                break
        return reports

    @property
    def rebuilds(self) -> int:
        """Lists built after the initial one (streamed and rollback builds)."""
        return self.builder.builds - 1

    def _reference_is(self, positions) -> bool:
        return bool(jnp.array_equal(self.nl.reference_positions, positions))

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

    def _check_finite_start(self) -> None:
        if not bool(jnp.all(jnp.isfinite(self.state.force))):
            raise SimulationError("non-finite forces in the initial structure (overlapping atoms?)", 0)

    def close(self) -> None:
        self.builder.close()

    # ------------------------------------------------------------------ checkpoints

    def save_checkpoint(self, path) -> None:
        """Everything needed to continue this trajectory exactly (``.npz``)."""
        from .checkpoint import save

        save(self, path)

    @classmethod
    def from_checkpoint(cls, path, model, **overrides) -> "Simulation":
        """Continue a run saved with ``save_checkpoint`` (same model)."""
        from .checkpoint import restore

        return restore(cls, path, model, **overrides)


def _done(value):
    from concurrent.futures import Future

    future = Future()
    future.set_result(value)
    return future


def jitted_force(energy_fn):
    """``-grad(energy_fn)``, jitted: JAX-MD's init functions run eagerly, and a jitted force
    makes them one compiled program, the same for every integrator and for FIRE (so the
    persistent compilation cache serves the second one), instead of op-by-op tracing."""
    return jax.jit(quantity.force(energy_fn))


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
