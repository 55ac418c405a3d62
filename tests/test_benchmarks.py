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
