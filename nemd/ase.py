"""Every nemd model as an ASE calculator: relaxations, phonons, NEB and ASE's own MD.

    from nemd.ase import NemdCalculator
    atoms.calc = NemdCalculator("bpnn-rpbe-d3")      # or a Potential object
    atoms.get_potential_energy(); atoms.get_forces(); atoms.get_stress()

Energy (eV), forces (eV/Å), stress (eV/Å^3, ASE's convention: (1/V) dE/dε, Voigt order)
by automatic differentiation, and energies per atom where the model has them. Compiled
functions are reused while the composition, periodicity and list shape stay the same; the
neighbour list (with a skin) is rebuilt only when an atom has moved half the skin, the
cell changed, or the model's in-cutoff bounds are outgrown. Molecules (no periodic axis)
and periodic cells both work.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from ase.calculators.calculator import Calculator, all_changes

from .models import Potential, load
from .neighbors import ListShape, build_neighbor_list, exceeds_within_cutoff_bounds


class NemdCalculator(Calculator):
    """ASE calculator for a nemd ``Potential`` (or a registered model name).

    ``skin`` (Å) buffers the neighbour list so small moves need no rebuild; ``dtype``
    defaults to JAX's default float (float32 unless x64 is enabled).
    """

    implemented_properties = ["energy", "free_energy", "forces", "stress", "energies"]

    def __init__(self, model: Potential | str, *, skin: float = 1.0, dtype=None, **kwargs):
        super().__init__(**kwargs)
        self.model = load(model) if isinstance(model, str) else model
        if skin < 0:
            raise ValueError(f"skin must be >= 0 Å, got {skin}")
        self.skin = float(skin)
        self.dtype = dtype or jnp.zeros(()).dtype
        self._compiled = {}
        self._list = None  # (key, neighbour list, device kinds, cell)
        self.builds = 0

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        numbers = self.atoms.get_atomic_numbers()
        positions = np.asarray(self.atoms.get_positions(), np.float64)
        pbc = np.asarray(self.atoms.pbc, bool)
        cell = np.asarray(self.atoms.cell.array, np.float64) if pbc.any() else None
        if cell is not None and abs(np.linalg.det(cell)) < 1e-12:
            raise ValueError("a periodic structure needs a cell with non-zero volume (set atoms.cell)")
        if not np.all(np.isfinite(positions)):
            raise ValueError("positions contain NaN or inf")
        kinds = self.model.kinds(numbers)  # ValueError naming an unknown element
        key = (numbers.tobytes(), tuple(pbc))
        fn = self._function(key, numbers, cell)
        nl = self._neighbors(key, positions, cell, pbc, kinds)
        R = jnp.asarray(positions, self.dtype)
        box = None if cell is None else jnp.asarray(cell, self.dtype)
        energy, forces, virial, per_atom = fn(R, nl, box)
        self.results["energy"] = self.results["free_energy"] = float(energy)
        self.results["forces"] = np.asarray(forces, np.float64)
        if per_atom is not None:
            self.results["energies"] = np.asarray(per_atom, np.float64)
        if cell is not None:
            stress = np.asarray(virial, np.float64) / abs(np.linalg.det(cell))
            self.results["stress"] = stress.ravel()[[0, 4, 8, 5, 2, 1]]  # Voigt: xx yy zz yz xz xy
        elif "stress" in properties:
            raise ValueError("stress needs a periodic cell")

    def _function(self, key, numbers, cell):
        """Energy, forces, strain derivative and atomic energies, compiled once per key."""
        if key not in self._compiled:
            energy_fn = self.model.energy_fn(numbers, cell)
            try:
                atomic_fn = self.model.atomic_energy_fn(numbers, cell)
            except NotImplementedError:
                atomic_fn = None

            def strained(strain, R, nl, box):
                deform = jnp.eye(3, dtype=R.dtype) + strain
                return energy_fn(R @ deform, nl, cell=None if box is None else box @ deform)

            def evaluate(R, nl, box):
                zero = jnp.zeros((3, 3), R.dtype)
                energy, (virial, grad) = jax.value_and_grad(strained, argnums=(0, 1))(zero, R, nl, box)
                per_atom = None if atomic_fn is None else atomic_fn(R, nl, box)
                return energy, -grad, 0.5 * (virial + virial.T), per_atom

            self._compiled[key] = jax.jit(evaluate)
        return self._compiled[key]

    def _neighbors(self, key, positions, cell, pbc, kinds):
        """The current list, rebuilt when it may miss a pair or outgrew its bounds."""
        old = self._list
        if old is not None and old[0] == key and _same(old[3], cell):
            nl = old[1]
            moved = np.sqrt(np.max(np.sum((positions - np.asarray(nl.reference_positions)) ** 2, axis=1),
                                   initial=0.0))
            device_cell = None if cell is None else jnp.asarray(cell)
            if moved < 0.5 * self.skin and not bool(exceeds_within_cutoff_bounds(
                    jnp.asarray(positions), nl, old[2], device_cell)):
                return nl
        shape = old[1].shape if old is not None and old[0] == key else ListShape()
        nl = build_neighbor_list(positions, cell, pbc, self.model.cutoff, self.skin, kinds=kinds,
                                 within_cutoff=self.model.uses_within_cutoff_bounds and self.skin > 0,
                                 block_atoms=self.model.list_block_atoms or 0, shape=shape)
        self._list = (key, nl, jnp.asarray(kinds), None if cell is None else cell.copy())
        self.builds += 1
        return nl


def _same(a, b) -> bool:
    return (a is None and b is None) or (a is not None and b is not None and np.array_equal(a, b))
