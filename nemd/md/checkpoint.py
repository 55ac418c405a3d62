"""Checkpoint files: a nested state dict (``Simulation.state_dict()``) in one ``.npz``.

Arrays are stored as npz members named by their path in the dict (``state.0``,
``stream.reference``); everything else (settings, counters, None) as JSON. Writes are
atomic: a crash never leaves a half-written checkpoint.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..files import atomic_write

FORMAT = "nemd-checkpoint-2"
_ARRAY = "__array__"


def save(path, state: dict) -> None:
    """Write ``state`` (dicts, lists, numpy arrays and JSON values) to ``path``."""
    arrays = {}

    def split(value, key):
        if isinstance(value, dict):
            return {k: split(v, f"{key}.{k}" if key else k) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [split(v, f"{key}.{i}") for i, v in enumerate(value)]
        if isinstance(value, np.ndarray):
            arrays[key] = value
            return {_ARRAY: key}
        return value

    meta = json.dumps(dict(format=FORMAT, state=split(state, "")))
    with atomic_write(path) as f:
        np.savez(f, __meta__=np.array(meta), **arrays)


def load(path) -> dict:
    """The state dict saved in ``path``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        data = np.load(path, allow_pickle=False)
        meta = json.loads(str(data["__meta__"]))
    except Exception as exc:  # zipfile, KeyError, JSON: the user needs the file name
        raise ValueError(f"{path} is not a nemd checkpoint ({exc})") from None
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path} is not a nemd checkpoint of format {FORMAT} ({meta.get('format')})")

    def join(value):
        if isinstance(value, dict):
            return data[value[_ARRAY]] if set(value) == {_ARRAY} else {k: join(v) for k, v in value.items()}
        if isinstance(value, list):
            return [join(v) for v in value]
        return value

    with data:
        return join(meta["state"])
