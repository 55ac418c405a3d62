"""Structures in and trajectories out."""

from ..structure import Structure, replicate
from .structures import read_structure
from .water import molecules_for_atoms, rescale_water, water_box

__all__ = ["Structure", "molecules_for_atoms", "read_structure", "replicate", "rescale_water", "water_box"]
