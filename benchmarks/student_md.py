"""A distilled student against its teacher in MD: liquid structure, equipartition, NVE drift.

    python benchmarks/student_md.py nvt --model bpnn-rpbe-d3 --out runs/student_md.jsonl
    python benchmarks/student_md.py nvt --model nemp-water --out runs/student_md.jsonl
    python benchmarks/student_md.py nve --model nemp-water --out runs/student_md.jsonl
    python benchmarks/student_md.py compare runs/student_md.jsonl --teacher bpnn-rpbe-d3

``nvt`` (same protocol for every model, so runs of student and teacher can go in parallel
processes): 171 molecules (the ``--atoms 512`` box) built at 0.894 g/cm^3, FIRE-minimised
with the model, 1 ps of Langevin NVT at 300 K (0.5 fs) not recorded, then 2 ps of Langevin
and 2 ps of Nose–Hoover, a frame every 5 fs. For each recorded segment and for both
together: the O and H kinetic temperatures (± standard error of 5 blocks) and the O–O RDF's
first peak, first minimum and coordination number (``nemd.analysis.describe_peaks``).
``nve``: 64 molecules built at 0.997 g/cm^3, minimised, 1 ps Langevin at 300 K, then 10 ps
NVE; the drift of the conserved energy (linear fit, meV/atom/ps) and its
spread. ``compare``: the issue's bars of student vs teacher (peak within 0.03 Å and 0.15 in
height, minimum within 0.1 Å, coordination within 0.2, O and H temperatures within 3 % of
the target) as a table with pass/fail, and for information the coordination within the
teacher's minimum (less noisy). float32, lists streamed with a 1 Å skin; ``nvt`` advances
10-step chunks (5 fs), so fast H atoms sometimes outrun the list and the chunk is redone
(counted as skin violations: it costs time, not accuracy), ``nve`` 5-step chunks.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

TOLERANCES = dict(peak_r=0.03, peak_g=0.15, minimum_r=0.1, coordination=0.2)  # Å, -, Å, -
TEMPERATURE_TOLERANCE = 0.03  # relative to the target


def load_model(name: str):
    from nemd.models import load

    return load(name)


def segment_summary(frames, numbers, cell) -> dict:
    """Temperatures by element and O–O RDF features of recorded frames."""
    from nemd.analysis import describe_peaks, kinetic_temperature_errors, kinetic_temperatures, radial_distribution

    velocities = np.stack([f.velocities for f in frames])
    temperatures = kinetic_temperatures(velocities, numbers)
    errors = kinetic_temperature_errors(velocities, numbers)
    rdf = radial_distribution(((f.positions, cell) for f in frames), numbers, ["O-O"], r_max=6.0, n_bins=300)
    peaks = describe_peaks(rdf, "O-O")
    return dict(frames=len(frames), T_O=temperatures["O"], T_O_err=errors["O"], T_H=temperatures["H"],
                T_H_err=errors["H"], peak_r=peaks.peak_r, peak_g=peaks.peak_g, minimum_r=peaks.minimum_r,
                coordination=peaks.coordination, rdf_r=rdf.r.tolist(), rdf_g=rdf.g["O-O"].tolist())


def run_nvt(model_name: str, args) -> dict:
    from nemd.io import water_box
    from nemd.md import ListSettings, MDSettings, Simulation, fire_minimize

    model = load_model(model_name)
    water = water_box(args.molecules, density=args.density, seed=args.seed)
    lists = ListSettings(skin=1.0)
    relaxed = fire_minimize(model, water.numbers, water.positions, water.cell, True, fmax=0.1, max_steps=200)
    md = MDSettings(timestep_fs=0.5, temperature_K=args.temperature, thermostat="langevin", chunk_steps=10,
                    seed=args.seed)
    sim = Simulation(model, water.numbers, relaxed.positions, water.cell, True, md, lists)
    steps = lambda ps: int(round(ps * 1000 / md.timestep_fs))  # noqa: E731
    t0 = time.perf_counter()
    sim.run(steps(args.equilibration_ps))
    print(f"{model_name}: equilibrated {args.equilibration_ps} ps in {time.perf_counter() - t0:.0f} s", flush=True)
    segments, wall, n_steps = {}, 0.0, 0
    for thermostat in ("langevin", "nose-hoover"):
        if thermostat != sim.settings.thermostat:
            sim.continue_with(thermostat=thermostat)
        frames, t0 = [], time.perf_counter()
        sim.run(steps(args.ps), every=args.every, on_frame=frames.append)
        wall, n_steps = wall + time.perf_counter() - t0, n_steps + steps(args.ps)
        segments[thermostat] = frames
        print(f"{model_name}: {args.ps} ps {thermostat} in {time.perf_counter() - t0:.0f} s", flush=True)
    violations = sim.stream.violations
    sim.close()
    result = dict(mode="nvt", model=model_name, atoms=int(water.n_atoms), density=args.density,
                  temperature=args.temperature, ps_per_segment=args.ps, skin_violations=violations,
                  us_per_atom_step=1e6 * wall / (n_steps * water.n_atoms))
    for name, frames in [*segments.items(), ("both", segments["langevin"] + segments["nose-hoover"])]:
        result[name] = segment_summary(frames, water.numbers, water.cell)
    return result


def run_nve(model_name: str, args) -> dict:
    from nemd.io import water_box
    from nemd.md import ListSettings, MDSettings, Simulation, fire_minimize

    model = load_model(model_name)
    s = water_box(args.nve_molecules, density=0.997, seed=args.seed)
    relaxed = fire_minimize(model, s.numbers, s.positions, s.cell, True, fmax=0.1, max_steps=200)
    md = MDSettings(timestep_fs=0.5, temperature_K=args.temperature, thermostat="langevin", chunk_steps=5,
                    seed=args.seed)
    sim = Simulation(model, s.numbers, relaxed.positions, s.cell, True, md, ListSettings(skin=1.0))
    sim.run(int(round(args.equilibration_ps * 2000)))
    sim.continue_with(thermostat="nve")
    t0 = time.perf_counter()
    reports = sim.run(int(round(args.nve_ps * 2000)))
    wall = time.perf_counter() - t0
    violations = sim.stream.violations
    sim.close()
    t = np.array([r.time_ps for r in reports])
    e = np.array([r.conserved for r in reports]) / s.n_atoms * 1000  # meV/atom, one value per chunk
    slope = float(np.polyfit(t - t[0], e, 1)[0])
    return dict(mode="nve", model=model_name, atoms=int(s.n_atoms), ps=args.nve_ps, skin_violations=violations,
                drift_mev_atom_ps=slope, spread_mev_atom=float(np.ptp(e)), end_minus_start_mev_atom=float(e[-1] - e[0]),
                mean_T=float(np.mean([r.temperature for r in reports])),
                max_T=float(np.max([r.temperature for r in reports])),
                finite=bool(np.all(np.isfinite(e))), us_per_atom_step=1e6 * wall / (sum(r.n_steps for r in reports) * s.n_atoms))


def coordination_at(record: dict, segment: str, r: float) -> float:
    """O–O coordination number within ``r`` (Å) from a run's g(r) (bins of equal width):
    at a fixed radius it is far less noisy than at each run's own first minimum."""
    g, centres = np.asarray(record[segment]["rdf_g"]), np.asarray(record[segment]["rdf_r"])
    dr = centres[1] - centres[0]
    shells = 4.0 / 3.0 * np.pi * ((centres + dr / 2) ** 3 - (centres - dr / 2) ** 3)
    from nemd.io.water import WATER_MASS
    from nemd.units import AMU_PER_A3_IN_G_PER_CM3

    n_oxygen = record["atoms"] // 3
    volume = n_oxygen * WATER_MASS * AMU_PER_A3_IN_G_PER_CM3 / record["density"]  # Å^3, as water_box builds it
    return float((n_oxygen - 1) / volume * np.sum((g * shells)[centres < r]))


