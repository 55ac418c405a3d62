"""Checkpoint/restart of a ``Simulation``: state pytree, step, list schedule, settings."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import jax
import numpy as np

from ..neighbors.streaming import shape_of

FORMAT = "nemd-checkpoint-1"


def save(sim, path) -> None:
    """Write ``path`` atomically (a crash never leaves a half-written checkpoint)."""
    path = Path(path)
    leaves = jax.tree_util.tree_leaves(sim.state)
    nl = sim.nl
    meta = dict(format=FORMAT, settings=dataclasses.asdict(sim.settings), step=sim.step,
                violations=sim.violations, recompilations=sim.recompilations,
                pending_is_current=sim._pending is not None, dtype=str(np.dtype(sim.dtype)),
                list_shape=shape_of(nl), builds=sim.builder.builds)
    arrays = {f"state_{i}": np.asarray(leaf) for i, leaf in enumerate(leaves)}
    arrays.update(numbers=sim.numbers, pbc=sim.pbc, cell=np.zeros((3, 3)) if sim.cell is None else sim.cell,
                  has_cell=np.array(sim.cell is not None),
                  list_reference=np.asarray(nl.reference_positions), meta=np.array(json.dumps(meta)))
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)


def restore(cls, path, model, **overrides):
    """Rebuild the ``Simulation`` saved in ``path``; ``overrides`` replace settings
    (e.g. ``neighbor_mode``). The continued run reproduces the uninterrupted one."""
    from .driver import MDSettings, _done

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    data = np.load(path, allow_pickle=False)
    meta = json.loads(str(data["meta"]))
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path} is not a nemd checkpoint ({meta.get('format')})")
    settings = dataclasses.replace(MDSettings(**meta["settings"]), **overrides)
    n_leaves = sum(1 for k in data.files if k.startswith("state_"))
    leaves = [data[f"state_{i}"] for i in range(n_leaves)]
    cell = data["cell"] if bool(data["has_cell"]) else None
    sim = cls(model, data["numbers"], leaves[0], cell, data["pbc"], settings, dtype=np.dtype(meta["dtype"]))
    fresh = jax.tree_util.tree_leaves(sim.state)
    treedef = jax.tree_util.tree_structure(sim.state)
    if len(fresh) != len(leaves):
        raise ValueError(f"{path}: checkpoint state does not match a {settings.thermostat} simulation")
    sim.state = jax.tree_util.tree_unflatten(
        treedef, [jax.numpy.asarray(v, dtype=f.dtype) for v, f in zip(leaves, fresh)])
    # Rebuild the list in use from its reference positions, with the saved shapes.
    shape = meta.get("list_shape") or {key: meta[key] for key in ("capacity", "max_neighbors", "max_neighbors_by_kind")}
    sim.builder._shape = {key: tuple(value) if isinstance(value, list) else value for key, value in shape.items()}
    sim.nl = sim.builder.build_now(data["list_reference"])
    sim.builder.builds = meta["builds"]
    sim._shapes = {sim._shape_key(sim.nl)}
    sim._pending = _done(sim.nl) if meta["pending_is_current"] else None
    sim.step = meta["step"]
    sim.violations = meta["violations"]
    sim.recompilations = meta["recompilations"]
    return sim
