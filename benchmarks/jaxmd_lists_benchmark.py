"""nemd's CPU-streamed lists vs JAX-MD's device-side ``partition.neighbor_list``.

The same potential (BPNN RPBE-D3 water, float32) and integrator (Nose–Hoover NVT, 0.5 fs,
300 K) run for a few chunks of steps with (a) ``nemd.md.Simulation`` (async streamed
lists) and (b) JAX-MD's own Dense neighbour list, updated inside the jitted chunk every
step as JAX-MD examples do (``nbrs.update`` rebuilds on the device when an atom moved
skin/2). JAX-MD's list is converted on the device into an nemd ``NeighborList`` (minimum
image shifts, orthorhombic box) so the energy function is the same code. Each
(size, method) runs in its own process: time per step after compilation, peak memory
(max RSS growth over the process after preparing the structure) and the process's largest
resident set. Increase N until a run fails or passes --max-gb.

    python benchmarks/jaxmd_lists_benchmark.py --sizes 1536 8640 69120 --steps 10
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time

import numpy as np

from systems import md_water

from nemd.benchmarking import peak_rss_mb, run_isolated

SKIN, CHUNK = 1.0, 5  # water_nvt.py's defaults


def run_nemd(model, s, steps):
    from nemd.md import ListSettings, MDSettings, Simulation

    sim = Simulation(model, s.numbers, s.positions, s.cell, True,
                     MDSettings(timestep_fs=0.5, temperature_K=300.0, chunk_steps=CHUNK), ListSettings(skin=SKIN))
    sim.run(CHUNK)  # compile
    t0 = time.perf_counter()
    sim.run(steps)
    wall = time.perf_counter() - t0
    sim.close()
    return wall / steps


def run_jaxmd(model, s, steps):
    import jax
    import jax.numpy as jnp
    from jax_md import partition, simulate, space

    from nemd import units
    from nemd.neighbors import NeighborList, build_neighbor_list

    side = np.diag(s.cell)
    if not np.allclose(s.cell, np.diag(side)):
        raise SystemExit("this comparison needs an orthorhombic box")
    n = s.n_atoms
    kinds = model.kinds(s.numbers)
    # Per-element dense-table widths and in-cutoff bounds from our own list (what nemd
    # uses, 10 % headroom): JAX-MD's list only replaces the list building, not the model's
    # layout. A short run keeps within them; an outgrown bound would show as NaN (checked).
    ours = build_neighbor_list(s.positions, s.cell, True, model.cutoff, SKIN, kinds=kinds, within_cutoff=True)
    box = jnp.asarray(side, jnp.float32)
    displacement, shift = space.periodic(box)
    neighbor_fn = partition.neighbor_list(displacement, box, model.cutoff + SKIN, dr_threshold=SKIN,
                                          format=partition.Dense, capacity_multiplier=1.25)
    energy_nemd = model.energy_fn(s.numbers, s.cell)

    def as_nemd_list(R, nbrs):
        width = nbrs.idx.shape[1]
        senders = nbrs.idx.reshape(-1)
        mask = senders < n
        senders = jnp.where(mask, senders, 0)
        receivers = jnp.repeat(jnp.arange(n, dtype=jnp.int32), width)
        delta = (R[senders] - R[receivers]) / box
        shifts = jnp.where(mask[:, None], -jnp.round(delta), 0).astype(jnp.int32)
        return NeighborList(senders.astype(jnp.int32), receivers, shifts, mask, R, jnp.sum(mask, dtype=jnp.int32),
                            ours.r_list, SKIN, dataclasses.replace(ours.shape, capacity=n * width,
                                                                    max_neighbors=max(width, ours.shape.max_neighbors)))

    def energy(R, neighbor, **kwargs):
        return energy_nemd(R, neighbor=as_nemd_list(R, neighbor))

    init, apply = simulate.nvt_nose_hoover(energy, shift, units.fs_to_internal(0.5), units.kT(300.0),
                                           tau=100 * units.fs_to_internal(0.5))
    R = jnp.asarray(np.mod(s.positions, side), jnp.float32)
    nbrs = neighbor_fn.allocate(R)
    state = init(jax.random.PRNGKey(0), R, mass=jnp.asarray(units.masses_of(s.numbers), jnp.float32),
                 neighbor=nbrs)

    @jax.jit
    def chunk(state, nbrs):
        def body(_, carry):
            state, nbrs = carry
            nbrs = nbrs.update(state.position)
            return apply(state, neighbor=nbrs), nbrs

        return jax.lax.fori_loop(0, CHUNK, body, (state, nbrs))

    state, nbrs = jax.block_until_ready(chunk(state, nbrs))  # compile
    t0 = time.perf_counter()
    for _ in range(steps // CHUNK):
        state, nbrs = chunk(state, nbrs)
        if bool(nbrs.did_buffer_overflow):
            raise SystemExit("JAX-MD neighbour list overflowed (would need reallocation)")
    jax.block_until_ready(state)
    wall = time.perf_counter() - t0
    if not bool(jnp.all(jnp.isfinite(state.force))):
        raise SystemExit("non-finite forces: the run outgrew the in-cutoff bounds of its first list")
    return wall / (steps // CHUNK * CHUNK)


def worker(method: str, n_atoms: int, steps: int) -> dict:
    from nemd.models import load

    model = load("bpnn-rpbe-d3")
    s = md_water(model, n_atoms, SKIN, CHUNK)
    baseline = peak_rss_mb()
    per_step = (run_nemd if method == "nemd" else run_jaxmd)(model, s, steps)
    return dict(method=method, atoms=s.n_atoms, per_step=per_step, peak_mb=peak_rss_mb() - baseline)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1536, 8640, 69120])
    parser.add_argument("--steps", type=int, default=10, help=f"timed steps (a multiple of {CHUNK})")
    parser.add_argument("--max-gb", type=float, default=18.0,
                        help="stop a run whose resident memory passes this (GB): larger sizes are skipped")
    parser.add_argument("--worker", nargs=2, metavar=("METHOD", "ATOMS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker[0], int(args.worker[1]), args.steps)))
        return
    print(f"{'atoms':>6} {'method':<7} {'s/step':>8} {'µs/atom/step':>12} {'peak/MB':>8} {'rss/MB':>7}")
    stopped = set()
    for n_atoms in args.sizes:
        rows = {}
        for method in ("nemd", "jaxmd"):
            if method in stopped:
                print(f"{n_atoms:>6} {method:<7} skipped (failed or over {args.max_gb} GB at a smaller size)")
                continue
            outcome = run_isolated([sys.executable, __file__, "--steps", str(args.steps), "--worker", method,
                                    str(n_atoms)], args.max_gb)
            if outcome.failure():
                print(f"{n_atoms:>6} {method:<7} {outcome.failure()}", flush=True)
                stopped.add(method)
                continue
            r = rows[method] = json.loads(outcome.stdout.strip().splitlines()[-1])
            print(f"{r['atoms']:>6} {method:<7} {r['per_step']:>8.3f} {1e6 * r['per_step'] / r['atoms']:>12.1f} "
                  f"{r['peak_mb']:>8.0f} {1024 * outcome.peak_gb:>7.0f}", flush=True)
            if r["peak_mb"] > 1024 * args.max_gb:
                stopped.add(method)
        if len(rows) == 2:
            print(f"{'':>6} jaxmd / nemd: time x{rows['jaxmd']['per_step'] / rows['nemd']['per_step']:.2f}, "
                  f"memory x{rows['jaxmd']['peak_mb'] / max(rows['nemd']['peak_mb'], 1):.2f}", flush=True)


if __name__ == "__main__":
    main()
