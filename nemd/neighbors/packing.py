"""Host side of a neighbour list: measure a pair list, pad it to a ``ListShape`` and put
it on the device as a ``NeighborList``."""

from __future__ import annotations

import dataclasses

import jax
import numpy as np

from .builders import Pairs, build
from .neighbor_list import ListShape, NeighborList


@dataclasses.dataclass(frozen=True)
class ListCounts:
    """Exact sizes of one host pair list: pairs, the most edges of any one receiver, the
    same per sender kind, per kind among edges shorter than the cutoff (optional), and
    the most such edges in one block of ``block_atoms`` consecutive receivers (optional)."""

    pairs: int
    max_neighbors: int
    by_kind: tuple[int, ...] = ()
    within_cutoff_by_kind: tuple[int, ...] = ()
    block_atoms: int = 0
    within_cutoff_per_block: int = 0


def count(pairs: Pairs, kinds=None, *, positions=None, cell=None, cutoff: float | None = None,
          block_atoms: int = 0) -> ListCounts:
    """``ListCounts`` of ``pairs``. ``kinds`` (N,) small non-negative ints (e.g. element
    indices) adds the per-kind counts; ``cutoff`` (Å) with the ``positions`` and ``cell``
    the pairs were built from also the in-cutoff ones, and ``block_atoms`` those per block."""
    most = int(np.bincount(pairs.receivers, minlength=1).max()) if len(pairs.receivers) else 0
    if kinds is None:
        return ListCounts(len(pairs.senders), most)
    kinds = np.asarray(kinds, dtype=np.int64)
    n_kinds = int(kinds.max()) + 1 if kinds.size else 0
    per_receiver = np.bincount(pairs.receivers.astype(np.int64) * n_kinds + kinds[pairs.senders],
                               minlength=kinds.size * n_kinds).reshape(-1, n_kinds)
    within, per_block = (), 0
    if cutoff is not None:
        inside = _counts_within(pairs, positions, cell, kinds, n_kinds, cutoff)
        within = _largest(inside, n_kinds)
        if block_atoms:
            totals = inside.sum(axis=1)
            totals = np.pad(totals, (0, -len(totals) % block_atoms))
            per_block = int(totals.reshape(-1, block_atoms).sum(axis=1).max(initial=0))
    return ListCounts(len(pairs.senders), most, _largest(per_receiver, n_kinds), within,
                      block_atoms if cutoff is not None else 0, per_block)


def _largest(per_receiver: np.ndarray, n_kinds: int) -> tuple[int, ...]:
    return tuple(int(m) for m in (per_receiver.max(axis=0) if per_receiver.size else np.zeros(n_kinds, int)))


def _counts_within(pairs: Pairs, positions, cell, kinds, n_kinds: int, cutoff: float) -> np.ndarray:
    """(N, n_kinds) edges per receiver and sender kind shorter than ``cutoff`` (Å)."""
    from ._numba_kernel import count_within_by_kind

    counts = np.zeros((kinds.size, n_kinds), np.int64)
    cell = np.zeros((3, 3)) if cell is None else np.asarray(cell, np.float64)
    cell = np.diag(cell) if cell.shape == (3,) else cell  # rows of non-periodic axes meet zero shifts
    count_within_by_kind(np.asarray(positions, np.float64), cell, pairs.senders, pairs.receivers,
                         pairs.shifts, kinds, float(cutoff) ** 2, counts)
    return counts


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


def pack(pairs: Pairs, reference_positions, r_list: float, skin: float, shape: ListShape,
         device=None) -> NeighborList:
    """Pad host ``pairs`` to ``shape`` (which must hold them: ``shape.grown(counts)``) and
    put them on ``device``."""
    senders, receivers, shifts, mask = padded_arrays(pairs, shape.capacity)
    put = lambda x: jax.device_put(x, device)  # noqa: E731
    return NeighborList(
        senders=put(senders), receivers=put(receivers), shifts=put(shifts), mask=put(mask),
        reference_positions=put(np.asarray(reference_positions)),
        n_pairs=put(np.int32(len(pairs.senders))), r_list=float(r_list), skin=float(skin), shape=shape)


def build_neighbor_list(positions, cell, pbc, cutoff: float, skin: float = 0.0, *,
                        kinds=None, within_cutoff: bool = False, block_atoms: int = 0,
                        shape: ListShape = ListShape(), backend: str = "auto",
                        n_threads: int | None = None) -> NeighborList:
    """Build on the CPU with ``r_list = cutoff + skin`` and return a device ``NeighborList``.

    ``kinds``: optional per-atom kinds for the per-kind bounds; ``within_cutoff``: also
    measure the in-cutoff bounds (see ``ListShape``), per block of ``block_atoms`` atoms
    too when given; ``shape``: bounds to keep where the list fits them (e.g. a previous
    list's, so that compiled code is reused).
    """
    if skin < 0:
        raise ValueError(f"skin must be >= 0 Å, got {skin}")
    host_positions = np.asarray(positions)
    pairs = build(host_positions, cell, pbc, cutoff + skin, backend=backend, n_threads=n_threads)
    counts = count(pairs, kinds, positions=host_positions, cell=cell,
                   cutoff=cutoff if within_cutoff and skin > 0 and kinds is not None else None,
                   block_atoms=block_atoms)
    return pack(pairs, host_positions, cutoff + skin, skin, shape.grown(counts))
