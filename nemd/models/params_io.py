"""One-file parameter storage for the flax models: metadata + parameters in msgpack."""

from __future__ import annotations

import json
from pathlib import Path

import jax
import numpy as np
from flax import serialization

from ..files import atomic_write

FORMAT = "nemd-params-1"


def save_params(path, metadata: dict, params) -> Path:
    """Write ``{"format", "metadata", "params"}`` atomically to ``path`` (msgpack).

    ``metadata`` must hold plain JSON-like values (model name, preset, cutoff, species,
    nemd version, ...); ``params`` is a pytree of arrays, stored as float32/float64 numpy.
    """
    path = Path(path)
    payload = {"format": FORMAT, "metadata": json.loads(json.dumps(metadata)),  # tuples -> lists
               "params": jax.tree_util.tree_map(np.asarray, serialization.to_state_dict(params))}
    data = serialization.msgpack_serialize(payload)
    with atomic_write(path) as f:
        f.write(data)
    return path


def same_shapes(reference, params) -> bool:
    """Whether ``params`` has the tree structure and array shapes of ``reference`` (e.g.
    ``jax.eval_shape`` of a model's initialiser)."""
    return jax.tree_util.tree_structure(reference) == jax.tree_util.tree_structure(params) and all(
        np.shape(a) == np.shape(b) for a, b in zip(jax.tree_util.tree_leaves(reference),
                                                   jax.tree_util.tree_leaves(params)))


def load_params(path) -> tuple[dict, dict]:
    """``(metadata, params)`` from a file written by ``save_params``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"parameter file {path} does not exist")
    try:
        payload = serialization.msgpack_restore(path.read_bytes())
    except Exception as exc:  # msgpack raises several types for foreign or truncated files
        raise ValueError(f"{path} is not a nemd parameter file ({exc})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(f"{path} is not a nemd parameter file (format {FORMAT!r} expected)")
    return payload["metadata"], payload["params"]
