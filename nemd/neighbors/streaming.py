"""Background construction of neighbour lists for the MD driver (DESIGN.md, streaming)."""

from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor

import jax
import numpy as np

from .builders import build
from .neighbor_list import NeighborList, from_pairs, grown_within_cutoff_bounds


def shape_of(nl: NeighborList) -> dict:
    """The buffer sizes and static bounds of ``nl`` (what jitted code is compiled for)."""
    return dict(capacity=nl.capacity, max_neighbors=nl.max_neighbors,
                max_neighbors_by_kind=tuple(nl.max_neighbors_by_kind),
                max_neighbors_within_cutoff_by_kind=tuple(nl.max_neighbors_within_cutoff_by_kind))


class ListBuilder:
    """Builds skin-buffered ``NeighborList``s on one background thread.

    ``submit(positions)`` copies the (device) positions to the host and builds the list
    with ``r_list = cutoff + skin`` there; the compiled builders release the GIL, so the
    caller's thread keeps dispatching device work meanwhile. Shapes never shrink: each
    list reuses the previous capacity and per-atom bounds when it fits, so jitted code
    recompiles only when a list outgrows them. ``within_cutoff`` also measures the
    in-cutoff bounds (``NeighborList``): the user of such lists must check them.
    """

    def __init__(self, cell, pbc, cutoff: float, skin: float, *, kinds=None, within_cutoff: bool = False,
                 backend: str = "auto", n_threads: int | None = None):
        self.cell, self.pbc, self.cutoff, self.skin = cell, pbc, float(cutoff), float(skin)
        self.kinds = None if kinds is None else np.asarray(kinds)
        self.within_cutoff = within_cutoff
        self.backend, self.n_threads = backend, n_threads
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nemd-neighbors")
        self._shape = dict(capacity=None, max_neighbors=None, max_neighbors_by_kind=(),
                           max_neighbors_within_cutoff_by_kind=())
        # Wall time on the builder thread: total, and its parts copying positions to the
        # host and putting the finished list on the device (the rest is the CPU search).
        self.build_seconds = 0.0
        self.copy_seconds = 0.0
        self.put_seconds = 0.0
        self.builds = 0

    def _build(self, positions) -> NeighborList:
        t0 = time.perf_counter()
        host = np.asarray(jax.device_get(positions), dtype=np.float64)
        t1 = time.perf_counter()
        pairs = build(host, self.cell, self.pbc, self.cutoff + self.skin, backend=self.backend,
                      n_threads=self.n_threads)
        t2 = time.perf_counter()
        shape = self._shape
        capacity = shape["capacity"]
        if capacity is not None and len(pairs.senders) > capacity:
            capacity = None  # grow to the next bucket
        nl = from_pairs(pairs, host, self.cutoff + self.skin, self.skin, capacity,
                        shape["max_neighbors"], kinds=self.kinds,
                        max_neighbors_by_kind=shape["max_neighbors_by_kind"],
                        within_cutoff=self.within_cutoff, cell=self.cell,
                        max_neighbors_within_cutoff_by_kind=shape.get("max_neighbors_within_cutoff_by_kind", ()))
        jax.block_until_ready(nl)  # only this thread waits: the transfer is part of the build
        self._shape = shape_of(nl)
        t3 = time.perf_counter()
        self.build_seconds += t3 - t0
        self.copy_seconds += t1 - t0
        self.put_seconds += t3 - t2
        self.builds += 1
        return nl

    def submit(self, positions) -> Future:
        """Start building from ``positions`` (Å, unwrapped); returns a Future of the list.

        Builds run one at a time in submission order, so shapes evolve deterministically.
        """
        return self._pool.submit(self._build, positions)

    def grow_within_cutoff_bounds(self) -> None:
        """Raise the in-cutoff bounds of the lists built from now on (after a list was
        outgrown). Runs on the builder thread, after the builds already submitted, so that
        every run with the same submissions gets the same lists."""

        def grow():
            bounds = self._shape.get("max_neighbors_within_cutoff_by_kind", ())
            self._shape = {**self._shape, "max_neighbors_within_cutoff_by_kind": grown_within_cutoff_bounds(bounds)}

        self._pool.submit(grow).result()

    def build_now(self, positions) -> NeighborList:
        """Build synchronously (same code and ordering as ``submit``)."""
        return self.submit(positions).result()

    def close(self) -> None:
        self._pool.shutdown(wait=True)
