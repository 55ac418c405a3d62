"""Structural irreps-block pruning of NEMP (nemd.train.prune) on a tiny model."""

import dataclasses

import jax
import numpy as np
import pytest

from nemd.io import water_box
from nemd.models import load
from nemd.models.evaluate import energy_and_forces
from nemd.models.nemp import NEMPConfig, NEMPModel
from nemd.train import Batcher, Sample
from nemd.train import prune as pr
from nemd.train.prune import block_gate_shapes

TINY = NEMPConfig(species=("H", "O"), cutoff=3.5, channels=4, n_radial=4, lmax=2, lmax_node=2, n_layers=2,
                  pair_features=8, edge_hidden=8, edge_layers=1, readout_hidden=8, avg_neighbors=16.0)


def water(seed=0, n=8):
    s = water_box(n, seed=seed)
    rng = np.random.default_rng(seed)
    return dataclasses.replace(s, positions=s.positions + rng.normal(scale=0.1, size=s.positions.shape))


def with_dead_blocks(model, channel=3, order=2):
    """``model`` with channel ``channel`` of every space and order ``order`` of every
    equivariant space made zero by zeroing what produces them (not what consumes them)."""
    cfg, p, c = model.config, model.config.lmax_node + 1, model.config.channels
    params = jax.tree_util.tree_map(np.array, dict(model.params))
    radial = params["radial"]["kernel_1"].reshape(-1, p + 2, c)
    radial[:, :, channel] = 0  # pre, rho0, e0b
    radial[:, order] = 0  # layer-0 features of that order
    params["radial"]["bias_1"][:] = 0
    params["pair_coefficients"][:, channel] = 0  # e0a
    params["mix_0"][:, :, channel] = 0
    for t in range(1, cfg.n_layers + 1):
        params[f"self_mix_{t}"][:, :, channel] = 0
        params[f"product_mix_{t}"][:, :, channel] = 0
        params[f"path_weights_{t}"][:, :, channel] = 0
        into = [i for i, q in enumerate(pr.cg_paths(cfg.lmax, cfg.lmax_node)[0]) if q[2] == order]
        params[f"path_weights_{t}"][:, into] = 0
    return dataclasses.replace(model, params=params)


@pytest.fixture(scope="module")
def dead():
    return with_dead_blocks(NEMPModel.init(TINY, seed=4))


@pytest.fixture(scope="module")
def batches(dead):
    reference = NEMPModel.init(TINY, seed=9)
    samples = []
    for seed in range(4):
        s = water(seed)
        e, f = energy_and_forces(reference, s)
        samples.append(Sample(s, e, f, f"t{seed}"))
    return list(Batcher(dead, samples, 2, 16).epoch(0))


def test_taylor_importance_is_zero_exactly_for_dead_blocks(dead, batches):
    scores = pr.taylor_importance(dead, batches)
    assert set(scores) == {*block_gate_shapes(TINY), pr.LAYERS, pr.PATHS}
    assert np.all(scores.pop(pr.LAYERS) > 0)
    paths = scores.pop(pr.PATHS)  # (layers, paths): zero exactly for paths into or from the dead order 2
    through_dead = np.array([2 in (l2, l) for _, l2, l in pr.cg_paths(TINY.lmax, TINY.lmax_node)[0]])
    assert np.all(paths[:, through_dead] == 0) and np.all(paths[:, ~through_dead] > 0)
    for space, s in scores.items():
        assert np.all(s[..., 3] == 0), space
        if s.ndim == 2:
            assert np.all(s[2] == 0), space
        assert np.all(s[:2, :3] > 0 if s.ndim == 2 else s[:3] > 0), space  # the live blocks matter
    assert pr.order_importance(scores)[2] == 0
    keep = pr.kept_channels(scores, 3, 1)
    assert all(list(v) == [0, 1, 2] for v in keep.values())


@pytest.mark.parametrize("channels, lmax_node", [(3, 1), pytest.param(3, 2, marks=pytest.mark.slow),
                                                 pytest.param(4, 1, marks=pytest.mark.slow)])
def test_pruning_dead_blocks_keeps_energies_and_forces(dead, channels, lmax_node):
    keep = {space: np.arange(channels) for space in block_gate_shapes(TINY)}
    small = pr.prune(dead, keep, lmax_node)
    shrink = (lmax_node + 1) ** 2 * channels / (9 * 4)
    assert small.config == dataclasses.replace(TINY, channels=channels, lmax_node=lmax_node,
                                               rms_epsilon=TINY.rms_epsilon / shrink)
    assert small.n_parameters == pr.parameter_count(small.config) < dead.n_parameters
    s = water(7, 12)
    assert_same_energy_and_forces(dead, small, s)
    live = NEMPModel.init(TINY, seed=4)  # pruning live blocks does change the model
    assert energy_and_forces(pr.prune(live, keep, lmax_node), s)[0] != pytest.approx(energy_and_forces(live, s)[0])


