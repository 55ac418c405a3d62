"""The device-side ``NeighborList`` pytree, its static ``ListShape`` and the device checks
that tell whether a list is still valid (docs/design.md, neighbour-list contract)."""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp

#: Capacities are multiples of this and grow geometrically by ``GROWTH``, so that a
#: list whose size drifts a little keeps its shape and jitted code does not recompile.
CAPACITY_QUANTUM = 64
GROWTH = 1.25
HEADROOM = 1.10


def capacity_bucket(n_pairs: int) -> int:
    """Smallest bucket ``ceil(64 * 1.25**k / 64) * 64`` holding ``HEADROOM * n_pairs`` pairs."""
    need = max(1, math.ceil(HEADROOM * n_pairs))
    k = max(0, math.ceil(math.log(need / CAPACITY_QUANTUM) / math.log(GROWTH) - 1e-12))
    cap = math.ceil(CAPACITY_QUANTUM * GROWTH**k / CAPACITY_QUANTUM) * CAPACITY_QUANTUM
    while cap < need:  # guard against rounding in the logarithm
        k += 1
        cap = math.ceil(CAPACITY_QUANTUM * GROWTH**k / CAPACITY_QUANTUM) * CAPACITY_QUANTUM
    return cap


def neighbors_bucket(max_count: int) -> int:
    """Bucketed bound on per-receiver edge counts: >= 10 % headroom, multiple of 8."""
    return max(8, math.ceil(HEADROOM * max_count / 8) * 8)


def block_bucket(max_count: int) -> int:
    """Bucketed bound on the in-cutoff edges of one block of atoms: sums over many atoms
    fluctuate little, so 5 % headroom, rounded up to a multiple of 64."""
    return max(64, math.ceil(1.05 * max_count / 64) * 64)


def _kept_or_bucketed(bounds: tuple, counts: tuple) -> tuple:
    """Per-kind bounds: each old bound where its count fits, else the count's bucket."""
    previous = tuple(bounds) if len(bounds) == len(counts) else (0,) * len(counts)
    return tuple(int(old) if m <= old else neighbors_bucket(int(m)) for m, old in zip(counts, previous))


@dataclasses.dataclass(frozen=True)
class ListShape:
    """What jitted code using a list is compiled for (static, hashable).

    ``capacity``: edges the buffers hold. ``max_neighbors``: bound on the edges of any one
    receiver (the width of dense per-atom layouts). ``by_kind``: the same bound per kind
    of sender (e.g. element), for lists built with per-atom kinds. ``within_cutoff_by_kind``
    (optional): per-kind bound on the edges of one receiver shorter than the cutoff at the
    reference positions. Unlike the others it can be outgrown as atoms move, so a list
    with it is valid only while ``exceeds_within_cutoff_bounds`` is False (checked every
    step by the MD chunk runner); a model given an outgrown list returns NaN, never a
    wrong number. Zero capacity or ``max_neighbors`` means "not set yet".
    ``block_capacity`` (optional, with the in-cutoff bounds): bound on the in-cutoff edges
    whose receivers lie in one block of ``block_atoms`` consecutive atoms (models that
    work in blocks of atoms pad each block's edges to it); outgrowable like them.
    """

    capacity: int = 0
    max_neighbors: int = 0
    by_kind: tuple[int, ...] = ()
    within_cutoff_by_kind: tuple[int, ...] = ()
    block_atoms: int = 0
    block_capacity: int = 0

    def grown(self, counts) -> "ListShape":
        """The shape for a list of exact sizes ``counts`` (a ``ListCounts``): every bound of
        this shape that still fits is kept (so compiled code is reused), the others become
        the bucket of the new count. In-cutoff bounds never exceed the per-kind ones."""
        capacity = self.capacity if self.capacity and counts.pairs <= self.capacity \
            else capacity_bucket(counts.pairs)
        most = self.max_neighbors if self.max_neighbors and counts.max_neighbors <= self.max_neighbors \
            else neighbors_bucket(counts.max_neighbors)
        by_kind = _kept_or_bucketed(self.by_kind, counts.by_kind)
        within, block_atoms, block_capacity = (), 0, 0
        if counts.within_cutoff_by_kind:
            within = _kept_or_bucketed(self.within_cutoff_by_kind, counts.within_cutoff_by_kind)
            within = tuple(min(w, b) for w, b in zip(within, by_kind))
        if counts.block_atoms:
            block_atoms = counts.block_atoms
            same = self.block_atoms == block_atoms and counts.within_cutoff_per_block <= self.block_capacity
            block_capacity = self.block_capacity if same else block_bucket(counts.within_cutoff_per_block)
        return ListShape(capacity, most, by_kind, within, block_atoms, block_capacity)

    def with_larger_within_cutoff_bounds(self) -> "ListShape":
        """The next larger in-cutoff bounds (>= 10 % more, 5 % per block) after a list
        outgrew these."""
        return dataclasses.replace(
            self, within_cutoff_by_kind=tuple(neighbors_bucket(b + 1) for b in self.within_cutoff_by_kind),
            block_capacity=block_bucket(self.block_capacity + 1) if self.block_capacity else 0)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "ListShape":
        return cls(int(values["capacity"]), int(values["max_neighbors"]), tuple(values["by_kind"]),
                   tuple(values["within_cutoff_by_kind"]), int(values.get("block_atoms", 0)),
                   int(values.get("block_capacity", 0)))


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class NeighborList:
    """Fixed-capacity full neighbour list on the device.

    Edge e is ``r_e = R[senders[e]] + shifts[e] @ cell - R[receivers[e]]`` for
    ``mask[e]``; padding entries have ``mask`` False and point at atom 0 with zero
    shift (a valid index, zero-length vector: models must use ``mask``). Edges are in
    canonical order (receiver, sender, shift). ``reference_positions`` are the
    (unwrapped) positions the list was built from; it contains every pair closer than
    ``r_list = cutoff + skin`` at that time, so it stays complete for pairs closer than
    ``cutoff`` while no atom has moved ``skin / 2``.
    """

    senders: jax.Array  # (capacity,) int32
    receivers: jax.Array  # (capacity,) int32
    shifts: jax.Array  # (capacity, 3) int32
    mask: jax.Array  # (capacity,) bool
    reference_positions: jax.Array  # (N, 3) Å
    n_pairs: jax.Array  # () int32
    r_list: float = dataclasses.field(metadata=dict(static=True), default=0.0)
    skin: float = dataclasses.field(metadata=dict(static=True), default=0.0)
    shape: ListShape = dataclasses.field(metadata=dict(static=True), default=ListShape())

    @property
    def capacity(self) -> int:
        return int(self.senders.shape[0])

    @property
    def cutoff(self) -> float:
        """The model cutoff this list guarantees (``r_list - skin``)."""
        return self.r_list - self.skin


