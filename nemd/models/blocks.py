"""Edges in blocks of atoms: the layout of the message-passing models (NEMP, Facet).

Atoms are taken in blocks of ``block_atoms`` consecutive indices; each block holds the
edges whose receivers are its atoms, receiver-sorted, padded to one static ``capacity``
(a bound the neighbour list measures and the chunk runner checks every step, like the
in-cutoff bounds, or exact for training batches). Models evaluate one block at a time
(``in_blocks``: ``lax.map`` under ``jax.checkpoint``), so memory is O(N x node state)
plus one block of edge state, and neighbour sums are sorted segment sums over a block's
atoms. In MD only edges inside the model cutoff are laid out (the list's skin is not).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from ..neighbors import NeighborList, edge_vectors


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class BlockedGraph:
    """Edges of one structure or a padded batch: ``r = R[senders] + shift_vectors -
    R[receivers]`` (Å) where ``mask``, arrays (blocks, capacity). Padding edges point from
    and to their block's first atom with zero shift (zero vectors). ``graph_index[i]`` is
    the structure of atom i (zeros for one structure); sums per structure use ``n_graphs``."""

    senders: jax.Array  # (blocks, capacity) int32
    receivers: jax.Array  # (blocks, capacity) int32, sorted within a block
    shift_vectors: jax.Array  # (blocks, capacity, 3) Å
    mask: jax.Array  # (blocks, capacity) bool
    graph_index: jax.Array  # (N,) int32
    n_graphs: int = dataclasses.field(metadata=dict(static=True), default=1)
    block_atoms: int = dataclasses.field(metadata=dict(static=True), default=1)

    @property
    def n_atoms(self) -> int:
        return int(self.graph_index.shape[0])

    def edge_vectors(self, positions: jax.Array) -> jax.Array:
        vec = positions[self.senders] + self.shift_vectors.astype(positions.dtype) - positions[self.receivers]
        return jnp.where(self.mask[..., None], vec, 0.0)


def default_block_atoms() -> int:
    """Atoms per block when a model does not say: small blocks keep a CPU's caches warm;
    an accelerator needs large ones to fill it (blocks run one after another)."""
    return 128 if jax.default_backend() == "cpu" else 32768


def blocked_graph(nl: NeighborList, positions: jax.Array, n_atoms: int, cell, cutoff: float,
                  block_atoms: int, capacity: int):
    """The ``BlockedGraph`` of the edges of ``nl`` shorter than ``cutoff`` (Å), and whether
    every block fitted ``capacity`` (False: edges were dropped; the caller must not use the
    result). Only the selection looks at distances: no gradient flows through it."""
    vec = jax.lax.stop_gradient(edge_vectors(positions, nl, cell))
    keep = nl.mask & (jnp.sum(vec * vec, axis=-1) < cutoff * cutoff)
    n_blocks = -(-n_atoms // block_atoms)
    block = nl.receivers // block_atoms
    counts = jax.ops.segment_sum(keep.astype(jnp.int32), block, num_segments=n_blocks)
    rank = jnp.cumsum(keep, dtype=jnp.int32) - 1 - (jnp.cumsum(counts) - counts)[block]  # edges sorted by receiver
    slot = jnp.where(keep & (rank < capacity), block * capacity + rank, n_blocks * capacity)
    edge = jnp.zeros(n_blocks * capacity + 1, jnp.int32).at[slot].set(
        jnp.arange(keep.shape[0], dtype=jnp.int32), mode="drop")[:-1].reshape(n_blocks, capacity)
    mask = jnp.zeros(n_blocks * capacity + 1, bool).at[slot].set(keep, mode="drop")[:-1].reshape(n_blocks, capacity)
    first = (jnp.arange(n_blocks, dtype=jnp.int32) * block_atoms)[:, None]
    shifts = jnp.zeros(edge.shape + (3,)) if cell is None else \
        nl.shifts[edge].astype(jnp.result_type(float)) @ jnp.asarray(cell)
    graph = BlockedGraph(jnp.where(mask, nl.senders[edge], first), jnp.where(mask, nl.receivers[edge], first),
                         jnp.where(mask[..., None], shifts, 0.0), mask, jnp.zeros(n_atoms, jnp.int32), 1, block_atoms)
    return graph, jnp.all(counts <= capacity)


def block_capacity_of(nl: NeighborList, block_atoms: int) -> int:
    """The static capacity per block for lists from ``nl``: its measured block bound when
    it has one for ``block_atoms``, else one that always fits (every atom's bound)."""
    shape = nl.shape
    if shape.block_capacity and shape.block_atoms == block_atoms:
        return shape.block_capacity
    per_atom = sum(shape.within_cutoff_by_kind) or shape.max_neighbors
    return block_atoms * per_atom


def batch_graph(structures, cutoff: float, block_atoms: int | None = None, *, backend: str = "auto",
                n_atoms: int | None = None, capacity: int | None = None, n_graphs: int | None = None):
    """Concatenate structures into one ``BlockedGraph`` (host side, for training).

    Returns ``(positions (N, 3), numbers (N,), graph)`` with neighbour lists built on the
    CPU at ``cutoff`` (Å). ``n_atoms`` pads with isolated atoms (number 0, at the origin,
    no edges) that form one extra structure, ``n_graphs`` with empty structures, and
    ``capacity`` the blocks' edges, so that batches of different structures share shapes
    (and compiled code); by default the capacity is the largest block's edge count.
    """
    from ..neighbors import build

    block_atoms = block_atoms or default_block_atoms()
    senders, receivers, shifts, offset = [], [], [], 0
    for s in structures:
        cell = None if s.cell is None or not np.any(s.pbc) else np.asarray(s.cell, np.float64)
        pairs = build(s.positions, cell, s.pbc, cutoff, backend=backend)
        senders.append(pairs.senders + offset)
        receivers.append(pairs.receivers + offset)
        shifts.append(np.zeros((pairs.senders.size, 3)) if cell is None else pairs.shifts @ cell)
        offset += s.n_atoms
    total = offset if n_atoms is None else int(n_atoms)
    if total < offset:
        raise ValueError(f"{offset} atoms do not fit in a batch of {total}")
    senders, receivers, shifts = np.concatenate(senders), np.concatenate(receivers), np.concatenate(shifts)
    n_blocks = -(-total // block_atoms)
    block = receivers // block_atoms
    counts = np.bincount(block, minlength=n_blocks)
    need = max(8, int(-(-counts.max(initial=0) // 8) * 8))
    capacity = need if capacity is None else int(capacity)
    if need > capacity:
        raise ValueError(f"a block of {block_atoms} atoms has {counts.max()} edges, over the capacity {capacity}")
    rank = np.arange(receivers.size) - (np.cumsum(counts) - counts)[block]
    first = np.repeat(np.arange(n_blocks, dtype=np.int32)[:, None] * block_atoms, capacity, axis=1)
    out_s, out_r = first.copy(), first.copy()
    out_shift, mask = np.zeros((n_blocks, capacity, 3)), np.zeros((n_blocks, capacity), bool)
    out_s[block, rank], out_r[block, rank], out_shift[block, rank], mask[block, rank] = senders, receivers, shifts, True
    sizes = [s.n_atoms for s in structures] + ([total - offset] if total > offset else [])
    if n_graphs is not None:
        if n_graphs < len(sizes):
            raise ValueError(f"{len(sizes)} structures (with padding) do not fit in a batch of {n_graphs}")
        sizes += [0] * (n_graphs - len(sizes))
    graph_index = np.repeat(np.arange(len(sizes), dtype=np.int32), sizes)
    graph = BlockedGraph(jnp.asarray(out_s), jnp.asarray(out_r), jnp.asarray(out_shift), jnp.asarray(mask),
                         jnp.asarray(graph_index), len(sizes), block_atoms)
    positions = np.concatenate([s.positions for s in structures] + [np.zeros((total - offset, 3))])
    numbers = np.concatenate([s.numbers for s in structures] + [np.zeros(total - offset, np.int64)])
    return positions, numbers, graph


def with_capacity(graph: BlockedGraph, capacity: int) -> BlockedGraph:
    """``graph`` with its blocks padded to ``capacity`` >= its own (padding edges point from
    and to the block's first atom, masked)."""
    extra = capacity - graph.senders.shape[1]
    if extra < 0:
        raise ValueError(f"blocks hold {graph.senders.shape[1]} edges, more than {capacity}")
    if extra == 0:
        return graph
    first = jnp.broadcast_to(graph.receivers[:, :1], (graph.receivers.shape[0], extra))
    return dataclasses.replace(
        graph, senders=jnp.concatenate([graph.senders, first], axis=1),
        receivers=jnp.concatenate([graph.receivers, first], axis=1),
        shift_vectors=jnp.pad(graph.shift_vectors, ((0, 0), (0, extra), (0, 0))),
        mask=jnp.pad(graph.mask, ((0, 0), (0, extra))))


def in_blocks(fn, per_block):
    """``fn(block) -> outputs`` for every block of the pytree ``per_block`` (leading axis:
    blocks), one at a time (``lax.map``), each rematerialised in the backward pass
    (``jax.checkpoint``), so one block of edge activations is alive, not all of them.
    Returns the outputs stacked over blocks."""
    n_blocks = jax.tree_util.tree_leaves(per_block)[0].shape[0]
    fn = jax.checkpoint(fn)
    if n_blocks == 1:
        return jax.tree_util.tree_map(lambda x: x[None], fn(jax.tree_util.tree_map(lambda x: x[0], per_block)))
    return jax.lax.map(fn, per_block)


def per_atom(x: jax.Array, n_atoms: int) -> jax.Array:
    """Node outputs of blocks, (blocks, block_atoms, ...), as (N, ...)."""
    return x.reshape(-1, *x.shape[2:])[:n_atoms]


def padded(x: jax.Array, n_blocks: int, block_atoms: int) -> jax.Array:
    """Per-atom ``x`` (N, ...) padded with zeros to n_blocks x block_atoms rows."""
    return jnp.pad(x, [(0, n_blocks * block_atoms - x.shape[0])] + [(0, 0)] * (x.ndim - 1))


def map_atoms(fn, x: jax.Array, block_atoms: int) -> jax.Array:
    """``fn`` on per-atom ``x`` (N, ...) in blocks of ``block_atoms`` atoms, each
    rematerialised in the backward pass: for node-level work with large intermediates
    (Facet's sphere grids). ``block_atoms`` 0 or >= N: in one piece."""
    n = x.shape[0]
    if not block_atoms or block_atoms >= n:
        return fn(x)
    n_blocks = -(-n // block_atoms)
    out = jax.lax.map(jax.checkpoint(fn), padded(x, n_blocks, block_atoms).reshape(n_blocks, block_atoms, *x.shape[1:]))
    return out.reshape(n_blocks * block_atoms, *out.shape[2:])[:n]
