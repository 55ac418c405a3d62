"""Energy minimisation (JAX-MD FIRE) with CPU neighbour lists rebuilt as atoms move."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
from jax_md import minimize, space

from ..neighbors.neighbor_list import exceeds_within_cutoff_bounds, max_displacement
from ..neighbors.streaming import ListBuilder
from . import units
from .driver import jitted_force


@dataclasses.dataclass(frozen=True)
class MinimizationResult:
    positions: np.ndarray  # Å
    energy: float  # eV
    max_force: float  # eV/Å
    steps: int
    converged: bool


def fire_minimize(model, numbers, positions, cell=None, pbc=True, *, fmax: float = 0.5,
                  max_steps: int = 200, skin: float = 2.0, chunk_steps: int = 10,
                  max_step_fs: float = 0.5, backend: str = "auto", dtype=None) -> MinimizationResult:
    """FIRE descent until the largest force is below ``fmax`` (eV/Å) or ``max_steps``.

    Runs in jitted chunks; the list is rebuilt (on the CPU) whenever an atom has moved
    skin/4, and a chunk that outran its list (skin/2, or its in-cutoff bounds) is redone
    with a fresh one.
    """
    numbers = np.asarray(numbers)
    pbc = np.broadcast_to(np.asarray(pbc, bool), (3,))
    cell = None if cell is None or not pbc.any() else np.asarray(cell, np.float64)
    dtype = dtype or jnp.zeros(()).dtype
    energy_fn = model.energy_fn(numbers, cell)
    kinds = model.kinds(numbers) if hasattr(model, "kinds") else None
    within = kinds is not None and getattr(model, "uses_within_cutoff_bounds", False)
    builder = ListBuilder(cell, pbc, model.cutoff, skin, kinds=kinds, within_cutoff=within, backend=backend,
                          n_threads=None)
    device_kinds = None if kinds is None else jnp.asarray(kinds, jnp.int32)
    device_cell = None if cell is None else jnp.asarray(cell, dtype)
    _, shift = space.free()
    dt = units.fs_to_internal(max_step_fs)
    init_fn, apply_fn = minimize.fire_descent(jitted_force(energy_fn), shift, dt_start=0.1 * dt, dt_max=dt)
    mass = jnp.asarray(units.masses_of(numbers), dtype)

    @jax.jit
    def chunk(state, nl, n):
        def body(_, carry):
            state, worst, outgrown = carry
            state = apply_fn(state, neighbor=nl)
            if nl.max_neighbors_within_cutoff_by_kind:
                outgrown = outgrown | exceeds_within_cutoff_bounds(state.position, nl, device_kinds, device_cell)
            return state, jnp.maximum(worst, max_displacement(state.position, nl)), outgrown

        state, worst, outgrown = jax.lax.fori_loop(0, n, body, (state, jnp.zeros((), dtype), jnp.array(False)))
        return state, worst, outgrown, jnp.max(jnp.linalg.norm(state.force, axis=-1))

    nl = builder.build_now(np.asarray(positions))
    state = init_fn(jnp.asarray(positions, dtype), mass=mass, neighbor=nl)
    steps = 0
    max_force = float(jnp.max(jnp.linalg.norm(state.force, axis=-1)))
    length = chunk_steps
    try:
        while max_force > fmax and steps < max_steps:
            n = min(length, max_steps - steps)
            new, worst, outgrown, new_max_force = chunk(state, nl, n)
            if bool(outgrown):  # redo with larger in-cutoff bounds
                builder.grow_within_cutoff_bounds()
                nl = builder.build_now(state.position)
                continue
            if float(worst) >= 0.5 * skin:  # outran the list: redo from a fresh one, shorter
                fresh = bool(jnp.array_equal(nl.reference_positions, state.position))
                if fresh and length == 1:
                    raise RuntimeError(f"minimisation moves atoms more than skin/2 = {0.5 * skin} Å "
                                       "in one step: increase the skin or reduce max_step_fs")
                nl = builder.build_now(state.position)
                length = max(1, length // 2) if fresh else length
                continue
            state, steps, max_force = new, steps + n, float(new_max_force)
            length = chunk_steps
            if not np.isfinite(max_force):
                raise RuntimeError(f"non-finite forces during minimisation at step {steps}")
            if float(max_displacement(state.position, nl)) >= 0.25 * skin:
                nl = builder.build_now(state.position)
        energy = float(jax.jit(energy_fn)(state.position, neighbor=nl))
    finally:
        builder.close()
    return MinimizationResult(np.asarray(state.position, np.float64), energy, max_force, steps, max_force <= fmax)
