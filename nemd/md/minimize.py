"""Energy minimisation: JAX-MD's FIRE through the chunk runner, with streamed CPU lists."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
from jax_md import minimize, space

from .. import units
from ..neighbors import ListSettings, ListStream
from .chunks import ChunkRunner, jitted_force


@dataclasses.dataclass(frozen=True)
class MinimizationResult:
    positions: np.ndarray  # Å
    energy: float  # eV
    max_force: float  # eV/Å
    steps: int
    converged: bool


def _max_force(force):
    return jnp.max(jnp.linalg.norm(force, axis=-1))


def fire_minimize(model, numbers, positions, cell=None, pbc=True, *, fmax: float = 0.5, max_steps: int = 200,
                  lists: ListSettings = ListSettings(skin=2.0), chunk_steps: int = 10, max_step_fs: float = 0.5,
                  dtype=None) -> MinimizationResult:
    """FIRE descent until the largest force is below ``fmax`` (eV/Å) or ``max_steps``.

    Stops at the first step where max |F| < fmax. ``max_step_fs`` is FIRE's largest
    timestep. Lists are streamed and checked as in MD (``ChunkRunner``); FIRE moves atoms
    far early on, hence the wider default skin (2 Å).
    """
    numbers = np.asarray(numbers)
    pbc = np.broadcast_to(np.asarray(pbc, bool), (3,))
    cell = None if cell is None or not pbc.any() else np.asarray(cell, np.float64)
    dtype = dtype or jnp.zeros(()).dtype
    energy_fn = model.energy_fn(numbers, cell)
    stream = ListStream(cell, pbc, model.cutoff, lists, kinds=model.kinds(numbers),
                        within_cutoff=model.uses_within_cutoff_bounds, block_atoms=model.list_block_atoms)
    _, shift = space.free()
    dt = units.fs_to_internal(max_step_fs)
    init_fn, apply_fn = minimize.fire_descent(jitted_force(energy_fn), shift, dt_start=0.1 * dt, dt_max=dt)

    def observe(state, nl):
        return jnp.stack([energy_fn(state.position, neighbor=nl), _max_force(state.force)])

    runner = ChunkRunner(apply_fn, stream, observe, until=lambda state: _max_force(state.force) < fmax)
    try:
        state = init_fn(jnp.asarray(positions, dtype), mass=jnp.asarray(units.masses_of(numbers), dtype),
                        neighbor=stream.start(np.asarray(positions)))
        steps, energy, max_force = 0, None, float(_max_force(state.force))
        while max_force >= fmax and steps < max_steps:
            chunk = runner.advance(state, steps, max_steps - steps, chunk_steps)
            state, steps = chunk.state, steps + chunk.steps
            energy, max_force = (float(x) for x in chunk.observed)
        if energy is None:  # converged (or max_steps 0) before any step
            energy = float(jax.jit(energy_fn)(state.position, neighbor=stream.current))
    finally:
        stream.close()
    return MinimizationResult(np.asarray(state.position, np.float64), energy, max_force, steps, max_force < fmax)