def max_displacement(positions: jax.Array, nl: NeighborList) -> jax.Array:
    """Largest distance (Å) any atom has moved since the list was built (unwrapped positions).

    Returned in the dtype of ``positions`` (the reference may be float64 when float32
    dynamics runs with x64 enabled), so it can live in a jitted loop carry.
    """
    delta = positions - nl.reference_positions
    return jnp.sqrt(jnp.max(jnp.sum(delta * delta, axis=-1), initial=0.0)).astype(positions.dtype)


def needs_rebuild(positions: jax.Array, nl: NeighborList, skin: float | None = None) -> jax.Array:
    """True once some atom has moved ``skin / 2`` or more: the list may miss a pair."""
    skin = nl.skin if skin is None else skin
    return max_displacement(positions, nl) >= 0.5 * skin


def edge_vectors(positions: jax.Array, nl: NeighborList, cell: jax.Array | None) -> jax.Array:
    """``r_ij = R[sender] + shift @ cell - R[receiver]`` for every edge (zero on padding)."""
    vec = positions[nl.senders] - positions[nl.receivers]
    if cell is not None:
        vec = vec + nl.shifts.astype(positions.dtype) @ jnp.asarray(cell, positions.dtype)
    return jnp.where(nl.mask[:, None], vec, 0.0)


#: The in-cutoff check counts edges up to this much (Å) beyond the cutoff, so that a
#: rounding difference from the model's own test can only make it stricter.
WITHIN_CUTOFF_MARGIN = 1e-4


def exceeds_within_cutoff_bounds(positions: jax.Array, nl: NeighborList, kinds: jax.Array,
                                 cell: jax.Array | None) -> jax.Array:
    """True when some receiver now has more edges of a kind inside ``nl.cutoff`` than the
    list's in-cutoff bounds, or some block of atoms more than its block capacity (always
    False for lists without them). O(edges), cheap next to any model; ``kinds`` are the
    per-atom kinds the list was built with."""
    shape = nl.shape
    bounds = shape.within_cutoff_by_kind
    if not bounds:
        return jnp.array(False)
    n_atoms, n_kinds = positions.shape[0], len(bounds)
    vec = edge_vectors(positions, nl, cell)
    inside = (nl.mask & (jnp.sum(vec * vec, axis=-1) < (nl.cutoff + WITHIN_CUTOFF_MARGIN) ** 2)).astype(jnp.int32)
    counts = jax.ops.segment_sum(inside, nl.receivers * n_kinds + kinds[nl.senders],
                                 num_segments=n_atoms * n_kinds).reshape(n_atoms, n_kinds)
    over = jnp.any(counts > jnp.asarray(bounds, jnp.int32))
    if shape.block_capacity:
        n_blocks = -(-n_atoms // shape.block_atoms)
        per_block = jax.ops.segment_sum(inside, nl.receivers // shape.block_atoms, num_segments=n_blocks)
        over = over | jnp.any(per_block > shape.block_capacity)
    return over
