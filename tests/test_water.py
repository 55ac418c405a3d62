"""Water boxes and the water_nvt.py entry point (errors fast; physics in slow tests)."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from nemd.io import molecules_for_atoms, water_box
from nemd.neighbors import build

SCRIPT = Path(__file__).resolve().parent.parent / "simulations" / "water_nvt.py"


@pytest.mark.parametrize("n", [1, 7, 171])
def test_water_box_geometry_and_density(n):
    s = water_box(n, density=0.997, seed=3)
    assert s.n_atoms == 3 * n and list(s.numbers[:3]) == [8, 1, 1]
    mass = n * 18.01528 * 1.66053906660  # g/cm^3 * Å^3
    assert mass / np.linalg.det(s.cell) == pytest.approx(0.997, rel=1e-9)
    r = s.positions.reshape(n, 3, 3)
    oh = np.linalg.norm(r[:, 1:] - r[:, :1], axis=-1)
    np.testing.assert_allclose(oh, 0.9572, atol=1e-9)
    cos = np.einsum("ni,ni->n", r[:, 1] - r[:, 0], r[:, 2] - r[:, 0]) / 0.9572**2
    np.testing.assert_allclose(np.degrees(np.arccos(cos)), 104.52, atol=1e-6)
    pairs = build(s.positions, s.cell, True, 1.6)
    molecule = np.arange(s.n_atoms) // 3
    assert np.all(molecule[pairs.senders] == molecule[pairs.receivers])  # no intermolecular contacts < 1.6 Å


def test_water_box_packs_every_small_size():
    """Sizes whose simple cubic grid has spare sites (e.g. 28 molecules) used to fail."""
    for n in range(1, 41):
        for seed in range(4):
            s = water_box(n, seed=seed)
            assert s.n_atoms == 3 * n


def test_atoms_to_molecules():
    assert molecules_for_atoms(512) == 171 and molecules_for_atoms(1536) == 512 and molecules_for_atoms(2) == 1
    with pytest.raises(ValueError):
        molecules_for_atoms(0)
    with pytest.raises(ValueError, match="at least one"):
        water_box(0)


def run(args, cwd):
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, cwd=cwd, timeout=600)


@pytest.mark.parametrize("args, message", [
    (["--atoms", "0"], "--atoms must be positive"),
    (["--atoms", "30", "--temperature", "-5"], "--temperature must be positive"),
    (["--atoms", "30", "--model", "mace"], "unknown model 'mace'"),
    (["--atoms", "30", "--model-dir", "/nonexistent"], "weight files for bpnn-rpbe-d3 not found"),
    (["--structure", "missing.xyz"], "structure file not found"),
    (["--structure", "garbage.xyz"], "could not read structure file"),
    (["--atoms", "30", "--resume"], "no checkpoint"),
])
def test_bad_input_is_one_line_and_leaves_no_trajectory(tmp_path, water_dir, capsys, monkeypatch, args, message):
    from nemd.cli import water

    monkeypatch.chdir(tmp_path)
    (tmp_path / "garbage.xyz").write_text("this is not\n an xyz file\n")
    assert water.main([*args, "--out", "traj.h5"]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "traj.h5").exists()


def checkpoint_step(path) -> int:
    from nemd.md import checkpoint

    return checkpoint.load(path)["step"]


def test_ctrl_c_stops_cleanly_and_resume_continues(tmp_path, water_dir):
    """A run stopped by Ctrl-C during production keeps a readable trajectory, a checkpoint
    at its last frame and prints the summary; --resume then continues without gaps."""
    from nemd.io.h5md import read_frames

    base = ["--molecules", "16", "--minimize-steps", "10", "--equilibration", "0", "--every", "3",
            "--checkpoint-every", "30", "--out", "w.h5", "--seed", "1"]
    proc = subprocess.Popen([sys.executable, str(SCRIPT), *base, "--steps", "1000000"], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    checkpoint, run_file = tmp_path / "w.ckpt.npz", tmp_path / "w.run.json"
    deadline = time.monotonic() + 300
    while proc.poll() is None and time.monotonic() < deadline:  # production starts with a checkpoint;
        if checkpoint.is_file() and checkpoint_step(checkpoint) > json.loads(run_file.read_text())[
                "production_start"]:  # wait for a periodic one
            break
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err
    assert "--molecules 16: 16 H2O = 48 atoms" in out and "interrupted at step" in out
    assert "µs/atom/step" in out and "O-O: first peak" in out and (tmp_path / "w_rdf.png").is_file()
    info = json.loads(run_file.read_text())
    steps = list(read_frames(tmp_path / "w.h5").step)
    start, stopped = info["production_start"], checkpoint_step(checkpoint)
    assert stopped >= start + 30  # the signal came after a periodic checkpoint
    assert steps == list(range(start, stopped + 1, 3))  # every frame up to the checkpoint's step
    # Resuming with a production length 6 steps past the stop continues and appends.
    info["steps"] = stopped - start + 6
    run_file.write_text(json.dumps(info))
    out = run([*base, "--resume"], cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert list(read_frames(tmp_path / "w.h5").step) == list(range(start, stopped + 7, 3))


@pytest.mark.slow
def test_liquid_water_structure_and_temperature(rpbe_model, liquid_8640):
    """512 molecules of RPBE-D3 water at 300 K (issue 6's physical checks).

    At the density of the shared RPBE-D3 liquid (0.894 g/cm^3, from a long LAMMPS run of
    this potential whose box had relaxed under a barostat; its virial pressure is 0.4
    kbar), not at experiment's 0.997 g/cm^3: compressing that liquid rigidly to 0.997
    raises its pressure to 14 kbar, and our run there gave an O–O coordination of 5.3
    (docs/benchmarks.md). Float32, as users run it and as water_nvt.py does it:
    minimisation, 2 ps of Langevin equilibration, 1.5 ps of Nose–Hoover sampling. Mean
    temperature within 2 %, O and H kinetic temperatures each within 3 % (equipartition:
    a global thermostat alone left the O–H vibrations ~100 K cold), no energy blow-up,
    O-H bonds 0.95-1.02 Å, O-O first peak 2.70-2.90 Å with height 2.2-3.4, first minimum
    3.3-3.6 Å, coordination to it 4-5 (experiment: 2.80 Å, ~2.5); against the LAMMPS
    liquid, the same running O–O coordination at 3.0, 3.5 and 4.0 Å; mean pressure near 0.
    """
    import jax.numpy as jnp

    from nemd.analysis import describe_peaks, kinetic_temperatures, radial_distribution
    from nemd.analysis.pressure import frame_pressures
    from nemd.md import ListSettings, MDSettings, Simulation, fire_minimize
    from nemd.units import density_g_cm3

    reference = liquid_8640
    density = density_g_cm3(reference.numbers, reference.cell)
    s = water_box(512, density=density, seed=0)
    lists = ListSettings(skin=1.0)
    relaxed = fire_minimize(rpbe_model, s.numbers, s.positions, s.cell, True, fmax=0.1, max_steps=200,
                            lists=lists, chunk_steps=5, dtype=jnp.float32)
    settings = MDSettings(timestep_fs=0.5, temperature_K=300.0, thermostat="langevin", chunk_steps=5)
    sim = Simulation(rpbe_model, s.numbers, relaxed.positions, s.cell, True, settings, lists, dtype=jnp.float32)
    sim.run(4000)
    sim.continue_with(thermostat="nose-hoover")
    frames, velocities, temperatures, energies = [], [], [], []
    for _ in range(30):
        reports = sim.run(100)
        temperatures += [r.temperature for r in reports]
        energies.append(reports[-1].conserved)
        frame = sim.frame()
        frames.append((frame.positions, s.cell))
        velocities.append(frame.velocities)
    sim.close()
    r = frames[-1][0].reshape(-1, 3, 3)
    oh = np.linalg.norm(r[:, 1:] - r[:, :1], axis=-1)  # molecules stay whole in index order
    ours = radial_distribution(frames, s.numbers, ["O-O"], 6.0, 300)
    lammps = radial_distribution([(reference.positions, reference.cell)], reference.numbers, ["O-O"], 6.0, 300)
    peaks, target = describe_peaks(ours, "O-O"), describe_peaks(lammps, "O-O")
    shells = [3.0, 3.5, 4.0]  # Å; running coordination n(r) at fixed r is robust to the flat minimum
    n_ours, n_lammps = (np.interp(shells, rdf.edges[1:], rdf.coordination["O-O"]) for rdf in (ours, lammps))
    by_element = kinetic_temperatures(np.stack(velocities), s.numbers)
    mean_t = np.mean(temperatures)

    p_run = frame_pressures(rpbe_model, s.numbers, frames, 300.0).mean()
    p_reference = frame_pressures(rpbe_model, reference.numbers, [(reference.positions, reference.cell)], 300.0)[0]
    print(f"\ndensity {density:.4f} g/cm3: T {mean_t:.2f} K (O {by_element['O']:.1f} K, H {by_element['H']:.1f} K), "
          f"conserved-energy spread {np.ptp(energies) / s.n_atoms:.4f} eV/atom, O-H {oh.mean():.4f} Å, "
          f"O-O peak {peaks.peak_r:.3f} Å g {peaks.peak_g:.3f}, min {peaks.minimum_r:.3f} Å, "
          f"CN {peaks.coordination:.3f}; pressure {p_run:.0f} bar (LAMMPS liquid {p_reference:.0f} bar); "
          f"LAMMPS liquid O-O: {target}; n(r) at {shells} Å: {n_ours.round(3)} (LAMMPS {n_lammps.round(3)})")
    for half in (frames[:15], frames[15:]):  # drift between halves would mean equilibration was too short
        print(describe_peaks(radial_distribution(half, s.numbers, ["O-O"], 6.0, 300), "O-O"))
    assert abs(mean_t / 300.0 - 1.0) < 0.02
    assert abs(by_element["O"] / 300.0 - 1.0) < 0.03 and abs(by_element["H"] / 300.0 - 1.0) < 0.03
    assert np.all(np.isfinite(energies)) and np.ptp(energies) / s.n_atoms < 0.05  # eV/atom
    assert 0.95 < oh.mean() < 1.02
    assert 2.70 <= peaks.peak_r <= 2.90 and 2.2 <= peaks.peak_g <= 3.4
    assert 3.3 <= peaks.minimum_r <= 3.6 and 4.0 <= peaks.coordination <= 5.0
    # The LAMMPS run of the same potential: the same shells. Its peak position is not compared:
    # from one frame it is noise (2.95 Å against 2.83-2.93 Å in our halves, 2026-11-23 run).
    assert np.all(np.abs(n_ours - n_lammps) < 0.2)
    # Noise of a 30-frame mean for 1536 atoms is a few hundred bar; compressing the liquid
    # rigidly by 5 % (to 0.94 g/cm^3) raises it by 5.5 kbar.
    assert abs(p_run) < 1500.0


@pytest.mark.slow
def test_sync_neighbors_give_the_same_water_trajectory(tmp_path, water_dir):
    """The user-facing --sync-neighbors flag reproduces the streamed run (float64)."""
    from nemd.io.h5md import read_frames

    base = ["--molecules", "32", "--minimize-steps", "20", "--equilibration", "30", "--steps", "60",
            "--every", "20", "--x64", "--seed", "2"]
    for name, extra in (("async.h5", []), ("sync.h5", ["--sync-neighbors"])):
        out = run([*base, "--out", name, *extra], cwd=tmp_path)
        assert out.returncode == 0, out.stderr
    a, b = read_frames(tmp_path / "async.h5"), read_frames(tmp_path / "sync.h5")
    np.testing.assert_array_equal(a.positions, b.positions)
