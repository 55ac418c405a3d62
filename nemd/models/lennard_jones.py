"""Shifted-force Lennard-Jones on a nemd ``NeighborList`` (argon defaults), for fast tests."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from ..neighbors import edge_vectors
from .graph import safe_norm
from .potential import Potential


@dataclasses.dataclass(frozen=True)
class LennardJones(Potential):
    """Single-species Lennard-Jones with energy and force shifted to zero at ``cutoff``.

    ``V(r) = 4 eps [(s/r)^12 - (s/r)^6] - V(rc) - (r - rc) V'(rc)`` for r < rc: both the
    energy and the force are continuous at the cutoff, so NVE conserves energy well.
    Defaults: argon, eps = 0.0104 eV, sigma = 3.40 Å, cutoff = 2.5 sigma. Every atom gets
    the same parameters whatever its element (one kind), so the masses alone tell atoms
    apart (tests use that).
    """

    epsilon: float = 0.0104  # eV
    sigma: float = 3.40  # Å
    cutoff: float = 8.5  # Å
    species: tuple[str, ...] = ("Ar",)
    name = "lennard-jones"

    def kinds(self, numbers) -> np.ndarray:
        return np.zeros(len(numbers), dtype=np.int32)

    def _pair(self, r):
        s6 = (self.sigma / r) ** 6
        return 4.0 * self.epsilon * (s6 * s6 - s6)

    def _pair_derivative(self, r):
        s6 = (self.sigma / r) ** 6
        return 4.0 * self.epsilon * (-12.0 * s6 * s6 + 6.0 * s6) / r

    def atomic_energy_fn(self, numbers, cell=None):
        """Half of each pair's energy to each of its atoms (eV)."""
        rc, default_cell = self.cutoff, cell
        v_rc, dv_rc = self._pair(rc), self._pair_derivative(rc)

        def atomic(R, neighbor, cell=None):
            box = default_cell if cell is None else cell
            r = safe_norm(edge_vectors(R, neighbor, None if box is None else jnp.asarray(box, R.dtype)))
            inside = neighbor.mask & (r < rc)
            r_safe = jnp.where(inside, r, rc)
            pair = jnp.where(inside, self._pair(r_safe) - v_rc - (r_safe - rc) * dv_rc, 0.0)
            return 0.5 * jax.ops.segment_sum(pair, neighbor.receivers, num_segments=R.shape[0])  # full list

        return atomic

    def _energy(self, numbers, kinds):
        atomic = self.atomic_energy_fn(numbers)
        return lambda R, neighbor, cell: jnp.sum(atomic(R, neighbor, cell))
