"""Training: data round trips and errors, batches, a few steps lower the loss, resume."""

import dataclasses
import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nemd.io import water_box
from nemd.models.evaluate import energy_and_forces
from nemd.models.nemp import NEMPConfig, NEMPModel
from nemd.train import Batcher, Sample, TrainConfig, read_samples, split_by_trajectory, train, write_extxyz
from nemd.train.data import reference_energies
from nemd.train.loss import predict

TINY = NEMPConfig(species=("H", "O"), cutoff=3.5, channels=4, n_radial=4, lmax=1, lmax_node=1, n_layers=1,
                  pair_features=8, edge_hidden=8, readout_hidden=8)


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    """Frames of 4-6 water molecules labelled by a random tiny NEMP (the teacher), four
    trajectories, written as extended XYZ."""
    teacher = NEMPModel.init(TINY, seed=7)
    samples = []
    for t in range(3):
        for k in range(4):
            s = water_box(4 + t % 3, seed=10 * t + k)
            s = dataclasses.replace(s, positions=s.positions + np.random.default_rng(k).normal(scale=0.05,
                                                                                                 size=s.positions.shape))
            e, f = energy_and_forces(teacher, s, dtype=jnp.float64)
            samples.append(Sample(s, e - 3.0 * s.n_atoms, f, f"traj{t}"))
    path = tmp_path_factory.mktemp("data") / "tiny.extxyz"
    write_extxyz(samples, path)
    return path, samples


def test_extxyz_round_trip_and_splits(labelled):
    path, samples = labelled
    back = read_samples(path)
    assert len(back) == len(samples) and [s.trajectory for s in back] == [s.trajectory for s in samples]
    np.testing.assert_allclose(back[3].forces, samples[3].forces, atol=1e-8)  # ASE writes 8 decimals
    assert back[3].energy == pytest.approx(samples[3].energy, abs=1e-8)
    train_set, valid_set = split_by_trajectory(back, 0.2, seed=1)
    assert {s.trajectory for s in train_set}.isdisjoint({s.trajectory for s in valid_set}) and valid_set
    mu = reference_energies(back, ("H", "O"))
    assert mu.shape == (2,) and np.all(np.isfinite(mu))


def test_bad_data_gives_one_clear_error(tmp_path, labelled):
    from ase import Atoms

    Atoms("H2O", positions=np.eye(3)).write(tmp_path / "nolabels.extxyz")
    with pytest.raises(ValueError, match="has no energy"):
        read_samples(tmp_path / "nolabels.extxyz")
    with pytest.raises(ValueError, match="unknown data format"):
        read_samples(tmp_path / "x.csv")
    carbon = Sample(water_box(1).__class__(np.zeros((1, 3)), np.array([6]), np.zeros((3, 3)), np.zeros(3, bool)),
                    0.0, np.zeros((1, 3)), "c")
    with pytest.raises(ValueError, match="element 'C'"):
        reference_energies([carbon], ("H", "O"))
    with pytest.raises(ValueError, match="not in this nemp model"):
        Batcher(NEMPModel.init(TINY), [carbon])


def test_batches_reproduce_one_by_one_evaluation(labelled):
    _, samples = labelled
    model = NEMPModel.init(TINY, seed=1)
    batcher = Batcher(model, samples, structures_per_batch=3, block_atoms=16)
    batches = list(batcher.epoch(seed=0))
    assert sum(int(b.graph_mask.sum()) for b in batches) == len(samples) and len(batches) > 2
    assert len({jax.tree_util.tree_structure(b) for b in batches}) == 1
    assert len({b.graph.senders.shape for b in batches}) <= 2  # shapes fixed, the capacity grows at most once
    batch = batcher.batch([0, 5, 9])
    energies, forces = predict(model, model.params, batch)
    offset = 0
    for g, i in enumerate([0, 5, 9]):
        e, f = energy_and_forces(model, samples[i].structure)
        n = samples[i].structure.n_atoms
        assert float(energies[g]) == pytest.approx(e, rel=1e-10)
        np.testing.assert_allclose(np.asarray(forces[offset:offset + n]), f, atol=1e-10)
        offset += n