def assert_same_energy_and_forces(model, pruned, structure):
    """``pruned`` gives ``model``'s energy and forces on ``structure`` to float64 tolerance."""
    e0, f0 = energy_and_forces(model, structure)
    e1, f1 = energy_and_forces(pruned, structure)
    assert e1 == pytest.approx(e0, rel=1e-12)
    np.testing.assert_allclose(f1, f0, atol=1e-11 * np.abs(f0).max())


def check_symmetries_and_round_trip(model, tmp_path, rotation_rtol=1e-10, permutation_rtol=1e-10):
    """Energy invariant and forces equivariant under a rotation and a rotation with a
    reflection (to ``rotation_rtol``) and a permutation of the atoms; the same energy after
    ``save``/``load``. Shared with test_prune_facet."""
    s = water(3)
    e, f = energy_and_forces(model, s)
    for reflect in (False, True):
        q = np.linalg.qr(np.random.default_rng(2).normal(size=(3, 3)))[0] * (-1 if reflect else 1)
        e2, f2 = energy_and_forces(model, dataclasses.replace(s, positions=s.positions @ q.T, cell=s.cell @ q.T))
        assert e2 == pytest.approx(e, rel=rotation_rtol)
        np.testing.assert_allclose(f2, f @ q.T, atol=10 * rotation_rtol * np.abs(f).max())
    order = np.random.default_rng(0).permutation(s.n_atoms)
    e3, f3 = energy_and_forces(model, dataclasses.replace(s, positions=s.positions[order], numbers=s.numbers[order]))
    assert e3 == pytest.approx(e, rel=permutation_rtol)
    np.testing.assert_allclose(f3, f[order], atol=10 * permutation_rtol * np.abs(f).max())
    again = load(str(model.save(tmp_path / "pruned.nemd")))
    assert again.config == model.config and energy_and_forces(again, s)[0] == e


def test_pruned_model_is_equivariant_and_round_trips(dead, tmp_path):
    scores = pr.random_importance(dead, seed=1)
    small = pr.prune(NEMPModel.init(TINY, seed=5), pr.kept_channels(scores, 2, 1), 1)
    check_symmetries_and_round_trip(small, tmp_path)


def test_pruning_a_layer_that_adds_nothing_keeps_energies_and_forces(batches):
    """Layer 2 whose part of the readout is zero: its Taylor score is zero and the model
    without it (1 layer) has the same energies and forces and is a model of its own."""
    model = NEMPModel.init(TINY, seed=4)
    params = jax.tree_util.tree_map(np.array, dict(model.params))
    params["readout"]["kernel_0"][3 * TINY.channels:] = 0  # the final invariant (layer 2's)
    top_dead = dataclasses.replace(model, params=params)
    layers = pr.taylor_importance(top_dead, batches)[pr.LAYERS]
    assert layers[1] == 0 and layers[0] > 0
    one = pr.prune_layers(top_dead, 1)
    assert one.config == dataclasses.replace(TINY, n_layers=1)
    assert one.n_parameters == pr.parameter_count(one.config) < model.n_parameters
    s = water(7, 12)
    assert_same_energy_and_forces(top_dead, one, s)
    assert energy_and_forces(pr.prune_layers(model, 1), s)[0] != pytest.approx(energy_and_forces(model, s)[0])
    with pytest.raises(ValueError, match="cannot keep 0 of 2"):
        pr.prune_layers(model, 0)


