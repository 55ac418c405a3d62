"""Structures in and trajectories out."""

from .structures import Structure, read_structure, replicate
from .water import molecules_for_atoms, water_box

__all__ = ["Structure", "molecules_for_atoms", "read_structure", "replicate", "water_box"]
