"""``nemd run`` on any structure, ``nemd export``: a short argon run end to end."""

import subprocess
import sys

import numpy as np
from ase.build import bulk


def test_nemd_run_any_structure_then_export(tmp_path):
    from nemd.io.h5md import read_frames

    atoms = bulk("Ar", "fcc", a=5.3, cubic=True).repeat(3)
    atoms.positions += np.random.default_rng(0).normal(scale=0.05, size=atoms.positions.shape)
    atoms.write(tmp_path / "argon.extxyz")
    cmd = [sys.executable, "-m", "nemd.cli", "run", "argon.extxyz", "--model", "lennard-jones", "--temperature",
           "100", "--timestep", "4", "--steps", "40", "--equilibration", "20", "--minimize-steps", "10",
           "--every", "10", "--skin", "0.5"]
    out = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    assert "argon.extxyz: 108 atoms" in out.stdout and "Ar-Ar: first peak" in out.stdout
    t = read_frames(tmp_path / "runs" / "argon.h5")
    assert t.n_frames == 5 and (tmp_path / "runs" / "argon_rdf.png").is_file()
    exported = subprocess.run([sys.executable, "-m", "nemd.cli", "export", "runs/argon.h5", "last.extxyz",
                               "--start", "-2"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert exported.returncode == 0 and "2 frames" in exported.stdout
    bad = subprocess.run([sys.executable, "-m", "nemd.cli", "run", "missing.xyz"], cwd=tmp_path, capture_output=True,
                         text=True, timeout=300)
    assert bad.returncode == 2 and "structure file not found" in bad.stderr
