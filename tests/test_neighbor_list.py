"""The device NeighborList: padding, capacity buckets and the skin criterion."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nemd.neighbors import (
    build,
    build_neighbor_list,
    capacity_bucket,
    edge_vectors,
    exceeds_within_cutoff_bounds,
    max_displacement,
    needs_rebuild,
)


def test_capacity_buckets_grow_geometrically():
    caps = [capacity_bucket(n) for n in range(0, 200_000, 997)]
    assert all(c % 64 == 0 for c in caps)
    assert all(c >= 1.1 * n for c, n in zip(caps, range(0, 200_000, 997)))
    distinct = sorted(set(caps))
    ratios = np.array(distinct[1:]) / np.array(distinct[:-1])
    assert np.all(ratios[3:] < 1.3)  # small steps: few distinct shapes, few recompiles
    assert len(distinct) < 40


def test_padded_list_matches_host_pairs():
    rng = np.random.default_rng(0)
    cell = np.diag([9.0, 10.0, 11.0])
    positions = rng.uniform(0, 1, (200, 3)) @ cell
    nl = build_neighbor_list(positions, cell, True, cutoff=3.0, skin=0.5, backend="numba")
    pairs = build(positions, cell, True, 3.5, backend="numba")
    n = len(pairs.senders)
    assert int(nl.n_pairs) == n and nl.capacity == capacity_bucket(n)
    assert nl.r_list == 3.5 and nl.cutoff == 3.0
    np.testing.assert_array_equal(np.asarray(nl.senders[:n]), pairs.senders)
    assert not np.asarray(nl.mask[n:]).any() and np.asarray(nl.mask[:n]).all()
    vec = np.asarray(edge_vectors(jnp.asarray(positions), nl, cell))
    lengths = np.linalg.norm(vec, axis=1)
    assert np.all(lengths[:n] < 3.5) and np.all(lengths[:n] > 0) and np.all(lengths[n:] == 0)


def test_skin_criterion_is_jittable_and_exact():
    positions = np.zeros((4, 3)) + np.arange(4)[:, None]
    nl = build_neighbor_list(positions, None, False, cutoff=1.5, skin=1.0, backend="numba")
    moved = positions.copy()
    moved[2] += [0.0, 0.5, 0.0]  # 0.5 Å: exactly skin / 2 -> must rebuild
    check = jax.jit(needs_rebuild)
    assert float(jax.jit(max_displacement)(jnp.asarray(moved), nl)) == pytest.approx(0.5)
    assert bool(check(jnp.asarray(moved), nl))
    moved[2] = positions[2] + [0.0, 0.4999, 0.0]
    assert not bool(check(jnp.asarray(moved), nl))


def test_list_stays_complete_within_half_skin():
    """The guarantee the MD driver relies on: after moves < skin/2 the stale list still
    contains every pair within the model cutoff."""
    rng = np.random.default_rng(5)
    cell = np.diag([12.0, 12.0, 12.0])
    positions = rng.uniform(0, 1, (300, 3)) @ cell
    nl = build_neighbor_list(positions, cell, True, cutoff=3.0, skin=1.0, backend="numba")
    direction = rng.normal(size=(300, 3))
    moved = positions + 0.499 * direction / np.linalg.norm(direction, axis=1, keepdims=True)
    assert not bool(needs_rebuild(jnp.asarray(moved), nl))
    n = int(nl.n_pairs)
    stale = set(zip(np.asarray(nl.receivers[:n]).tolist(), np.asarray(nl.senders[:n]).tolist(),
                    map(tuple, np.asarray(nl.shifts[:n]).tolist())))
    fresh = build(moved, cell, True, 3.0, backend="numba")
    assert set(zip(fresh.receivers.tolist(), fresh.senders.tolist(), map(tuple, fresh.shifts.tolist()))) <= stale


def test_negative_skin_rejected():
    with pytest.raises(ValueError, match="skin"):
        build_neighbor_list(np.zeros((2, 3)), None, False, cutoff=1.0, skin=-0.1)


def test_dense_neighbor_tables_match_the_edge_list():
    from nemd.models.graph import dense_neighbors, dense_neighbors_by_kind

    rng = np.random.default_rng(2)
    cell = np.diag([8.0, 9.0, 10.0])
    positions = rng.uniform(0, 1, (120, 3)) @ cell
    kinds = rng.integers(0, 2, 120)
    nl = build_neighbor_list(positions, cell, True, cutoff=3.0, skin=0.3, kinds=kinds, backend="numba")
    n = int(nl.n_pairs)
    receivers, senders = np.asarray(nl.receivers[:n]), np.asarray(nl.senders[:n])
    edges, valid = (np.asarray(x) for x in dense_neighbors(nl, 120))
    assert edges.shape == (120, nl.shape.max_neighbors)
    for i in range(120):
        np.testing.assert_array_equal(edges[i][valid[i]], np.flatnonzero(receivers == i))
    for k, (edges_k, valid_k) in enumerate(dense_neighbors_by_kind(nl, 120, jnp.asarray(kinds), 2)):
        edges_k, valid_k = np.asarray(edges_k), np.asarray(valid_k)
        assert edges_k.shape[1] == nl.shape.by_kind[k]
        for i in range(120):
            expected = np.flatnonzero((receivers == i) & (kinds[senders] == k))
            np.testing.assert_array_equal(edges_k[i][valid_k[i]], expected)


def test_within_cutoff_bounds_and_compacted_tables():
    """The in-cutoff bounds count what a brute-force distance check counts, and
    ``within_cutoff`` keeps exactly the rows' edges shorter than the cutoff, in order."""
    from nemd.models.graph import dense_neighbors_by_kind, within_cutoff
    from nemd.neighbors.neighbor_list import neighbors_bucket

    rng = np.random.default_rng(3)
    cell = np.array([[9.0, 0.0, 0.0], [1.5, 9.5, 0.0], [-1.0, 2.0, 10.0]])  # triclinic
    positions = rng.uniform(0, 1, (150, 3)) @ cell + rng.integers(-2, 3, (150, 3)) @ cell  # unwrapped
    kinds = rng.integers(0, 2, 150)
    cutoff, skin = 3.0, 0.8
    nl = build_neighbor_list(positions, cell, True, cutoff=cutoff, skin=skin, kinds=kinds, backend="numba",
                             within_cutoff=True)
    n = int(nl.n_pairs)
    vec = np.asarray(edge_vectors(jnp.asarray(positions), nl, cell))[:n]
    inside = np.linalg.norm(vec, axis=1) < cutoff
    receivers, senders = np.asarray(nl.receivers[:n]), np.asarray(nl.senders[:n])
    for k in range(2):
        counts = np.bincount(receivers[inside & (kinds[senders] == k)], minlength=150)
        assert nl.shape.within_cutoff_by_kind[k] == neighbors_bucket(counts.max())
        assert nl.shape.within_cutoff_by_kind[k] < nl.shape.by_kind[k]
    for k, (edges, valid) in enumerate(dense_neighbors_by_kind(nl, 150, jnp.asarray(kinds), 2)):
        vectors = jnp.where(valid[..., None], edge_vectors(jnp.asarray(positions), nl, cell)[edges], 0.0)
        width = nl.shape.within_cutoff_by_kind[k]
        compact, kept, fits = within_cutoff(vectors, valid, cutoff, width)
        assert bool(fits) and compact.shape == (150, width, 3)
        for i in range(150):
            row = np.asarray(vectors[i])[np.asarray(valid[i])]
            np.testing.assert_array_equal(np.asarray(compact[i])[np.asarray(kept[i])],
                                          row[np.linalg.norm(row, axis=1) < cutoff])
        assert not bool(within_cutoff(vectors, valid, cutoff, 1)[2])  # rows that do not fit are reported
    # The validity check: holds where the bounds were measured, fails once they are outgrown.
    device_kinds, device_cell = jnp.asarray(kinds), jnp.asarray(cell)
    assert not bool(exceeds_within_cutoff_bounds(jnp.asarray(positions), nl, device_kinds, device_cell))
    tight = dataclasses.replace(nl, shape=dataclasses.replace(nl.shape,
                                                              within_cutoff_by_kind=(int(counts.max()) - 1,) * 2))
    assert bool(exceeds_within_cutoff_bounds(jnp.asarray(positions), tight, device_kinds, device_cell))
    plain = build_neighbor_list(positions, cell, True, cutoff=cutoff, skin=skin, kinds=kinds, backend="numba")
    assert plain.shape.within_cutoff_by_kind == ()  # only on request: such lists need the check
    assert not bool(exceeds_within_cutoff_bounds(jnp.asarray(positions), plain, device_kinds, device_cell))


