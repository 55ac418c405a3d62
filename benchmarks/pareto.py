"""Accuracy against cost of trained models: force RMSE vs µs/atom and vs memory per atom.

    nemd errors nemp-water data/water/test/*.extxyz --json runs/errors.jsonl
    python benchmarks/model_benchmark.py --models bpnn nemp-water --sizes 8640 --threads 2 \\
        --skin 1 --within-cutoff --out runs/speed.jsonl
    python benchmarks/pareto.py runs/errors.jsonl runs/speed.jsonl --atoms 8640 --plot docs/pareto.png

The force RMSE of a model is the root of the frame-weighted mean squared error over the
error records (one per test file) of that model; its cost is energy + forces time per atom
and memory per atom at ``--atoms`` (same threads and list for every model). Memory is the peak
resident set above the loaded model (``peak``, the default) or the process's whole peak
resident set (``--memory process``): the first subtracts a high-water mark taken after
loading, which varies by some 100s of MB between runs of one model, the second includes the
runtime (~0.5 GB) but repeats within 1 %. Models without errors (the teacher, which defines
the labels) are drawn as a vertical line.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def read_jsonl(path: Path) -> list[dict]:
    if not path.is_file():
        raise SystemExit(f"no such file: {path}")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def force_rmse(records: list[dict], model: str, data_contains: str) -> float | None:
    rows = [r for r in records if r["model"] == model and data_contains in r["data"]]
    if not rows:
        return None
    frames = sum(r["frames"] for r in rows)
    return (sum(r["frames"] * r["force_rmse"] ** 2 for r in rows) / frames) ** 0.5


def table(errors: list[dict], speed: list[dict], atoms: int, data_contains: str, memory: str = "peak") -> list[dict]:
    key = dict(peak="peak_mb", process="rss_mb")[memory]
    rows = []
    for s in speed:
        if s["atoms"] != atoms:
            continue
        rows.append(dict(model=s["model"], us_per_atom=s["us_per_atom"], kb_per_atom=1000 * s[key] / atoms,
                         threads=s["threads"], parameters=s.get("parameters"),
                         force_rmse=force_rmse(errors, s["model"], data_contains)))
    if not rows:
        raise SystemExit(f"no speed records at {atoms} atoms")
    return rows


def short_name(model: str) -> str:
    """A short name: a training run's directory for its runs/<name>/model.nemd."""
    path = Path(model)
    return path.parent.name if path.name == "model.nemd" else model


def plot(rows: list[dict], path: Path, title: str, memory: str = "peak") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    memory_label = dict(peak="peak memory above the model", process="process peak RSS")[memory]
    panels = [("us_per_atom", "energy + forces, µs/atom"), ("kb_per_atom", f"{memory_label}, KB/atom")]
    if all(r.get("parameters") for r in rows):
        panels.append(("parameters", "parameters"))
    fig, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 3.8), sharey=True)
    for ax, (key, label) in zip(axes, panels):
        for r in rows:
            if r["force_rmse"] is None:
                ax.axvline(r[key], color="grey", ls="--")
                ax.text(r[key], 0.98, f" {short_name(r['model'])}", transform=ax.get_xaxis_transform(), va="top",
                        fontsize=8)
            else:
                ax.plot(r[key], r["force_rmse"], "o")
                ax.annotate(short_name(r["model"]), (r[key], r["force_rmse"]), textcoords="offset points",
                            xytext=(4, 4), fontsize=8)
        ax.set_xlabel(label)
        ax.set_xscale("log")
    axes[0].set_ylabel("force RMSE vs teacher, meV/Å")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("errors", type=Path, help="JSONL of `nemd errors --json`")
    p.add_argument("speed", type=Path, help="JSONL of `model_benchmark.py --out`")
    p.add_argument("--atoms", type=int, default=8640, help="the size whose speed and memory are plotted")
    p.add_argument("--data", default="test/", help="error records whose data path contains this (default test/)")
    p.add_argument("--memory", choices=["peak", "process"], default="peak",
                   help="peak resident set above the loaded model, or the whole process's (see above)")
    p.add_argument("--models", nargs="+", default=None, help="only these speed records (default: all)")
    p.add_argument("--plot", type=Path, default=None)
    args = p.parse_args(argv)
    speed = [s for s in read_jsonl(args.speed) if args.models is None or s["model"] in args.models]
    rows = table(read_jsonl(args.errors), speed, args.atoms, args.data, args.memory)
    print(f"{'model':<32} {'force RMSE meV/Å':>16} {'µs/atom':>8} {'KB/atom':>8} {'params':>7} threads")
    for r in rows:
        rmse = "(teacher)" if r["force_rmse"] is None else f"{r['force_rmse']:.1f}"
        print(f"{r['model']:<32} {rmse:>16} {r['us_per_atom']:>8.1f} {r['kb_per_atom']:>8.1f} "
              f"{r.get('parameters') or '':>7} {r['threads']}")
    if args.plot:
        plot(rows, args.plot, f"water, {args.atoms} atoms, {rows[0]['threads']} CPU threads; errors on {args.data}",
             args.memory)
        print(f"plot: {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
