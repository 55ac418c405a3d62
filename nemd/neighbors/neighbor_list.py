"""The device-side ``NeighborList`` pytree and the skin logic (DESIGN.md contract)."""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np

from .builders import Pairs, build

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


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class NeighborList:
    """Fixed-capacity full neighbour list on the device.

    Edge e is ``r_e = R[senders[e]] + shifts[e] @ cell - R[receivers[e]]`` for
    ``mask[e]``; padding entries have ``mask`` False and point at atom 0 with zero
    shift (a valid index, zero-length vector: models must use ``mask``).
    ``reference_positions`` are the (unwrapped) positions the list was built from; it
    contains every pair closer than ``r_list = cutoff + skin`` at that time, so it stays
    complete for pairs closer than ``cutoff`` while no atom has moved ``skin / 2``.
    """

    senders: jax.Array  # (capacity,) int32
    receivers: jax.Array  # (capacity,) int32
    shifts: jax.Array  # (capacity, 3) int32
    mask: jax.Array  # (capacity,) bool
    reference_positions: jax.Array  # (N, 3) Å
    n_pairs: jax.Array  # () int32
    r_list: float = dataclasses.field(metadata=dict(static=True), default=0.0)
    skin: float = dataclasses.field(metadata=dict(static=True), default=0.0)
    #: Upper bound (bucketed) on the edges of any one receiver: the width of dense
    #: per-atom neighbour layouts (``nemd.models.graph.dense_neighbors``).
    max_neighbors: int = dataclasses.field(metadata=dict(static=True), default=0)
    #: The same bound per kind of sender (e.g. element) when the list was built with
    #: ``kinds``: lets models lay out neighbours per element without wasting slots.
    max_neighbors_by_kind: tuple = dataclasses.field(metadata=dict(static=True), default=())
    #: Optional (lists built with ``within_cutoff=True``): bucketed bound per kind on the
    #: edges of any one receiver shorter than ``cutoff`` at the reference positions (the
    #: rest are skin). Models may lay out only those edges. Unlike the bounds above it can
    #: be outgrown as atoms move, so such a list is valid only while, besides the skin/2
    #: criterion, ``exceeds_within_cutoff_bounds`` is False (the MD driver and FIRE check
    #: both every step); a model given an outgrown list returns NaN, never a wrong number.
    max_neighbors_within_cutoff_by_kind: tuple = dataclasses.field(metadata=dict(static=True), default=())

    @property
    def capacity(self) -> int:
        return int(self.senders.shape[0])

    @property
    def cutoff(self) -> float:
        """The model cutoff this list guarantees (``r_list - skin``)."""
        return self.r_list - self.skin


def neighbors_bucket(max_count: int) -> int:
    """Bucketed bound on per-receiver edge counts: >= 10 % headroom, multiple of 8."""
    return max(8, math.ceil(HEADROOM * max_count / 8) * 8)


def padded_arrays(pairs: Pairs, capacity: int):
    """Host arrays (senders, receivers, shifts, mask) padded to ``capacity``."""
    n = pairs.senders.shape[0]
    if n > capacity:
        raise ValueError(f"{n} pairs do not fit in a neighbour list of capacity {capacity}")
    senders = np.zeros(capacity, np.int32)
    receivers = np.zeros(capacity, np.int32)
    shifts = np.zeros((capacity, 3), np.int32)
    mask = np.zeros(capacity, bool)
    senders[:n], receivers[:n], shifts[:n], mask[:n] = pairs.senders, pairs.receivers, pairs.shifts, True
    return senders, receivers, shifts, mask


def _grow(bounds, counts) -> tuple:
    """Bucketed per-kind bounds for these maximum ``counts``, keeping ``bounds`` that fit."""
    previous = tuple(bounds) if len(bounds) == len(counts) else (0,) * len(counts)
    return tuple(int(old) if m <= old else neighbors_bucket(int(m)) for m, old in zip(counts, previous))


