"""Pressure from the virial: is a fixed-volume run at the density its model wants?

    P = (N k_B T - dU/dε / 3) / V

with ``dU/dε`` the derivative of the potential energy under a uniform isotropic strain
(every position and the cell scaled by 1 + ε), taken by automatic differentiation of the
energy function with its ``cell=`` override (DESIGN.md contract). This is the atomic
virial, valid for any many-body potential with periodic images; it needs no pair forces.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from .. import units


def strain_derivative(energy_fn, positions, neighbor, cell) -> float:
    """dU/dε (eV) of ``energy_fn(R, neighbor=nl, cell=...)`` at ε = 0, for R (Å) and
    ``cell`` (3, 3) Å (rows are lattice vectors) scaled together by 1 + ε.

    The neighbour list stays valid for the infinitesimal strain (its integer shifts do
    not change).
    """
    R = jnp.asarray(positions)
    box = jnp.asarray(cell, R.dtype)

    def strained(eps):
        scale = 1.0 + eps
        return energy_fn(R * scale, neighbor=neighbor, cell=box * scale)

    return float(jax.grad(strained)(jnp.zeros((), R.dtype)))


def pressure_bar(energy_fn, positions, neighbor, cell, temperature_K: float) -> float:
    """Instantaneous virial pressure (bar) at a kinetic temperature ``temperature_K`` (K).

    Uses N k_B T for the kinetic part (N atoms, 3N degrees of freedom); average over
    frames of an equilibrated run for the thermodynamic pressure.
    """
    if not np.isfinite(temperature_K) or temperature_K < 0:
        raise ValueError(f"temperature must be finite and >= 0 K, got {temperature_K}")
    cell = np.asarray(cell, np.float64)
    volume = abs(np.linalg.det(cell))
    if volume <= 0:
        raise ValueError("pressure needs a periodic cell with non-zero volume")
    n_atoms = np.asarray(positions).shape[0]
    virial = strain_derivative(energy_fn, positions, neighbor, cell)
    return (n_atoms * units.kT(temperature_K) - virial / 3.0) / volume * units.BAR_PER_EV_A3


def frame_pressures(model, numbers, frames, temperatures_K) -> np.ndarray:
    """Pressure (bar) of each ``(positions Å, cell Å)`` frame of periodic ``model`` systems.

    ``temperatures_K``: one kinetic temperature per frame, or one for all. Builds each
    frame's list on the CPU at the model cutoff; the energy function is compiled once
    (again only if a list outgrows its bucketed capacity).
    """
    from ..neighbors import build_neighbor_list

    frames = list(frames)
    temperatures = np.broadcast_to(np.asarray(temperatures_K, np.float64), (len(frames),))
    energy_fn = jax.jit(model.energy_fn(numbers, frames[0][1]))
    kinds = model.kinds(numbers)
    out = []
    for (positions, cell), temperature in zip(frames, temperatures):
        nl = build_neighbor_list(positions, cell, [True] * 3, model.cutoff, 0.0, kinds=kinds)
        out.append(pressure_bar(lambda R, neighbor, cell: energy_fn(R, neighbor, cell=cell),
                                positions, nl, cell, float(temperature)))
    return np.array(out)
