"""Energy + forces cost of nemd's models on liquid water (CPU by default).

Each (model, size, threads) runs in its own process pinned to that many cores, so its
peak memory (max RSS growth from building the list, compiling and evaluating, over the
process after imports and reading the structure) and thread count are its own.
Reports microseconds per atom per evaluation (median of repeats after compilation).

    python simulations/model_benchmark.py --models bpnn --sizes 1536 8640 --threads 1 2
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np

from benchmark_systems import liquid_water


def _max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def build_model(name: str):
    from nemd.data import water_data_dir
    from nemd.models import load

    if name == "bpnn":
        return load("bpnn", water_data_dir() / "bpnn-rpbe-d3")
    raise SystemExit(f"unknown model {name}")


def worker(name: str, n_atoms: int, dtype: str, repeats: int) -> dict:
    import jax

    if dtype == "float64":
        jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    from nemd.neighbors import build_neighbor_list

    s = liquid_water(n_atoms)
    model = build_model(name)
    baseline = _max_rss_mb()
    kinds = model.kinds(s.numbers) if hasattr(model, "kinds") else None
    nl = build_neighbor_list(s.positions, s.cell, s.pbc, model.cutoff, 0.0, kinds=kinds)
    fn = jax.jit(jax.value_and_grad(model.energy_fn(s.numbers, s.cell)))
    R = jnp.asarray(s.positions, dtype)
    t0 = time.perf_counter()
    jax.block_until_ready(fn(R, nl))
    compile_s = time.perf_counter() - t0
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(R, nl))
        times.append(time.perf_counter() - t0)
    t = float(np.median(times))
    return dict(model=name, atoms=s.n_atoms, time=t, us_per_atom=1e6 * t / s.n_atoms,
                compile=compile_s, peak_mb=max(0.0, _max_rss_mb() - baseline), rss_mb=_max_rss_mb())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["bpnn"])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1536, 8640])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="cores to pin each run to")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--worker", nargs=2, metavar=("MODEL", "ATOMS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker[0], int(args.worker[1]), args.dtype, args.repeats)))
        return
    print(f"{'model':<10} {'atoms':>6} {'thr':>3} {'time/s':>8} {'µs/atom':>8} {'compile/s':>9} "
          f"{'peak/MB':>8} {'rss/MB':>7}")
    for name in args.models:
        for n_atoms in args.sizes:
            for threads in args.threads:
                cores = ",".join(str(c) for c in sorted(os.sched_getaffinity(0))[:threads])
                cmd = ["taskset", "-c", cores, sys.executable, __file__, "--dtype", args.dtype,
                       "--repeats", str(args.repeats), "--worker", name, str(n_atoms)]
                proc = subprocess.run(cmd, capture_output=True, text=True)
                if proc.returncode != 0:
                    print(f"{name:<10} {n_atoms:>6} {threads:>3} failed: {proc.stderr.strip().splitlines()[-1:]}")
                    continue
                r = json.loads(proc.stdout.strip().splitlines()[-1])
                print(f"{name:<10} {r['atoms']:>6} {threads:>3} {r['time']:>8.3f} {r['us_per_atom']:>8.1f} "
                      f"{r['compile']:>9.1f} {r['peak_mb']:>8.0f} {r['rss_mb']:>7.0f}", flush=True)


if __name__ == "__main__":
    main()
