"""Partial radial distribution functions g_ab(r) from nemd's compiled cell lists.

Normalisation follows MDAnalysis ``InterRDF`` exactly (so results are comparable):

    g_ab(r_k) = counts_k / (n_frames * 4/3 pi (r_{k+1}^3 - r_k^3) * N_ab / <V>)

with counts over all frames, ``<V>`` the mean cell volume over the frames, and
``N_ab = n_a n_b`` for a != b or ``n_a (n_a - 1)`` for a == b (self pairs excluded;
InterRDF with ``exclusion_block=(1, 1)``). Unlike a minimum-image search, every
periodic image within ``r_max`` is counted, so ``r_max`` may exceed half the cell.
The running coordination number is ``n_ab(r) = cumulative counts / (n_frames n_a)``.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Iterable

import numpy as np

from ..units import symbols_of
from ._histogram import pair_histogram


@dataclasses.dataclass(frozen=True)
class RDFResult:
    edges: np.ndarray  # (n_bins + 1,) Å
    g: dict  # "O-H" -> (n_bins,)
    coordination: dict  # "O-H" -> (n_bins,) running coordination number at the bin's upper edge
    n_frames: int

    @property
    def r(self) -> np.ndarray:
        """Bin centres (Å)."""
        return 0.5 * (self.edges[1:] + self.edges[:-1])


def parse_pair(pair) -> tuple[str, str]:
    if isinstance(pair, str):
        parts = pair.split("-")
        if len(parts) != 2 or not all(parts):
            raise ValueError(f"element pair {pair!r} is not of the form A-B (e.g. O-H)")
        return parts[0], parts[1]
    a, b = pair
    return str(a), str(b)


def radial_distribution(frames: Iterable, numbers, pairs, r_max: float = 6.0, n_bins: int = 300,
                        *, n_threads: int | None = None,
                        progress: Callable[[int], None] | None = None) -> RDFResult:
    """Average g_ab(r) over ``frames``.

    Args:
      frames: iterable of ``(positions (N, 3) Å, cell (3, 3) Å)``; periodic in all
        directions (an RDF needs a density).
      numbers: (N,) atomic numbers.
      pairs: element pairs, e.g. ``["O-O", "O-H"]`` or ``[("O", "H")]``.
      r_max, n_bins: histogram range (0, r_max] in Å and number of bins.
      n_threads: threads for the histogram kernel (default: all cores).
      progress: called with 1 after each frame (progress bars).
    """
    from ase.data import atomic_numbers

    numbers = np.asarray(numbers)
    if not r_max > 0 or int(n_bins) < 1:
        raise ValueError(f"r_max must be positive and n_bins >= 1 (got {r_max}, {n_bins})")
    pairs = [parse_pair(p) for p in pairs]
    if not pairs:
        raise ValueError("no element pairs given")
    present = set(numbers.tolist())
    z_of = {}
    for a, b in pairs:
        for symbol in (a, b):
            z = atomic_numbers.get(symbol)
            if z is None or z not in present:
                raise ValueError(f"element {symbol!r} of pair {a}-{b} is not in the trajectory "
                                 f"(elements: {sorted(symbols_of(sorted(present)))})")
            z_of[symbol] = z
    edges = np.linspace(0.0, r_max, int(n_bins) + 1)
    elements = sorted(set(z_of.values()))
    kinds = np.full(numbers.shape, -1, np.int64)
    for k, z in enumerate(elements):
        kinds[numbers == z] = k
    counts = {p: np.zeros(int(n_bins), np.int64) for p in pairs}
    volume_sum, n_frames = 0.0, 0
    for positions, cell in frames:
        cell = np.asarray(cell, np.float64)
        volume = abs(np.linalg.det(cell))
        if volume == 0:
            raise ValueError("an RDF needs a periodic cell with non-zero volume")
        hist = pair_histogram(positions, cell, kinds, len(elements), edges, n_threads)
        for a, b in pairs:
            counts[(a, b)] += hist[elements.index(z_of[a]), elements.index(z_of[b])]
        volume_sum += volume
        n_frames += 1
        if progress:
            progress(1)
    if n_frames == 0:
        raise ValueError("no frames to analyse (empty frame range)")
    shell = 4.0 / 3.0 * np.pi * np.diff(edges**3)
    mean_volume = volume_sum / n_frames
    g, coordination = {}, {}
    for a, b in pairs:
        n_a = int(np.sum(numbers == z_of[a]))
        n_b = int(np.sum(numbers == z_of[b]))
        n_pairs = n_a * (n_a - 1) if a == b else n_a * n_b
        key = f"{a}-{b}"
        g[key] = counts[(a, b)] / (n_frames * shell * n_pairs / mean_volume)
        coordination[key] = np.cumsum(counts[(a, b)]) / (n_frames * n_a)
    return RDFResult(edges, g, coordination, n_frames)


@dataclasses.dataclass(frozen=True)
class Peaks:
    peak_r: float  # Å
    peak_g: float
    minimum_r: float  # Å (nan if none within r_max)
    minimum_g: float
    coordination: float  # running coordination number at the first minimum


def describe_peaks(result: RDFResult, pair: str, width: float = 0.15) -> Peaks:
    """First peak, first minimum after it, and the coordination number there.

    g is smoothed with a running mean over ``width`` Å; a peak (minimum) is a point that
    is the largest (smallest) within ``width`` on either side, so bin noise is ignored.
    The first peak is the first such maximum with g > 1; the coordination number is the
    running one at the minimum's bin centre.
    """
    g, r = result.g[pair], result.r
    dr = r[1] - r[0] if r.size > 1 else 1.0
    w = max(1, int(round(width / dr)))
    gs = np.convolve(g, np.ones(2 * w + 1) / (2 * w + 1), mode="same")

    def extreme(k, pick):
        window = gs[max(0, k - w): k + w + 1]
        return gs[k] == pick(window) and window.size == 2 * w + 1

    peak = next((k for k in range(w, len(gs) - w) if gs[k] > 1.0 and extreme(k, np.max)), None)
    if peak is None:
        return Peaks(np.nan, np.nan, np.nan, np.nan, np.nan)
    peak = max(range(max(0, peak - w), min(len(g), peak + w + 1)), key=lambda k: g[k])  # unsmoothed top
    minimum = next((k for k in range(peak + 1, len(gs) - w) if extreme(k, np.min)), None)
    if minimum is None:
        return Peaks(r[peak], g[peak], np.nan, np.nan, np.nan)
    running = result.coordination[pair]  # at upper bin edges; the minimum is at a bin centre
    coordination = 0.5 * (running[minimum] + (running[minimum - 1] if minimum else 0.0))
    return Peaks(r[peak], g[peak], r[minimum], gs[minimum], float(coordination))
