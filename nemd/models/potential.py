"""The contract every energy model of nemd meets (docs/design.md, energy functions).

A ``Potential`` knows its elements (``species``, symbols; kind k is ``species[k]``), the
cutoff (Å) its neighbour lists need, and makes JAX-MD energy functions::

    energy = model.energy_fn(numbers, cell)          # numbers (N,), cell (3, 3) Å or None
    energy(R, neighbor=nl)                           # eV; R (N, 3) Å, unwrapped is fine
    energy(R, neighbor=nl, cell=strained)            # another cell of the same shape (virials)

Lists must be built with ``kinds=model.kinds(numbers)`` (per-kind bounds for per-element
layouts) and, when ``uses_within_cutoff_bounds``, with in-cutoff bounds, which the MD
chunk runner then checks every step (the model returns NaN on an outgrown list).
Subclasses implement ``_energy(numbers, kinds) -> f(R, neighbor, cell)``.
"""

from __future__ import annotations

from typing import Callable

import jax.numpy as jnp
import numpy as np

from ..units import symbols_of

EnergyFn = Callable[..., "jnp.ndarray"]


class Potential:
    """Base of nemd's energy models; see the module docstring for the contract."""

    #: The model family ("bpnn", "nemp", ...), used in messages and saved files.
    name: str = "potential"
    #: Element symbols the model knows; kind k of an atom is its index here.
    species: tuple[str, ...] = ()
    #: Evaluates only edges inside the cutoff when a list carries in-cutoff bounds.
    uses_within_cutoff_bounds: bool = False
    #: Atoms per block of edge work, for lists that bound each block's in-cutoff edges
    #: (models that pad blocks of atoms; None for the others).
    list_block_atoms: int | None = None
    #: Runs faster on CPUs with huge pages for malloc (``nemd.runtime``; measured per model).
    prefers_huge_pages: bool = False

    @property
    def cutoff(self) -> float:
        """The list cutoff (Å) this model needs (a list carries ``cutoff + skin``)."""
        raise NotImplementedError

    def kinds(self, numbers) -> np.ndarray:
        """Per-atom indices into ``species`` of atomic numbers or element symbols (int32);
        ValueError naming the elements the model does not know."""
        numbers = np.asarray(numbers)
        symbols = numbers.ravel().tolist() if numbers.dtype.kind in "US" else symbols_of(numbers)
        index = {s: k for k, s in enumerate(self.species)}
        unknown = sorted(set(symbols) - set(index))
        if unknown:
            raise ValueError(f"species {', '.join(map(repr, unknown))} not in this {self.name} model "
                             f"(it knows {', '.join(self.species)})")
        return np.array([index[s] for s in symbols], np.int32)

    def _energy(self, numbers: np.ndarray, kinds: np.ndarray) -> Callable:
        """``f(R, neighbor, cell) -> eV`` for these atoms (``cell`` an array or None)."""
        raise NotImplementedError

    def atomic_energy_fn(self, numbers, cell=None) -> Callable:
        """``f(R, neighbor, cell=None) -> (N,)`` energies per atom (eV) summing to the
        energy, for models that have them (NotImplementedError otherwise)."""
        raise NotImplementedError(f"the {self.name} model has no energies per atom")

    def energy_fn(self, numbers, cell=None) -> EnergyFn:
        """``energy(R, neighbor=nl, cell=None, **unused) -> eV`` for JAX-MD (see above).

        ``cell`` (3, 3) Å is the default cell; None for a cluster. Checks the species
        now and, when called, the atom count and the list cutoff.
        """
        kinds = self.kinds(numbers)
        numbers = np.asarray(numbers)
        default_cell = None if cell is None else np.asarray(cell, np.float64)
        energy, n_atoms, cutoff = self._energy(numbers, kinds), kinds.size, self.cutoff

        def fn(R, neighbor, *, cell=None, **unused):
            if R.shape[0] != n_atoms:
                raise ValueError(f"positions have {R.shape[0]} atoms, the energy function {n_atoms}")
            if neighbor.r_list and neighbor.r_list < cutoff:
                raise ValueError(f"neighbour list cutoff {neighbor.r_list} Å is below the model cutoff {cutoff} Å")
            box = default_cell if cell is None else cell
            return energy(R, neighbor, None if box is None else jnp.asarray(box, R.dtype))

        return fn
