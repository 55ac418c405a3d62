"""Energy and force loss of a model on a batch, and the sums that make RMSE metrics."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from .batching import Batch


def predict(model, params, batch: Batch):
    """Energies (G,) eV and forces (A, 3) eV/Å of ``model`` with ``params`` on ``batch``."""
    m = dataclasses.replace(model, params=params)

    def total(positions):
        energies = m.graph_energies(positions, batch.kinds, batch.graph)
        return jnp.sum(jnp.where(batch.graph_mask, energies, 0.0)), energies

    (_, energies), grad = jax.value_and_grad(total, has_aux=True)(batch.positions)
    return energies, -grad


def loss_and_sums(model, params, batch: Batch, energy_weight, force_weight, n_kinds: int):
    """``energy_weight`` x mean squared energy error per atom (eV^2) + ``force_weight`` x
    mean squared force component error (eV^2/Å^2), and the sums of squared errors (per
    element for forces) that give RMSEs over many batches."""
    energies, forces = predict(model, params, batch)
    e_err = jnp.where(batch.graph_mask, (energies - batch.energies) / batch.n_atoms, 0.0)
    f_err = jnp.where(batch.atom_mask[:, None], forces - batch.forces, 0.0)
    n_e = jnp.sum(batch.graph_mask)
    n_f = 3 * jnp.sum(batch.atom_mask)
    loss = energy_weight * jnp.sum(e_err**2) / n_e + force_weight * jnp.sum(f_err**2) / n_f
    kind_f = jax.ops.segment_sum(jnp.sum(f_err**2, axis=1), batch.kinds, num_segments=n_kinds)
    kind_n = jax.ops.segment_sum(3 * batch.atom_mask.astype(f_err.dtype), batch.kinds, num_segments=n_kinds)
    return loss, dict(e_sq=jnp.sum(e_err**2), e_sum=jnp.sum(e_err), n_e=n_e, f_sq=jnp.sum(f_err**2), n_f=n_f,
                      kind_f_sq=kind_f, kind_n=kind_n, loss=loss)


def rmse(sums: list[dict], species) -> dict:
    """Energy (meV/atom) and force (meV/Å, also per element) RMSEs from summed batches."""
    total = {key: np.sum([np.asarray(s[key]) for s in sums], axis=0) for key in sums[0]}
    out = dict(energy_rmse=1e3 * float(np.sqrt(total["e_sq"] / total["n_e"])),
               force_rmse=1e3 * float(np.sqrt(total["f_sq"] / total["n_f"])))
    for k, symbol in enumerate(species):
        if total["kind_n"][k] > 0:
            out[f"force_rmse_{symbol}"] = 1e3 * float(np.sqrt(total["kind_f_sq"][k] / total["kind_n"][k]))
    return out
