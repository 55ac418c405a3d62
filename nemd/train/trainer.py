"""Training a message-passing model on labelled structures (``nemd train config.toml``).

Energy-per-atom and force MSE, the energy weight raised late (as MACE and NEMP do), optax
Adam / AMSGrad / Muon (2-D weights) with linear warm-up then cosine decay or decay on
plateau, gradient clipping, an exponential moving average of the weights (used for
validation and saved), checkpoints every epoch (resuming gives the run an uninterrupted
one gives), early stopping on the validation loss, metrics per epoch to JSONL and CSV and
a learning-curve PNG. float32. Library code: progress goes to the ``on_epoch`` callback.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import time
from pathlib import Path
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import serialization

from ..files import atomic_write
from .batching import Batcher
from .data import read_samples, reference_energies, split_by_trajectory
from .loss import loss_and_sums, rmse

OPTIMIZERS = ("adam", "amsgrad", "muon")
SCHEDULES = ("cosine", "plateau")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """What ``nemd train`` reads from a TOML file (lengths Å, energies eV)."""

    data: tuple[str, ...]  # training files (.extxyz, n2p2 .data, nemd .h5)
    model: str = "nemp-small"  # a preset of nemp or facet
    model_config: dict = dataclasses.field(default_factory=dict)  # preset fields to change
    out: str = "runs/train"  # folder: model.nemd, metrics, checkpoint, plot
    valid: tuple[str, ...] = ()  # validation files; without them valid_fraction of the trajectories
    valid_fraction: float = 0.1
    seed: int = 0
    epochs: int = 100
    structures_per_batch: int = 4
    block_atoms: int = 64
    optimizer: str = "adam"
    learning_rate: float = 3e-3
    warmup_epochs: float = 1.0
    schedule: str = "cosine"
    final_lr_fraction: float = 0.01
    clip_norm: float = 10.0
    ema_decay: float = 0.99
    energy_weight: float = 1.0
    force_weight: float = 100.0
    energy_weight_late: float = 1000.0  # from late_fraction of the epochs on
    late_fraction: float = 0.75
    patience: int = 30  # epochs without a better validation loss before stopping
    init_from: str = ""  # a saved model (e.g. pruned) or a shipped one: start from its config and weights
    distill_from: str = ""  # a saved or shipped model whose energies and forces blend into the labels
    distill_weight: float = 0.5  # the blend: (1 - w) x labels + w x that model (w = 1: its predictions only)

    def __post_init__(self):
        if not self.data:
            raise ValueError("no training data: give 'data = [\"file.extxyz\", ...]'")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        for name in ("epochs", "structures_per_batch", "block_atoms", "patience"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0 <= self.distill_weight <= 1:
            raise ValueError(f"distill_weight must be in [0, 1], got {self.distill_weight}")
        if not self.learning_rate > 0 or not 0 <= self.ema_decay < 1:
            raise ValueError("learning_rate must be positive and ema_decay in [0, 1)")

    @classmethod
    def from_toml(cls, path) -> "TrainConfig":
        import tomllib

        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"training configuration not found: {path}")
        values = tomllib.loads(path.read_text())
        unknown = set(values) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"{path}: unknown keys {sorted(unknown)}")
        base = path.parent
        for key in ("data", "valid"):  # paths relative to the configuration file
            values[key] = tuple(str(base / p) for p in values.get(key, ()))
        from ..models.registry import MODELS

        for key in ("init_from", "distill_from"):  # a file relative to the configuration, or a shipped model
            if values.get(key) and values[key] not in MODELS:
                values[key] = str(base / values[key])
        values["out"] = str(base / values.get("out", cls.out))
        return cls(**values)


def initial_model(config: TrainConfig, train_samples):
    """The preset with ``model_config`` changes, random weights from the seed, element
    energies from least squares on the training data and the energy scale from the RMS
    of the training forces; with ``init_from``, that saved model as it is."""
    from ..models import load

    if config.init_from:
        return load(config.init_from)

    preset = load(config.model, seed=config.seed)
    model_class = type(preset)
    model = model_class.init(dataclasses.replace(preset.config, **config.model_config), seed=config.seed) \
        if config.model_config else preset
    mu = reference_energies(train_samples, model.species)
    scale = float(np.sqrt(np.mean(np.concatenate([s.forces.ravel() for s in train_samples]) ** 2)))
    return model.with_energy_statistics(mu, scale)


def optimizer(config: TrainConfig, steps_per_epoch: int):
    total = config.epochs * steps_per_epoch
    warmup = max(1, int(config.warmup_epochs * steps_per_epoch))
    lr = config.learning_rate
    if config.schedule == "cosine":
        schedule = optax.warmup_cosine_decay_schedule(0.2 * lr, lr, warmup, max(total, warmup + 1),
                                                      config.final_lr_fraction * lr)
    else:
        schedule = optax.linear_schedule(0.2 * lr, lr, warmup)
    if config.optimizer == "muon":
        base = optax.contrib.muon(schedule)
    else:
        base = (optax.amsgrad if config.optimizer == "amsgrad" else optax.adam)(schedule)
    chain = [optax.clip_by_global_norm(config.clip_norm), base]
    if config.schedule == "plateau":
        chain.append(optax.contrib.reduce_on_plateau(factor=0.5, patience=5, accumulation_size=steps_per_epoch))
    return optax.chain(*chain)


@dataclasses.dataclass
class TrainResult:
    model: object  # with the EMA weights of the best validation epoch
    history: list[dict]
    best_epoch: int
    stopped_early: bool


def train(config: TrainConfig, *, resume: bool = False, on_epoch: Callable[[dict], None] | None = None,
          on_step: Callable[[int, int], None] | None = None, stop: Callable[[], bool] | None = None) -> TrainResult:
    """Train as ``config`` says; ``resume`` continues from ``out/checkpoint.msgpack``.
    Writes ``out/model.nemd`` (the best EMA weights), ``metrics.jsonl``, ``metrics.csv``,
    ``learning_curve.png``. ``stop`` is asked after every epoch (after its checkpoint):
    True ends the run there, to be resumed later (e.g. Ctrl-C)."""
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    samples = [s for path in config.data for s in read_samples(path)]
    if config.valid:
        train_samples, valid_samples = samples, [s for path in config.valid for s in read_samples(path)]
    else:
        train_samples, valid_samples = split_by_trajectory(samples, config.valid_fraction, config.seed)
    if not valid_samples:
        raise ValueError("no validation data: give 'valid' files or more than one trajectory")
    model = initial_model(config, train_samples)
    if config.distill_from:
        train_samples = distilled_labels(config, train_samples)
    train_batches = Batcher(model, train_samples, config.structures_per_batch, config.block_atoms)
    valid_batches = Batcher(model, valid_samples, config.structures_per_batch, config.block_atoms)
    steps_per_epoch = len(train_batches.groups(range(len(train_samples))))
    tx = optimizer(config, steps_per_epoch)
    n_kinds = len(model.species)

    def loss_fn(params, batch, weights):
        return loss_and_sums(model, params, batch, weights[0], weights[1], n_kinds)

    @jax.jit
    def step(state, batch, weights):
        params, opt_state, ema = state
        (loss, sums), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, batch, weights)
        updates, opt_state = tx.update(grads, opt_state, params, value=loss)
        params = optax.apply_updates(params, updates)
        ema = jax.tree_util.tree_map(lambda e, p: config.ema_decay * e + (1 - config.ema_decay) * p, ema, params)
        return (params, opt_state, ema), sums

    evaluate = jax.jit(lambda params, batch, weights: loss_fn(params, batch, weights)[1])
    params = jax.tree_util.tree_map(lambda p: jnp.asarray(p, jnp.float32), model.params)
    state = (params, tx.init(params), params)
    progress = dict(epoch=0, best=np.inf, best_epoch=0, bad_epochs=0, history=[])
    checkpoint = out / "checkpoint.msgpack"
    best_params = state[2]
    if resume:
        state, best_params, progress = read_checkpoint(checkpoint, state)
    # Validation always weighs energy as the last epochs do, so that the best epoch and early
    # stopping compare like with like across the late raise of the energy weight.
    final_energy_weight = config.energy_weight_late if config.late_fraction < 1 else config.energy_weight
    valid_weights = jnp.asarray([final_energy_weight, config.force_weight], jnp.float32)
    stopped = False
    while progress["epoch"] < config.epochs and not stopped:
        epoch = progress["epoch"]
        late = epoch >= config.late_fraction * config.epochs
        weights = jnp.asarray([config.energy_weight_late if late else config.energy_weight, config.force_weight],
                              jnp.float32)
        t0, sums = time.perf_counter(), []
        for k, batch in enumerate(train_batches.epoch(config.seed * 100003 + epoch)):
            state, batch_sums = step(state, batch, weights)
            sums.append(batch_sums)
            if on_step:
                on_step(k + 1, steps_per_epoch)
        valid = [evaluate(state[2], batch, valid_weights) for batch in valid_batches.epoch(0)]
        record = dict(epoch=epoch + 1, seconds=time.perf_counter() - t0,
                      train_loss=float(np.mean([float(s["loss"]) for s in sums])),
                      valid_loss=float(np.sum([float(v["loss"]) * float(v["n_e"]) for v in valid])
                                       / np.sum([float(v["n_e"]) for v in valid])),
                      **{f"train_{k}": v for k, v in rmse(sums, model.species).items()},
                      **{f"valid_{k}": v for k, v in rmse(valid, model.species).items()})
        progress["history"].append(record)
        progress["epoch"] = epoch + 1
        if record["valid_loss"] < progress["best"]:
            progress.update(best=record["valid_loss"], best_epoch=epoch + 1, bad_epochs=0)
            best_params = state[2]
            dataclasses.replace(model, params=best_params).save(out / "model.nemd")
        else:
            progress["bad_epochs"] += 1
            stopped = progress["bad_epochs"] >= config.patience
        write_checkpoint(checkpoint, state, best_params, progress)
        write_metrics(progress["history"], out)
        if on_epoch:
            on_epoch(record)
        if stop is not None and stop():
            break
    plot_learning_curve(progress["history"], out / "learning_curve.png")
    return TrainResult(dataclasses.replace(model, params=best_params), progress["history"],
                       int(progress["best_epoch"]), stopped)


def distilled_labels(config: TrainConfig, samples) -> list:
    """``samples`` with labels (1 - w) x their own + w x the predictions of the model
    ``config.distill_from`` (w = ``distill_weight``): the loss on the blend equals the
    weighted sum of the losses on either target, up to a constant."""
    from ..models import load
    from .loss import predict

    teacher = load(config.distill_from)
    batcher = Batcher(teacher, list(samples), config.structures_per_batch, config.block_atoms)
    params = jax.tree_util.tree_map(lambda p: jnp.asarray(p, jnp.float32), teacher.params)
    run = jax.jit(lambda batch: predict(teacher, params, batch))
    w, out = config.distill_weight, list(samples)
    for group in batcher.groups(range(len(samples))):
        energies, forces = (np.asarray(a, np.float64) for a in run(batcher.batch(group)))
        start = 0
        for g, i in enumerate(group):
            n = samples[i].structure.n_atoms
            out[i] = dataclasses.replace(samples[i], energy=(1 - w) * samples[i].energy + w * energies[g],
                                         forces=(1 - w) * samples[i].forces + w * forces[start:start + n])
            start += n
    return out


def write_checkpoint(path, state, best_params, progress: dict) -> None:
    """Weights, optimiser and EMA state, the best weights and the progress, atomically."""
    payload = dict(state=serialization.to_state_dict(state), best=serialization.to_state_dict(best_params),
                   progress=json.dumps({**progress, "best": float(progress["best"])}))
    with atomic_write(path) as f:
        f.write(serialization.msgpack_serialize(payload))


def read_checkpoint(path, template):
    """``(state, best weights, progress)`` from ``write_checkpoint``; ``template`` is a
    fresh state of the same model and optimiser."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint {path} to resume from")
    payload = serialization.msgpack_restore(path.read_bytes())
    state = serialization.from_state_dict(template, payload["state"])
    return state, serialization.from_state_dict(template[2], payload["best"]), json.loads(payload["progress"])


def write_metrics(history: list[dict], out: Path) -> None:
    with atomic_write(out / "metrics.jsonl", "w") as f:
        f.writelines(json.dumps(h) + "\n" for h in history)
    keys = sorted({k for h in history for k in h}, key=lambda k: (k != "epoch", k))
    with atomic_write(out / "metrics.csv", "w") as f:
        writer = csv.DictWriter(f, fieldnames=keys)
        writer.writeheader()
        writer.writerows(history)


def plot_learning_curve(history: list[dict], path) -> None:
    """Energy and force RMSE (train, validation) per epoch, log scale."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [h["epoch"] for h in history]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, key, unit in ((axes[0], "energy_rmse", "meV/atom"), (axes[1], "force_rmse", "meV/Å")):
        for split in ("train", "valid"):
            ax.plot(epochs, [h[f"{split}_{key}"] for h in history], label=split)
        ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.set_ylabel(f"{key.split('_')[0]} RMSE ({unit})")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
