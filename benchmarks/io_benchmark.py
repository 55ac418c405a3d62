"""Trajectory and analysis benchmark: RDF against MDAnalysis InterRDF, H5MD writer throughput.

    python benchmarks/io_benchmark.py --sizes 69120 233280 --frames 2

RDF: O-O, O-H and H-H g(r) to 6 Å with 300 bins on replicas of the 8640-atom liquid;
seconds per frame for nemd (one neighbour list for all pairs) and MDAnalysis InterRDF
(one run per pair, as a user would do), in the same run. Writer: frames/s written to
disk (float32, gzip) at 69120 atoms, and the time the MD loop spends in the frame
callback (host copy + enqueue), which is what writing costs the integrator.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from systems import liquid_water


def rdf_benchmark(n_atoms: int, frames: int, workdir: Path) -> None:
    from MDAnalysis.analysis.rdf import InterRDF

    from nemd.analysis import radial_distribution
    from nemd.io.h5md import TrajectoryWriter, read_frames, universe

    s = liquid_water(n_atoms)
    path = workdir / f"rdf_{n_atoms}.h5"
    rng = np.random.default_rng(0)
    with TrajectoryWriter(path, s.numbers, s.cell, flush_every=frames) as w:
        for k in range(frames):
            w.write(k, 0.01 * k, s.positions + rng.normal(scale=0.02, size=s.positions.shape))
    t = read_frames(path)
    radial_distribution(zip(t.positions[:1], t.cell[:1]), t.numbers, ["O-O"], 2.0, 10)  # warm up kernels
    t0 = time.perf_counter()
    radial_distribution(zip(t.positions, t.cell), t.numbers, ["O-O", "O-H", "H-H"], 6.0, 300)
    ours = (time.perf_counter() - t0) / frames
    u = universe(path)
    oxygen, hydrogen = u.select_atoms("element O"), u.select_atoms("element H")
    t0 = time.perf_counter()
    for a, b, exclusion in ((oxygen, oxygen, (1, 1)), (oxygen, hydrogen, None), (hydrogen, hydrogen, (1, 1))):
        InterRDF(a, b, nbins=300, range=(0.0, 6.0), exclusion_block=exclusion).run()
    theirs = (time.perf_counter() - t0) / frames
    print(f"RDF {n_atoms:>7} atoms: nemd {ours:7.2f} s/frame, MDAnalysis InterRDF {theirs:7.2f} s/frame, "
          f"speed-up {theirs / ours:5.1f}x", flush=True)


def writer_benchmark(n_atoms: int, frames: int, workdir: Path) -> None:
    from nemd.io.h5md import TrajectoryWriter

    s = liquid_water(n_atoms)
    path = workdir / "writer.h5"
    rng = np.random.default_rng(0)
    data = [s.positions + rng.normal(scale=0.02, size=s.positions.shape) for _ in range(4)]
    callback = []
    t0 = time.perf_counter()
    with TrajectoryWriter(path, s.numbers, s.cell, velocities=True, flush_every=10) as w:
        for k in range(frames):
            c0 = time.perf_counter()
            p = np.array(data[k % 4])  # the host copy the driver makes for a frame
            w.write(k, 0.05 * k, p, velocities=p, observables=dict(temperature=300.0))
            callback.append(time.perf_counter() - c0)
    total = time.perf_counter() - t0
    size = path.stat().st_size / 2**20
    print(f"writer {n_atoms} atoms: {frames / total:.1f} frames/s to disk (positions + velocities, float32 gzip, "
          f"{size / frames:.2f} MB/frame); MD-loop callback {1e3 * np.median(callback):.2f} ms/frame "
          f"(median), {1e3 * max(callback):.1f} ms max", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[69120, 233280])
    parser.add_argument("--frames", type=int, default=2, help="frames per RDF measurement")
    parser.add_argument("--writer-frames", type=int, default=40)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            rdf_benchmark(n, args.frames, Path(tmp))
        writer_benchmark(69120, args.writer_frames, Path(tmp))


if __name__ == "__main__":
    main()
