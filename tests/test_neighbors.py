"""Cell-list backends against the brute-force reference, vesin, and each other."""

import zlib

import numpy as np
import pytest

from nemd.neighbors import build

COMPILED = ["numba", "fortran"]


@pytest.fixture(params=COMPILED)
def backend(request):
    if request.param == "fortran":
        return request.getfixturevalue("fortran_backend")
    return request.param


def pair_set(pairs):
    return set(zip(pairs.receivers.tolist(), pairs.senders.tolist(), map(tuple, pairs.shifts.tolist())))


def assert_same(a, b):
    for x, y in zip(a, b):
        assert x.dtype == np.int32 and y.dtype == np.int32
        np.testing.assert_array_equal(x, y)


def random_system(rng, n, skew=0.0, pbc=(True, True, True), box=(6.0, 7.0, 8.0), spread=(0.0, 1.0)):
    cell = np.diag(box) + skew * rng.uniform(-1, 1, (3, 3)) * np.mean(box)
    frac = rng.uniform(*spread, (n, 3))
    return frac @ cell, cell, np.asarray(pbc)


CASES = {
    "orthorhombic": dict(n=120, cutoff=3.0),
    "triclinic": dict(n=120, cutoff=3.0, skew=0.3),
    "strongly_skewed": dict(n=80, cutoff=3.5, skew=0.9),
    "box_smaller_than_twice_cutoff": dict(n=30, cutoff=5.0, box=(3.0, 4.0, 4.5), skew=0.2),
    "cutoff_larger_than_box": dict(n=6, cutoff=9.0, box=(2.5, 3.0, 3.5), skew=0.1),
    "slab_pbc_TTF": dict(n=100, cutoff=3.0, pbc=(True, True, False), skew=0.2),
    "wire_pbc_FFT": dict(n=60, cutoff=3.2, pbc=(False, False, True), skew=0.2),
    "mixed_pbc_TFT_small_box": dict(n=25, cutoff=4.5, pbc=(True, False, True), box=(3.0, 3.0, 3.0)),
    "unwrapped_far_outside": dict(n=90, cutoff=3.0, skew=0.4, spread=(-12.0, 15.0)),
    "no_pairs": dict(n=10, cutoff=0.01),
}


@pytest.mark.parametrize("case", CASES)
def test_backend_matches_brute_force(case, backend):
    kw = dict(CASES[case])
    cutoff = kw.pop("cutoff")
    rng = np.random.default_rng(zlib.crc32(case.encode()))
    positions, cell, pbc = random_system(rng, **kw)
    reference = build(positions, cell, pbc, cutoff, backend="brute")
    result = build(positions, cell, pbc, cutoff, backend=backend)
    assert_same(result, reference)
    if case == "no_pairs":
        assert len(result.senders) == 0
    # Every listed vector really is shorter than the cutoff.
    vec = positions[result.senders] + result.shifts @ cell - positions[result.receivers]
    assert np.all(np.linalg.norm(vec, axis=1) < cutoff)


def test_multiple_images_and_self_images(backend):
    """A cutoff beyond the box lists several images of a pair and of the atom itself."""
    cell = np.array([[2.0, 0, 0], [0.3, 2.2, 0], [0.1, 0.2, 2.4]])
    positions = np.array([[0.1, 0.2, 0.3], [1.0, 1.1, 1.2]])
    pairs = build(positions, cell, True, 4.5, backend=backend)
    assert_same(pairs, build(positions, cell, True, 4.5, backend="brute"))
    self_images = pairs.shifts[(pairs.senders == 0) & (pairs.receivers == 0)]
    assert len(self_images) > 6 and not np.any(np.all(self_images == 0, axis=1))
    counts = {}
    for r, s in zip(pairs.receivers, pairs.senders):
        counts[(r, s)] = counts.get((r, s), 0) + 1
    assert counts[(0, 1)] > 10


@pytest.mark.parametrize("cell", [None, np.zeros((3, 3))])
def test_cluster_without_cell(cell, backend):
    rng = np.random.default_rng(3)
    positions = rng.normal(scale=4.0, size=(70, 3))
    pairs = build(positions, cell, False, 3.0, backend=backend)
    assert_same(pairs, build(positions, cell, False, 3.0, backend="brute"))
    assert not pairs.shifts.any()
    d = np.linalg.norm(positions[:, None] - positions[None], axis=-1)
    assert len(pairs.senders) == np.sum(d < 3.0) - 70


