"""Every trained model shipped in the package loads by name and reproduces the energy and
forces recorded when it was shipped (docs/models.md), on a fixed frame, in float64."""

import jax.numpy as jnp
import numpy as np
import pytest

from nemd.io import water_box
from nemd.models import MODELS, load
from nemd.models.evaluate import energy_and_forces
from nemd.models.registry import TRAINED_DIR

# name: (energy eV, F[0, x] eV/Å, max |F| eV/Å) on water_box(16, density=0.997, seed=0)
RECORDED = {
    "nemp-water": (-33331.36526122504, -0.2776189356416874, 0.8738557454971245),
    "facet-water": (-33331.50612291989, -0.28452451749510005, 0.8415234863855136),
}


def test_every_shipped_file_is_registered_and_small():
    shipped = {p.stem for p in TRAINED_DIR.glob("*.nemd")}
    assert shipped == set(RECORDED)
    for name in shipped:
        assert MODELS[name].trained
        assert (TRAINED_DIR / f"{name}.nemd").stat().st_size < 2_000_000


@pytest.mark.parametrize("name", sorted(RECORDED))
def test_shipped_model_reproduces_recorded_energy(name):
    model = load(name)
    s = water_box(16, density=0.997, seed=0)
    energy, forces = energy_and_forces(model, s, dtype=jnp.float64)
    recorded_energy, recorded_fx, recorded_fmax = RECORDED[name]
    assert energy == pytest.approx(recorded_energy, abs=1e-5)
    assert forces[0, 0] == pytest.approx(recorded_fx, abs=1e-6)
    assert np.abs(forces).max() == pytest.approx(recorded_fmax, abs=1e-6)
