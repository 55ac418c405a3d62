"""NEMP: symmetry, forces, cutoff smoothness, batching, precision, parameter counts, I/O."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nemd.io import Structure, water_box
from nemd.models import load
from nemd.models.evaluate import energy_and_forces
from nemd.models.graph import batch_graph
from nemd.models.nemp import PRESETS, NEMPConfig, NEMPModel, _cg_paths
from nemd.neighbors import build_neighbor_list

# Small enough to compile in seconds, with every feature of the presets (l = 2 node
# features, several layers, two elements).
TINY = NEMPConfig(species=("H", "O"), cutoff=3.5, channels=4, n_radial=4, lmax=2, lmax_node=2, n_layers=2,
                  pair_features=8, edge_hidden=8, readout_hidden=8, avg_neighbors=16.0)


@pytest.fixture(scope="module")
def tiny():
    return NEMPModel.init(TINY, seed=1)


def perturbed_water(n_molecules=12, seed=0, scale=0.1):
    s = water_box(n_molecules, seed=seed)
    rng = np.random.default_rng(seed)
    return dataclasses.replace(s, positions=s.positions + rng.normal(scale=scale, size=s.positions.shape))


def evaluator(model, s, skin):
    """Jitted ``positions -> (energy, forces)`` on one list with ``skin`` (Å): valid while
    no atom moves skin/2, so finite differences and scans compile once."""
    cell = s.cell if s.pbc.any() else None
    nl = build_neighbor_list(s.positions, cell, s.pbc, model.cutoff, skin, kinds=model.kinds(s.numbers))
    fn = jax.jit(jax.value_and_grad(model.energy_fn(s.numbers, cell)))

    def evaluate(positions):
        e, g = fn(jnp.asarray(positions), nl)
        return float(e), -np.asarray(g)

    return evaluate


def expected_parameter_count(cfg: NEMPConfig) -> int:
    """Parameters implied by the configuration, counted independently of flax."""
    s, p, c, h, nr = len(cfg.species), cfg.pair_features, cfg.channels, cfg.edge_hidden, cfg.n_radial
    n_l, n_la, t = cfg.lmax_node + 1, cfg.lmax + 1, cfg.n_layers
    dense = lambda i, o: i * o + o  # noqa: E731
    mlp = lambda i, *widths: sum(dense(a, b) for a, b in zip((i,) + widths[:-1], widths))  # noqa: E731
    n_paths = len(_cg_paths(cfg.lmax, cfg.lmax_node)[0])
    total = mlp(2 * s, p, p) + dense(p, nr)
    total += mlp(p + nr, h, h, c * (4 * n_l + 1)) + s * c * c
    for layer in range(1, t + 1):
        total += mlp(p + nr + layer * c, h, h, c * (n_la + 4 * n_l))
        total += 3 * s * c * c + s * n_paths * c
    total += mlp(c * (t + 2), cfg.readout_hidden, cfg.readout_hidden, 1) + 2 * s
    return total


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_preset_parameter_counts(name):
    model = load(name)
    print(f"\n{name}: {model.n_parameters} parameters")
    assert model.n_parameters == expected_parameter_count(PRESETS[name])
    assert 40_000 <= model.n_parameters <= 500_000  # the paper's range (~50k-500k)


def test_parity_preserving_paths_only():
    paths, cg = _cg_paths(2, 2)
    assert all((a + b + c) % 2 == 0 and abs(a - b) <= c <= a + b for a, b, c in paths)
    assert (1, 1, 1) not in paths and (0, 0, 0) in paths and len(paths) == 11


def random_orthogonal(seed, reflect):
    q, r = np.linalg.qr(np.random.default_rng(seed).normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] *= -1
    return q @ np.diag([1, 1, -1]) if reflect else q


@pytest.mark.parametrize("reflect", [False, True])
def test_rotation_and_reflection(tiny, reflect):
    s = perturbed_water()
    e, f = energy_and_forces(tiny, s)
    q = random_orthogonal(3, reflect)
    rotated = dataclasses.replace(s, positions=s.positions @ q.T, cell=s.cell @ q.T)
    e2, f2 = energy_and_forces(tiny, rotated)
    assert abs(e2 - e) < 1e-10 * max(1.0, abs(e))
    np.testing.assert_allclose(f2, f @ q.T, atol=1e-10)
    assert np.abs(f).max() > 1e-4  # the model is not trivially flat


def test_translation_permutation_and_lattice_shift(tiny):
    s = perturbed_water(seed=4)
    e, f = energy_and_forces(tiny, s)
    rng = np.random.default_rng(5)
    moved = dataclasses.replace(s, positions=s.positions + rng.normal(size=3) * 3.0)
    e_t, f_t = energy_and_forces(tiny, moved)
    assert abs(e_t - e) < 1e-10 and np.allclose(f_t, f, atol=1e-10)
    order = rng.permutation(s.n_atoms)
    permuted = Structure(s.positions[order], s.numbers[order], s.cell, s.pbc)
    e_p, f_p = energy_and_forces(tiny, permuted)
    assert abs(e_p - e) < 1e-10 and np.allclose(f_p, f[order], atol=1e-10)
    shifted = s.positions.copy()
    shifted[[0, 7]] += np.array([1, -2, 1]) @ s.cell  # single atoms by lattice vectors
    e_s, f_s = energy_and_forces(tiny, dataclasses.replace(s, positions=shifted))
    assert abs(e_s - e) < 1e-10 and np.allclose(f_s, f, atol=1e-10)


def test_forces_equal_finite_differences(tiny):
    s = perturbed_water(n_molecules=6, seed=6)
    evaluate = evaluator(tiny, s, skin=0.1)
    _, forces = evaluate(s.positions)
    h = 1e-5
    for atom, axis in [(0, 0), (1, 2), (5, 1), (11, 0), (17, 2)]:
        energies = []
        for sign in (1, -1):
            x = s.positions.copy()
            x[atom, axis] += sign * h
            energies.append(evaluate(x)[0])
        fd = -(energies[0] - energies[1]) / (2 * h)
        assert fd == pytest.approx(forces[atom, axis], rel=1e-6, abs=1e-9)


def test_energy_is_smooth_across_the_cutoff(tiny):
    """A water molecule and an O atom leaving the cutoff of its O, on the side away from
    the H atoms (so only the O-O pair crosses the cutoff at rc)."""
    rc = TINY.cutoff
    molecule = water_box(1, seed=0).positions
    molecule -= molecule[0]
    direction = -(molecule[1] + molecule[2])
    direction /= np.linalg.norm(direction)

    numbers = np.array([8, 1, 1, 8])
    cluster = Structure(np.vstack([molecule, 6.0 * direction]), numbers, np.zeros((3, 3)), np.zeros(3, bool))
    evaluate = evaluator(tiny, cluster, skin=20.0)  # the list holds every pair at every distance

    def at(d):
        return evaluate(np.vstack([molecule, d * direction]))

    # Distances from atom 0; the H atoms are ~1 Å away, so the O leaves their cutoffs later.
    far_e, far_f = at(rc + 2.0)
    assert np.abs(far_f[3]).max() == 0.0  # the lone O is beyond every cutoff: no force at all
    h_distance = lambda d: np.min(np.linalg.norm(molecule[1:] - d * direction, axis=1))  # noqa: E731
    d_last = rc + 1.0
    while h_distance(d_last) < rc + 0.05:
        d_last += 0.05
    energies = [at(d)[0] for d in (d_last, d_last + 0.2)]
    assert energies[0] == energies[1] == far_e  # exactly zero interaction beyond every cutoff
    # Approaching the cutoff from inside, energy and force go smoothly to the far values.
    steps = np.array([1e-2, 1e-3])
    e_in, f_in = zip(*[at(rc - d) for d in steps])
    e_out, _ = at(rc + 1e-3)
    assert e_out == far_e
    gap = [abs(e - far_e) for e in e_in]
    assert 0 < gap[1] < gap[0] * 2e-3  # vanishes at least cubically (envelope p = 6)
    assert np.abs(f_in[1][3]).max() < 2e-2 * np.abs(f_in[0][3]).max()  # force quadratically


def test_extra_list_edges_beyond_the_cutoff_change_nothing(tiny):
    s = perturbed_water(seed=8)
    kinds = tiny.kinds(s.numbers)
    fn = jax.jit(jax.value_and_grad(tiny.energy_fn(s.numbers, s.cell)))
    results = []
    for skin in (0.0, 1.0):
        nl = build_neighbor_list(s.positions, s.cell, True, TINY.cutoff, skin, kinds=kinds)
        results.append(fn(jnp.asarray(s.positions), nl))
    assert results[1][0] == pytest.approx(float(results[0][0]), rel=1e-13, abs=1e-13)
    np.testing.assert_allclose(results[1][1], results[0][1], atol=1e-12)


def test_batched_graph_equals_one_by_one(tiny):
    structures = [perturbed_water(8, seed=1), perturbed_water(3, seed=2),
                  Structure(water_box(2, seed=3).positions, np.array([8, 1, 1] * 2), np.zeros((3, 3)),
                            np.zeros(3, bool))]
    positions, numbers, graph = batch_graph(structures, TINY.cutoff)
    energies = tiny.graph_energies(jnp.asarray(positions), tiny.kinds(numbers), graph)
    single = [energy_and_forces(tiny, s)[0] for s in structures]
    np.testing.assert_allclose(energies, single, rtol=1e-11)
    # forces through the batch equal the single-structure forces
    grad = jax.grad(lambda r: tiny.graph_energies(r, tiny.kinds(numbers), graph).sum())(jnp.asarray(positions))
    np.testing.assert_allclose(-grad[: structures[0].n_atoms], energy_and_forces(tiny, structures[0])[1],
                               atol=1e-10)


def test_float32_agrees_with_float64(tiny):
    s = perturbed_water(seed=9)
    e64, f64 = energy_and_forces(tiny, s, dtype=jnp.float64)
    e32, f32 = energy_and_forces(tiny, s, dtype=jnp.float32)
    assert e32 == pytest.approx(e64, rel=1e-5, abs=1e-5 * s.n_atoms)
    np.testing.assert_allclose(f32, f64, atol=1e-4 * np.abs(f64).max())


def test_save_and_load_round_trip(tiny, tmp_path):
    path = tiny.save(tmp_path / "tiny.nemp")
    again = load("nemp", params_path=path)
    assert again.config == TINY and again.metadata()["config"]["cutoff"] == TINY.cutoff
    s = perturbed_water(4, seed=10)
    assert energy_and_forces(again, s)[0] == energy_and_forces(tiny, s)[0]
    small = load("nemp-small", seed=3)
    small.save(tmp_path / "small.nemp")
    assert load("nemp-small", params_path=tmp_path / "small.nemp").preset == "nemp-small"
    with pytest.raises(ValueError, match="preset"):
        load("nemp", params_path=tmp_path / "small.nemp", preset="nemp")


def test_bad_input(tiny, tmp_path):
    with pytest.raises(ValueError, match="not in this NEMP model.*H, O"):
        tiny.kinds([8, 1, 6])
    with pytest.raises(ValueError, match="unknown NEMP preset"):
        load("nemp", preset="nemp-huge")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load("nemp", params_path=tmp_path / "missing.nemp")
    (tmp_path / "junk.nemp").write_bytes(b"not a parameter file")
    with pytest.raises(ValueError, match="not a nemd parameter file"):
        load("nemp", params_path=tmp_path / "junk.nemp")
    with pytest.raises(ValueError, match="cannot exceed"):
        NEMPConfig(species=("H",), lmax=1, lmax_node=2)
    s = perturbed_water(4)
    nl = build_neighbor_list(s.positions, s.cell, True, TINY.cutoff - 1.0, 0.0)
    with pytest.raises(ValueError, match="below the model cutoff"):
        tiny.energy_fn(s.numbers, s.cell)(jnp.asarray(s.positions), neighbor=nl)


def test_runs_in_the_md_driver(tiny):
    from nemd.md import MDSettings, Simulation

    s = water_box(8, seed=0)
    sim = Simulation(tiny, s.numbers, s.positions, s.cell, True,
                     MDSettings(timestep_fs=0.5, temperature_K=300.0, thermostat="nve", skin=0.5, chunk_steps=5))
    reports = sim.run(20)
    sim.close()
    energies = [r.conserved for r in reports]
    assert sim.step == 20 and np.ptp(energies) < 1e-3 * s.n_atoms
