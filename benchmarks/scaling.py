"""Scaling of every stage with N, peers in the same run: one driver, JSON lines, plots.

    python benchmarks/scaling.py --quick          # `make bench`: the short CPU version (<= 15 min)
    python benchmarks/scaling.py --stages models --sizes 8640 69120 311040

Stages and methods (each case in its own process, stopped above --max-gb resident memory;
a method stops at its first failure, so the largest N that ran is the answer):
  lists   nemd numba / fortran on 1 and all cores, vesin, ASE, JAX-MD's device list (a
          jitted rebuild), liquid water, full lists at 6 Å (the BPNN's 5.3 Å cutoff + skin);
  models  energy + forces of bpnn, nemp, nemp-small, facet, facet-small and their JAX-MD
          NequIP peers, on MD's 1 Å skin lists (huge pages for malloc as each prefers);
  md      one NVT step of the BPNN (chunks of 5): nemd with streamed (async), synchronous and
          static lists, and JAX-MD's own device list updated every step; the share of list
          building hidden behind device work is (sync - async) / (sync - static);
  rdf     O-O, O-H, H-H g(r) of a frame: nemd vs MDAnalysis InterRDF (and freud if present).
Systems: replicas of the 8640-atom RPBE-D3 liquid (1536: a cube cut from it; MD: a relaxed
water box). Results append to --out (JSON lines with machine, versions, date and command)
and plot to --plot (time per atom and peak memory vs N, one panel per stage, peers grey).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
from systems import liquid_water, md_water

from nemd.benchmarking import peak_rss_mb, run_isolated
from nemd.runtime import malloc_environment

OURS = {"lists": ("numba-1", "numba-all", "fortran-1", "fortran-all"), "models": ("bpnn", "nemp", "nemp-small",
        "nemp-l3", "facet", "facet-small"), "md": ("async", "sync", "static"), "rdf": ("nemd",)}
METHODS = {"lists": OURS["lists"] + ("vesin", "ase", "jaxmd"),
           "models": ("bpnn", "nemp", "nequip-nemp", "nemp-small", "nequip-nemp-small", "facet", "nequip-facet",
                      "facet-small", "nequip-facet-small"),
           "md": ("async", "sync", "static", "jaxmd"), "rdf": ("nemd", "mdanalysis", "freud")}
SIZES = [1536, 8640, 69120, 233280, 552960]
QUICK = {"lists": [1536, 8640, 69120, 233280], "models": [1536, 8640], "md": [1536, 8640], "rdf": [8640, 69120]}
QUICK_METHODS = {"models": ("bpnn", "nemp-small", "nequip-nemp-small", "facet-small", "nequip-facet-small")}


def measure(stage: str, method: str, n_atoms: int) -> dict:
    """One case in this process: seconds per unit of work (one list, one evaluation, one MD
    step, one RDF frame) and peak memory growth (MB)."""
    if stage == "lists":
        from neighbor_benchmark import worker

        peer, _, threads = method.partition("-")
        r = worker(peer, {"1": 1, "all": os.cpu_count()}.get(threads, 1), n_atoms, 6.0, 3)
        return dict(seconds=r["time"], peak_mb=r["peak_mb"], atoms=r["atoms"], pairs=r["pairs"])
    if stage == "models":
        from model_benchmark import worker

        r = worker(method, n_atoms, "float32", 3, 1.0, True)
        return dict(seconds=r["time"], peak_mb=r["peak_mb"], atoms=r["atoms"])
    if stage == "md":
        return md_step(method, n_atoms)
    return rdf_frame(method, n_atoms)


def md_step(method: str, n_atoms: int, steps: int = 10, chunk: int = 5) -> dict:
    from nemd.md import ListSettings, MDSettings, Simulation
    from nemd.models import load

    model = load("bpnn-rpbe-d3")
    s = md_water(model, n_atoms, 1.0, chunk)
    baseline = peak_rss_mb()
    if method == "jaxmd":
        from jaxmd_lists_benchmark import run_jaxmd

        per_step = run_jaxmd(model, s, steps)
    else:
        sim = Simulation(model, s.numbers, s.positions, s.cell, True,
                         MDSettings(timestep_fs=0.5, temperature_K=300.0, chunk_steps=chunk),
                         ListSettings(skin=1.0, mode=method))
        sim.run(chunk)  # compile
        t0 = time.perf_counter()
        sim.run(steps)
        per_step = (time.perf_counter() - t0) / steps
        sim.close()
    return dict(seconds=per_step, peak_mb=peak_rss_mb() - baseline, atoms=s.n_atoms)


def rdf_frame(method: str, n_atoms: int) -> dict:
    import tempfile

    from nemd.io.h5md import TrajectoryWriter

    s = liquid_water(n_atoms)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "frame.h5"
        with TrajectoryWriter(path, s.numbers, s.cell) as w:
            w.write(0, 0.0, s.positions)
        baseline = peak_rss_mb()
        if method == "nemd":
            from nemd.analysis import radial_distribution

            radial_distribution([(s.positions[:30], s.cell)], s.numbers[:30], ["O-O"], 2.0, 10)  # compile kernels
            t0 = time.perf_counter()
            radial_distribution([(s.positions, s.cell)], s.numbers, ["O-O", "O-H", "H-H"], 6.0, 300)
        elif method == "mdanalysis":
            from MDAnalysis.analysis.rdf import InterRDF

            from nemd.io.h5md import universe

            u = universe(path)
            o, h = u.select_atoms("element O"), u.select_atoms("element H")
            t0 = time.perf_counter()
            for a, b, exclusion in ((o, o, (1, 1)), (o, h, None), (h, h, (1, 1))):
                InterRDF(a, b, nbins=300, range=(0.0, 6.0), exclusion_block=exclusion).run()
        else:
            import freud

            box = freud.box.Box.from_matrix(s.cell.T)
            t0 = time.perf_counter()
            for a, b in ((8, 8), (8, 1), (1, 1)):
                rdf = freud.density.RDF(bins=300, r_max=6.0)
                rdf.compute((box, s.positions[s.numbers == b]), query_points=s.positions[s.numbers == a])
        seconds = time.perf_counter() - t0
    return dict(seconds=seconds, peak_mb=peak_rss_mb() - baseline, atoms=s.n_atoms)


def machine() -> dict:
    import jax

    from nemd import __version__

    return dict(machine=platform.node(), cpu=platform.processor() or platform.machine(), cores=os.cpu_count(),
                python=platform.python_version(), jax=jax.__version__, nemd=__version__,
                device=str(jax.devices()[0]))


def plot(records: list[dict], path) -> None:
    """Time per atom and peak memory vs N, log-log, one column per stage; peers grey."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stages = [s for s in METHODS if any(r["stage"] == s for r in records)]
    fig, axes = plt.subplots(2, len(stages), figsize=(4.2 * len(stages), 7), squeeze=False)
    for col, stage in enumerate(stages):
        for method in METHODS[stage]:
            rows = sorted((r for r in records if r["stage"] == stage and r["method"] == method), key=lambda r: r["atoms"])
            if not rows:
                continue
            ours = method in OURS[stage]
            style = dict(marker="o", lw=1.6) if ours else dict(marker="s", lw=1.0, color="0.6", ls="--")
            n = [r["atoms"] for r in rows]
            axes[0, col].plot(n, [1e6 * r["seconds"] / r["atoms"] for r in rows], label=method, **style)
            axes[1, col].plot(n, [max(r["peak_mb"], 1.0) for r in rows], label=method, **style)
        axes[0, col].set_title(stage)
        axes[0, col].set_ylabel("µs per atom")
        axes[1, col].set_ylabel("peak memory (MB)")
        for ax in axes[:, col]:
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel("atoms")
        axes[0, col].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def table(records: list[dict]) -> None:
    """The cases with their ratio to nemd's best method of the stage at the same N."""
    print(f"\n{'stage':<7} {'method':<19} {'atoms':>7} {'time/s':>9} {'µs/atom':>9} {'peak MB':>8} {'vs nemd':>8}")
    for r in records:
        best = min((q["seconds"] for q in records if q["stage"] == r["stage"] and q["atoms"] == r["atoms"]
                    and q["method"] in OURS[r["stage"]] and q["method"] not in ("sync", "static")), default=np.nan)
        print(f"{r['stage']:<7} {r['method']:<19} {r['atoms']:>7} {r['seconds']:>9.4f} "
              f"{1e6 * r['seconds'] / r['atoms']:>9.2f} {r['peak_mb']:>8.0f} {r['seconds'] / best:>8.2f}")
    for n in sorted({r["atoms"] for r in records if r["stage"] == "md"}):
        t = {r["method"]: r["seconds"] for r in records if r["stage"] == "md" and r["atoms"] == n}
        if {"async", "sync", "static"} <= set(t) and t["sync"] > t["static"]:
            print(f"md {n} atoms: share of list building hidden = {(t['sync'] - t['async']) / (t['sync'] - t['static']):.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stages", nargs="+", choices=list(METHODS), default=list(METHODS))
    parser.add_argument("--sizes", type=int, nargs="+", default=None, help=f"atoms (default {SIZES})")
    parser.add_argument("--methods", nargs="+", default=None, help="only these methods")
    parser.add_argument("--quick", action="store_true", help="the short CPU run of `make bench`")
    parser.add_argument("--max-gb", type=float, default=20.0)
    parser.add_argument("--out", type=Path, default=Path("runs/scaling.jsonl"))
    parser.add_argument("--plot", type=Path, default=Path("runs/scaling.png"))
    parser.add_argument("--replot", type=Path, nargs="+", default=None, metavar="JSONL",
                        help="measure nothing: table and plot (--plot) of these results files together")
    parser.add_argument("--worker", nargs=3, metavar=("STAGE", "METHOD", "ATOMS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        stage, method, n_atoms = args.worker
        print(json.dumps(measure(stage, method, int(n_atoms))))
        return
    if args.replot:
        records = [json.loads(line) for path in args.replot for line in path.read_text().splitlines() if line.strip()]
        table(records)
        plot(records, args.plot)
        print(f"\nplot: {args.plot}")
        return
    args.out.parent.mkdir(parents=True, exist_ok=True)
    common = dict(machine(), date=time.strftime("%Y-%m-%d"), command=" ".join(sys.argv))
    records = []
    for stage in args.stages:
        methods = args.methods or (QUICK_METHODS.get(stage, METHODS[stage]) if args.quick else METHODS[stage])
        for method in [m for m in methods if m in METHODS[stage]]:
            for n_atoms in args.sizes or (QUICK[stage] if args.quick else SIZES):
                if stage == "lists" and method == "ase" and n_atoms > 69120:
                    break  # minutes per list beyond this
                huge = stage == "models" and method != "bpnn"  # each model as it prefers, peers as theirs
                outcome = run_isolated([sys.executable, __file__, "--worker", stage, method, str(n_atoms)],
                                       args.max_gb, env=malloc_environment(huge))
                if outcome.failure():
                    print(f"{stage:<7} {method:<19} {n_atoms:>7} {outcome.failure()}", flush=True)
                    break
                r = dict(common, stage=stage, method=method, malloc="huge" if huge else "default",
                         **json.loads(outcome.stdout.strip().splitlines()[-1]))
                records.append(r)
                print(f"{stage:<7} {method:<19} {r['atoms']:>7} {r['seconds']:>9.4f} s "
                      f"{1e6 * r['seconds'] / r['atoms']:>9.2f} µs/atom {r['peak_mb']:>8.0f} MB", flush=True)
                with open(args.out, "a") as f:
                    f.write(json.dumps(r) + "\n")
    table(records)
    plot(records, args.plot)
    print(f"\nresults: {args.out}; plot: {args.plot}")


if __name__ == "__main__":
    main()
