"""NVT MD of large liquid-water boxes: time per step and peak memory per atom vs N.

Each (model, size) runs in its own process, stopped above ``--max-gb`` resident memory:
replicas of the equilibrated 8640-atom RPBE-D3 liquid, Langevin NVT at 300 K, 0.5 fs,
1 Å skin, lists streamed from the CPU every chunk of ``--chunk`` steps. One chunk
compiles; then ``--steps`` steps are timed. Peak memory is the process's largest resident
set (everything: lists, model, integrator, Python), also per atom, so its growth with N
shows whether memory is linear.

    python benchmarks/large_md.py --models nemp-small --sizes 8640 69120 311040 --steps 20
    python benchmarks/large_md.py --models nemp-small --recompute --sizes 311040   # least memory
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from systems import liquid_water

from nemd.benchmarking import peak_rss_mb, run_isolated


def worker(name: str, n_atoms: int, steps: int, chunk: int, recompute: bool, block_atoms: int | None) -> dict:
    import jax

    from nemd.md import ListSettings, MDSettings, Simulation
    from nemd.models import load

    model = load(name)
    if hasattr(model, "with_layout"):
        model = model.with_layout(block_atoms=block_atoms, store_edges=not recompute)
    s = liquid_water(n_atoms)
    t0 = time.perf_counter()
    sim = Simulation(model, s.numbers, s.positions, s.cell, True,
                     MDSettings(timestep_fs=0.5, temperature_K=300.0, thermostat="langevin", chunk_steps=chunk),
                     ListSettings(skin=1.0))
    sim.run(chunk)  # compiles the chunk
    warm = time.perf_counter() - t0
    builds = sim.stream.builds
    t0 = time.perf_counter()
    reports = sim.run(steps)
    wall = time.perf_counter() - t0
    sim.close()
    peak = peak_rss_mb()
    device_stats = jax.devices()[0].memory_stats() or {}  # accelerators: bytes on the device
    return dict(model=name, atoms=s.n_atoms, steps=steps, s_per_step=wall / steps,
                device_peak_gb=device_stats.get("peak_bytes_in_use", 0) / 1e9,
                us_per_atom_step=1e6 * wall / steps / s.n_atoms, rebuilds=sim.stream.builds - builds,
                violations=sim.stream.violations, temperature=reports[-1].temperature, warmup_s=warm,
                peak_gb=peak / 1024, kb_per_atom=peak * 1024 / s.n_atoms, recompute=recompute,
                block_atoms=getattr(model, "list_block_atoms", None), device=str(jax.devices()[0]),
                capacity=sim.stream.current.shape.block_capacity)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["nemp-small"])
    parser.add_argument("--sizes", type=int, nargs="+", default=[8640, 69120, 311040])
    parser.add_argument("--steps", type=int, default=20, help="timed steps (default 20)")
    parser.add_argument("--chunk", type=int, default=5, help="steps per chunk, one list build each (default 5)")
    parser.add_argument("--recompute", action="store_true", help="graph models recompute edge state (least memory)")
    parser.add_argument("--block-atoms", type=int, default=None, help="atoms per block (default: by backend)")
    parser.add_argument("--max-gb", type=float, default=22.0, help="stop a case above this resident memory (GB)")
    parser.add_argument("--out", help="append the results as JSON lines to this file")
    parser.add_argument("--deadline", type=float, default=None,
                        help="Unix time after which no further case starts (keeps a device session short)")
    parser.add_argument("--worker", nargs=2, metavar=("MODEL", "ATOMS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker[0], int(args.worker[1]), args.steps, args.chunk, args.recompute,
                                args.block_atoms)))
        return
    print(f"{'model':<12} {'atoms':>7} {'s/step':>8} {'µs/atom/step':>12} {'rebuilds':>8} {'peak GB':>8} "
          f"{'KB/atom':>8} {'dev GB':>7} {'T/K':>6}", flush=True)
    for name in args.models:
        for n_atoms in args.sizes:
            if args.deadline and time.time() > args.deadline:
                print(f"{name:<12} {n_atoms:>7} skipped: past the deadline", flush=True)
                continue
            cmd = [sys.executable, __file__, "--steps", str(args.steps), "--chunk", str(args.chunk),
                   "--worker", name, str(n_atoms)]
            cmd += ["--recompute"] if args.recompute else []
            cmd += ["--block-atoms", str(args.block_atoms)] if args.block_atoms else []
            outcome = run_isolated(cmd, args.max_gb, env=os.environ.copy())
            if outcome.failure():
                print(f"{name:<12} {n_atoms:>7} {outcome.failure()}", flush=True)
                break  # larger sizes fail too: the largest that ran is the answer
            r = json.loads(outcome.stdout.strip().splitlines()[-1])
            print(f"{name:<12} {r['atoms']:>7} {r['s_per_step']:>8.2f} {r['us_per_atom_step']:>12.1f} "
                  f"{r['rebuilds']:>8} {r['peak_gb']:>8.2f} {r['kb_per_atom']:>8.1f} {r['device_peak_gb']:>7.1f} "
                  f"{r['temperature']:>6.1f}", flush=True)
            if args.out:
                with open(args.out, "a") as f:
                    f.write(json.dumps({**r, "date": time.strftime("%Y-%m-%d"),
                                        "malloc": os.environ.get("GLIBC_TUNABLES", "")}) + "\n")


if __name__ == "__main__":
    main()
