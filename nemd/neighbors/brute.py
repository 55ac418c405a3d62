"""O(N^2 x images) reference pair search in float64, used to test the cell lists."""

from __future__ import annotations

import itertools

import numpy as np


def brute_force_pairs(positions, cell, pbc, cutoff):
    """All (sender, receiver, shift) with ``|R[s] + shift @ cell - R[r]| < cutoff``.

    Independent of the cell-list code: for every ordered pair the candidate images are
    enumerated around the one that brings the fractional separation into [0, 1).
    Arguments must already be validated (see ``geometry.validate_inputs``).
    """
    n = positions.shape[0]
    i, j = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")  # receiver, sender
    i, j = i.ravel(), j.ravel()
    if cell is None or not pbc.any():
        base = np.zeros((i.size, 3), dtype=np.int64)
        ranges = [range(0, 1)] * 3
        lattice = np.zeros((3, 3)) if cell is None else cell
    else:
        lattice = cell
        # Only the periodic part of the cell is used: fractional separations along
        # periodic axes from the dual vectors, zero shift along the others.
        dual = np.linalg.pinv(cell[pbc])  # (3, n_periodic)
        dfrac = np.zeros((i.size, 3))
        dfrac[:, pbc] = (positions[j] - positions[i]) @ dual
        base = np.where(pbc, -np.floor(dfrac), 0).astype(np.int64)
        # Perpendicular widths of the periodic lattice (within its own span).
        widths = np.full(3, np.inf)
        widths[pbc] = 1.0 / np.linalg.norm(dual, axis=0)
        reach = np.where(pbc, np.ceil(cutoff / np.where(pbc, widths, 1.0)).astype(int) + 1, 0)
        ranges = [range(-int(r), int(r) + 1) for r in reach]
    senders, receivers, shifts = [], [], []
    for k in itertools.product(*ranges):
        s = base + np.asarray(k)
        vec = positions[j] + s @ lattice - positions[i]
        keep = np.einsum("ij,ij->i", vec, vec) < cutoff * cutoff
        keep &= ~((i == j) & ~s.any(axis=1))
        receivers.append(i[keep])
        senders.append(j[keep])
        shifts.append(s[keep])
    receivers = np.concatenate(receivers)
    senders = np.concatenate(senders)
    shifts = np.concatenate(shifts)
    order = np.lexsort((shifts[:, 2], shifts[:, 1], shifts[:, 0], senders, receivers))
    return senders[order].astype(np.int32), receivers[order].astype(np.int32), shifts[order].astype(np.int32)
