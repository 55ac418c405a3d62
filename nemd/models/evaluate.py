"""One-off evaluation of any nemd model on a structure (scripts, tests, validation)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ..neighbors import build_neighbor_list
from ..structure import Structure
from .potential import Potential


def energy_and_forces(model: Potential, structure: Structure, *, backend: str = "auto", dtype=None):
    """Potential energy (eV) and forces (eV/Å) of ``structure`` as host float64 values.

    Builds the neighbour list at the model cutoff on the CPU; ``dtype`` defaults to
    JAX's default float (float64 when x64 is enabled).
    """
    cell = structure.periodic_cell
    nl = build_neighbor_list(structure.positions, cell, structure.pbc, model.cutoff, 0.0,
                             kinds=model.kinds(structure.numbers), backend=backend)
    energy_fn = model.energy_fn(structure.numbers, cell)
    dtype = dtype or jnp.zeros(()).dtype
    energy, grad = jax.jit(jax.value_and_grad(energy_fn))(jnp.asarray(structure.positions, dtype), nl)
    return float(energy), -np.asarray(grad, dtype=np.float64)
