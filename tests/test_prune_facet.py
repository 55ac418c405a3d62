"""Structural pruning of Facet (nemd.train.prune_facet) on a tiny model."""

import dataclasses

import jax
import numpy as np
import pytest

from nemd.io import water_box
from nemd.models import load
from nemd.models.evaluate import energy_and_forces
from nemd.models.facet import FacetConfig, FacetModel
from nemd.train import Batcher, Sample
from nemd.train import prune_facet as pf
from test_prune import check_symmetries_and_round_trip, water  # noqa: E402 (tests/ is on the path)

# layer scale 0.5: with the paper's 0 an untrained Facet ignores its l > 0 channels
TINY = FacetConfig(species=("H", "O"), cutoff=3.5, r_max=3.2, hidden="6x0e + 4x1o + 4x2e", n_blocks=2, n_basis=4,
                   mixer_channels=4, mixer_heads=2, mixer_hidden=4, layer_scale_init=0.5)
DEAD_CHANNEL = 2  # of orders 1 and 2
DEAD_MIXER = [1, 3]  # one per head


def out_order(key):
    """The order l an e3nn Linear weight writes ('w[i,j] 4x1o,4x1o' -> 1)."""
    return int(key.split(",")[-1].split("x")[1][0])


def with_dead_units(model, orders=(1, 2), channel=DEAD_CHANNEL):
    """``model`` with nothing written into channel ``channel`` of the given orders (every
    channel when None) and into the mixer channels DEAD_MIXER (what produces them is zero)."""
    p = jax.tree_util.tree_map(np.array, dict(model.params))
    columns = slice(None) if channel is None else channel
    for b in range(model.config.n_blocks):
        linears = [p[f"interaction_{b}"]["mix"], p[f"interaction_{b}"]["self_connection"]]
        if f"self_interaction_{b}" in p:
            si = p[f"self_interaction_{b}"]
            linears.append(si["mixer_out"])
            for w in si["mixer_in"].values():
                w[:, DEAD_MIXER] = 0
            si["mixer"]["w2"][:, :, 1] = 0  # channel 1 of each head
        for linear in linears:
            for key, w in linear.items():
                if out_order(key) in orders:
                    w[:, columns] = 0
    return dataclasses.replace(model, params=p)


@pytest.fixture(scope="module")
def dead():
    return with_dead_units(FacetModel.init(TINY, seed=3))


def keep_all_but_dead(model, drop_order=None):
    keep = {k: np.arange(s[0]) for k, s in pf.unit_shapes(model.config).items()}
    for l in (1, 2):
        keep[f"hidden_{l}"] = np.array([k for k in range(4) if k != DEAD_CHANNEL])
    if drop_order is not None:
        keep[f"hidden_{drop_order}"] = np.array([], int)
    for space in keep:
        if space.startswith("mixer_"):
            keep[space] = np.array([k for k in range(4) if k not in DEAD_MIXER])
    return keep


def test_taylor_importance_is_zero_exactly_for_dead_units(dead):
    reference = FacetModel.init(TINY, seed=9)
    samples = []
    for seed in range(4):
        s = water(seed)
        samples.append(Sample(s, *energy_and_forces(reference, s), f"t{seed}"))
    scores = pf.taylor_importance(dead, list(Batcher(dead, samples, 2, 16).epoch(0)))
    assert set(scores) == set(pf.unit_shapes(TINY))
    for l in (1, 2):
        assert scores[f"hidden_{l}"][DEAD_CHANNEL] == 0
        assert np.all(np.delete(scores[f"hidden_{l}"], DEAD_CHANNEL) > 0)
    for b in range(TINY.n_blocks - 1):
        assert np.all(scores[f"mixer_{b}"][DEAD_MIXER] == 0) and np.all(np.delete(scores[f"mixer_{b}"], DEAD_MIXER) > 0)
    assert np.all(scores["hidden_0"] > 0) and np.all(scores["mlp_last_hidden"] >= 0)