def from_pairs(pairs: Pairs, reference_positions, r_list: float, skin: float,
               capacity: int | None = None, max_neighbors: int | None = None,
               kinds=None, max_neighbors_by_kind=(), device=None, *, within_cutoff: bool = False,
               cell=None, max_neighbors_within_cutoff_by_kind=()) -> NeighborList:
    """Pad host ``pairs`` to ``capacity`` and put them on ``device``.

    ``capacity`` and the ``max_neighbors*`` bounds default to the buckets of this list;
    pass the previous list's values to keep shapes (and compiled code) when they still
    fit. ``kinds`` (N,) small non-negative ints (e.g. element indices) adds
    ``max_neighbors_by_kind``; with ``within_cutoff`` and a skin also the bounds on edges
    shorter than ``r_list - skin`` (measured at ``reference_positions`` with ``cell``, Å).
    """
    capacity = capacity_bucket(len(pairs.senders)) if capacity is None else int(capacity)
    most = int(np.bincount(pairs.receivers, minlength=1).max()) if len(pairs.receivers) else 0
    if max_neighbors is None or most > max_neighbors:
        max_neighbors = neighbors_bucket(most)
    by_kind, within = (), ()
    if kinds is not None:
        kinds = np.asarray(kinds, dtype=np.int64)
        n_kinds = int(kinds.max()) + 1 if kinds.size else 0
        counts = np.bincount(pairs.receivers.astype(np.int64) * n_kinds + kinds[pairs.senders],
                             minlength=kinds.size * n_kinds).reshape(-1, n_kinds)
        by_kind = _grow(max_neighbors_by_kind, counts.max(axis=0) if counts.size else np.zeros(n_kinds, int))
        if within_cutoff and skin > 0:
            inside = _counts_within(pairs, reference_positions, cell, kinds, n_kinds, r_list - skin)
            within = _grow(max_neighbors_within_cutoff_by_kind, inside.max(axis=0) if inside.size else
                           np.zeros(n_kinds, int))
            # No receiver can have more such edges than it has edges at all.
            within = tuple(min(w, b) for w, b in zip(within, by_kind))
    senders, receivers, shifts, mask = padded_arrays(pairs, capacity)
    put = lambda x: jax.device_put(x, device)  # noqa: E731
    return NeighborList(
        senders=put(senders), receivers=put(receivers), shifts=put(shifts), mask=put(mask),
        reference_positions=put(np.asarray(reference_positions)),
        n_pairs=put(np.int32(len(pairs.senders))), r_list=float(r_list), skin=float(skin),
        max_neighbors=int(max_neighbors), max_neighbors_by_kind=by_kind,
        max_neighbors_within_cutoff_by_kind=within,
    )


def _counts_within(pairs: Pairs, positions, cell, kinds, n_kinds: int, cutoff: float) -> np.ndarray:
    """(N, n_kinds) edges per receiver and sender kind shorter than ``cutoff`` (Å)."""
    from ._numba_kernel import count_within_by_kind

    counts = np.zeros((kinds.size, n_kinds), np.int64)
    cell = np.zeros((3, 3)) if cell is None else np.asarray(cell, np.float64)
    cell = np.diag(cell) if cell.shape == (3,) else cell  # rows of non-periodic axes meet zero shifts
    count_within_by_kind(np.asarray(positions, np.float64), cell, pairs.senders, pairs.receivers,
                         pairs.shifts, kinds, float(cutoff) ** 2, counts)
    return counts


def build_neighbor_list(positions, cell, pbc, cutoff: float, skin: float = 0.0, *,
                        capacity: int | None = None, kinds=None, backend: str = "auto",
                        n_threads: int | None = None, within_cutoff: bool = False) -> NeighborList:
    """Build on the CPU with ``r_list = cutoff + skin`` and return a device ``NeighborList``
    (``kinds``: optional per-atom kinds for ``max_neighbors_by_kind``; ``within_cutoff``:
    also measure the in-cutoff bounds, see ``NeighborList``)."""
    if skin < 0:
        raise ValueError(f"skin must be >= 0 Å, got {skin}")
    host_positions = np.asarray(positions)
    pairs = build(host_positions, cell, pbc, cutoff + skin, backend=backend, n_threads=n_threads)
    return from_pairs(pairs, host_positions, cutoff + skin, skin, capacity, kinds=kinds,
                      within_cutoff=within_cutoff, cell=cell)


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
    list's in-cutoff bounds (always False for lists without them). O(edges), cheap next
    to any model; ``kinds`` are the per-atom kinds the list was built with."""
    bounds = nl.max_neighbors_within_cutoff_by_kind
    if not bounds:
        return jnp.array(False)
    n_atoms, n_kinds = positions.shape[0], len(bounds)
    vec = edge_vectors(positions, nl, cell)
    inside = nl.mask & (jnp.sum(vec * vec, axis=-1) < (nl.cutoff + WITHIN_CUTOFF_MARGIN) ** 2)
    counts = jax.ops.segment_sum(inside.astype(jnp.int32), nl.receivers * n_kinds + kinds[nl.senders],
                                 num_segments=n_atoms * n_kinds).reshape(n_atoms, n_kinds)
    return jnp.any(counts > jnp.asarray(bounds, jnp.int32))


def grown_within_cutoff_bounds(bounds: tuple) -> tuple:
    """The next larger in-cutoff bounds after a list outgrew ``bounds`` (>= 10 % more)."""
    return tuple(neighbors_bucket(b + 1) for b in bounds)
