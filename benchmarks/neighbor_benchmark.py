"""Neighbour-list benchmark: nemd's Numba and Fortran cell lists against vesin and ASE.

Liquid water boxes built from the 8640-atom RPBE-D3 liquid in ../shared/data/water
(replicated 2x2x2, 3x3x3, 4x4x4; a 1536-atom cube cut from it for the small end), full
lists at 5 and 6 Å. Every measurement runs in its own subprocess so that its peak
memory (max RSS above the process's baseline after loading the structure) is its own.

    python benchmarks/neighbor_benchmark.py                 # full table (several minutes)
    python benchmarks/neighbor_benchmark.py --sizes 1536 8640 --cutoffs 5
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import numpy as np

from systems import liquid_water

from nemd.benchmarking import peak_rss_mb

SIZES = [1536, 8640, 69120, 233280, 552960]
PEERS = [("numba", 1), ("numba", 2), ("fortran", 1), ("fortran", 2), ("vesin", 1), ("ase", 1)]


def worker(peer: str, threads: int, n_atoms: int, cutoff: float, repeats: int) -> dict:
    s = liquid_water(n_atoms)
    if peer in ("numba", "fortran"):
        from nemd.neighbors import build

        build(s.positions[:64], s.cell, True, cutoff, backend=peer, n_threads=threads)  # compile
        run = lambda: build(s.positions, s.cell, s.pbc, cutoff, backend=peer, n_threads=threads)  # noqa: E731
        count = lambda out: len(out.senders)  # noqa: E731
    elif peer == "vesin":
        import vesin

        calc = vesin.NeighborList(cutoff=cutoff, full_list=True)
        run = lambda: calc.compute(points=s.positions, box=s.cell, periodic=True, quantities="ijS")  # noqa: E731
        count = lambda out: len(out[0])  # noqa: E731
    elif peer == "ase":
        from ase.neighborlist import neighbor_list

        atoms = s.to_ase()
        run = lambda: neighbor_list("ijS", atoms, cutoff)  # noqa: E731
        count = lambda out: len(out[0])  # noqa: E731
    elif peer == "jaxmd":  # JAX-MD's device list (here on the CPU backend): a jitted rebuild
        import jax
        import jax.numpy as jnp
        from jax_md import partition, space

        side = jnp.asarray(np.diag(s.cell), jnp.float32)
        displacement, _ = space.periodic(side)
        neighbor_fn = partition.neighbor_list(displacement, side, cutoff, dr_threshold=0.2,
                                              format=partition.Sparse, capacity_multiplier=1.1)
        R = jnp.asarray(np.mod(s.positions, np.diag(s.cell)), jnp.float32)
        nbrs = neighbor_fn.allocate(R)
        # every atom moved 0.5 Å (a periodic translation of the same liquid): a full rebuild
        rebuild = jax.jit(lambda R, nbrs: nbrs.update(jnp.mod(R + 0.5, side)))
        jax.block_until_ready(rebuild(R, nbrs))  # compile
        run = lambda: jax.block_until_ready(rebuild(R, nbrs))  # noqa: E731
        count = lambda out: int(jnp.sum(out.idx[0] < s.n_atoms))  # noqa: E731
    else:
        raise SystemExit(f"unknown peer {peer}")
    baseline = peak_rss_mb()
    times, pairs = [], 0
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = run()
        times.append(time.perf_counter() - t0)
        pairs = count(out)
        del out
    return dict(peer=peer, threads=threads, atoms=s.n_atoms, cutoff=cutoff, pairs=pairs,
                time=float(np.median(times)), peak_mb=max(0.0, peak_rss_mb() - baseline))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=SIZES)
    parser.add_argument("--cutoffs", type=float, nargs="+", default=[5.0, 6.0])
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats (median reported)")
    parser.add_argument("--ase-max-atoms", type=int, default=69120, help="skip ASE above this size (slow)")
    parser.add_argument("--worker", nargs=4, metavar=("PEER", "THREADS", "ATOMS", "CUTOFF"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        peer, threads, atoms, cutoff = args.worker
        print(json.dumps(worker(peer, int(threads), int(atoms), float(cutoff), args.repeats)))
        return
    print(f"{'atoms':>7} {'rc/Å':>4} {'pairs':>10} {'backend':<10} {'thr':>3} {'time/s':>8} {'peak/MB':>8} {'vs vesin':>8}")
    for cutoff in args.cutoffs:
        for n_atoms in args.sizes:
            rows = []
            for peer, threads in PEERS:
                if peer == "ase" and n_atoms > args.ase_max_atoms:
                    continue
                cmd = [sys.executable, __file__, "--repeats", str(args.repeats), "--worker", peer,
                       str(threads), str(n_atoms), str(cutoff)]
                proc = subprocess.run(cmd, capture_output=True, text=True)
                if proc.returncode != 0:
                    print(f"{n_atoms:>7} {cutoff:>4.1f} {'':>10} {peer:<10} {threads:>3} failed: "
                          f"{proc.stderr.strip().splitlines()[-1:]}")
                    continue
                rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
            vesin_time = next((r["time"] for r in rows if r["peer"] == "vesin"), np.nan)
            for r in rows:
                print(f"{r['atoms']:>7} {r['cutoff']:>4.1f} {r['pairs']:>10} {r['peer']:<10} {r['threads']:>3} "
                      f"{r['time']:>8.4f} {r['peak_mb']:>8.0f} {r['time'] / vesin_time:>8.2f}", flush=True)


if __name__ == "__main__":
    main()
