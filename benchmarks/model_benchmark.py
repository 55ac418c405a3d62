"""Energy + forces cost of nemd's models on liquid water (CPU by default).

Each (model, size, threads) runs in its own process pinned to that many cores, so its
peak memory (max RSS growth from building the list, compiling and evaluating, over the
process after imports and reading the structure) and thread count are its own.
Reports microseconds per atom per evaluation (median of repeats after compilation).

Models: ``bpnn`` (RPBE-D3, needs ../shared), ``nemp``, ``nemp-small``, ``facet``,
``facet-small`` (random weights: speed does not depend on their values) and their
edge-equivariant peers from JAX-MD, ``nequip-<preset>``: ``jax_md.energy.nequip_neighbor_list``
configured like that preset (cutoff, layers, node irreps, edge harmonics), fed the same CPU
edge list (JAX-MD's own list builder is not timed). Ratios peer/model are printed at the end.

    python benchmarks/model_benchmark.py --models nemp nequip-nemp --sizes 1536 8640 --threads 1

``--skin`` evaluates on a skin-buffered list, as in MD; ``--within-cutoff`` gives that list
in-cutoff bounds, so that models that can (bpnn, nemp, facet) lay out only the edges inside
their cutoff; the NequIP peers evaluate every edge of the list they are given (as in MD,
where JAX-MD's own lists carry the skin too). ``--malloc`` sets huge pages for malloc per
case (default: as each model prefers, the peer as its model, so comparisons stay fair).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np
from systems import liquid_water

from nemd.benchmarking import peak_rss_mb, run_isolated
from nemd.runtime import malloc_environment

GRAPH_MODELS = ("nemp", "nemp-small", "facet", "facet-small")
PEERS = {f"nequip-{name}": name for name in GRAPH_MODELS}  # JAX-MD peer -> the preset it mirrors


def huge_pages(name: str, choice: str) -> bool:
    """Whether the case of model ``name`` runs with huge pages for malloc."""
    if choice != "auto":
        return choice == "huge"
    from nemd.models import load

    return load("bpnn-rpbe-d3" if name == "bpnn" else PEERS.get(name, name)).prefers_huge_pages


def worker(name: str, n_atoms: int, dtype: str, repeats: int, skin: float = 0.0, within_cutoff: bool = False) -> dict:
    import jax

    if dtype == "float64":
        jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    from nemd.models import load
    from nemd.neighbors import build_neighbor_list

    s = liquid_water(n_atoms)
    model = load("bpnn-rpbe-d3" if name == "bpnn" else name)
    baseline = peak_rss_mb()
    nl = build_neighbor_list(s.positions, s.cell, s.pbc, model.cutoff, skin, kinds=model.kinds(s.numbers),
                             within_cutoff=within_cutoff, block_atoms=model.list_block_atoms or 0)
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
                compile=compile_s, peak_mb=max(0.0, peak_rss_mb() - baseline), rss_mb=peak_rss_mb(),
                parameters=getattr(model, "n_parameters", None))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["bpnn"])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1536, 8640])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="cores to pin each run to")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skin", type=float, default=0.0, help="list skin in Å (default 0)")
    parser.add_argument("--within-cutoff", action="store_true", help="lists with in-cutoff bounds (see above)")
    parser.add_argument("--malloc", choices=["auto", "huge", "default"], default="auto",
                        help="huge pages for malloc: as each model prefers (auto; a peer gets its model's), "
                             "always, or never (nemd.runtime)")
    parser.add_argument("--max-gb", type=float, default=18.0,
                        help="stop a case whose resident memory passes this (GB); reported as such")
    parser.add_argument("--out", default=None, help="also append each result as a JSON line to this file")
    parser.add_argument("--worker", nargs=2, metavar=("MODEL", "ATOMS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker[0], int(args.worker[1]), args.dtype, args.repeats, args.skin,
                                args.within_cutoff)))
        return
    print(f"malloc: {args.malloc} (huge pages per model as it prefers, peers as their model)" if args.malloc == "auto"
          else f"malloc: {args.malloc} for every case")
    print(f"{'model':<10} {'atoms':>6} {'thr':>3} {'time/s':>8} {'µs/atom':>8} {'compile/s':>9} "
          f"{'peak/MB':>8} {'rss/MB':>7}")
    results = {}
    for name in args.models:
        for n_atoms in args.sizes:
            for threads in args.threads:
                cores = ",".join(str(c) for c in sorted(os.sched_getaffinity(0))[:threads])
                cmd = ["taskset", "-c", cores, sys.executable, __file__, "--dtype", args.dtype,
                       "--repeats", str(args.repeats), "--skin", str(args.skin), "--worker", name, str(n_atoms)]
                cmd += ["--within-cutoff"] if args.within_cutoff else []
                outcome = run_isolated(cmd, args.max_gb, env=malloc_environment(huge_pages(name, args.malloc)))
                if outcome.failure():
                    print(f"{name:<10} {n_atoms:>6} {threads:>3} {outcome.failure()}", flush=True)
                    continue
                r = json.loads(outcome.stdout.strip().splitlines()[-1])
                results[name, n_atoms, threads] = r
                if args.out:
                    with open(args.out, "a") as f:
                        f.write(json.dumps(dict(r, threads=threads, skin=args.skin, dtype=args.dtype)) + "\n")
                print(f"{name:<10} {r['atoms']:>6} {threads:>3} {r['time']:>8.3f} {r['us_per_atom']:>8.1f} "
                      f"{r['compile']:>9.1f} {r['peak_mb']:>8.0f} {r['rss_mb']:>7.0f}", flush=True)
    pairs = [(peer, model, n, t) for (peer, n, t) in results for model in [PEERS.get(peer)]
             if (model, n, t) in results]
    if pairs:
        print("\nratios peer / model (time per evaluation, peak memory)")
        for peer, model, n, t in pairs:
            a, b = results[peer, n, t], results[model, n, t]
            print(f"{peer:<19} / {model:<12} {n:>6} atoms {t} thr: time x{a['time'] / b['time']:.2f}, "
                  f"memory x{a['peak_mb'] / max(b['peak_mb'], 1):.2f}")
    students = [(model, n, t) for (model, n, t) in results if model != "bpnn" and ("bpnn", n, t) in results]
    if students:  # e.g. a model distilled from the BPNN against its teacher (docs/models.md)
        print("\nratios bpnn / model (time per evaluation: > 1 means the model is faster than the BPNN)")
        for model, n, t in students:
            ratio = results["bpnn", n, t]["time"] / results[model, n, t]["time"]
            print(f"bpnn / {model:<19} {n:>6} atoms {t} thr: time x{ratio:.2f}")


if __name__ == "__main__":
    main()
