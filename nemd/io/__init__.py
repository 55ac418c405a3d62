"""Structures in and trajectories out."""

from .structures import Structure, read_structure, replicate

__all__ = ["Structure", "read_structure", "replicate"]
