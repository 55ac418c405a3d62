"""NEMP's node tensor product: the channel-wise Clebsch–Gordan product of the central
and virtual node features (Zhang & Guo 2026, eq. 11), block by block over the paths
(l1, l2 -> l) that preserve parity. Features are (atoms, (l+1)^2, channels), e3nn order."""

from __future__ import annotations

import math

import e3nn_jax as e3nn
import jax.numpy as jnp
import numpy as np


def cg_paths(lmax: int, lmax_node: int, keep=None):
    """Parity-preserving paths (l1 <= lmax, l2 <= lmax_node -> l <= lmax_node), only those
    in ``keep`` if given (a pruned config), in a fixed order, and one tensor
    ``(paths, (lmax+1)^2, (lmax_node+1)^2, (lmax_node+1)^2)`` holding their CG
    coefficients (scaled so that each output component has unit variance per path)."""
    paths = [(l1, l2, l) for l1 in range(lmax + 1) for l2 in range(lmax_node + 1)
             for l in range(abs(l1 - l2), min(l1 + l2, lmax_node) + 1) if (l1 + l2 + l) % 2 == 0]
    if keep is not None:
        keep = {tuple(q) for q in keep}
        paths = [q for q in paths if q in keep]
    a, b = (lmax + 1) ** 2, (lmax_node + 1) ** 2
    cg = np.zeros((len(paths), a, b, b))
    for p, (l1, l2, l) in enumerate(paths):
        cg[p, l1 * l1:(l1 + 1) ** 2, l2 * l2:(l2 + 1) ** 2, l * l:(l + 1) ** 2] = \
            np.asarray(e3nn.clebsch_gordan(l1, l2, l)) * math.sqrt(2 * l + 1)
    return paths, cg


def check_paths(paths, lmax: int, lmax_node: int):
    """Raise ValueError unless ``paths`` are distinct allowed paths with at least one into
    every node order l <= lmax_node (a config's ``cg_paths``)."""
    allowed = cg_paths(lmax, lmax_node)[0]
    bad = [q for q in paths if tuple(q) not in allowed]
    if bad:
        raise ValueError(f"cg_paths must be parity-allowed paths (l1 <= {lmax}, l2, l <= {lmax_node}); "
                         f"not allowed: {bad}")
    if len({tuple(q) for q in paths}) != len(paths):
        raise ValueError("cg_paths has duplicates")
    missing = sorted(set(range(lmax_node + 1)) - {q[2] for q in paths})
    if missing:
        raise ValueError(f"cg_paths leave no path into node order(s) l = {missing}")


def cg_product(central, virtual, weights, lmax: int, lmax_node: int, keep=None):
    """Σ_paths w_path C (central_l1 ⊗ virtual_l2)_l per channel, block by block (the dense
    CG tensor is mostly zeros), over the paths of ``cg_paths(lmax, lmax_node, keep)``.
    ``weights`` (N, paths, C); returns (N, (lmax_node+1)^2, C) and the number of paths
    into each output l."""
    paths, cg = cg_paths(lmax, lmax_node, keep)
    out = [0.0] * (lmax_node + 1)
    for p, (l1, l2, l) in enumerate(paths):
        block = cg[p, l1 * l1:(l1 + 1) ** 2, l2 * l2:(l2 + 1) ** 2, l * l:(l + 1) ** 2]
        out[l] = out[l] + jnp.einsum("nac,nbc,abd->ndc", central[:, l1 * l1:(l1 + 1) ** 2],
                                     virtual[:, l2 * l2:(l2 + 1) ** 2], jnp.asarray(block, central.dtype)) \
            * weights[:, p, None, :]
    counts = np.bincount([l for _, _, l in paths], minlength=lmax_node + 1)
    return jnp.concatenate(out, axis=1), counts
