"""MD driver benchmark: streamed (async) vs synchronous vs static neighbour lists.

For each size, three simulations of the same system run side by side (each compiled
once): ``async`` (lists built on a background CPU thread while the device integrates),
``sync`` (the same builds, waited for between chunks) and ``static`` (one list with the
same skin, never rebuilt: every round restarts from the same state, so no atom moves
skin/2 and it is a true no-build reference with the same number of pairs). Rounds alternate between
the modes and the median round is reported, so slow drifts of a shared machine hit all
modes alike.

Per mode, all in ms per step: wall time; "device", the time from dispatching each chunk
(integration and force evaluation) to its results on the host; "idle", the rest, when the
device had nothing to do (host turnaround between chunks, and "waited", the part spent
waiting for a list); and the builder thread's time split into copying positions to the
host, the CPU search and padding + putting the list on the device. The
overlap efficiency, the share of the list-building cost hidden behind device work, is
(t_sync - t_async) / (t_sync - t_static).

Systems: ``water`` (BPNN RPBE-D3 NVT 300 K, 0.5 fs; the 1536-atom box is water_box(512)
after 60 FIRE steps, multiples of 8640 the shared liquid) and ``argon`` (shifted-force LJ
NVT 120 K, 2 fs, fcc 5.4 Å: a cheap force, so builds are a sizeable part of a step).
``--xla-threads 1 --builder-threads 1`` keeps XLA on one core and the builder on the other
(on a 2-core CPU both otherwise compete for the same cores).

    python benchmarks/md_benchmark.py --system water --sizes 1536 8640 --steps 20 10
    python benchmarks/md_benchmark.py --system argon --sizes 32000 --steps 20 --skin 1.0 --chunk 5 --xla-threads 1 --builder-threads 1
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

from systems import md_water

MODES = ("async", "sync", "static")


def argon_system(n_atoms: int):
    from ase.build import bulk

    from nemd.io import Structure

    k = round((n_atoms / 4) ** (1 / 3))
    atoms = bulk("Ar", "fcc", a=5.4, cubic=True).repeat((k, k, k))
    noise = np.random.default_rng(0).normal(scale=0.05, size=atoms.positions.shape)
    return Structure(atoms.positions + noise, atoms.numbers, atoms.cell.array, np.ones(3, bool))


def counters(sim) -> np.ndarray:
    lists = sim.stream
    return np.array([time.perf_counter(), sim.step, lists.builds, lists.build_seconds, lists.copy_seconds,
                     lists.put_seconds, lists.wait_seconds, lists.violations, sim.device_seconds])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--system", choices=["water", "argon"], default="water")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1536, 8640])
    parser.add_argument("--steps", type=int, nargs="+", default=[20, 10], help="timed steps per round, per size")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--skin", type=float, default=1.0, help="Å (default 1.0, as water_nvt.py)")
    parser.add_argument("--chunk", type=int, default=5, help="steps per chunk (one list build per chunk; default 5)")
    parser.add_argument("--xla-threads", type=int, default=0, help="XLA CPU threads (0: XLA's default)")
    parser.add_argument("--builder-threads", type=int, default=None,
                        help="threads of the CPU list builder (default: all cores)")
    args = parser.parse_args()
    if len(args.steps) not in (1, len(args.sizes)):
        parser.error("--steps takes one value or one per size")
    if args.xla_threads:
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false "
                                   f"intra_op_parallelism_threads={args.xla_threads}").strip()
    import jax

    from nemd.md import ListSettings, MDSettings, Simulation
    from nemd.models import load

    if args.system == "water":
        model, timestep, temperature = load("bpnn-rpbe-d3"), 0.5, 300.0
    else:
        model, timestep, temperature = load("lennard-jones"), 2.0, 120.0
    print(f"device: {jax.devices()[0]}; {args.system}, skin {args.skin} Å, {args.chunk} steps per chunk, "
          f"{args.rounds} rounds, XLA threads: {args.xla_threads or 'default'}, "
          f"builder threads: {args.builder_threads or 'all cores'}")
    print(f"{'atoms':>6} {'mode':<7} {'ms/step':>8} {'µs/atom':>8} {'device':>7} {'idle':>6} "
          f"{'waited':>7} {'list: copy':>10} {'search':>7} {'put':>6} {'builds':>6} {'viol':>4}")
    for n_atoms, steps in zip(args.sizes, args.steps * (len(args.sizes) if len(args.steps) == 1 else 1)):
        s = md_water(model, n_atoms, args.skin, args.chunk) if args.system == "water" else argon_system(n_atoms)
        sims = {mode: Simulation(model, s.numbers, s.positions, s.cell, True,
                                 MDSettings(timestep_fs=timestep, temperature_K=temperature, chunk_steps=args.chunk),
                                 ListSettings(skin=args.skin, mode=mode, n_threads=args.builder_threads))
                for mode in MODES}
        for sim in sims.values():
            sim.run(args.chunk)  # compile
        static_start = sims["static"].state  # every static round restarts here: one list lasts
        rounds = {mode: [] for mode in MODES}
        for _ in range(args.rounds):
            for mode, sim in sims.items():
                if mode == "static":
                    sim.state = static_start
                before = counters(sim)
                sim.run(steps)
                rounds[mode].append((counters(sim) - before) / steps)
        rows = {}
        for mode, sim in sims.items():
            sim.close()
            per_round = np.array(rounds[mode])
            r = rows[mode] = per_round[np.argsort(per_round[:, 0])[len(per_round) // 2]]  # median round
            search = r[3] - r[4] - r[5]
            print(f"{s.n_atoms:>6} {mode:<7} {1e3 * r[0]:>8.1f} {1e6 * r[0] / s.n_atoms:>8.1f} {1e3 * r[8]:>7.1f} "
                  f"{1e3 * (r[0] - r[8]):>6.2f} {1e3 * r[6]:>7.2f} {1e3 * r[4]:>10.2f} {1e3 * search:>7.2f} "
                  f"{1e3 * r[5]:>6.2f} {r[2] * steps:>6.0f} {sim.stream.violations:>4}", flush=True)
            spread = per_round[:, 0].max() / per_round[:, 0].min() - 1
            print(f"{'':>6} {'':<7} rounds: {' '.join(f'{1e3 * t:.1f}' for t in per_round[:, 0])} ms/step "
                  f"(spread {100 * spread:.0f} %)")
        t_async, t_sync, t_static = (rows[m][0] for m in MODES)
        overlap = (t_sync - t_async) / (t_sync - t_static)
        print(f"{s.n_atoms:>6} overlap efficiency (t_sync - t_async) / (t_sync - t_static) = {overlap:.2f}; "
              f"list cost t_sync - t_static = {1e3 * (t_sync - t_static):.2f} ms/step, "
              f"{100 * (t_sync - t_static) / t_sync:.1f} % of a sync step", flush=True)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
