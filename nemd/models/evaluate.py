"""Evaluation of any nemd model on structures (scripts, tests, validation, labelling)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ..neighbors import ListShape, build_neighbor_list
from ..structure import Structure
from .potential import Potential


class Evaluator:
    """Energies (eV) and forces (eV/Å) of many structures with one model, compiled once per
    composition and list shape (the shape only grows, so a series of similar frames
    compiles once or twice). ``dtype`` defaults to JAX's default float."""

    def __init__(self, model: Potential, *, dtype=None, backend: str = "auto"):
        self.model, self.backend = model, backend
        self.dtype = dtype or jnp.zeros(()).dtype
        self._compiled = {}  # (numbers, periodic) -> (jitted value_and_grad, list shape)

    def __call__(self, structure: Structure) -> tuple[float, np.ndarray]:
        cell = structure.periodic_cell
        key = (structure.numbers.tobytes(), cell is None)
        if key not in self._compiled:
            energy_fn = self.model.energy_fn(structure.numbers, cell)
            fn = jax.jit(jax.value_and_grad(lambda R, nl, box: energy_fn(R, nl, cell=box)))
            self._compiled[key] = [fn, ListShape()]
        fn, shape = self._compiled[key]
        nl = build_neighbor_list(structure.positions, cell, structure.pbc, self.model.cutoff, 0.0,
                                 kinds=self.model.kinds(structure.numbers), shape=shape, backend=self.backend)
        self._compiled[key][1] = nl.shape
        box = None if cell is None else jnp.asarray(cell, self.dtype)
        energy, grad = fn(jnp.asarray(structure.positions, self.dtype), nl, box)
        return float(energy), -np.asarray(grad, dtype=np.float64)


def energy_and_forces(model: Potential, structure: Structure, *, backend: str = "auto", dtype=None):
    """Potential energy (eV) and forces (eV/Å) of one ``structure`` as host float64 values
    (``Evaluator`` for many). ``dtype`` defaults to JAX's default float."""
    return Evaluator(model, dtype=dtype, backend=backend)(structure)
