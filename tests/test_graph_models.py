"""The energy-function contract shared by the flax graph models (NEMP, Facet).

Symmetries, forces, smoothness at the interaction cutoff, independence from extra list
edges, batching, precision, save/load, bad input and use in the MD driver, each checked
on a tiny configuration of every model (all features on, compiles in seconds).
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nemd.io import Structure, water_box
from nemd.models import load
from nemd.models.evaluate import energy_and_forces
from nemd.models.facet import FacetConfig, FacetModel
from nemd.models.blocks import batch_graph
from nemd.models.nemp import NEMPConfig, NEMPModel
from nemd.neighbors import build_neighbor_list

TINY = {
    "nemp": (NEMPModel, NEMPConfig(species=("H", "O"), cutoff=3.5, channels=4, n_radial=4, lmax=2, lmax_node=2,
                                   n_layers=2, pair_features=8, edge_hidden=8, readout_hidden=8,
                                   avg_neighbors=16.0)),
    # layer scale 0.5, not the paper's 0 (with 0 an untrained Facet ignores geometry)
    "facet": (FacetModel, FacetConfig(species=("H", "O"), cutoff=3.5, r_max=3.2, hidden="8x0e + 4x1o + 4x2e",
                                      n_blocks=2, mixer_channels=4, mixer_heads=2, mixer_hidden=8,
                                      layer_scale_init=0.5)),
}
#: Rotations/reflections: NEMP is exactly equivariant; Facet's S2 grid projection is
#: equivariant up to quadrature aliasing of the MLP output (the paper: < 1 %).
ROTATION_RTOL = {"nemp": 1e-10, "facet": 2e-3}


@pytest.fixture(scope="module", params=sorted(TINY))
def model(request):
    cls, config = TINY[request.param]
    return cls.init(config, seed=1)


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


def random_orthogonal(seed, reflect):
    q, r = np.linalg.qr(np.random.default_rng(seed).normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] *= -1
    return q @ np.diag([1, 1, -1]) if reflect else q


@pytest.mark.parametrize("reflect", [False, True])
def test_rotation_and_reflection(model, reflect):
    s = perturbed_water()
    e, f = energy_and_forces(model, s)
    q = random_orthogonal(3, reflect)
    e2, f2 = energy_and_forces(model, dataclasses.replace(s, positions=s.positions @ q.T, cell=s.cell @ q.T))
    rtol = ROTATION_RTOL[model.name]
    print(f"\n{model.name} reflect={reflect}: |dE|/|E| {abs(e2 - e) / abs(e):.1e}, "
          f"max |dF| / max |F| {np.abs(f2 - f @ q.T).max() / np.abs(f).max():.1e}")
    assert abs(e2 - e) <= rtol * abs(e)
    np.testing.assert_allclose(f2, f @ q.T, atol=max(1e-10, 10 * rtol * np.abs(f).max()))
    assert np.abs(f).max() > 1e-4  # the model is not trivially flat


def test_translation_permutation_and_lattice_shift(model):
    s = perturbed_water(seed=4)
    e, f = energy_and_forces(model, s)
    rng = np.random.default_rng(5)
    e_t, f_t = energy_and_forces(model, dataclasses.replace(s, positions=s.positions + rng.normal(size=3) * 3.0))
    assert abs(e_t - e) < 1e-10 * max(1, abs(e)) and np.allclose(f_t, f, atol=1e-9)
    order = rng.permutation(s.n_atoms)
    e_p, f_p = energy_and_forces(model, Structure(s.positions[order], s.numbers[order], s.cell, s.pbc))
    assert abs(e_p - e) < 1e-10 * max(1, abs(e)) and np.allclose(f_p, f[order], atol=1e-9)
    shifted = s.positions.copy()
    shifted[[0, 7]] += np.array([1, -2, 1]) @ s.cell  # single atoms by lattice vectors
    e_s, f_s = energy_and_forces(model, dataclasses.replace(s, positions=shifted))
    assert abs(e_s - e) < 1e-10 * max(1, abs(e)) and np.allclose(f_s, f, atol=1e-9)


def test_forces_equal_finite_differences(model):
    s = perturbed_water(n_molecules=6, seed=6)
    evaluate = evaluator(model, s, skin=0.1)
    _, forces = evaluate(s.positions)
    h = 1e-5
    for atom, axis in [(0, 0), (1, 2), (5, 1), (11, 0), (17, 2)]:
        energies = []
        for sign in (1, -1):
            x = s.positions.copy()
            x[atom, axis] += sign * h
            energies.append(evaluate(x)[0])
        fd = -(energies[0] - energies[1]) / (2 * h)
        assert fd == pytest.approx(forces[atom, axis], rel=1e-6, abs=1e-8)


def test_energy_is_smooth_across_the_cutoff(model):
    """A water molecule and an O atom leaving the interaction cutoff of its O, on the
    side away from the H atoms (so only the O-O pair crosses it)."""
    rc = model.interaction_cutoff
    molecule = water_box(1, seed=0).positions
    molecule -= molecule[0]
    direction = -(molecule[1] + molecule[2])
    direction /= np.linalg.norm(direction)
    cluster = Structure(np.vstack([molecule, 6.0 * direction]), np.array([8, 1, 1, 8]), np.zeros((3, 3)),
                        np.zeros(3, bool))
    evaluate = evaluator(model, cluster, skin=20.0)  # the list holds every pair at every distance

    def at(d):
        return evaluate(np.vstack([molecule, d * direction]))

    far_e, far_f = at(rc + 2.0)
    assert np.abs(far_f[3]).max() == 0.0  # the lone O is beyond every cutoff: no force at all
    assert at(rc + 1e-3)[0] == far_e  # exactly zero interaction just beyond
    e_in, f_in = zip(*[at(rc - d) for d in (0.1, 0.03)])
    gap = [abs(e - far_e) for e in e_in]
    assert 0 < gap[1] < gap[0] * 0.3**3  # vanishes faster than cubically (NEMP: envelope^2, Facet: exp-flat)
    assert np.abs(f_in[1][3]).max() < 0.3**2 * np.abs(f_in[0][3]).max()  # force faster than quadratically


def test_extra_list_edges_beyond_the_cutoff_change_nothing(model):
    s = perturbed_water(seed=8)
    fn = jax.jit(jax.value_and_grad(model.energy_fn(s.numbers, s.cell)))
    results = []
    for skin in (0.0, 1.0):
        nl = build_neighbor_list(s.positions, s.cell, True, model.cutoff, skin, kinds=model.kinds(s.numbers))
        results.append(fn(jnp.asarray(s.positions), nl))
    assert results[1][0] == pytest.approx(float(results[0][0]), rel=1e-13, abs=1e-13)
    np.testing.assert_allclose(results[1][1], results[0][1], atol=1e-12)


def test_batched_graph_equals_one_by_one(model):
    structures = [perturbed_water(8, seed=1), perturbed_water(3, seed=2),
                  Structure(water_box(2, seed=3).positions, np.array([8, 1, 1] * 2), np.zeros((3, 3)),
                            np.zeros(3, bool))]
    positions, numbers, graph = batch_graph(structures, model.cutoff)
    kinds = model.kinds(numbers)
    energies_of = jax.jit(lambda r: model.graph_energies(r, kinds, graph))
    energies, vjp = jax.vjp(energies_of, jnp.asarray(positions))
    forces = -vjp(jnp.ones_like(energies))[0]
    one_by_one = [energy_and_forces(model, s) for s in structures]
    np.testing.assert_allclose(energies, [e for e, _ in one_by_one], rtol=1e-11)
    np.testing.assert_allclose(forces, np.concatenate([f for _, f in one_by_one]), atol=1e-10)


def test_float32_agrees_with_float64(model):
    s = perturbed_water(seed=9)
    e64, f64 = energy_and_forces(model, s, dtype=jnp.float64)
    e32, f32 = energy_and_forces(model, s, dtype=jnp.float32)
    assert e32 == pytest.approx(e64, rel=1e-5, abs=1e-5 * s.n_atoms)
    np.testing.assert_allclose(f32, f64, atol=1e-4 * np.abs(f64).max())


def test_save_and_load_round_trip(model, tmp_path):
    path = model.save(tmp_path / "tiny.params")
    again = load(model.name, params_path=path)
    assert again.config == model.config and again.metadata()["config"]["cutoff"] == model.cutoff
    s = perturbed_water(4, seed=10)
    assert energy_and_forces(again, s)[0] == energy_and_forces(model, s)[0]
    small = load(f"{model.name}-small", seed=3)
    small.save(tmp_path / "small.params")
    assert load(f"{model.name}-small", params_path=tmp_path / "small.params").preset == f"{model.name}-small"
    with pytest.raises(ValueError, match="preset"):
        load(model.name, params_path=tmp_path / "small.params", preset=model.name)
    other = "facet" if model.name == "nemp" else "nemp"
    with pytest.raises(ValueError, match=f"holds a '{model.name}' model"):
        load(other, params_path=path)


def test_nequip_peer_save_and_load_round_trip(tmp_path):
    """The trained NequIP baseline (issue 20) is a saved file that ``load`` reads back."""
    from nemd.models.nequip import JaxMDNequIP

    peer = JaxMDNequIP.like(TINY["nemp"][1], seed=2).with_energy_statistics([-13.6, -430.0], 0.7)
    path = peer.save(tmp_path / "nequip.nemd")
    again = load(str(path))
    assert again.config.scale == 0.7 and again.species == ("H", "O")
    s = perturbed_water(4, seed=11)
    e0, f0 = energy_and_forces(peer, s)
    e1, f1 = energy_and_forces(again, s)
    assert e1 == e0 and np.array_equal(f1, f0)
    TINY["nemp"][0].init(TINY["nemp"][1]).save(tmp_path / "nemp.nemd")
    with pytest.raises(ValueError, match="holds a 'nemp' model, not 'nequip'"):
        JaxMDNequIP.load(tmp_path / "nemp.nemd")


def test_bad_input(model, tmp_path):
    with pytest.raises(ValueError, match=f"not in this {model.name} model.*H, O"):
        model.kinds([8, 1, 6])
    with pytest.raises(ValueError, match="unknown .* preset"):
        load(model.name, preset="huge")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load(model.name, params_path=tmp_path / "missing.params")
    (tmp_path / "junk.params").write_bytes(b"not a parameter file")
    with pytest.raises(ValueError, match="not a nemd parameter file"):
        load(model.name, params_path=tmp_path / "junk.params")
    s = perturbed_water(4)
    nl = build_neighbor_list(s.positions, s.cell, True, model.cutoff - 1.0, 0.0)
    with pytest.raises(ValueError, match="below the model cutoff"):
        model.energy_fn(s.numbers, s.cell)(jnp.asarray(s.positions), neighbor=nl)


def test_runs_in_the_md_driver(model):
    from nemd.md import ListSettings, MDSettings, Simulation

    s = water_box(8, seed=0)
    sim = Simulation(model, s.numbers, s.positions, s.cell, True,
                     MDSettings(timestep_fs=0.5, temperature_K=300.0, thermostat="nve", chunk_steps=5),
                     ListSettings(skin=0.5))
    reports = sim.run(20)
    sim.close()
    assert sim.step == 20 and np.ptp([r.conserved for r in reports]) < 1e-3 * s.n_atoms


@pytest.mark.parametrize("store_edges", [True, False])
def test_blocked_in_cutoff_layout_equals_the_dense_reference(model, store_edges):
    """Regression of the layout: edges inside the cutoff in blocks of 7 atoms, padded to
    the list's measured block capacity, from a 1 Å skin list (as in MD), give the energy
    and forces of the reference evaluation (one block holding every atom, no skin)."""
    s = perturbed_water(seed=11)

    def evaluate(m, skin, within):
        nl = build_neighbor_list(s.positions, s.cell, True, m.cutoff, skin, kinds=m.kinds(s.numbers),
                                 within_cutoff=within, block_atoms=m.list_block_atoms if within else 0)
        e, g = jax.jit(jax.value_and_grad(m.energy_fn(s.numbers, s.cell)))(jnp.asarray(s.positions), nl)
        return float(e), np.asarray(g), nl

    reference_e, reference_g, _ = evaluate(model.with_layout(block_atoms=s.n_atoms), 0.0, False)
    e, g, nl = evaluate(model.with_layout(block_atoms=7, store_edges=store_edges), 1.0, True)
    assert nl.shape.block_atoms == 7 and nl.shape.block_capacity < 7 * nl.shape.max_neighbors
    assert e == pytest.approx(reference_e, rel=1e-12, abs=1e-12)
    np.testing.assert_allclose(g, reference_g, atol=1e-11)
    # A list whose block capacity is outgrown gives NaN, never a wrong number.
    tight = dataclasses.replace(nl, shape=dataclasses.replace(nl.shape, block_capacity=8))
    energy = model.with_layout(block_atoms=7).energy_fn(s.numbers, s.cell)
    assert np.isnan(float(jax.jit(energy)(jnp.asarray(s.positions), tight)))
