"""``nemd rdf traj.h5``: partial radial distribution functions of an H5MD trajectory.

    nemd rdf traj.h5 --pairs O-O O-H H-H --rmax 6 --bins 300 \
        --start 0 --stop -1 --step 1 --out rdf.csv --plot rdf.png

Prints, for each pair, the first peak (position, height), the first minimum and the
coordination number there. Errors are one line on stderr; no output file is left behind.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from ..analysis import describe_peaks, radial_distribution
from ..analysis.plots import plot_rdf
from ..files import atomic_path
from ..io.h5md import n_frames, read_frames


def frames_of(path, indices):
    for k in indices:
        t = read_frames(path, k, k + 1)
        if t.cell is None:
            raise ValueError(f"{path} has no periodic cell: an RDF needs one")
        yield t.positions[0], t.cell[0]


def main(argv=None) -> int:
    from tqdm import tqdm

    parser = argparse.ArgumentParser(prog="nemd rdf", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("trajectory", type=Path)
    parser.add_argument("--pairs", nargs="+", default=["O-O", "O-H", "H-H"])
    parser.add_argument("--rmax", type=float, default=6.0, help="Å")
    parser.add_argument("--bins", type=int, default=300)
    parser.add_argument("--start", type=int, default=None)
    parser.add_argument("--stop", type=int, default=None)
    parser.add_argument("--step", type=int, default=None)
    parser.add_argument("--out", type=Path, default=Path("rdf.csv"))
    parser.add_argument("--plot", type=Path, default=None, help="PNG figure")
    parser.add_argument("--threads", type=int, default=None, help="histogram threads (default: all cores)")
    args = parser.parse_args(argv)
    try:
        total = n_frames(args.trajectory)
        indices = range(total)[slice(args.start, args.stop, args.step)]
        with tqdm(total=len(indices), unit="frame", desc="RDF", disable=None) as bar:
            first = read_frames(args.trajectory, 0, 1)
            result = radial_distribution(frames_of(args.trajectory, indices), first.numbers, args.pairs,
                                         args.rmax, args.bins, n_threads=args.threads, progress=bar.update)
        header = ["r"] + [f"{k}_{p.replace('-', '')}" for p in result.g for k in ("g", "n")]
        columns = [result.r] + [c for p in result.g for c in (result.g[p], result.coordination[p])]
        with atomic_path(args.out) as tmp:
            np.savetxt(tmp, np.column_stack(columns), delimiter=",", header=",".join(header), comments="", fmt="%.8g")
        if args.plot:
            with atomic_path(args.plot) as tmp:
                plot_rdf(result, tmp, f"{args.trajectory.name}: {result.n_frames} frames")
    except (ValueError, FileNotFoundError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{result.n_frames} frames, r_max {args.rmax} Å, {args.bins} bins -> {args.out}"
          + (f", {args.plot}" if args.plot else ""))
    for pair in result.g:
        p = describe_peaks(result, pair)
        print(f"{pair:>6}: first peak {p.peak_r:.3f} Å (g = {p.peak_g:.2f}), first minimum "
              f"{p.minimum_r:.3f} Å (g = {p.minimum_g:.2f}), coordination {p.coordination:.2f}")
    return 0