def test_pruning_a_dead_cg_path_keeps_energies_and_forces(batches, tmp_path):
    """A CG path whose weights are zero in every layer: its Taylor score is zero, it is the
    one path ``kept_paths`` drops, and the model without it (a config listing the other
    paths) has the same energies and forces and round-trips."""
    model = NEMPModel.init(TINY, seed=4)
    paths = pr.cg_paths(TINY.lmax, TINY.lmax_node)[0]
    dead_path = paths.index((1, 1, 0))
    params = jax.tree_util.tree_map(np.array, dict(model.params))
    for t in range(1, TINY.n_layers + 1):
        params[f"path_weights_{t}"][:, dead_path] = 0
    dead_model = dataclasses.replace(model, params=params)
    scores = pr.taylor_importance(dead_model, batches)
    assert np.all(scores[pr.PATHS][:, dead_path] == 0)
    assert np.all(np.delete(scores[pr.PATHS], dead_path, axis=1) > 0)
    kept = pr.kept_paths(scores, TINY, TINY, 1)
    assert kept == tuple(q for q in paths if q != (1, 1, 0))
    small = pr.prune_paths(dead_model, kept)
    assert small.config == dataclasses.replace(TINY, cg_paths=kept)
    assert small.n_parameters == pr.parameter_count(small.config) < model.n_parameters
    s = water(7, 12)
    assert_same_energy_and_forces(dead_model, small, s)
    again = load(str(small.save(tmp_path / "paths.nemd")))
    assert again.config == small.config and energy_and_forces(again, s)[0] == energy_and_forces(small, s)[0]
    live = pr.prune_paths(model, kept)  # removing a live path does change the model
    assert energy_and_forces(live, s)[0] != pytest.approx(energy_and_forces(model, s)[0])


@pytest.mark.slow
def test_model_pruned_in_paths_and_channels_is_equivariant_and_round_trips(tmp_path):
    """Paths, then channels and orders: the paths from and into l = 2 go too, the config
    lists the rest, and the model is exactly equivariant."""
    model = NEMPModel.init(TINY, seed=5)
    scores = pr.random_importance(model, seed=3)
    fewer = pr.prune_paths(model, pr.kept_paths(scores, TINY, TINY, 3))
    lower = pr.prune(fewer, pr.kept_channels(scores, 3, 1), 1)
    assert lower.config.cg_paths == tuple(q for q in fewer.config.cg_paths if q[1] <= 1 and q[2] <= 1)
    assert lower.n_parameters == pr.parameter_count(lower.config)
    check_symmetries_and_round_trip(fewer, tmp_path)
    check_symmetries_and_round_trip(lower, tmp_path)


def test_cg_path_configs_and_bad_input():
    with pytest.raises(ValueError, match="not allowed"):
        dataclasses.replace(TINY, cg_paths=((0, 0, 1),))
    with pytest.raises(ValueError, match=r"no path into node order\(s\) l = \[1, 2\]"):
        dataclasses.replace(TINY, cg_paths=((0, 0, 0),))
    with pytest.raises(ValueError, match="duplicates"):
        dataclasses.replace(TINY, cg_paths=((0, 0, 0), (0, 0, 0), (1, 0, 1), (2, 0, 2)))
    model = NEMPModel.init(TINY, seed=1)
    scores = pr.weight_norm_importance(model)
    n = len(pr.cg_paths(TINY.lmax, TINY.lmax_node)[0])
    assert scores[pr.PATHS].shape == (TINY.n_layers, n) == pr.random_importance(model)[pr.PATHS].shape
    with pytest.raises(ValueError, match=f"at most {n - 3} can go"):
        pr.kept_paths(scores, TINY, TINY, n - 2)
    with pytest.raises(ValueError, match="not CG paths"):
        pr.prune_paths(model, [(0, 0, 0), (3, 2, 1)])


@pytest.mark.slow
def test_model_pruned_in_layers_and_channels_is_equivariant_and_round_trips(tmp_path):
    one = pr.prune_layers(NEMPModel.init(TINY, seed=5), 1)
    scores = pr.random_importance(one, seed=2)
    check_symmetries_and_round_trip(pr.prune(one, pr.kept_channels(scores, 3, 1), 1), tmp_path)


def test_weight_norm_and_targets():
    model = NEMPModel.init(TINY, seed=4)
    norms = pr.weight_norm_importance(with_dead_blocks(model, channel=1))
    full = pr.weight_norm_importance(model)
    assert all(np.all(norms[k][..., 1] < full[k][..., 1]) for k in norms)
    n = model.n_parameters
    assert pr.target_shape(TINY, n) == (4, 2)
    c, l = pr.target_shape(TINY, n - 1)
    assert pr.parameter_count(dataclasses.replace(TINY, channels=c, lmax_node=l)) <= n - 1
    assert pr.target_shape(TINY, n - 1, "orders")[0] == 4 and pr.target_shape(TINY, n - 1, "channels")[1] == 2
    with pytest.raises(ValueError, match="no channels pruning"):
        pr.target_shape(TINY, 10, "channels")
    with pytest.raises(ValueError, match="same number of channels"):
        pr.prune(model, {"pre": np.arange(2)}, 2)


