"""The chunk runner shared by MD and minimisation: any JAX-MD step function, in jitted
chunks, over the lists of a ``ListStream``.

JAX-MD gives integrators and minimisers one shape, ``init_fn, apply_fn = ...``. A chunk
runs ``apply_fn`` up to n times in one jitted ``while_loop`` and stops early at the first
step that outran its list (an atom moved skin/2, or the list's in-cutoff bounds were
outgrown), produced non-finite forces or positions, or met the optional ``until``
predicate (e.g. FIRE's max |F| < fmax). Only the good steps are kept. On the host,
``advance`` redoes a chunk that outran its list with the list ``ListStream.recover``
prepares (halving the chunk while even a fresh list is outrun), so no step is ever
computed with a list that may miss a pair, and none is lost; non-finite values raise
``SimulationError`` with the last good state kept.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax_md import quantity

from ..neighbors import ListStream, NeighborList, Recovery
from ..units import float64_requests_ignored


class SimulationError(RuntimeError):
    """The run cannot continue (non-finite forces, a list outrun in a single step).

    ``step`` is the step at which it happened; the caller keeps the last good state.
    """

    def __init__(self, message: str, step: int):
        super().__init__(message)
        self.step = step


def jitted_force(energy_fn):
    """``-grad(energy_fn)``, jitted: JAX-MD's init functions run eagerly, and a jitted force
    makes them one compiled program, the same for every integrator and for FIRE (so the
    persistent compilation cache serves the second one), instead of op-by-op tracing."""
    return jax.jit(quantity.force(energy_fn))


@dataclasses.dataclass(frozen=True)
class Chunk:
    """An accepted chunk: the state after it, the steps done, ``observe``'s values at its
    end (host), the largest move from the list's reference positions (Å), whether
    ``until`` held at its last step, and the time from dispatch to results (s)."""

    state: object
    steps: int
    observed: np.ndarray
    max_displacement: float
    finished: bool
    device_seconds: float


class ChunkRunner:
    """Runs ``apply_fn(state, neighbor=nl) -> state`` (a JAX-MD step) in jitted chunks.

    ``observe(state, nl) -> (k,) array`` is evaluated at the end of each chunk (energies,
    temperature); ``until(state) -> bool`` (optional) ends a chunk, and the run, at the
    first step where it holds. States must have ``position`` and ``force``.
    """

    def __init__(self, apply_fn: Callable, stream: ListStream, observe: Callable,
                 until: Callable | None = None):
        self.apply_fn, self.stream, self.observe, self.until = apply_fn, stream, observe, until
        self._chunk = jax.jit(self._run_chunk)

    def _run_chunk(self, state, nl: NeighborList, n_steps):
        """Up to ``n_steps`` steps. Returns (state, status, observables, max displacement)
        with status = (steps done, index of the step that outran the list or -1, index of
        the first non-finite step or -1, 1 if the list's in-cutoff bounds were outgrown,
        1 if ``until`` held)."""
        half_skin = 0.5 * nl.skin

        def cond(carry):
            _, i, bad, nan, _, _, finished = carry
            return (i < n_steps) & (bad < 0) & (nan < 0) & ~finished

        def body(carry):
            state, i, bad, nan, worst, outgrown, finished = carry
            new = self.apply_fn(state, neighbor=nl)
            disp, over = self.stream.check(new.position, nl)  # the model gave NaN if over: not a NaN error
            violated = (disp >= half_skin) | over
            finite = jnp.all(jnp.isfinite(new.force)) & jnp.all(jnp.isfinite(new.position))
            bad = jnp.where(violated, i, bad)
            nan = jnp.where(finite | violated, nan, i)
            keep = (bad < 0) & (nan < 0)
            state = jax.tree_util.tree_map(lambda a, b: jnp.where(keep, a, b), new, state)
            if self.until is not None:
                finished = keep & self.until(new)
            return state, i + 1, bad, nan, jnp.maximum(worst, disp), outgrown | over, finished

        minus_one = jnp.array(-1, jnp.int32)
        zero = jnp.zeros((), state.position.dtype)
        state, done, bad, nan, worst, outgrown, finished = jax.lax.while_loop(
            cond, body, (state, jnp.array(0, jnp.int32), minus_one, minus_one, zero, jnp.array(False),
                         jnp.array(False)))
        status = jnp.stack([done, bad, nan, outgrown.astype(jnp.int32), finished.astype(jnp.int32)])
        return state, status, self.observe(state, nl), worst

    def advance(self, state, step: int, limit: int, chunk_steps: int) -> Chunk:
        """One accepted chunk of at most ``min(chunk_steps, limit)`` steps from ``state``
        (at step number ``step``): outrun lists are recovered and the chunk redone."""
        length = chunk_steps
        while True:
            n = min(length, limit)
            self.stream.begin_chunk(state.position)
            dispatched = time.perf_counter()
            with float64_requests_ignored():  # traced on the first call
                new, status, observed, worst = self._chunk(state, self.stream.current, n)
            done, bad, nan, outgrown, finished = (int(x) for x in np.asarray(status))
            observed = np.asarray(observed)
            device_seconds = time.perf_counter() - dispatched
            if nan < 0 and bad < 0 and not np.all(np.isfinite(observed)):
                nan = done - 1  # finite forces but a non-finite energy at the end of the chunk
            if nan >= 0:
                raise SimulationError(
                    f"non-finite forces or positions at step {step + nan + 1}: the energy function "
                    "returned NaN/inf (overlapping atoms, or a timestep too large?); the state at step "
                    f"{step} is kept", step + nan + 1)
            if bad < 0:
                self.stream.accept()
                return Chunk(new, done, observed, float(worst), bool(finished), device_seconds)
            half_skin = 0.5 * self.stream.settings.skin
            recovery = self.stream.recover(state.position, bool(outgrown))
            if recovery is Recovery.STATIC:
                raise SimulationError(f"an atom moved more than skin/2 = {half_skin} Å at step {step + bad + 1} "
                                      "with a static list: increase the skin", step + bad + 1)
            if recovery is Recovery.TOO_FAST:
                if length == 1:
                    raise SimulationError(f"atoms move more than skin/2 = {half_skin} Å in one step at step "
                                          f"{step + 1}: reduce the timestep or increase the skin", step + 1)
                length = max(1, length // 2)  # even a fresh list is outrun: shorter chunks