def compare(records: list[dict], teacher: str) -> int:
    """Print student vs teacher against the bars; returns the number of failed bars."""
    nvt = {r["model"]: r for r in records if r["mode"] == "nvt"}
    if teacher not in nvt:
        raise SystemExit(f"no nvt run of the teacher {teacher!r} in the records")
    ref, failed = nvt[teacher], 0
    for name, r in nvt.items():
        print(f"\n{name} ({r['atoms']} atoms, {r['density']} g/cm^3, {r['us_per_atom_step']:.0f} µs/atom/step, "
              f"{r['skin_violations']} skin violations)")
        for segment in ("langevin", "nose-hoover", "both"):
            s, t = r[segment], ref[segment]
            row = [f"  {segment:12s}"]
            for key, tol in TOLERANCES.items():
                ok = abs(s[key] - t[key]) <= tol
                failed += (not ok) and name != teacher
                row.append(f"{key} {s[key]:.3f} ({s[key] - t[key]:+.3f}{'' if ok or name == teacher else ' FAIL'})")
            r_min = t["minimum_r"]
            cn, cn_teacher = coordination_at(r, segment, r_min), coordination_at(ref, segment, r_min)
            row.append(f"CN(r < {r_min:.2f}) {cn:.2f} ({cn - cn_teacher:+.2f})")
            for el in ("O", "H"):
                rel = s[f"T_{el}"] / r["temperature"] - 1
                ok = segment == "both" or abs(rel) <= TEMPERATURE_TOLERANCE
                failed += not ok
                row.append(f"T_{el} {s[f'T_{el}']:.1f}±{s[f'T_{el}_err']:.1f} K ({100 * rel:+.1f} %"
                           f"{'' if ok else ' FAIL'})")
            print(", ".join(row))
    for r in records:
        if r["mode"] == "nve":
            print(f"\n{r['model']} NVE {r['atoms']} atoms {r['ps']} ps: drift {r['drift_mev_atom_ps']:+.4f} meV/atom/ps, "
                  f"spread {r['spread_mev_atom']:.3f} meV/atom, mean T {r['mean_T']:.1f} K (max {r['max_T']:.1f}), "
                  f"{'finite' if r['finite'] else 'NOT FINITE'}, {r['skin_violations']} skin violations")
    return failed


