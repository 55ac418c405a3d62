"""RDFs against MDAnalysis InterRDF and the ideal gas; the analysis script's errors."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from MDAnalysis.analysis.rdf import InterRDF

from nemd.analysis import describe_peaks, radial_distribution
from nemd.io.h5md import TrajectoryWriter, read_frames, universe

SCRIPT = Path(__file__).resolve().parent.parent / "analysis" / "rdf.py"
GRID = 2.0**-12  # Å


@pytest.fixture(scope="module")
def water_trajectory(liquid_8640, tmp_path_factory):
    """Three frames of the 8640-atom liquid (thermal noise added) on a 2^-12 Å grid.

    MDAnalysis computes coordinate differences in float32; on this grid every float32
    and float64 operation involved is exact, so both codes see the same distances and
    the comparison can demand 1e-6 instead of tolerating a few pairs in neighbouring bins.
    """
    s = liquid_8640
    cell = np.round(s.cell / GRID) * GRID
    path = tmp_path_factory.mktemp("rdf") / "water.h5"
    rng = np.random.default_rng(0)
    with TrajectoryWriter(path, s.numbers, cell) as w:
        for k in range(3):
            p = s.positions + rng.normal(scale=0.02, size=s.positions.shape)
            frac = (p @ np.linalg.inv(cell)) % 1.0
            w.write(k, 0.001 * k, np.round(frac @ cell / GRID) * GRID)
    return path


def test_matches_mdanalysis_interrdf(water_trajectory):
    t = read_frames(water_trajectory)
    ours = radial_distribution(zip(t.positions, t.cell), t.numbers, ["O-O", "O-H", "H-H"], 6.0, 300)
    u = universe(water_trajectory)
    oxygen, hydrogen = u.select_atoms("element O"), u.select_atoms("element H")
    for pair, (a, b, exclusion) in {"O-O": (oxygen, oxygen, (1, 1)), "O-H": (oxygen, hydrogen, None),
                                    "H-H": (hydrogen, hydrogen, (1, 1))}.items():
        reference = InterRDF(a, b, nbins=300, range=(0.0, 6.0), exclusion_block=exclusion).run()
        np.testing.assert_allclose(ours.edges, reference.results.edges)
        assert np.abs(ours.g[pair] - reference.results.rdf).max() <= 1e-6
    peaks = describe_peaks(ours, "O-O")
    assert 2.7 < peaks.peak_r < 2.9 and 3.2 < peaks.minimum_r < 3.6 and 4.0 < peaks.coordination < 5.0
    assert describe_peaks(ours, "O-H").coordination == pytest.approx(2.0)  # two covalent H per O


def test_ideal_gas_is_flat():
    """Uniform random points: each bin count is Poisson, so g = 1 within sqrt(expected)/expected."""
    rng = np.random.default_rng(1)
    n, frames, cell = 2000, 5, np.array([[20.0, 0, 0], [3.0, 21.0, 0], [1.0, 2.0, 19.0]])
    numbers = np.where(np.arange(n) < n // 2, 8, 1)
    data = [(rng.uniform(0, 1, (n, 3)) @ cell, cell) for _ in range(frames)]
    result = radial_distribution(data, numbers, ["O-H", "O-O"], r_max=12.0, n_bins=60)  # > half the cell
    edges = result.edges
    shell = 4 / 3 * np.pi * np.diff(edges**3)
    volume = abs(np.linalg.det(cell))
    for pair, n_pairs in (("O-H", (n // 2) ** 2), ("O-O", (n // 2) * (n // 2 - 1))):
        expected = frames * shell * n_pairs / volume  # counts per bin for g = 1
        sigma = 1.0 / np.sqrt(expected)
        z = (result.g[pair] - 1.0) / sigma
        assert np.all(np.abs(z[2:]) < 5.0), pair  # 5 sigma per bin
        assert abs(np.mean(z[2:])) < 5.0 / np.sqrt(len(z) - 2)
    # Running coordination number: density times sphere volume.
    n_r = 4 / 3 * np.pi * edges[1:] ** 3 * (n // 2) / volume
    np.testing.assert_allclose(result.coordination["O-H"][-10:], n_r[-10:], rtol=0.02)


def test_rdf_errors(water_trajectory):
    t = read_frames(water_trajectory)
    with pytest.raises(ValueError, match="'C'"):
        radial_distribution(zip(t.positions, t.cell), t.numbers, ["O-C"])
    with pytest.raises(ValueError, match="form A-B"):
        radial_distribution(zip(t.positions, t.cell), t.numbers, ["OH"])
    with pytest.raises(ValueError, match="no frames"):
        radial_distribution([], t.numbers, ["O-O"])


def run_script(*args, cwd):
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True, cwd=cwd)


def test_script_writes_csv_and_plot(water_trajectory, tmp_path):
    out = run_script(water_trajectory, "--pairs", "O-O", "O-H", "H-H", "--rmax", 6, "--bins", 300,
                     "--out", tmp_path / "rdf.csv", "--plot", tmp_path / "rdf.png", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "O-O" in out.stdout and "first peak" in out.stdout
    table = np.genfromtxt(tmp_path / "rdf.csv", delimiter=",", names=True)
    assert len(table) == 300 and "g_OO" in table.dtype.names and "n_OH" in table.dtype.names
    assert (tmp_path / "rdf.png").stat().st_size > 10_000


@pytest.mark.parametrize("args, message", [
    (["missing.h5"], "not found"),
    (["{traj}", "--pairs", "O-X"], "'X'"),
    (["{traj}", "--start", "5", "--stop", "5"], "no frames"),
])
def test_script_errors_leave_no_output(water_trajectory, tmp_path, args, message):
    args = [a.format(traj=water_trajectory) for a in args]
    out = run_script(*args, "--out", tmp_path / "rdf.csv", "--plot", tmp_path / "rdf.png", cwd=tmp_path)
    assert out.returncode != 0 and message in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1  # one line, no traceback
    assert not (tmp_path / "rdf.csv").exists() and not (tmp_path / "rdf.png").exists()