def test_list_shape_grows_only_where_a_list_does_not_fit():
    from nemd.neighbors import ListCounts, ListShape
    from nemd.neighbors.neighbor_list import neighbors_bucket

    first = ListShape().grown(ListCounts(pairs=1000, max_neighbors=30, by_kind=(10, 20), within_cutoff_by_kind=(6, 25)))
    assert first == ListShape(capacity_bucket(1000), neighbors_bucket(30), (neighbors_bucket(10), neighbors_bucket(20)),
                              (neighbors_bucket(6), neighbors_bucket(20)))  # in-cutoff <= per-kind bound
    same = first.grown(ListCounts(pairs=1020, max_neighbors=31, by_kind=(11, 19), within_cutoff_by_kind=(7, 18)))
    assert same == first  # drifting counts keep the shape: no recompilation
    grown = first.grown(ListCounts(pairs=5000, max_neighbors=30, by_kind=(40, 20), within_cutoff_by_kind=(6, 18)))
    assert grown.capacity == capacity_bucket(5000) and grown.by_kind == (neighbors_bucket(40), first.by_kind[1])
    assert grown.max_neighbors == first.max_neighbors and grown.within_cutoff_by_kind == first.within_cutoff_by_kind
    larger = first.with_larger_within_cutoff_bounds()
    assert all(b > a for a, b in zip(first.within_cutoff_by_kind, larger.within_cutoff_by_kind))
    assert ListShape.from_dict(grown.to_dict()) == grown


