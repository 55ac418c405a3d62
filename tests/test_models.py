"""The model contract (``Potential``) and the registry of models by name."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nemd.io import water_box
from nemd.models import MODELS, Potential, load
from nemd.neighbors import build_neighbor_list


def test_registry_names_load_and_unknown_names_fail(water_dir):
    for name in ("lennard-jones", "nemp-small", "facet-small", "bpnn-rpbe-d3"):
        model = load(name, water_dir if name.startswith("bpnn") else None)
        assert isinstance(model, Potential) and model.cutoff > 0 and model.species
    assert load("bpnn-rpbe-d3", water_dir / "bpnn-rpbe-d3").species == ("H", "O")  # the folder itself
    assert not MODELS["nemp"].trained and MODELS["bpnn-rpbe-d3"].trained
    with pytest.raises(ValueError, match="unknown model 'mace'"):
        load("mace")
    with pytest.raises(FileNotFoundError, match="weight files for bpnn-rpbe-d3 not found"):
        load("bpnn-rpbe-d3", water_dir.parent)


@pytest.mark.parametrize("name", ["lennard-jones", "bpnn-rpbe-d3", "nemp-small"])
def test_every_model_meets_the_energy_contract(name, water_dir):
    """Kinds index ``species``; the ``cell=`` override equals a function made for that
    cell (what virials need); a list shorter than the model cutoff is refused."""
    model = load(name, water_dir if name.startswith("bpnn") else None)
    s = water_box(8, seed=1)
    numbers = np.full(s.n_atoms, 18) if name == "lennard-jones" else s.numbers
    kinds = model.kinds(numbers)
    assert kinds.dtype == np.int32 and kinds.shape == (s.n_atoms,)
    if name != "lennard-jones":
        assert [model.species[k] for k in kinds[:3]] == ["O", "H", "H"]
        with pytest.raises(ValueError, match=f"'C' not in this {model.name} model"):
            model.kinds([8, 1, 6])
    strained = s.cell * 1.02
    nl = build_neighbor_list(s.positions, s.cell, True, model.cutoff, 0.3, kinds=kinds)
    R = jnp.asarray(s.positions * 1.02)
    overridden = jax.jit(lambda R, nl: model.energy_fn(numbers, s.cell)(R, nl, cell=strained))(R, nl)
    own = jax.jit(model.energy_fn(numbers, strained))(R, nl)
    assert float(overridden) == pytest.approx(float(own), rel=1e-12)
    short = build_neighbor_list(s.positions, s.cell, True, model.cutoff - 1.0, 0.0, kinds=kinds)
    with pytest.raises(ValueError, match="below the model cutoff"):
        model.energy_fn(numbers, s.cell)(R, short)
