"""The lifecycle of one simulation's neighbour lists: built on a CPU thread, streamed to
the device, checked, grown and rebuilt (docs/design.md, streaming).

Schedule: the integrator runs in chunks. When chunk k starts from positions P_k,
``begin_chunk(P_k)`` starts building L(P_k) on a background thread (``async``) or builds it
at once (``sync``); chunk k itself runs with ``current`` = L(P_{k-1}) (chunks 0 and 1 with
L(P_0)). After a good chunk, ``accept()`` makes L(P_k) current. A chunk that outran its
list (an atom moved skin/2, or the list's in-cutoff bounds were outgrown: ``check``) calls
``recover(P_k, outgrown)``, which prepares the list to redo the chunk with and says how.
``static`` builds one list and never rebuilds (benchmarks). Async and sync give the same
lists, hence the same trajectories.
"""

from __future__ import annotations

import dataclasses
import enum
import time
from concurrent.futures import Future, ThreadPoolExecutor

import jax
import jax.numpy as jnp
import numpy as np

from .builders import BACKENDS, build
from .neighbor_list import ListShape, NeighborList, exceeds_within_cutoff_bounds, max_displacement
from .packing import count, pack

NEIGHBOR_MODES = ("async", "sync", "static")


@dataclasses.dataclass(frozen=True)
class ListSettings:
    """How a simulation's lists are built: ``skin`` (Å) beyond the model cutoff, ``mode``
    (``async``: built on a CPU thread while the device integrates; ``sync``: built between
    chunks; ``static``: built once), the CPU ``backend`` and its ``n_threads`` (default:
    every core)."""

    skin: float = 1.0
    mode: str = "async"
    backend: str = "auto"
    n_threads: int | None = None

    def __post_init__(self):
        if not self.skin > 0:
            raise ValueError(f"skin must be positive (Å), got {self.skin}")
        if self.mode not in NEIGHBOR_MODES:
            raise ValueError(f"unknown neighbour mode {self.mode!r}; choose one of {NEIGHBOR_MODES}")
        if self.backend not in BACKENDS:
            raise ValueError(f"unknown neighbour backend {self.backend!r}; choose one of {BACKENDS}")
        if self.n_threads is not None and int(self.n_threads) < 1:
            raise ValueError(f"n_threads must be >= 1, got {self.n_threads}")


class Recovery(enum.Enum):
    """How ``ListStream.recover`` prepared the redo of a chunk that outran its list."""

    GROWN = "in-cutoff bounds grown: redo the chunk"
    REBUILT = "list rebuilt from the chunk's start: redo the chunk"
    TOO_FAST = "even a list built at the chunk's start was outrun: redo a shorter chunk"
    STATIC = "a static list cannot be rebuilt"


def _done(value) -> Future:
    future = Future()
    future.set_result(value)
    return future


