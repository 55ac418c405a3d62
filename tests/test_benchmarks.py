"""The benchmark drivers run end to end (tiny sizes): the scaling driver's records and plot,
and the prepared GPU script on the CPU."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def test_scaling_driver_writes_records_and_a_plot(tmp_path, water_dir):
    out, plot = tmp_path / "s.jsonl", tmp_path / "s.png"
    run = subprocess.run([sys.executable, "scaling.py", "--stages", "lists", "--sizes", "1536", "--methods",
                          "numba-1", "vesin", "--out", str(out), "--plot", str(plot)], cwd=BENCHMARKS,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["method"] for r in records] == ["numba-1", "vesin"] and plot.stat().st_size > 0
    assert records[0]["pairs"] == records[1]["pairs"] > 0 and {"jax", "date", "command"} <= set(records[0])
    # --replot draws results of several runs together without measuring anything
    other = tmp_path / "t.jsonl"
    other.write_text(json.dumps(dict(records[0], atoms=3072, seconds=2 * records[0]["seconds"])) + "\n")
    combined = tmp_path / "both.png"
    run = subprocess.run([sys.executable, "scaling.py", "--replot", str(out), str(other), "--plot", str(combined)],
                         cwd=BENCHMARKS, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    assert "3072" in run.stdout and combined.stat().st_size > 0 and len(out.read_text().splitlines()) == 2


@pytest.mark.slow
def test_gpu_script_runs_on_the_cpu_with_small_sizes(tmp_path, water_dir):
    env = dict(os.environ, SMALL="1", JAX_PLATFORMS="cpu", OUT=str(tmp_path), PYTHON=sys.executable,
               NEMD_DATA=str(water_dir), BUDGET_S="600")
    run = subprocess.run(["bash", str(BENCHMARKS / "gpu.sh")], capture_output=True, text=True, timeout=1800, env=env)
    assert run.returncode == 0, run.stderr
    models = [json.loads(line)["model"] for line in (tmp_path / "gpu.jsonl").read_text().splitlines()]
    assert models == ["nemp-small", "bpnn-rpbe-d3", "nequip-nemp-small"]


def _benchmark_module(name):
    sys.path.insert(0, str(BENCHMARKS))
    try:
        return __import__(name)
    finally:
        sys.path.remove(str(BENCHMARKS))


def test_student_md_compare_applies_the_bars():
    student_md = _benchmark_module("student_md")
    segment = dict(T_O=300.0, T_O_err=1.0, T_H=300.0, T_H_err=1.0, peak_r=2.80, peak_g=2.9, minimum_r=3.4,
                   coordination=4.5, rdf_r=[2.0, 3.0], rdf_g=[0.0, 1.0])
    teacher = dict(mode="nvt", model="bpnn", atoms=513, density=0.894, temperature=300.0, us_per_atom_step=100.0,
                   skin_violations=0, **{k: dict(segment) for k in ("langevin", "nose-hoover", "both")})
    same = dict(teacher, model="same")
    assert student_md.compare([teacher, same], "bpnn") == 0
    # a peak 0.05 Å out (bar 0.03) fails in every segment; a hot H (+4 %) fails where a thermostat ran
    off = dict(teacher, model="off", **{k: dict(segment, peak_r=2.85, T_H=312.0)
                                         for k in ("langevin", "nose-hoover", "both")})
    assert student_md.compare([teacher, off], "bpnn") == 3 + 2
    within = dict(teacher, model="within", **{k: dict(segment, peak_r=2.82, coordination=4.65, T_O=308.0)
                                              for k in ("langevin", "nose-hoover", "both")})
    assert student_md.compare([teacher, within], "bpnn") == 0


def test_pareto_weights_errors_by_frames(tmp_path):
    pareto = _benchmark_module("pareto")
    errors = [dict(model="a", data="test/x.extxyz", frames=10, force_rmse=30.0),
              dict(model="a", data="test/y.extxyz", frames=30, force_rmse=50.0),
              dict(model="a", data="dft.data", frames=20, force_rmse=99.0)]
    speed = [dict(model="a", atoms=8640, us_per_atom=150.0, peak_mb=864.0, threads=2),
             dict(model="bpnn", atoms=8640, us_per_atom=200.0, peak_mb=1728.0, threads=2)]
    rows = {r["model"]: r for r in pareto.table(errors, speed, 8640, "test/")}
    assert rows["a"]["force_rmse"] == pytest.approx(((10 * 900 + 30 * 2500) / 40) ** 0.5)
    assert rows["a"]["kb_per_atom"] == pytest.approx(100.0) and rows["bpnn"]["force_rmse"] is None
    speed[0]["rss_mb"] = 1728.0
    assert pareto.table(errors, speed[:1], 8640, "test/", memory="process")[0]["kb_per_atom"] == pytest.approx(200.0)
    pareto.plot(list(rows.values()), tmp_path / "p.png", "test")
    assert (tmp_path / "p.png").stat().st_size > 0
    assert pareto.short_name("runs/pruning/small/model.nemd") == "small" and pareto.short_name("bpnn") == "bpnn"
