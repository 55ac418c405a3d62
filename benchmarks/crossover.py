"""Where moving the tensor product from edges to nodes pays: NEMP vs its NequIP peer as the
angular order lmax and the channels grow.

For each (lmax, channels), an NEMP configured like the ``nemp`` preset with those values
(node features up to lmax too) and JAX-MD's NequIP of the same size (``JaxMDNequIP.like``)
evaluate energy + forces of the same liquid-water box on the same 1 Å skin list (MD
conditions; NEMP lays out only the edges inside its cutoff, NequIP evaluates every edge it
is given), each case in its own process with huge pages for malloc for both.

    python benchmarks/crossover.py --lmax 1 2 3 --channels 8 16 32 --atoms 1536
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time

import numpy as np
from systems import liquid_water

from nemd.benchmarking import peak_rss_mb, run_isolated
from nemd.runtime import malloc_environment


def worker(kind: str, lmax: int, channels: int, n_atoms: int, repeats: int) -> dict:
    import jax
    import jax.numpy as jnp

    from nemd.models import load
    from nemd.models.nemp import NEMPModel
    from nemd.models.nequip import JaxMDNequIP
    from nemd.neighbors import build_neighbor_list

    config = dataclasses.replace(load("nemp").config, lmax=lmax, lmax_node=lmax, channels=channels)
    model = NEMPModel.init(config) if kind == "nemp" else JaxMDNequIP.like(config)
    s = liquid_water(n_atoms)
    baseline = peak_rss_mb()
    nl = build_neighbor_list(s.positions, s.cell, True, model.cutoff, 1.0, kinds=model.kinds(s.numbers),
                             within_cutoff=True, block_atoms=model.list_block_atoms or 0)
    fn = jax.jit(jax.value_and_grad(model.energy_fn(s.numbers, s.cell)))
    R = jnp.asarray(s.positions, jnp.float32)
    jax.block_until_ready(fn(R, nl))
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(R, nl))
        times.append(time.perf_counter() - t0)
    return dict(kind=kind, lmax=lmax, channels=channels, atoms=s.n_atoms, us_per_atom=1e6 * min(times) / s.n_atoms,
                peak_mb=peak_rss_mb() - baseline)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lmax", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--channels", type=int, nargs="+", default=[8, 16, 32])
    parser.add_argument("--atoms", type=int, default=1536)
    parser.add_argument("--repeats", type=int, default=3, help="timed evaluations (the fastest is kept)")
    parser.add_argument("--max-gb", type=float, default=18.0)
    parser.add_argument("--worker", nargs=3, metavar=("KIND", "LMAX", "CHANNELS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        kind, lmax, channels = args.worker
        print(json.dumps(worker(kind, int(lmax), int(channels), args.atoms, args.repeats)))
        return
    print(f"{'lmax':>4} {'C':>3} {'nemp µs/atom':>12} {'nequip µs/atom':>14} {'time peer/nemp':>14} "
          f"{'nemp MB':>8} {'nequip MB':>9}", flush=True)
    for lmax in args.lmax:
        for channels in args.channels:
            rows = {}
            for kind in ("nemp", "nequip"):
                outcome = run_isolated([sys.executable, __file__, "--atoms", str(args.atoms), "--repeats",
                                        str(args.repeats), "--worker", kind, str(lmax), str(channels)],
                                       args.max_gb, env=malloc_environment(True))
                rows[kind] = None if outcome.failure() else json.loads(outcome.stdout.strip().splitlines()[-1])
                if outcome.failure():
                    print(f"{lmax:>4} {channels:>3} {kind}: {outcome.failure()}", flush=True)
            a, b = rows["nemp"], rows["nequip"]
            if a and b:
                print(f"{lmax:>4} {channels:>3} {a['us_per_atom']:>12.1f} {b['us_per_atom']:>14.1f} "
                      f"{b['us_per_atom'] / a['us_per_atom']:>14.2f} {a['peak_mb']:>8.0f} {b['peak_mb']:>9.0f}",
                      flush=True)


if __name__ == "__main__":
    main()