class ListStream:
    """Owns the lists of one system: shape, current list, pending build, counters.

    ``cell`` (3, 3) Å or None, ``pbc`` per axis, ``cutoff`` the model's (Å). ``kinds``
    (N,) per-atom kinds give per-kind bounds; ``within_cutoff`` also measures in-cutoff
    bounds (for models that lay out only edges inside their cutoff), per block of
    ``block_atoms`` atoms too when given, which ``check`` verifies. Shapes never shrink: a
    list reuses the previous bounds where it fits, so jitted code recompiles only when a
    list outgrows them (counted in ``recompilations``).
    Builds run one at a time on one thread in submission order, so shapes evolve
    deterministically. Call ``start(positions)`` first and ``close()`` at the end.
    """

    def __init__(self, cell, pbc, cutoff: float, settings: ListSettings = ListSettings(), *, kinds=None,
                 within_cutoff: bool = False, block_atoms: int | None = None):
        self.cell = None if cell is None else np.asarray(cell, np.float64)
        self.pbc = np.broadcast_to(np.asarray(pbc, bool), (3,)).copy()
        self.cutoff, self.settings = float(cutoff), settings
        self.kinds = None if kinds is None else np.asarray(kinds)
        self._device_kinds = None if kinds is None else jnp.asarray(kinds, jnp.int32)
        self.within_cutoff = bool(within_cutoff) and kinds is not None
        self.block_atoms = int(block_atoms or 0) if self.within_cutoff else 0
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nemd-neighbors")
        self._shape = ListShape()  # of the lists built from now on (builder thread only)
        self._seen: set[ListShape] = set()
        self._pending: Future | None = None
        self.current: NeighborList | None = None
        self.builds = 0
        self.violations = 0
        self.recompilations = 0
        # Wall time on the builder thread: total, and its parts copying positions to the
        # host and putting the finished list on the device (the rest is the CPU search).
        self.build_seconds = self.copy_seconds = self.put_seconds = 0.0
        self.wait_seconds = 0.0  # time the caller waited for a list

    @property
    def rebuilds(self) -> int:
        """Lists built after the initial one (streamed and rollback builds)."""
        return self.builds - 1

    # ------------------------------------------------------------------ building

    def _build(self, positions) -> NeighborList:
        t0 = time.perf_counter()
        host = np.asarray(jax.device_get(positions), dtype=np.float64)
        t1 = time.perf_counter()
        skin = self.settings.skin
        pairs = build(host, self.cell, self.pbc, self.cutoff + skin, backend=self.settings.backend,
                      n_threads=self.settings.n_threads)
        t2 = time.perf_counter()
        counts = count(pairs, self.kinds, positions=host, cell=self.cell,
                       cutoff=self.cutoff if self.within_cutoff else None, block_atoms=self.block_atoms)
        self._shape = self._shape.grown(counts)
        nl = pack(pairs, host, self.cutoff + skin, skin, self._shape)
        jax.block_until_ready(nl)  # only this thread waits: the transfer is part of the build
        t3 = time.perf_counter()
        self.build_seconds += t3 - t0
        self.copy_seconds += t1 - t0
        self.put_seconds += t3 - t2
        self.builds += 1
        return nl

    def _build_now(self, positions) -> NeighborList:
        return self._pool.submit(self._build, positions).result()

    def _use(self, nl: NeighborList) -> None:
        if nl.shape not in self._seen:
            self.recompilations += bool(self._seen)
            self._seen.add(nl.shape)
        self.current = nl

    # ------------------------------------------------------------------ the schedule

    def start(self, positions) -> NeighborList:
        """Build L(P_0) from the initial positions (Å, unwrapped); the first two chunks use it."""
        self._use(self._build_now(positions))
        self._pending = _done(self.current)
        return self.current

    def begin_chunk(self, positions) -> None:
        """A chunk starts from ``positions``: start building its successor's list."""
        if self._pending is None and self.settings.mode != "static":
            self._pending = self._pool.submit(self._build, positions)
            if self.settings.mode == "sync":
                self._wait()  # build between chunks, no overlap (counted as waiting)

    def _wait(self) -> NeighborList:
        t0 = time.perf_counter()
        nl = self._pending.result()
        self.wait_seconds += time.perf_counter() - t0
        return nl

    def accept(self) -> None:
        """The chunk succeeded: the list built from its start becomes current."""
        if self.settings.mode != "static":
            self._use(self._wait())
            self._pending = None

    def recover(self, start_positions, outgrown: bool) -> Recovery:
        """The chunk that started at ``start_positions`` outran ``current`` (``outgrown``:
        its in-cutoff bounds were exceeded, else an atom moved skin/2). Makes ``current`` the
        list to redo it with, or returns ``STATIC`` when that is impossible."""
        self.violations += 1
        if outgrown:  # larger in-cutoff bounds (a static list: same pairs)
            self._pool.submit(self._grow_within_cutoff_bounds).result()
            static = self.settings.mode == "static"
            self._use(self._build_now(self.current.reference_positions if static else start_positions))
            return Recovery.GROWN
        if self.settings.mode == "static":
            return Recovery.STATIC
        already_fresh = bool(jnp.array_equal(self.current.reference_positions, start_positions))
        self._use(self._build_now(start_positions))  # the same list as the pending L(P_k)
        return Recovery.TOO_FAST if already_fresh else Recovery.REBUILT

    def _grow_within_cutoff_bounds(self) -> None:
        """On the builder thread, after the builds already submitted, so that every run
        with the same submissions gets the same lists."""
        self._shape = self._shape.with_larger_within_cutoff_bounds()

    def check(self, positions: jax.Array, nl: NeighborList):
        """``(largest displacement since nl was built (Å), in-cutoff bounds outgrown)`` on
        the device; traceable (for the jitted chunk loop)."""
        displacement = max_displacement(positions, nl)
        if not nl.shape.within_cutoff_by_kind:
            return displacement, jnp.array(False)
        cell = None if self.cell is None else jnp.asarray(self.cell, positions.dtype)
        return displacement, exceeds_within_cutoff_bounds(positions, nl, self._device_kinds, cell)

    # ------------------------------------------------------------------ checkpoints

    def state_dict(self) -> dict:
        """What a checkpoint needs to continue with the same lists (host values)."""
        return dict(shape=self.current.shape.to_dict(), reference=np.asarray(self.current.reference_positions),
                    pending_is_current=self._pending is not None, builds=self.builds,
                    violations=self.violations, recompilations=self.recompilations)

    def load_state_dict(self, state: dict) -> None:
        """Continue from ``state_dict()``: the list in use is rebuilt from its reference
        positions with its saved shape."""
        def restore_shape():
            self._shape = ListShape.from_dict(state["shape"])

        self._pool.submit(restore_shape).result()
        self._seen = set()
        self._use(self._build_now(state["reference"]))
        self._pending = _done(self.current) if state["pending_is_current"] else None
        self.builds = int(state["builds"])
        self.violations = int(state["violations"])
        self.recompilations = int(state["recompilations"])

    def close(self) -> None:
        self._pool.shutdown(wait=True)
