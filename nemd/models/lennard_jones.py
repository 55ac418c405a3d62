"""Shifted-force Lennard-Jones on a nemd ``NeighborList`` (argon defaults), for fast tests."""

from __future__ import annotations

import dataclasses

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

    def _energy(self, numbers, kinds):
        rc = self.cutoff
        v_rc, dv_rc = self._pair(rc), self._pair_derivative(rc)

        def energy(R, neighbor, cell):
            r = safe_norm(edge_vectors(R, neighbor, cell))
            inside = neighbor.mask & (r < rc)
            r_safe = jnp.where(inside, r, rc)
            pair = self._pair(r_safe) - v_rc - (r_safe - rc) * dv_rc
            return 0.5 * jnp.sum(jnp.where(inside, pair, 0.0))  # full list: each pair twice

        return energy
