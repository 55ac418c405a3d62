"""Graph operations shared by the energy functions: dense per-atom neighbour tables
(the BPNN's layout), radial and angular bases. The message-passing models' layout is in
``blocks.py``."""

from __future__ import annotations

import dataclasses

import e3nn_jax as e3nn
import jax
import jax.numpy as jnp
import numpy as np

from ..neighbors import NeighborList


def safe_norm(vectors: jax.Array, axis: int = -1, keepdims: bool = False) -> jax.Array:
    """Euclidean norm with a finite gradient at zero (padding edges have zero length)."""
    sq = jnp.sum(vectors * vectors, axis=axis, keepdims=keepdims)
    positive = sq > 0
    return jnp.where(positive, jnp.sqrt(jnp.where(positive, sq, 1.0)), 0.0)


def dense_neighbors(nl: NeighborList, n_atoms: int, max_neighbors: int | None = None):
    """Per-atom neighbour table ``(edge_index (N, K), valid (N, K))``.

    Row i lists the edges whose receiver is i, in list order; ``K = nl.shape.max_neighbors``
    (a static bound computed when the list was built, so nothing is ever dropped).
    Relies on the canonical order of nemd lists: edges sorted by receiver.
    """
    k = nl.shape.max_neighbors if max_neighbors is None else max_neighbors
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
    ``K_k = nl.shape.by_kind[k]`` (the list must be built with ``kinds``).
    Within a row, edges keep list order. Relies on edges sorted by receiver.
    """
    if len(nl.shape.by_kind) != n_kinds:
        raise ValueError("this neighbour list was built without per-kind bounds: pass kinds= "
                         "(per-atom element indices, model.kinds(numbers)) to build_neighbor_list")
    n_edges = nl.senders.shape[0]
    edge_ids = jnp.arange(n_edges, dtype=jnp.int32)
    counts = jax.ops.segment_sum(nl.mask.astype(jnp.int32), nl.receivers, num_segments=n_atoms)
    first = jnp.cumsum(counts) - counts  # index of each receiver's first edge
    kind = sender_kinds[nl.senders]
    tables = []
    for k, width in enumerate(nl.shape.by_kind):
        member = (nl.mask & (kind == k)).astype(jnp.int32)
        seen = jnp.cumsum(member)  # inclusive count of kind-k edges so far
        before = jnp.where(first > 0, seen[jnp.maximum(first - 1, 0)], 0)  # up to receiver start
        slot = jnp.where(member > 0, seen - 1 - before[nl.receivers], width)
        edges = jnp.zeros((n_atoms, width + 1), jnp.int32).at[nl.receivers, slot].set(edge_ids, mode="drop")
        valid = jnp.zeros((n_atoms, width + 1), bool).at[nl.receivers, slot].set(member > 0, mode="drop")
        tables.append((edges[:, :width], valid[:, :width]))
    return tables


def within_cutoff(vectors: jax.Array, valid: jax.Array, cutoff: float, width: int):
    """Compact the rows of a dense neighbour table to the edges shorter than ``cutoff``.

    ``vectors (N, K, 3)``, ``valid (N, K)``: a table of a skin-buffered list, whose edges
    beyond the cutoff contribute nothing. Returns ``(vectors (N, width, 3), valid (N, width),
    fits)``, rows keeping their order; ``fits`` is False when some row has more than
    ``width`` such edges (atoms moved since the list's in-cutoff bounds were measured):
    the compacted table then misses edges and the caller must use the full one.
    """
    n, k = valid.shape
    keep = valid & (jnp.sum(vectors * vectors, axis=-1) < cutoff * cutoff)
    slot = jnp.cumsum(keep, axis=1, dtype=jnp.int32) - 1
    fits = jnp.all(slot[:, -1] < width) if k else jnp.array(True)
    slot = jnp.where(keep, slot, width)  # dropped edges go to a spare column, then cut off
    rows = jnp.arange(n)[:, None]
    columns = jnp.zeros((n, width + 1), jnp.int32).at[rows, slot].set(
        jnp.broadcast_to(jnp.arange(k, dtype=jnp.int32), (n, k)), mode="drop")[:, :width]
    kept = jnp.zeros((n, width + 1), bool).at[rows, slot].set(keep, mode="drop")[:, :width]
    compact = jnp.take_along_axis(vectors, columns[..., None], axis=1)
    return jnp.where(kept[..., None], compact, 0.0), kept, fits


# ---------------------------------------------------------------- radial and angular bases


def polynomial_envelope(r: jax.Array, cutoff: float, p: int = 6) -> jax.Array:
    """Smooth cutoff (Klicpera et al. 2020): 1 at r = 0, zero value and zero first and
    second derivatives at r = cutoff, exactly 0 beyond. Bounded for r >= 0."""
    u = r / cutoff
    inside = u < 1.0
    u = jnp.where(inside, u, 0.0)
    up = u**p
    env = 1.0 - (p + 1) * (p + 2) / 2 * up + p * (p + 2) * up * u - p * (p + 1) / 2 * up * u * u
    return jnp.where(inside, env, 0.0)


def flat_envelope(r: jax.Array, cutoff, onset: float = 0.8) -> jax.Array:
    """Smooth cutoff that is exactly 1 below ``onset * cutoff`` and falls to exactly 0 at
    ``cutoff`` with every derivative continuous (a C-infinity step built from
    exp(-1/x)): the shape of the filters below the onset does not depend on ``cutoff``
    (Facet's trainable r_max). Zero beyond ``cutoff``."""
    x = (r / cutoff - onset) / (1.0 - onset)  # 0 at the onset, 1 at the cutoff
    # exp(-1/x) is below 4e-44 for x < 0.01: taken as 0 there, so no 0 * inf in gradients.
    lo, hi = x > 0.01, x < 0.99
    a = jnp.where(lo, jnp.exp(-1.0 / jnp.where(lo, x, 1.0)), 0.0)
    b = jnp.where(hi, jnp.exp(-1.0 / jnp.where(hi, 1.0 - x, 1.0)), 0.0)
    return jnp.where(x < 1.0, b / (a + b), 0.0)


def sinc_basis(r: jax.Array, frequencies: jax.Array, cutoff: float) -> jax.Array:
    """Bessel-type radial functions ``sin(c r / rc) / (c r / rc)`` (dimensionless ``c``).

    ``r`` (...,) in Å and ``frequencies`` (..., n) broadcast; finite at r = 0.
    """
    return jnp.sinc(frequencies * (r / cutoff)[..., None] / jnp.pi)


def unit_vectors(vectors: jax.Array, lengths: jax.Array) -> jax.Array:
    """Directions of ``vectors``; zero-length (padding) edges get a fixed direction so
    that spherical harmonics and their gradients stay finite."""
    safe = lengths > 0
    return jnp.where(safe[..., None], vectors / jnp.where(safe, lengths, 1.0)[..., None],
                     jnp.array([0.0, 0.0, 1.0], vectors.dtype))


def spherical_harmonics(directions: jax.Array, lmax: int) -> jax.Array:
    """Real spherical harmonics ``(..., (lmax+1)^2)`` of unit vectors, e3nn order and
    'component' normalisation (each l block has mean square 1 over the sphere)."""
    irreps = e3nn.Irreps.spherical_harmonics(lmax)
    return e3nn.spherical_harmonics(irreps, directions, normalize=False, normalization="component").array

