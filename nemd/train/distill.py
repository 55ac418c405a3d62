"""Teacher-labelled training data made by the engine itself (``nemd distill``).

For every thermodynamic state of a recipe: a water box built at that density, minimised,
equilibrated with Langevin NVT and sampled every ``every`` steps (MD in float32 with the
teacher), each frame then relabelled by the teacher in float64; a share of the frames is
copied rattled (Gaussian displacements) and rigidly strained (cell and positions scaled)
so that the student also sees configurations MD rarely visits. Training and test states
go to separate files (one trajectory per file: splits never mix frames of one run).
Deterministic from the seeds. Lengths Å, energies eV, temperatures K, densities g/cm^3.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import jax.numpy as jnp
import numpy as np

from ..io import water_box
from ..md import ListSettings, MDSettings, Simulation, fire_minimize
from ..models import load
from ..models.evaluate import Evaluator
from ..structure import Structure
from .data import Sample, write_extxyz

log = logging.getLogger("nemd")


@dataclasses.dataclass(frozen=True)
class State:
    temperature_K: float
    density: float  # g/cm^3
    molecules: int = 64
    steps: int = 2000  # sampled NVT steps after equilibration (1 ps at 0.5 fs: 40 frames)
    seed: int = 0

    @property
    def name(self) -> str:
        return f"T{self.temperature_K:g}_rho{self.density:g}_n{self.molecules}_s{self.seed}"


def _grid(temperatures, densities, **kw) -> tuple[State, ...]:
    return tuple(State(t, d, seed=k, **kw) for k, (t, d) in enumerate((t, d) for t in temperatures for d in densities))


@dataclasses.dataclass(frozen=True)
class Recipe:
    """The data set: teacher, states, sampling and augmentation."""

    teacher: str = "bpnn-rpbe-d3"
    train: tuple[State, ...] = _grid((250.0, 300.0, 350.0, 450.0), (0.85, 0.95, 1.05))
    test: tuple[State, ...] = (State(300.0, 0.894, seed=101), State(300.0, 0.997, seed=102))
    timestep_fs: float = 0.5
    equilibration: int = 1000  # Langevin steps before sampling (0.5 ps)
    every: int = 50  # steps between frames (25 fs)
    rattle_fraction: float = 0.25  # of the frames, also copied with Gaussian displacements
    rattle_sigma: float = 0.05  # Å
    strain_fraction: float = 0.25  # of the frames, also copied rigidly scaled
    max_strain: float = 0.02  # relative
    skin: float = 1.0

    def __post_init__(self):
        if self.every * self.timestep_fs < 25.0:
            raise ValueError("frames closer than 25 fs are too correlated: raise every or the timestep")


def sample_state(teacher, state: State, recipe: Recipe) -> list[Structure]:
    """MD frames (float32 dynamics) of one state, after minimisation and equilibration."""
    s = water_box(state.molecules, density=state.density, seed=state.seed)
    lists = ListSettings(skin=recipe.skin)
    relaxed = fire_minimize(teacher, s.numbers, s.positions, s.cell, True, fmax=0.2, max_steps=200, lists=lists,
                            chunk_steps=5, dtype=jnp.float32)
    md = MDSettings(timestep_fs=recipe.timestep_fs, temperature_K=state.temperature_K, thermostat="langevin",
                    chunk_steps=5, seed=state.seed)
    sim = Simulation(teacher, s.numbers, relaxed.positions, s.cell, True, md, lists, dtype=jnp.float32)
    frames = []
    try:
        sim.run(recipe.equilibration)
        sim.run(state.steps, every=recipe.every,
                on_frame=lambda f: frames.append(Structure(f.positions, s.numbers, s.cell, s.pbc)))
    finally:
        sim.close()
    return frames


def augmented(frames, recipe: Recipe, seed: int) -> list[tuple[str, Structure]]:
    """The frames, plus rattled and strained copies of random shares of them."""
    rng = np.random.default_rng(seed)
    out = [("md", f) for f in frames]
    for f in frames:
        if rng.random() < recipe.rattle_fraction:
            out.append(("rattled", dataclasses.replace(
                f, positions=f.positions + rng.normal(scale=recipe.rattle_sigma, size=f.positions.shape))))
        if rng.random() < recipe.strain_fraction:
            scale = 1.0 + rng.uniform(-recipe.max_strain, recipe.max_strain)
            out.append(("strained", dataclasses.replace(f, positions=f.positions * scale, cell=f.cell * scale)))
    return out


def generate(recipe: Recipe, out, *, directory=None, states: str = "all",
             shard: tuple[int, int] = (0, 1)) -> list[Path]:
    """Write ``out/train/<state>.extxyz`` and ``out/test/<state>.extxyz`` (``states``:
    "train", "test" or "all"); the teacher's weights from ``directory`` (default: as
    ``load`` finds them). Labels in float64 (needs ``jax_enable_x64``). ``shard=(k, n)``
    makes only every n-th state from the k-th on, so n processes share the work (each
    state's file is the same whichever process writes it)."""
    import jax

    if not jax.config.jax_enable_x64:
        raise RuntimeError("teacher labels are computed in float64: enable jax_enable_x64 first")
    k, n = shard
    if not 0 <= k < n:
        raise ValueError(f"shard must be k/n with 0 <= k < n, got {k}/{n}")
    teacher = load(recipe.teacher, directory)
    jobs = [(split, state) for split in ("train", "test") if states in ("all", split)
            for state in getattr(recipe, split)]
    written = []
    for split, state in jobs[k::n]:
        path = Path(out) / split / f"{state.name}.extxyz"
        if path.is_file():  # generation is deterministic: an existing file is the same
            log.info("kept %s", path)
            written.append(path)
            continue
        frames = sample_state(teacher, state, recipe)
        label = Evaluator(teacher, dtype=jnp.float64)
        structures = [s for _, s in augmented(frames, recipe, state.seed)] if split == "train" else frames
        # augmented copies stay in their trajectory: splits never separate them from their frame
        samples = [Sample(structure, *label(structure), state.name) for structure in structures]
        path.parent.mkdir(parents=True, exist_ok=True)
        written.append(write_extxyz(samples, path))
        log.info("wrote %s: %d frames", path, len(samples))
    return written
