"""Host-side neighbour-list construction: ``build(positions, cell, pbc, cutoff)``.

Backends share the validation and binning (``geometry``) and differ only in the
compiled pair-search kernel: Numba (always available) and Fortran (optional, built by
``make setup`` from ``fortran_nl/``). Both release the GIL; several threads each search
a contiguous range of receivers and the pieces are concatenated in order, so the
output does not depend on the number of threads.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from typing import NamedTuple

import numpy as np

from .brute import brute_force_pairs
from .geometry import BinnedSystem, bin_atoms, validate_inputs

BACKENDS = ("auto", "numba", "fortran", "brute")


class Pairs(NamedTuple):
    """Full directed pair list in canonical order (receiver, sender, shift).

    ``r_ij = positions[senders] + shifts @ cell - positions[receivers]``.
    """

    senders: np.ndarray  # (E,) int32
    receivers: np.ndarray  # (E,) int32
    shifts: np.ndarray  # (E, 3) int32 lattice translations


class _Kernels(NamedTuple):
    search_slots: object
    decode_slots: object


def _numba_kernels() -> _Kernels:
    from ._numba_kernel import decode_slots, search_slots

    return _Kernels(search_slots, decode_slots)


def _fortran_kernels() -> _Kernels:
    try:
        from . import _fortran_nl  # built by `make fortran` from fortran_nl/
    except ImportError as exc:
        raise ValueError(
            "the Fortran neighbour backend is not built: run `make fortran` (needs gfortran) "
            "or use backend='numba'"
        ) from exc

    # Fortran sees the transposed (3, N) views of row-major (N, 3) arrays: no copies.
    def search_slots(sorted_positions, sorted_index, atom_bin, basis, bin_start, n_bins, stencil,
                     periodic, cutoff2, key_base, p0, p1, keys, seg_start, counts):
        n, p_next = _fortran_nl.search_slots(
            sorted_positions.T, sorted_index, atom_bin.T, basis.T, bin_start, n_bins, stencil.T,
            periodic.astype(np.int64), cutoff2, key_base, p0, p1, keys, seg_start, counts)
        return int(n), int(p_next)

    def decode_slots(keys, seg_start, counts, offsets, sorted_index, image, key_base, p0, p1,
                     out_receivers, out_senders, out_shifts):
        _fortran_nl.decode_slots(keys, seg_start, counts, offsets, sorted_index, image.T, key_base,
                                 p0, p1, out_receivers, out_senders, out_shifts.T)

    return _Kernels(search_slots, decode_slots)


@lru_cache(maxsize=None)
def fortran_available() -> bool:
    """True when the optional Fortran extension is importable."""
    try:
        _fortran_kernels()
    except ValueError:
        return False
    return True


def available_backends() -> list[str]:
    """Backends usable in this installation (``brute`` is for tests)."""
    return ["numba"] + (["fortran"] if fortran_available() else []) + ["brute"]


def resolve_backend(backend: str) -> str:
    """The backend ``backend`` stands for (``auto``: Fortran when built, else Numba)."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown neighbour backend {backend!r}; choose one of {BACKENDS}")
    if backend == "auto":
        # Measured in simulations/neighbor_benchmark.py (docs/benchmarks.md): the Fortran
        # kernel is the faster one; Numba is the fallback when it is not built.
        return "fortran" if fortran_available() else "numba"
    return backend


