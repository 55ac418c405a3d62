"""Kinetic temperature per element: an equipartition check for trajectories.

In equilibrium every degree of freedom carries kT/2 of kinetic energy, so the kinetic
temperatures of the light and the heavy atoms agree. A global thermostat (Nose–Hoover)
only fixes their sum: when stiff, weakly coupled modes (O–H stretches) start colder than
the rest, they stay cold for picoseconds while the other modes run hot, and the mean
temperature hides it. Comparing per-element temperatures exposes that.
"""

from __future__ import annotations

import numpy as np

from .. import units


def kinetic_temperatures(velocities, numbers) -> dict[str, float]:
    """Mean kinetic temperature (K) of each element over frames.

    ``velocities`` (n_frames, N, 3) or (N, 3) in Å/ps; ``numbers`` (N,) atomic numbers.
    Uses 3 degrees of freedom per atom (no correction for the removed centre-of-mass
    motion, which is 3 of 3N).
    """
    v = np.asarray(velocities, dtype=np.float64)
    v = v[None] if v.ndim == 2 else v
    numbers = np.asarray(numbers)
    if v.ndim != 3 or v.shape[1:] != (numbers.size, 3):
        raise ValueError(f"velocities {v.shape} do not match {numbers.size} atoms")
    v = v / (units.PER_FS * 1e3)  # Å/ps -> Å per internal time unit, as the driver integrates
    kinetic = 0.5 * units.masses_of(numbers)[None, :, None] * v**2  # eV
    return {units.symbols_of([z])[0]: float(2.0 * kinetic[:, numbers == z].sum()
                                       / (3 * v.shape[0] * (numbers == z).sum() * units.KB))
            for z in np.unique(numbers)}


def kinetic_temperature_errors(velocities, numbers, n_blocks: int = 5) -> dict[str, float]:
    """Standard error (K) of each element's mean kinetic temperature over frames, from
    ``n_blocks`` contiguous blocks (blocks absorb the frames' correlation when each is
    longer than it, ~0.1 ps for water's O atoms); NaN with fewer frames than blocks.
    Tells whether O and H temperatures that differ in a short run differ significantly."""
    v = np.asarray(velocities, dtype=np.float64)
    if v.ndim != 3 or v.shape[0] < n_blocks:
        return {units.symbols_of([z])[0]: float("nan") for z in np.unique(numbers)}
    blocks = [kinetic_temperatures(b, numbers) for b in np.array_split(v, n_blocks)]
    return {el: float(np.std([b[el] for b in blocks], ddof=1) / np.sqrt(n_blocks)) for el in blocks[0]}
