import os
from pathlib import Path

import pytest

SHARED_WATER = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "water"


def _missing(what: str):
    """Skip with a reason, or fail when CI demands the shared data / Fortran build."""
    if os.environ.get("NEMD_REQUIRE_SHARED") == "1":
        pytest.fail(f"{what} is required (NEMD_REQUIRE_SHARED=1) but missing")
    pytest.skip(f"{what} not available")


@pytest.fixture(scope="session")
def water_dir() -> Path:
    if not SHARED_WATER.is_dir():
        _missing(f"shared water data at {SHARED_WATER}")
    return SHARED_WATER


@pytest.fixture(scope="session")
def liquid_8640(water_dir):
    from nemd.io import read_structure

    return read_structure(water_dir / "liquid-8640-rpbe-d3.lammps-data")


@pytest.fixture(scope="session")
def fortran_backend():
    from nemd.neighbors import fortran_available

    if not fortran_available():
        if os.environ.get("NEMD_REQUIRE_FORTRAN") == "1":
            pytest.fail("the Fortran neighbour backend is required (NEMD_REQUIRE_FORTRAN=1) but not built")
        pytest.skip("Fortran neighbour backend not built (run `make fortran`)")
    return "fortran"


# Reference comparisons (n2p2, MDAnalysis, vesin) run in float64; code that must work in
# float32 is tested with explicit dtypes.
import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)


@pytest.fixture(scope="session")
def rpbe_model(water_dir):
    from nemd.models import load

    return load("bpnn-rpbe-d3", water_dir)


@pytest.fixture(scope="session")
def dft_frames(water_dir):
    from nemd.io.n2p2 import read_input_data

    return read_input_data(water_dir / "n2p2-reference" / "dft-rpbe-d3-20.input.data")