def test_single_atom(backend):
    pairs = build([[0.5, 0.5, 0.5]], np.eye(3) * 10, True, 3.0, backend=backend)
    assert len(pairs.senders) == 0
    pairs = build([[0.5, 0.5, 0.5]], np.eye(3) * 2, True, 2.5, backend=backend)
    assert set(map(tuple, pairs.shifts.tolist())) == {(1, 0, 0), (-1, 0, 0), (0, 1, 0), (0, -1, 0), (0, 0, 1), (0, 0, -1)}
    assert len(build(np.zeros((0, 3)), np.eye(3) * 5, True, 3.0, backend=backend).senders) == 0


def test_left_handed_cell(backend):
    rng = np.random.default_rng(7)
    cell = np.array([[5.0, 0, 0], [0, 0, 5.5], [0.5, 6.0, 0]])  # det < 0
    positions = rng.uniform(0, 1, (60, 3)) @ cell
    assert_same(build(positions, cell, True, 3.0, backend=backend), build(positions, cell, True, 3.0, backend="brute"))


def test_thread_count_does_not_change_output(backend):
    rng = np.random.default_rng(11)
    positions, cell, pbc = random_system(rng, 3000, skew=0.2, box=(30.0, 31.0, 32.0))
    one = build(positions, cell, pbc, 4.0, backend=backend, n_threads=1)
    assert_same(build(positions, cell, pbc, 4.0, backend=backend, n_threads=2), one)
    assert_same(build(positions, cell, pbc, 4.0, backend=backend, n_threads=3), one)


def test_fortran_and_numba_identical_on_water(liquid_8640, fortran_backend):
    s = liquid_8640
    for cutoff in (5.0, 6.0):
        assert_same(build(s.positions, s.cell, s.pbc, cutoff, backend="fortran"),
                    build(s.positions, s.cell, s.pbc, cutoff, backend="numba"))


@pytest.mark.parametrize("cutoff", [5.0, 6.0])
def test_against_vesin_on_liquid_water(liquid_8640, backend, cutoff):
    vesin = pytest.importorskip("vesin")
    s = liquid_8640
    calc = vesin.NeighborList(cutoff=cutoff, full_list=True)
    i, j, shifts = calc.compute(points=s.positions, box=s.cell, periodic=True, quantities="ijS")
    reference = set(zip(i.tolist(), j.tolist(), map(tuple, shifts.tolist())))
    pairs = build(s.positions, s.cell, s.pbc, cutoff, backend=backend)
    assert len(pairs.senders) == len(reference)
    assert pair_set(pairs) == reference
    # Canonical order: sorted by (receiver, sender, shift).
    keys = np.lexsort((pairs.shifts[:, 2], pairs.shifts[:, 1], pairs.shifts[:, 0], pairs.senders, pairs.receivers))
    np.testing.assert_array_equal(keys, np.arange(len(keys)))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(positions=[[0, 0, np.nan]]), "NaN"),
        (dict(positions=[[0, 0, np.inf]]), "NaN or inf"),
        (dict(positions=[[0, 0]]), "shape"),
        (dict(cell=np.zeros((3, 3))), "singular"),
        (dict(cell=[[1, 0, 0], [2, 0, 0], [0, 0, 1]]), "singular"),
        (dict(cell=np.eye(2)), "cell must have shape"),
        (dict(cutoff=0.0), "cutoff must be positive"),
        (dict(cutoff=-1.0), "cutoff must be positive"),
        (dict(pbc=(True, False)), "pbc"),
        (dict(cell=None), "needs a cell"),
        (dict(backend="gpu"), "unknown neighbour backend"),
    ],
)
def test_bad_input(kwargs, message):
    args = dict(positions=np.zeros((2, 3)) + [[0, 0, 0], [1, 1, 1]], cell=np.eye(3) * 5, pbc=True, cutoff=2.0)
    args.update(kwargs)
    backend = args.pop("backend", "numba")
    with pytest.raises(ValueError, match=message):
        build(args["positions"], args["cell"], args["pbc"], args["cutoff"], backend=backend)


def test_missing_fortran_backend_says_how_to_build(monkeypatch):
    from nemd.neighbors import builders

    def not_built():
        raise ValueError("the Fortran neighbour backend is not built: run `make fortran`")

    monkeypatch.setattr(builders, "_fortran_kernels", not_built)
    with pytest.raises(ValueError, match="make fortran"):
        build(np.zeros((1, 3)), np.eye(3), True, 1.0, backend="fortran")