def test_training_lowers_the_loss_and_resume_equals_uninterrupted(labelled, tmp_path):
    path, _ = labelled
    base = dict(data=(str(path),), model="nemp", model_config=dataclasses.asdict(TINY), valid_fraction=0.25,
                epochs=3, structures_per_batch=3, block_atoms=16, learning_rate=5e-3, patience=10)
    whole = train(TrainConfig(**base, out=str(tmp_path / "whole")))
    losses = [h["train_loss"] for h in whole.history]
    assert losses[-1] < losses[0] and len(losses) == 3
    half = TrainConfig(**base, out=str(tmp_path / "half"))
    done = []
    train(half, on_epoch=done.append, stop=lambda: len(done) == 1)  # interrupted after one epoch
    resumed = train(half, resume=True)
    assert [h["train_loss"] for h in resumed.history] == losses
    assert (tmp_path / "whole" / "learning_curve.png").is_file()
    lines = (tmp_path / "whole" / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 3 and "valid_force_rmse_O" in json.loads(lines[-1])
    # validation weighs energy as the late epochs do (1000), in every epoch, so that the best epoch
    # is chosen on one criterion across the raise of the energy weight (epoch 3 here)
    for h in whole.history:
        final = 1000.0 * (h["valid_energy_rmse"] / 1e3) ** 2 + 100.0 * (h["valid_force_rmse"] / 1e3) ** 2
        assert h["valid_loss"] == pytest.approx(final, rel=0.05)
    saved = NEMPModel.load(tmp_path / "whole" / "model.nemd")
    assert jax.tree_util.tree_all(jax.tree_util.tree_map(lambda a, b: np.array_equal(a, b), saved.params,
                                                         whole.model.params))


def test_fine_tuning_starts_from_a_saved_model_and_distils_another(labelled, tmp_path):
    """init_from trains a saved model as it is; distill_from blends another model's
    energies and forces into the labels ((1 - w) labels + w model)."""
    from nemd.train.trainer import distilled_labels

    path, samples = labelled
    start = NEMPModel.init(TINY, seed=3).with_energy_statistics([-3.0, -3.0], 0.1)
    start.save(tmp_path / "start.nemd")
    other = NEMPModel.init(TINY, seed=5)
    other.save(tmp_path / "other.nemd")
    base = dict(data=(str(path),), init_from=str(tmp_path / "start.nemd"), distill_from=str(tmp_path / "other.nemd"),
                valid_fraction=0.25, structures_per_batch=3, block_atoms=16)
    blended = distilled_labels(TrainConfig(**base, distill_weight=0.25), samples)
    for sample, label in list(zip(samples, blended))[::4]:
        e, f = energy_and_forces(other, sample.structure, dtype=jnp.float32)
        assert label.energy == pytest.approx(0.75 * sample.energy + 0.25 * e, rel=1e-5)
        np.testing.assert_allclose(label.forces, 0.75 * sample.forces + 0.25 * f, atol=1e-5)
    result = train(TrainConfig(**base, epochs=1, learning_rate=1e-9, ema_decay=0.0, out=str(tmp_path / "ft")))
    assert result.model.config == start.config  # not the preset's: the saved model's
    for a, b in zip(jax.tree_util.tree_leaves(result.model.params), jax.tree_util.tree_leaves(start.params)):
        np.testing.assert_allclose(a, b, atol=1e-6)
    with pytest.raises(ValueError, match="distill_weight"):
        TrainConfig(data=("x",), distill_weight=1.5)


def test_errors_are_zero_against_own_labels_and_match_direct_evaluation(labelled, tmp_path):
    from nemd.models import load
    from nemd.train.evaluate import errors

    _, samples = labelled
    teacher = NEMPModel.init(TINY, seed=7)
    # the fixture labels are the teacher's energies shifted by -3 eV per atom: only that offset remains
    own = errors(teacher, samples, structures_per_batch=3, block_atoms=16)
    assert own["force_rmse"] < 1e-2 and own["energy_mean_error"] == pytest.approx(3000.0, abs=1e-2)
    other = NEMPModel.init(TINY, seed=8)
    got = errors(other, samples, structures_per_batch=2, block_atoms=16)
    df = np.concatenate([energy_and_forces(other, s.structure, dtype=jnp.float64)[1] - s.forces for s in samples])
    assert got["force_rmse"] == pytest.approx(1e3 * np.sqrt(np.mean(df**2)), rel=1e-4)
    assert got["frames"] == len(samples) and got["atoms"] == sum(s.structure.n_atoms for s in samples)
    other.save(tmp_path / "m.nemd")  # a saved model loads by its path, its family read from the file
    assert load(str(tmp_path / "m.nemd")).config == other.config
    with pytest.raises(ValueError, match="no labelled structures"):
        errors(other, [])
    from nemd.models.lennard_jones import LennardJones

    with pytest.raises(ValueError, match="NEMP and Facet"):
        errors(LennardJones(), samples)


def test_errors_command(labelled, tmp_path, capsys):
    from nemd.cli import main

    path, _ = labelled
    NEMPModel.init(TINY, seed=8).save(tmp_path / "m.nemd")
    assert main(["errors", str(tmp_path / "m.nemd"), str(path), "--json", str(tmp_path / "e.jsonl")]) == 0
    row = json.loads((tmp_path / "e.jsonl").read_text())
    assert row["frames"] == 12 and row["force_rmse"] > 0 and "force RMSE" in capsys.readouterr().out
    assert main(["errors", str(tmp_path / "missing.nemd"), str(path)]) == 2


@pytest.mark.slow  # teacher MD of 3 tiny states, twice (~4 min on 2 idle cores, 13 on busy ones)
def test_distill_is_deterministic_and_shards_give_the_same_files(water_dir, tmp_path):
    """Two shards write byte for byte the files one process writes, and the training file
    holds MD frames plus augmented copies, each labelled by the teacher."""
    from nemd.models import load
    from nemd.train.distill import Recipe, State, generate

    states = (State(300.0, 0.95, molecules=8, steps=100, seed=0), State(350.0, 1.0, molecules=8, steps=100, seed=1))
    recipe = Recipe(train=states, test=(State(300.0, 0.997, molecules=8, steps=50, seed=5),), equilibration=20,
                    rattle_fraction=0.5, strain_fraction=0.5)
    whole = generate(recipe, tmp_path / "one", directory=water_dir)
    shards = [p for k in range(2) for p in generate(recipe, tmp_path / "two", directory=water_dir, shard=(k, 2))]
    assert sorted(p.relative_to(tmp_path / "one") for p in whole) == \
        sorted(p.relative_to(tmp_path / "two") for p in shards)
    for path in whole:
        assert path.read_bytes() == (tmp_path / "two" / path.relative_to(tmp_path / "one")).read_bytes()
    train = read_samples(tmp_path / "one" / "train" / f"{states[0].name}.extxyz")
    assert len(train) >= 2  # 2 MD frames (every 50 of 100 steps) plus their augmented copies
    assert len({s.trajectory for s in train}) == 1
    energy, forces = energy_and_forces(load("bpnn-rpbe-d3", water_dir), train[-1].structure, dtype=jnp.float64)
    assert train[-1].energy == pytest.approx(energy, abs=1e-6)  # float64 teacher labels
    np.testing.assert_allclose(train[-1].forces, forces, atol=1e-6)
    assert len(read_samples(tmp_path / "one" / "test" / f"{recipe.test[0].name}.extxyz")) == 1


def test_config_paths_are_relative_to_the_file_and_shipped_names_stay_names(tmp_path):
    from nemd.train.trainer import TrainConfig

    (tmp_path / "sub").mkdir()
    path = tmp_path / "sub" / "c.toml"
    path.write_text('init_from = "../big.nemd"\ndistill_from = "nemp-water"\ndata = ["d.extxyz"]\n')
    config = TrainConfig.from_toml(path)
    assert Path(config.init_from) == tmp_path / "sub" / ".." / "big.nemd"
    assert config.distill_from == "nemp-water" and Path(config.data[0]) == tmp_path / "sub" / "d.extxyz"
