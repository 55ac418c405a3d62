"""MD driver benchmark: streamed (async) vs synchronous vs static neighbour lists.

BPNN water (RPBE-D3) NVT at 300 K, float32, on JAX's default device. For each size and
list mode: time per step after compilation, and where the time goes — CPU list builds
(incl. host<->device copies), time the driver waited for a list (device idle), and the
rest (integration + force evaluation). Overlap efficiency, the share of the list-building
cost hidden behind the device work, is (t_sync - t_async) / (t_sync - t_static), where
t_static = t_sync minus the time sync mode waited for builds (a truly static list would
need a skin so large that its force evaluation is dearer; --static times one anyway).

    python simulations/md_benchmark.py --sizes 1536 8640 --steps 30 12
"""

from __future__ import annotations

import argparse
import time

from benchmark_systems import liquid_water


def system(n_atoms: int):
    from nemd.io import water_box

    if n_atoms % 8640 == 0:
        return liquid_water(n_atoms)
    return water_box(n_atoms // 3, seed=0)


def measure(model, s, mode: str, steps: int, skin: float, chunk: int):
    from nemd.md import MDSettings, Simulation

    settings = MDSettings(timestep_fs=0.5, temperature_K=300.0, skin=skin, chunk_steps=chunk,
                          neighbor_mode=mode)
    sim = Simulation(model, s.numbers, s.positions, s.cell, True, settings)
    sim.run(2 * chunk)  # compile
    builds0, build_s0, wait0 = sim.builder.builds, sim.builder.build_seconds, sim.wait_seconds
    t0 = time.perf_counter()
    reports = sim.run(steps)
    wall = time.perf_counter() - t0
    sim.close()
    return dict(mode=mode, per_step=wall / steps, builds=sim.builder.builds - builds0,
                build=(sim.builder.build_seconds - build_s0) / steps, wait=(sim.wait_seconds - wait0) / steps,
                violations=reports[-1].violations)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1536, 8640])
    parser.add_argument("--steps", type=int, nargs="+", default=[30, 12], help="timed steps per size")
    parser.add_argument("--skin", type=float, default=0.6)
    parser.add_argument("--chunk", type=int, default=3)
    parser.add_argument("--static", action="store_true",
                        help="also time a static list (skin 3 Å so that it lasts: a dearer force evaluation)")
    args = parser.parse_args()
    import jax

    from nemd.data import water_data_dir
    from nemd.md.minimize import fire_minimize
    from nemd.models import load

    model = load("bpnn", water_data_dir() / "bpnn-rpbe-d3")
    print(f"device: {jax.devices()[0]}; skin {args.skin} Å, {args.chunk} steps per chunk")
    print(f"{'atoms':>6} {'mode':<7} {'ms/step':>9} {'µs/atom':>8} {'build ms/step':>13} {'wait ms/step':>12} "
          f"{'builds':>6} {'viol':>4}")
    for n_atoms, steps in zip(args.sizes, args.steps):
        s = system(n_atoms)
        if n_atoms % 8640:  # a built box needs its worst contacts relaxed first
            relaxed = fire_minimize(model, s.numbers, s.positions, s.cell, True, fmax=1.0, max_steps=60,
                                    skin=args.skin, chunk_steps=args.chunk)
            s = type(s)(relaxed.positions, s.numbers, s.cell, s.pbc)
        rows = {}
        for mode in ("async", "sync", "static") if args.static else ("async", "sync"):
            skin = args.skin if mode != "static" else 3.0  # static: one list must last the whole run
            r = measure(model, s, mode, steps, skin, args.chunk)
            rows[mode] = r
            print(f"{s.n_atoms:>6} {mode:<7} {1e3 * r['per_step']:>9.1f} {1e6 * r['per_step'] / s.n_atoms:>8.1f} "
                  f"{1e3 * r['build']:>13.2f} {1e3 * r['wait']:>12.2f} {r['builds']:>6} {r['violations']:>4}",
                  flush=True)
        t_async, t_sync = rows["async"]["per_step"], rows["sync"]["per_step"]
        # A static list needs a much larger skin to last (more pairs, dearer forces), so the
        # list-free reference is the sync time minus the time it waited for its builds.
        t_static = t_sync - rows["sync"]["wait"]
        overlap = (t_sync - t_async) / (t_sync - t_static) if t_sync > t_static else float("nan")
        print(f"{s.n_atoms:>6} overlap efficiency (t_sync - t_async) / (t_sync - t_no_build) = {overlap:.2f}")


if __name__ == "__main__":
    main()