def default_threads() -> int:
    """Threads used when ``n_threads`` is None: the CPU cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - non-Linux
        return max(1, os.cpu_count() or 1)


def _search(kernels: _Kernels, system: BinnedSystem, cutoff2, p0, p1, per_atom, seg_start, counts):
    """Search slots [p0, p1), growing key buffers until everything fits.

    Returns the pieces ``(keys, p0, p1)``; ``seg_start``/``counts`` are filled in place.
    """
    pieces = []
    while p0 < p1:
        keys = np.empty(int((p1 - p0) * per_atom) + 64, np.int64)
        n, p_next = kernels.search_slots(
            system.sorted_positions, system.sorted_index, system.atom_bin, system.basis,
            system.bin_start, system.n_bins, system.stencil, system.periodic, cutoff2,
            system.key_base, p0, p1, keys, seg_start, counts,
        )
        if p_next == p0:  # not even one receiver fitted
            per_atom = 2.0 * keys.size
            continue
        pieces.append((keys[:n], p0, p_next))
        if p_next < p1:
            per_atom = max(per_atom, 1.3 * n / (p_next - p0))
        p0 = p_next
    return pieces


def _estimate_pairs_per_atom(system: BinnedSystem, cutoff: float) -> float:
    n = system.wrapped.shape[0]
    volume = abs(np.linalg.det(system.basis))
    if n == 0 or volume == 0 or not system.periodic.all():
        return 32.0
    return 1.15 * (n / volume) * 4.0 / 3.0 * np.pi * cutoff**3 + 8.0


def cell_list_pairs(positions, cell, pbc, cutoff, kernels: _Kernels, n_threads: int = 1) -> Pairs:
    """Cell-list search with compiled ``kernels`` on validated input."""
    n_atoms = positions.shape[0]
    system = bin_atoms(positions, cell, pbc, cutoff)
    per_atom = _estimate_pairs_per_atom(system, cutoff)
    seg_start = np.zeros(n_atoms, np.int64)
    counts = np.zeros(n_atoms, np.int64)
    n_chunks = 1 if n_threads <= 1 or n_atoms < 2048 else 4 * n_threads
    bounds = np.linspace(0, n_atoms, n_chunks + 1).astype(np.int64)
    spans = [(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]
    pool = ThreadPoolExecutor(max_workers=n_threads) if len(spans) > 1 else None
    run = pool.map if pool else map
    try:
        pieces = [piece for chunk in run(
            lambda span: _search(kernels, system, cutoff * cutoff, *span, per_atom, seg_start, counts), spans)
            for piece in chunk]
        offsets = np.zeros(n_atoms, np.int64)
        np.cumsum(counts[:-1], out=offsets[1:])
        n_pairs = int(counts.sum())
        receivers, senders = np.empty(n_pairs, np.int32), np.empty(n_pairs, np.int32)
        shifts = np.empty((n_pairs, 3), np.int32)

        def decode(piece):
            keys, p0, p1 = piece
            if keys.size == 0:  # nothing to write (and f2py rejects empty arrays)
                return
            kernels.decode_slots(keys, seg_start, counts, offsets, system.sorted_index, system.image,
                                 system.key_base, p0, p1, receivers, senders, shifts)

        list(run(decode, pieces))
    finally:
        if pool:
            pool.shutdown()
    return Pairs(senders, receivers, shifts)


def build(positions, cell, pbc, cutoff, *, backend: str = "auto", n_threads: int | None = None) -> Pairs:
    """Full directed neighbour list of every pair closer than ``cutoff``.

    Args:
      positions: (N, 3) Cartesian positions in Å; may lie outside the cell (unwrapped).
      cell: (3, 3) lattice vectors as rows in Å (or (3,) for an orthorhombic box); None or
        zeros for a non-periodic cluster. Rows of non-periodic directions are ignored.
      pbc: bool or three bools, periodicity along each lattice vector.
      cutoff: pair cutoff in Å (strict: pairs with ``|r_ij| < cutoff``).
      backend: "numba", "fortran", "brute" (O(N^2), float64, for tests) or "auto".
      n_threads: threads for the compiled backends (default: all cores available).

    Returns:
      ``Pairs(senders, receivers, shifts)`` host arrays (int32) such that
      ``r_ij = positions[senders] + shifts @ cell - positions[receivers]``, sorted by
      (receiver, sender, shift). Every periodic image inside the cutoff appears,
      including images of an atom itself; only i == j with zero shift is excluded.
    """
    backend = resolve_backend(backend)
    positions, cell, pbc, cutoff = validate_inputs(positions, cell, pbc, cutoff)
    if backend == "brute":
        return Pairs(*brute_force_pairs(positions, cell, pbc, cutoff))
    kernels = _fortran_kernels() if backend == "fortran" else _numba_kernels()
    threads = default_threads() if n_threads is None else int(n_threads)
    if threads < 1:
        raise ValueError(f"n_threads must be >= 1, got {n_threads}")
    return cell_list_pairs(positions, cell, pbc, cutoff, kernels, threads)
