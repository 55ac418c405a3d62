"""Shifted-force Lennard-Jones on a nemd ``NeighborList`` (argon defaults), for fast tests."""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp
import numpy as np

from ..neighbors import NeighborList, edge_vectors
from .graph import safe_norm


@dataclasses.dataclass(frozen=True)
class LennardJones:
    """Single-species Lennard-Jones with energy and force shifted to zero at ``cutoff``.

    ``V(r) = 4 eps [(s/r)^12 - (s/r)^6] - V(rc) - (r - rc) V'(rc)`` for r < rc: both the
    energy and the force are continuous at the cutoff, so NVE conserves energy well.
    Defaults: argon, eps = 0.0104 eV, sigma = 3.40 Å, cutoff = 2.5 sigma.
    """

    epsilon: float = 0.0104  # eV
    sigma: float = 3.40  # Å
    cutoff: float = 8.5  # Å
    species: tuple[str, ...] = ("Ar",)

    def kinds(self, species) -> np.ndarray:
        return np.zeros(len(species), dtype=np.int64)

    def _pair(self, r):
        s6 = (self.sigma / r) ** 6
        return 4.0 * self.epsilon * (s6 * s6 - s6)

    def _pair_derivative(self, r):
        s6 = (self.sigma / r) ** 6
        return 4.0 * self.epsilon * (-12.0 * s6 * s6 + 6.0 * s6) / r

    def energy_fn(self, species, cell=None):
        """``energy(R, neighbor=nl) -> eV``; ``species`` only sets the atom count."""
        n_atoms = len(species)
        cell = None if cell is None else np.asarray(cell, np.float64)
        rc = self.cutoff
        v_rc, dv_rc = self._pair(rc), self._pair_derivative(rc)

        def energy(R, neighbor: NeighborList, **kwargs):
            if R.shape[0] != n_atoms:
                raise ValueError(f"positions have {R.shape[0]} atoms, the energy function {n_atoms}")
            box = kwargs.get("cell", cell)
            r = safe_norm(edge_vectors(R, neighbor, None if box is None else jnp.asarray(box, R.dtype)))
            inside = neighbor.mask & (r < rc)
            r_safe = jnp.where(inside, r, rc)
            pair = self._pair(r_safe) - v_rc - (r_safe - rc) * dv_rc
            return 0.5 * jnp.sum(jnp.where(inside, pair, 0.0))  # full list: each pair twice

        return energy
