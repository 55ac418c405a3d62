"""Units and element data: the ground floor every part of nemd may import.

nemd speaks Å, eV, amu and K; time is fs at the user interface (timesteps) and ps in
trajectories. Integrators run in JAX-MD's metal units (Å, eV, amu), whose time unit is
sqrt(amu Å^2 / eV) ≈ 10.18 fs (``jax_md.units.metal_unit_system``). n2p2 files are in
Bohr and Hartree; H5MD forces are stored in kJ/mol/Å (a unit MDAnalysis reads).
"""

from __future__ import annotations

import contextlib
import warnings

import numpy as np
from ase.data import atomic_masses, atomic_numbers, chemical_symbols
from jax_md import units as _jax_md_units



@contextlib.contextmanager
def float64_requests_ignored():
    """JAX-MD asks for float64 where it can (constants, ``util.high_precision_sum``); in
    float32 mode JAX truncates them, as intended here, and warns each time code is traced.
    This silences those warnings only while tracing JAX-MD code."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Explicitly requested dtype float64", category=UserWarning)
        yield


with float64_requests_ignored():
    _METAL = _jax_md_units.metal_unit_system()
#: Internal (metal) time units per fs.
PER_FS = float(_METAL["time"]) * 1e-3
#: Boltzmann constant in eV/K.
KB = float(_METAL["temperature"])

BOHR = 0.529177210903  # Å
HARTREE = 27.211386245988  # eV
EV_PER_ANGSTROM_IN_KJ_PER_MOL = 96.48533212331002  # 1 eV/Å in kJ mol-1 Å-1
AMU_PER_A3_IN_G_PER_CM3 = 1.66053906660  # 1 amu/Å^3 in g/cm^3
BAR_PER_EV_A3 = 1.602176634e6  # 1 eV/Å^3 in bar


def fs_to_internal(t_fs: float) -> float:
    """A time in fs in JAX-MD's metal time unit."""
    return float(t_fs) * PER_FS


def kT(temperature_K: float) -> float:
    """Thermal energy in eV."""
    return KB * float(temperature_K)


def atomic_number(symbol: str) -> int:
    """Atomic number of an element symbol ("O" -> 8); ValueError for anything else."""
    z = atomic_numbers.get(symbol)
    if z is None or z == 0:
        raise ValueError(f"unknown element symbol {symbol!r}")
    return int(z)


def symbols_of(numbers) -> list[str]:
    """Element symbols of atomic numbers (``Z=<n>`` for numbers that are no element)."""
    return [chemical_symbols[z] if 0 < z < len(chemical_symbols) else f"Z={z}"
            for z in np.asarray(numbers).ravel().astype(int).tolist()]


def masses_of(numbers) -> np.ndarray:
    """Standard atomic masses (amu) of atomic numbers (argon for 18, etc.)."""
    numbers = np.asarray(numbers, dtype=np.int64)
    if numbers.size and (numbers.min() < 1 or numbers.max() >= len(atomic_masses)):
        raise ValueError(f"atomic numbers out of range: {sorted(set(numbers.tolist()))}")
    return atomic_masses[numbers].astype(np.float64)


def density_g_cm3(numbers, cell) -> float:
    """Mass density (g/cm^3) of atoms ``numbers`` in the periodic ``cell`` (Å)."""
    return float(masses_of(numbers).sum() * AMU_PER_A3_IN_G_PER_CM3 / abs(np.linalg.det(np.asarray(cell))))