@pytest.mark.parametrize("drop_order", [None, 2])
def test_pruning_dead_units_keeps_energies_and_forces(dead, drop_order):
    model = dead if drop_order is None else with_dead_units(dead, orders=(2,), channel=None)
    pruned = pf.prune(model, keep_all_but_dead(model, drop_order))
    assert pruned.config.hidden == ("6x0e + 3x1o + 3x2e" if drop_order is None else "6x0e + 3x1o")
    assert pruned.config.mixer_channels == 2 and pruned.n_parameters < model.n_parameters
    s = water(1)
    e, f = energy_and_forces(model, s)  # float64 (conftest)
    e2, f2 = energy_and_forces(pruned, s)
    assert e2 == pytest.approx(e, rel=1e-12)
    np.testing.assert_allclose(f2, f, atol=1e-10 * np.abs(f).max())


def test_pruned_facet_is_equivariant_and_round_trips(tmp_path):
    model = FacetModel.init(TINY, seed=5)
    scores = pf.random_importance(model, seed=1)
    small = pf.prune(model, pf.kept_units(scores, TINY, {0: 4, 1: 2}, 2))  # scalars too, and order 2
    assert small.config.hidden == "4x0e + 2x1o"
    check_symmetries_and_round_trip(small, tmp_path, rotation_rtol=2e-3, permutation_rtol=1e-6)  # S2 grid quadrature


def test_weight_norm_targets_and_errors():
    model = FacetModel.init(TINY, seed=4)
    norms = pf.weight_norm_importance(with_dead_units(model))
    full = pf.weight_norm_importance(model)
    assert norms["hidden_1"][DEAD_CHANNEL] < full["hidden_1"][DEAD_CHANNEL]
    hidden, mixer = pf.target_shape(TINY, model.n_parameters - 1)
    assert pf.parameter_count(pf.pruned_config(TINY, hidden, mixer)) <= model.n_parameters - 1
    assert pf.target_shape(TINY, model.n_parameters) == ({0: 6, 1: 4, 2: 4}, 4)
    assert 2 not in pf.target_shape(TINY, model.n_parameters - 1, "orders")[0]
    with pytest.raises(ValueError, match="no channels pruning"):
        pf.target_shape(TINY, 10, "channels")
    scores = {k: np.ones(s) for k, s in pf.unit_shapes(TINY).items()}  # by importance: order 2 kept if it matters
    assert 2 not in pf.target_shape(TINY, model.n_parameters - 1, scores={**scores, "hidden_2": np.zeros(4)})[0]
    hidden, mixer = pf.target_shape(TINY, model.n_parameters - 1, scores={**scores, "hidden_2": np.full(4, 100.0)})
    assert hidden[2] > 0 and pf.parameter_count(pf.pruned_config(TINY, hidden, mixer)) <= model.n_parameters - 1
    with pytest.raises(ValueError, match="dropped from the top"):
        pf.pruned_config(TINY, {0: 6, 2: 4}, 4)
    with pytest.raises(ValueError, match="multiple of the 2 heads"):
        pf.kept_units(full, TINY, {0: 6, 1: 4, 2: 4}, 3)


def test_prune_command_on_facet(tmp_path, capsys):
    from nemd.cli import main
    from nemd.train import write_extxyz

    model = FacetModel.init(TINY, seed=4)
    model.save(tmp_path / "big.nemd")
    s = water(1)
    write_extxyz([Sample(s, -1.0, np.zeros((s.n_atoms, 3)))], tmp_path / "d.extxyz")
    assert main(["prune", str(tmp_path / "big.nemd"), str(tmp_path / "d.extxyz"), "--method", "weight-norm",
                 "--shape", "4x0e + 2x1o", "2", "--out", str(tmp_path / "small.nemd")]) == 0
    small = load(str(tmp_path / "small.nemd"))
    assert small.config.hidden == "4x0e + 2x1o" and small.config.mixer_channels == 2
    assert main(["prune", str(tmp_path / "big.nemd"), str(tmp_path / "d.extxyz"), "--shape", "nonsense", "2",
                 "--out", str(tmp_path / "x.nemd")]) == 2
    assert not (tmp_path / "x.nemd").exists()
    assert main(["prune", str(tmp_path / "big.nemd"), str(tmp_path / "d.extxyz"), "--shape", "4x0e + 2x1o", "2",
                 "--layers", "1", "--out", str(tmp_path / "x.nemd")]) == 2
    assert "Facet's blocks" in capsys.readouterr().err and not (tmp_path / "x.nemd").exists()
