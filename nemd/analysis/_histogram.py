"""Pair-distance histograms straight from the cell lists (Numba, GIL released).

Walks the same binned frame as ``nemd.neighbors`` (``geometry.bin_atoms``) but, instead
of emitting pairs, bins every distance below r_max into ``hist[kind_i, kind_j, bin]``:
no pair list is materialised, which is what makes RDFs of large frames cheap.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
from numba import njit

from ..neighbors._numba_kernel import image_offset, row_segment
from ..neighbors.builders import default_threads
from ..neighbors.geometry import bin_atoms


@njit(nogil=True, cache=True)
def _histogram_slots(sorted_positions, sorted_kind, atom_bin_sorted, basis, bin_start, n_bins, stencil,
                     r_max, edges, p0, p1, hist):
    """Add the distances of receivers in bin slots [p0, p1) to ``hist`` (kinds < 0 skipped).

    Bins match ``numpy.histogram`` on ``edges`` exactly (edge comparisons, last bin closed).
    """
    n_hist = edges.shape[0] - 1
    scale = n_hist / r_max
    r_max2 = r_max * r_max
    n0, n1, n2 = n_bins[0], n_bins[1], n_bins[2]
    for q in range(p0, p1):
        ki = sorted_kind[q]
        if ki < 0:
            continue
        xi0 = sorted_positions[q, 0]
        xi1 = sorted_positions[q, 1]
        xi2 = sorted_positions[q, 2]
        for row in range(stencil.shape[0]):
            c0 = atom_bin_sorted[q, 0] + stencil[row, 0]
            c1 = atom_bin_sorted[q, 1] + stencil[row, 1]
            w0 = c0 % n0
            s0 = (c0 - w0) // n0
            w1 = c1 % n1
            s1 = (c1 - w1) // n1
            lo = atom_bin_sorted[q, 2] + stencil[row, 2]
            hi = atom_bin_sorted[q, 2] + stencil[row, 3]
            row_base = (w0 * n1 + w1) * n2
            c2 = lo
            while c2 <= hi:
                w2, s2, last = row_segment(c2, hi, n2)
                d0, d1, d2 = image_offset(basis, s0, s1, s2, xi0, xi1, xi2)
                self_image = s0 == 0 and s1 == 0 and s2 == 0
                for p in range(bin_start[row_base + w2], bin_start[row_base + w2 + last - c2 + 1]):
                    kj = sorted_kind[p]
                    if kj < 0 or (p == q and self_image):
                        continue
                    r0 = sorted_positions[p, 0] + d0
                    r1 = sorted_positions[p, 1] + d1
                    r2 = sorted_positions[p, 2] + d2
                    rr = r0 * r0 + r1 * r1 + r2 * r2
                    if rr <= r_max2:
                        r = np.sqrt(rr)
                        if r > r_max:
                            continue
                        k = min(int(r * scale), n_hist - 1)
                        if r < edges[k]:
                            k -= 1
                        elif k + 1 < n_hist and r >= edges[k + 1]:
                            k += 1
                        hist[ki, kj, k] += 1
                c2 = last + 1


def pair_histogram(positions, cell, kinds, n_kinds: int, edges, n_threads: int | None = None) -> np.ndarray:
    """``hist[a, b, k]``: ordered pairs (i of kind a, j of kind b, any periodic image,
    i != j or a non-zero image) with distance in bin k of ``edges`` (0 .. r_max, closed
    at r_max like numpy.histogram). Atoms with kind -1 are ignored. Fully periodic cell."""
    edges = np.asarray(edges, dtype=np.float64)
    r_max = float(edges[-1])
    system = bin_atoms(np.asarray(positions, np.float64), np.asarray(cell, np.float64), np.ones(3, bool),
                       np.nextafter(r_max, np.inf))
    order = system.sorted_index
    kinds_sorted = np.asarray(kinds, np.int64)[order]
    bins_sorted = np.ascontiguousarray(system.atom_bin[order])
    n = len(order)
    threads = default_threads() if n_threads is None else n_threads
    spans = np.linspace(0, n, min(max(1, threads), max(1, n // 1024)) + 1).astype(np.int64)

    def run(k):
        hist = np.zeros((n_kinds, n_kinds, len(edges) - 1), np.int64)
        _histogram_slots(system.sorted_positions, kinds_sorted, bins_sorted, system.basis, system.bin_start,
                         system.n_bins, system.stencil, r_max, edges, spans[k], spans[k + 1], hist)
        return hist

    if len(spans) > 2:
        with ThreadPoolExecutor(len(spans) - 1) as pool:
            return sum(pool.map(run, range(len(spans) - 1)))
    return run(0)