def test_target_shape_by_importance():
    """With scores, the fitting shape that keeps the most importance: fewer channels up to
    l = 2 when l = 2 matters, more channels up to l = 1 when it does not."""
    shapes = block_gate_shapes(TINY)

    def by_order(weights):
        per_order = np.asarray(weights, float)[:, None]
        return {k: np.ones(s) * (per_order if len(s) == 2 else 1.0) for k, s in shapes.items()}

    ones = by_order([1, 1, 1])
    n_equi = sum(len(s) == 2 for s in shapes.values())
    assert pr.kept_importance(ones, pr.kept_channels(ones, 2, 1), 1) == 2 * (2 * n_equi + len(shapes) - n_equi)
    budget = pr.parameter_count(dataclasses.replace(TINY, lmax_node=1))
    assert pr.target_shape(TINY, budget) == (4, 1)
    assert pr.target_shape(TINY, budget, scores=by_order([1, 1, 0])) == (4, 1)
    c, l = pr.target_shape(TINY, budget, scores=by_order([1, 1, 100]))
    assert l == 2 and c < 4 and pr.parameter_count(dataclasses.replace(TINY, channels=c)) <= budget


def test_prune_command(tmp_path, capsys):
    import json

    from nemd.cli import main
    from nemd.train import write_extxyz

    model = NEMPModel.init(TINY, seed=4)
    model.save(tmp_path / "big.nemd")
    s = water(1)
    write_extxyz([Sample(s, -1.0, np.zeros((s.n_atoms, 3)))], tmp_path / "d.extxyz")
    args = [str(tmp_path / "big.nemd"), str(tmp_path / "d.extxyz"), "--method", "weight-norm"]
    assert main(["prune", *args, "--target-params", str(model.n_parameters - 1), "--out",
                 str(tmp_path / "small.nemd")]) == 0
    report = json.loads((tmp_path / "small.json").read_text())
    small = load(str(tmp_path / "small.nemd"))
    assert report["pruned_parameters"] == small.n_parameters < model.n_parameters
    assert "parameters" in capsys.readouterr().out
    assert main(["prune", *args, "--shape", "2", "1", "--importance", str(tmp_path / "small.json"), "--out",
                 str(tmp_path / "two.nemd")]) == 0
    assert load(str(tmp_path / "two.nemd")).config.channels == 2
    assert main(["prune", *args, "--target-params", str(model.n_parameters - 1), "--shape-by", "importance",
                 "--out", str(tmp_path / "chosen.nemd")]) == 0
    assert json.loads((tmp_path / "chosen.json").read_text())["shape_by"] == "importance"
    assert main(["prune", *args, "--shape", "2", "1", "--layers", "1", "--out", str(tmp_path / "one.nemd")]) == 0
    assert load(str(tmp_path / "one.nemd")).config == dataclasses.replace(TINY, channels=2, lmax_node=1, n_layers=1,
                                                                         rms_epsilon=TINY.rms_epsilon / (8 / 36))
    assert json.loads((tmp_path / "one.json").read_text())["n_layers"] == [2, 1]
    assert main(["prune", *args, "--drop-paths", "4", "--out", str(tmp_path / "paths.nemd")]) == 0
    n = len(pr.cg_paths(TINY.lmax, TINY.lmax_node)[0])
    assert len(load(str(tmp_path / "paths.nemd")).config.cg_paths) == n - 4
    assert json.loads((tmp_path / "paths.json").read_text())["cg_paths"] == [n, n - 4]
    assert main(["prune", *args, "--drop-paths", str(n), "--out", str(tmp_path / "w.nemd")]) == 2
    assert "cannot drop" in capsys.readouterr().err and not (tmp_path / "w.nemd").exists()
    assert main(["prune", *args, "--out", str(tmp_path / "v.nemd")]) == 2
    assert "give the size" in capsys.readouterr().err and not (tmp_path / "v.nemd").exists()
    assert main(["prune", *args, "--shape", "2", "1", "--layers", "3", "--out", str(tmp_path / "z.nemd")]) == 2
    assert "cannot keep 3 of 2" in capsys.readouterr().err and not (tmp_path / "z.nemd").exists()
    assert main(["prune", *args, "--shape", "2", "1", "--shape-by", "importance", "--out",
                 str(tmp_path / "y.nemd")]) == 2
    assert "--target-params" in capsys.readouterr().err and not (tmp_path / "y.nemd").exists()
    assert main(["prune", "lennard-jones", str(tmp_path / "d.extxyz"), "--shape", "2", "1", "--out",
                 str(tmp_path / "x.nemd")]) == 2
    assert "prunes NEMP and Facet models" in capsys.readouterr().err and not (tmp_path / "x.nemd").exists()