def plot(records: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for r in records:
        if r["mode"] == "nvt":
            ax.plot(r["both"]["rdf_r"], r["both"]["rdf_g"], label=r["model"])
    ax.set(xlabel="r (Å)", ylabel="g_OO(r)", xlim=(2.0, 6.0),
           title="O–O RDF, 171 H2O, 0.894 g/cm$^3$, 300 K (2 ps Langevin + 2 ps Nose–Hoover)")
    ax.title.set_fontsize(8)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mode", choices=["nvt", "nve", "compare"])
    p.add_argument("records", nargs="?", type=Path, help="compare: the JSONL written by nvt/nve runs")
    p.add_argument("--model", default="nemp-water", help="registered model or *.nemd file")
    p.add_argument("--teacher", default="bpnn-rpbe-d3")
    p.add_argument("--out", type=Path, help="append the result as a JSON line here")
    p.add_argument("--plot", type=Path, help="compare: O–O RDFs of all nvt runs to this PNG")
    p.add_argument("--molecules", type=int, default=171)
    p.add_argument("--density", type=float, default=0.894, help="g/cm^3 (default 0.894)")
    p.add_argument("--temperature", type=float, default=300.0, help="K")
    p.add_argument("--equilibration-ps", type=float, default=1.0)
    p.add_argument("--ps", type=float, default=2.0, help="ps per recorded segment (Langevin, then Nose–Hoover)")
    p.add_argument("--every", type=int, default=10, help="steps between recorded frames")
    p.add_argument("--nve-molecules", type=int, default=64)
    p.add_argument("--nve-ps", type=float, default=10.0)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if args.mode == "compare":
        if args.records is None or not args.records.is_file():
            raise SystemExit(f"compare needs the JSONL of the runs, got {args.records}")
        records = [json.loads(line) for line in args.records.read_text().splitlines() if line.strip()]
        failed = compare(records, args.teacher)
        if args.plot:
            plot(records, args.plot)
        print(f"\n{failed} bar(s) failed")
        return 1 if failed else 0
    result = (run_nvt if args.mode == "nvt" else run_nve)(args.model, args)
    line = json.dumps(result)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        with open(args.out, "a") as f:
            f.write(line + "\n")
    printable = {k: v for k, v in result.items() if not isinstance(v, dict)}
    print(json.dumps(printable))
    for key in ("langevin", "nose-hoover", "both"):
        if key in result:
            print(key, {k: v for k, v in result[key].items() if not k.startswith("rdf")})
    return 0


if __name__ == "__main__":
    sys.exit(main())
