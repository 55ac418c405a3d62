"""Errors of a trained model against labelled structures (``nemd errors``).

The same batches and sums as training: energy RMSE per atom (meV/atom), force RMSE per
component (meV/Å), also per element. Energies are compared as they are: a data set on
another energy zero (e.g. DFT) shows that offset in the energy RMSE, which is why the
mean energy error (meV/atom) is reported with it.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from .batching import Batcher
from .loss import loss_and_sums, rmse


def errors(model, samples, *, structures_per_batch: int = 4, block_atoms: int = 64) -> dict:
    """``energy_rmse`` (meV/atom), ``energy_mean_error`` (meV/atom, model - reference),
    ``force_rmse`` and ``force_rmse_<element>`` (meV/Å), ``frames``, ``atoms`` of ``model``
    (a graph model: NEMP, Facet) on ``samples``."""
    if not samples:
        raise ValueError("no labelled structures to evaluate")
    if not hasattr(model, "graph_energies"):
        raise ValueError(f"errors are computed for NEMP and Facet models, not {type(model).__name__}")
    batcher = Batcher(model, list(samples), structures_per_batch, block_atoms)
    n_kinds = len(model.species)

    @jax.jit
    def sums(params, batch):
        return loss_and_sums(model, params, batch, 1.0, 1.0, n_kinds)[1]

    params = jax.tree_util.tree_map(lambda p: jnp.asarray(p, jnp.float32), model.params)
    collected = [sums(params, batch) for batch in batcher.epoch(0)]
    out = rmse(collected, model.species)
    out["energy_mean_error"] = 1e3 * float(np.sum([c["e_sum"] for c in collected]) / len(batcher.samples))
    out["frames"] = len(batcher.samples)
    out["atoms"] = int(sum(s.structure.n_atoms for s in batcher.samples))
    return out
