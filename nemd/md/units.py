"""Unit conversions for MD: the user speaks fs and K; JAX-MD's metal units are Å, eV, amu.

Internal time unit = sqrt(amu Å^2 / eV) ≈ 10.18 fs (``jax_md.units.metal_unit_system``).
"""

from __future__ import annotations

import numpy as np
from ase.data import atomic_masses
from jax_md import units

_METAL = units.metal_unit_system()
#: Internal time units per fs.
PER_FS = float(_METAL["time"]) * 1e-3
#: Boltzmann constant in eV/K.
KB = float(_METAL["temperature"])


def fs_to_internal(t_fs: float) -> float:
    return float(t_fs) * PER_FS


def internal_to_ps(t: float) -> float:
    return float(t) / PER_FS * 1e-3


def kT(temperature_K: float) -> float:
    """Thermal energy in eV."""
    return KB * float(temperature_K)


def masses_of(numbers) -> np.ndarray:
    """Standard atomic masses (amu) of atomic numbers (argon for 18, etc.)."""
    numbers = np.asarray(numbers, dtype=np.int64)
    if numbers.size and (numbers.min() < 1 or numbers.max() >= len(atomic_masses)):
        raise ValueError(f"atomic numbers out of range: {sorted(set(numbers.tolist()))}")
    return atomic_masses[numbers].astype(np.float64)
