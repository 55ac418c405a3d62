"""Graph operations shared by the energy functions (edge geometry, dense layouts)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ..neighbors import NeighborList


def safe_norm(vectors: jax.Array, axis: int = -1, keepdims: bool = False) -> jax.Array:
    """Euclidean norm with a finite gradient at zero (padding edges have zero length)."""
    sq = jnp.sum(vectors * vectors, axis=axis, keepdims=keepdims)
    positive = sq > 0
    return jnp.where(positive, jnp.sqrt(jnp.where(positive, sq, 1.0)), 0.0)


def dense_neighbors(nl: NeighborList, n_atoms: int, max_neighbors: int | None = None):
    """Per-atom neighbour table ``(edge_index (N, K), valid (N, K))``.

    Row i lists the edges whose receiver is i, in list order; ``K = nl.max_neighbors``
    (a static bound computed when the list was built, so nothing is ever dropped).
    Relies on the canonical order of nemd lists: edges sorted by receiver.
    """
    k = nl.max_neighbors if max_neighbors is None else max_neighbors
    n_edges = nl.senders.shape[0]
    mask = nl.mask.astype(jnp.int32)
    counts = jax.ops.segment_sum(mask, nl.receivers, num_segments=n_atoms)
    first = jnp.cumsum(counts) - counts
    slot = jnp.arange(n_edges, dtype=jnp.int32) - first[nl.receivers]
    slot = jnp.where(nl.mask, slot, k)  # padding goes to a spare column, then dropped
    edges = jnp.zeros((n_atoms, k + 1), jnp.int32).at[nl.receivers, slot].set(
        jnp.arange(n_edges, dtype=jnp.int32), mode="drop")
    valid = jnp.zeros((n_atoms, k + 1), bool).at[nl.receivers, slot].set(nl.mask, mode="drop")
    return edges[:, :k], valid[:, :k]


def dense_neighbors_by_kind(nl: NeighborList, n_atoms: int, sender_kinds: jax.Array, n_kinds: int):
    """Per-atom neighbour tables split by the kind of the sender (e.g. element).

    Returns a list over kinds of ``(edge_index (N, K_k), valid (N, K_k))`` with
    ``K_k = nl.max_neighbors_by_kind[k]`` (the list must be built with ``kinds``).
    Within a row, edges keep list order. Relies on edges sorted by receiver.
    """
    if len(nl.max_neighbors_by_kind) != n_kinds:
        raise ValueError("this neighbour list was built without per-kind bounds: pass kinds= "
                         "(per-atom element indices) to build_neighbor_list/from_pairs")
    n_edges = nl.senders.shape[0]
    edge_ids = jnp.arange(n_edges, dtype=jnp.int32)
    counts = jax.ops.segment_sum(nl.mask.astype(jnp.int32), nl.receivers, num_segments=n_atoms)
    first = jnp.cumsum(counts) - counts  # index of each receiver's first edge
    kind = sender_kinds[nl.senders]
    tables = []
    for k, width in enumerate(nl.max_neighbors_by_kind):
        member = (nl.mask & (kind == k)).astype(jnp.int32)
        seen = jnp.cumsum(member)  # inclusive count of kind-k edges so far
        before = jnp.where(first > 0, seen[jnp.maximum(first - 1, 0)], 0)  # up to receiver start
        slot = jnp.where(member > 0, seen - 1 - before[nl.receivers], width)
        edges = jnp.zeros((n_atoms, width + 1), jnp.int32).at[nl.receivers, slot].set(edge_ids, mode="drop")
        valid = jnp.zeros((n_atoms, width + 1), bool).at[nl.receivers, slot].set(member > 0, mode="drop")
        tables.append((edges[:, :width], valid[:, :width]))
    return tables
