"""The ASE calculator: the same numbers as nemd's evaluation, finite-difference stress,
list reuse, ASE relaxation and MD, clear errors."""

import jax.numpy as jnp
import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk

from nemd.ase import NemdCalculator
from nemd.io import water_box
from nemd.models.evaluate import energy_and_forces
from nemd.models.lennard_jones import LennardJones
from nemd.structure import Structure


@pytest.fixture(scope="module")
def water(rpbe_model):
    s = water_box(8, density=0.95, seed=3)
    atoms = s.to_ase()
    atoms.calc = NemdCalculator(rpbe_model, skin=0.5)
    return s, atoms


def test_energy_forces_and_atomic_energies_match_nemd(water, rpbe_model):
    s, atoms = water
    e, f = energy_and_forces(rpbe_model, s)
    assert atoms.get_potential_energy() == pytest.approx(e, rel=1e-12)
    np.testing.assert_allclose(atoms.get_forces(), f, atol=1e-10)
    assert atoms.get_potential_energies().sum() == pytest.approx(e, rel=1e-12)


def test_stress_equals_finite_differences_of_the_strained_energy(water):
    s, atoms = water
    stress = atoms.get_stress(voigt=False)
    volume, h = atoms.get_volume(), 1e-5
    for i, j in [(0, 0), (1, 2), (2, 1), (0, 1)]:
        energies = []
        for sign in (1, -1):
            strain = np.eye(3)
            strain[i, j] += sign * h / (2 if i != j else 1)
            strain[j, i] += sign * h / 2 if i != j else 0
            strained = atoms.copy()
            strained.set_cell(atoms.cell.array @ strain, scale_atoms=True)
            strained.calc = atoms.calc  # the same compiled function (the cell is an argument)
            energies.append(strained.get_potential_energy())
        derivative = (energies[0] - energies[1]) / (2 * h)
        assert stress[i, j] * volume == pytest.approx(derivative, rel=1e-5, abs=1e-7)


def test_lists_are_rebuilt_only_when_needed():
    atoms = bulk("Ar", "fcc", a=5.3, cubic=True).repeat(3)
    calc = NemdCalculator(LennardJones(), skin=0.6, dtype=jnp.float64)
    atoms.calc = calc
    atoms.get_forces()
    atoms.positions[0] += 0.1  # < skin/2: the same list
    atoms.get_forces()
    assert calc.builds == 1
    atoms.positions[0] += 0.3  # > skin/2 in all: rebuilt
    atoms.get_forces()
    assert calc.builds == 2


def test_ase_relaxation_and_md_of_a_molecule_cluster():
    from ase import units
    from ase.md.verlet import VelocityVerlet
    from ase.optimize import BFGS

    cluster = Atoms("Ar13", positions=bulk("Ar", "fcc", a=5.3).repeat(3).positions[:13])
    cluster.calc = NemdCalculator(LennardJones(), skin=1.0, dtype=jnp.float64)
    e0 = cluster.get_potential_energy()
    BFGS(cluster, logfile=None).run(fmax=1e-3, steps=300)
    assert np.abs(cluster.get_forces()).max() < 1e-3 and cluster.get_potential_energy() < e0
    cluster.set_velocities(np.random.default_rng(0).normal(scale=0.002, size=(13, 3)))
    total = lambda a: a.get_potential_energy() + a.get_kinetic_energy()  # noqa: E731
    before = total(cluster)
    VelocityVerlet(cluster, timestep=5 * units.fs).run(200)
    assert abs(total(cluster) - before) < 1e-4 * abs(before)


def test_bad_input_gives_one_clear_error(rpbe_model):
    methane = Atoms("CH4", positions=np.random.default_rng(1).normal(size=(5, 3)) * 2)
    methane.calc = NemdCalculator(rpbe_model)
    with pytest.raises(ValueError, match="'C' not in this bpnn model"):
        methane.get_potential_energy()
    periodic = Structure(np.zeros((1, 3)), np.array([18]), np.zeros((3, 3)), np.ones(3, bool)).to_ase()
    periodic.calc = NemdCalculator(LennardJones())
    with pytest.raises(ValueError, match="needs a cell"):
        periodic.get_potential_energy()