def test_built_list_shape_is_the_grown_shape_of_its_counts():
    from nemd.neighbors import ListShape, count

    rng = np.random.default_rng(4)
    cell = np.diag([9.0, 9.0, 9.0])
    positions = rng.uniform(0, 1, (100, 3)) @ cell
    kinds = rng.integers(0, 2, 100)
    pairs = build(positions, cell, True, 3.5, backend="numba")
    counts = count(pairs, kinds, positions=positions, cell=cell, cutoff=3.0)
    inside = np.linalg.norm(positions[pairs.senders] + pairs.shifts @ cell - positions[pairs.receivers], axis=1) < 3.0
    assert counts.pairs == len(pairs.senders) and counts.max_neighbors == np.bincount(pairs.receivers).max()
    for k in range(2):
        assert counts.by_kind[k] == np.bincount(pairs.receivers[kinds[pairs.senders] == k], minlength=100).max()
        assert counts.within_cutoff_by_kind[k] == np.bincount(
            pairs.receivers[inside & (kinds[pairs.senders] == k)], minlength=100).max()
    nl = build_neighbor_list(positions, cell, True, 3.0, 0.5, kinds=kinds, within_cutoff=True, backend="numba")
    assert nl.shape == ListShape().grown(counts)


def test_block_capacity_counts_and_check():
    """In-cutoff edges per block of atoms: counted on the host as brute force does, and
    the device check reports a list whose block capacity is outgrown."""
    from nemd.neighbors import count

    rng = np.random.default_rng(6)
    cell = np.diag([10.0, 10.0, 10.0])
    positions = rng.uniform(0, 1, (130, 3)) @ cell
    kinds = rng.integers(0, 2, 130)
    pairs = build(positions, cell, True, 3.6, backend="numba")
    inside = np.linalg.norm(positions[pairs.senders] + pairs.shifts @ cell - positions[pairs.receivers], axis=1) < 3.0
    per_block = np.bincount(pairs.receivers[inside] // 16, minlength=9)
    assert count(pairs, kinds, positions=positions, cell=cell, cutoff=3.0, block_atoms=16).within_cutoff_per_block \
        == per_block.max()
    nl = build_neighbor_list(positions, cell, True, 3.0, 0.6, kinds=kinds, within_cutoff=True, block_atoms=16,
                             backend="numba")
    assert nl.shape.block_atoms == 16 and nl.shape.block_capacity >= per_block.max()
    device_kinds, device_cell = jnp.asarray(kinds), jnp.asarray(cell)
    assert not bool(exceeds_within_cutoff_bounds(jnp.asarray(positions), nl, device_kinds, device_cell))
    tight = dataclasses.replace(nl, shape=dataclasses.replace(nl.shape, block_capacity=int(per_block.max()) - 1))
    assert bool(exceeds_within_cutoff_bounds(jnp.asarray(positions), tight, device_kinds, device_cell))
    assert tight.shape.with_larger_within_cutoff_bounds().block_capacity > tight.shape.block_capacity
