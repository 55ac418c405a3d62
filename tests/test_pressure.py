"""Virial pressure against an ASE pair sum (LJ) and finite differences of E(V) (BPNN)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from ase import Atoms
from ase.neighborlist import neighbor_list

from nemd.analysis.pressure import pressure_bar, strain_derivative
from nemd.units import BAR_PER_EV_A3
from nemd.io import water_box
from nemd import units
from nemd.models.lennard_jones import LennardJones
from nemd.neighbors import build_neighbor_list


def test_lennard_jones_virial_matches_an_ase_pair_sum():
    lj = LennardJones()
    rng = np.random.default_rng(0)
    cell = np.array([[16.2, 0.0, 0.0], [1.5, 16.0, 0.0], [-0.8, 0.9, 15.7]])  # triclinic
    grid = (np.stack(np.meshgrid(*[np.arange(4)] * 3, indexing="ij"), -1).reshape(-1, 3) + 0.5) / 4
    positions = grid @ cell + rng.normal(scale=0.2, size=grid.shape)  # 64 atoms
    nl = build_neighbor_list(positions, cell, [True] * 3, lj.cutoff, 0.0)
    energy_fn = lj.energy_fn(np.zeros(64), cell)

    # dU/dε = Σ_{i<j} r φ'(r), with the shifted-force φ'(r) = V'(r) - V'(rc), over every image
    d = neighbor_list("d", Atoms("Ar64", positions=positions, cell=cell, pbc=True), lj.cutoff)
    reference = 0.5 * np.sum(d * (lj._pair_derivative(d) - lj._pair_derivative(lj.cutoff)))
    ours = strain_derivative(energy_fn, positions, nl, cell)
    assert ours == pytest.approx(reference, rel=1e-10)

    volume = np.linalg.det(cell)
    expected = (64 * units.kT(120.0) - reference / 3) / volume * BAR_PER_EV_A3
    assert pressure_bar(energy_fn, positions, nl, cell, 120.0) == pytest.approx(expected, rel=1e-10)


def test_bpnn_virial_matches_finite_differences_of_the_energy(rpbe_model):
    s = water_box(16, seed=2)
    # A skin keeps the list complete for the strained geometries; one compiled function.
    nl = build_neighbor_list(s.positions, s.cell, s.pbc, rpbe_model.cutoff, 0.5, kinds=rpbe_model.kinds(s.numbers))
    energy_fn = jax.jit(rpbe_model.energy_fn(s.numbers, s.cell))

    def energy(scale):
        return float(energy_fn(jnp.asarray(s.positions * scale), nl, cell=jnp.asarray(s.cell * scale)))

    h = 1e-5
    finite = (energy(1 + h) - energy(1 - h)) / (2 * h)
    # the cell override is honoured: a function and list built for the strained box agree
    strained = build_neighbor_list(s.positions * 1.01, s.cell * 1.01, s.pbc, rpbe_model.cutoff, 0.0,
                                   kinds=rpbe_model.kinds(s.numbers))
    fresh = rpbe_model.energy_fn(s.numbers, s.cell * 1.01)(jnp.asarray(s.positions * 1.01), strained)
    assert energy(1.01) == pytest.approx(float(fresh), rel=1e-12)
    assert strain_derivative(energy_fn, s.positions, nl, s.cell) == pytest.approx(finite, rel=1e-6, abs=1e-6)


def test_bad_input():
    lj = LennardJones()
    cell = np.eye(3) * 20.0
    positions = np.array([[0.0, 0.0, 0.0], [3.8, 0.0, 0.0]])
    nl = build_neighbor_list(positions, cell, [True] * 3, lj.cutoff, 0.0)
    with pytest.raises(ValueError, match="temperature"):
        pressure_bar(lj.energy_fn(np.zeros(2), cell), positions, nl, cell, -1.0)
