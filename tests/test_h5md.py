"""H5MD trajectories: round trip, MDAnalysis compatibility, crash safety, restart append."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import h5py
import numpy as np
import pytest

from nemd.io.h5md import TrajectoryWriter, read_frames, universe

CELL = np.array([[10.0, 0.0, 0.0], [1.0, 11.0, 0.0], [0.5, 0.3, 12.0]])
NUMBERS = np.array([8, 1, 1] * 10)


def frames(n, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.uniform(-15.0, 30.0, (NUMBERS.size, 3)) for _ in range(n)]  # unwrapped, outside the cell


def test_round_trip(tmp_path):
    path = tmp_path / "t.h5"
    data = frames(7)
    with TrajectoryWriter(path, NUMBERS, CELL, True, velocities=True, forces=True, flush_every=3,
                          precision="float64") as w:
        for k, p in enumerate(data):
            w.write(10 * k, 0.005 * k, p, velocities=0.1 * p, forces=0.01 * p,
                    observables=dict(temperature=300.0 + k, potential_energy=-5.0 * k))
    t = read_frames(path)
    assert t.n_frames == 7 and list(t.step) == [0, 10, 20, 30, 40, 50, 60]
    np.testing.assert_allclose(t.time, 0.005 * np.arange(7))
    np.testing.assert_allclose(t.positions, np.stack(data), atol=1e-10)  # unwrapped recovered
    frac = np.einsum("tni,ij->tnj", t.wrapped, np.linalg.inv(CELL))
    assert frac.min() >= -1e-12 and frac.max() < 1.0 + 1e-12  # stored wrapped
    np.testing.assert_allclose(t.forces, 0.01 * np.stack(data), rtol=1e-12)
    np.testing.assert_allclose(t.observables["temperature"], 300.0 + np.arange(7))
    np.testing.assert_array_equal(t.numbers, NUMBERS)
    sub = read_frames(path, 1, 6, 2)
    assert list(sub.step) == [10, 30, 50]
    with h5py.File(path) as f:
        assert list(f["h5md"].attrs["version"]) == [1, 1]
        assert f["h5md/creator"].attrs["name"] == "nemd"
        assert f["particles/all/position/value"].compression == "gzip"


def test_mdanalysis_reads_the_file(tmp_path):
    path = tmp_path / "t.h5"
    data = frames(4)
    with TrajectoryWriter(path, NUMBERS, CELL, True, flush_every=2) as w:
        for k, p in enumerate(data):
            w.write(k, 0.5 * k, p, observables=dict(temperature=290.0 + k))
    ours = read_frames(path)
    u = universe(path)
    assert len(u.trajectory) == 4 and list(u.atoms.elements[:3]) == ["O", "H", "H"]
    assert u.atoms.masses[0] == pytest.approx(15.999, abs=1e-3)
    for k, ts in enumerate(u.trajectory):
        np.testing.assert_allclose(ts.positions, ours.wrapped[k], atol=1e-5)
        np.testing.assert_allclose(ts.triclinic_dimensions, CELL, atol=1e-5)
        assert ts.time == pytest.approx(0.5 * k)


CRASHING_WRITER = textwrap.dedent("""
    import sys, time
    import numpy as np
    from nemd.io.h5md import TrajectoryWriter
    w = TrajectoryWriter(sys.argv[1], np.array([8, 1, 1] * 10), np.eye(3) * 10.0, flush_every=2)
    rng = np.random.default_rng(0)
    for k in range(10_000):
        w.write(k, 0.001 * k, rng.uniform(0, 10, (30, 3)))
        if k % 2 == 1:
            w.flush()
            print("flushed", k + 1, flush=True)
        time.sleep(0.01)
""")


def test_sigkill_keeps_every_flushed_frame(tmp_path):
    path = tmp_path / "killed.h5"
    proc = subprocess.Popen([sys.executable, "-c", CRASHING_WRITER, str(path)], stdout=subprocess.PIPE, text=True)
    flushed = 0
    deadline = time.time() + 120
    while flushed < 20 and time.time() < deadline:
        line = proc.stdout.readline()
        if line.startswith("flushed"):
            flushed = int(line.split()[1])
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert flushed >= 20
    t = read_frames(path)  # h5py opens it
    assert t.n_frames >= flushed and list(t.step[:flushed]) == list(range(flushed))
    assert len(universe(path).trajectory) == t.n_frames  # and so does MDAnalysis


def test_append_after_restart(tmp_path):
    path = tmp_path / "t.h5"
    data = frames(8)
    with TrajectoryWriter(path, NUMBERS, CELL, flush_every=4) as w:
        for k in range(6):
            w.write(k, 0.1 * k, data[k])
    # A restart from a checkpoint at step 4: frames 4 and 5 are redone.
    with TrajectoryWriter(path, NUMBERS, CELL, append=True, flush_every=4) as w:
        for k in range(4, 8):
            w.write(k, 0.1 * k, data[k] + 0.5)
    t = read_frames(path)
    assert list(t.step) == list(range(8))
    np.testing.assert_allclose(t.positions[:4], np.stack(data[:4]), atol=1e-4)
    np.testing.assert_allclose(t.positions[4:], np.stack(data[4:]) + 0.5, atol=1e-4)
    with pytest.raises(ValueError, match="atoms"):
        TrajectoryWriter(path, NUMBERS[:-3], CELL, append=True)
    with pytest.raises(ValueError, match="species"):
        TrajectoryWriter(path, NUMBERS[::-1], CELL, append=True)


def test_bad_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        read_frames(tmp_path / "missing.h5")
    (tmp_path / "text.h5").write_text("not hdf5")
    with pytest.raises(ValueError, match="not a readable HDF5"):
        read_frames(tmp_path / "text.h5")
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["x"] = 1
    with pytest.raises(ValueError, match="not an H5MD trajectory"):
        read_frames(tmp_path / "other.h5")
    with pytest.raises(FileNotFoundError, match="cannot append"):
        TrajectoryWriter(tmp_path / "none.h5", NUMBERS, CELL, append=True)


def test_export_to_extxyz_keeps_positions_velocities_forces_and_energies(tmp_path):
    import ase.io
    from ase import units

    from nemd.io.export import h5md_to_extxyz

    path = tmp_path / "t.h5"
    data = frames(5)
    with TrajectoryWriter(path, NUMBERS, CELL, True, velocities=True, forces=True, flush_every=2,
                          precision="float64") as w:
        for k, p in enumerate(data):
            w.write(10 * k, 0.005 * k, p, velocities=0.1 * p, forces=0.01 * p,
                    observables=dict(temperature=300.0 + k, potential_energy=-5.0 * k))
    assert h5md_to_extxyz(path, tmp_path / "t.extxyz", start=1, step=2) == 2
    back = ase.io.read(tmp_path / "t.extxyz", index=":")
    t = read_frames(path, 1, None, 2)
    assert [a.info["step"] for a in back] == [10, 30] and back[1].info["temperature"] == 303.0
    for a, k in zip(back, range(2)):
        np.testing.assert_allclose(a.positions, t.wrapped[k], atol=1e-6)
        np.testing.assert_allclose(a.get_velocities() * units.fs * 1e3, t.velocities[k], rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(a.get_forces(), t.forces[k], atol=1e-6)
        assert a.get_potential_energy() == pytest.approx(-5.0 * (1 + 2 * k))
    with pytest.raises(FileNotFoundError):
        h5md_to_extxyz(tmp_path / "missing.h5", tmp_path / "x.extxyz")
    assert not (tmp_path / "x.extxyz").exists()
