"""CPU neighbour lists (Numba, Fortran), the device-side ``NeighborList`` pytree and the
``ListStream`` that builds, streams and checks a simulation's lists."""

from .builders import BACKENDS, Pairs, available_backends, build, fortran_available
from .neighbor_list import (
    ListShape,
    NeighborList,
    capacity_bucket,
    edge_vectors,
    exceeds_within_cutoff_bounds,
    max_displacement,
    needs_rebuild,
)
from .packing import ListCounts, build_neighbor_list, count, pack
from .stream import NEIGHBOR_MODES, ListSettings, ListStream, Recovery

__all__ = [
    "BACKENDS", "NEIGHBOR_MODES", "ListCounts", "ListSettings", "ListShape", "ListStream", "NeighborList", "Pairs",
    "Recovery", "available_backends", "build", "build_neighbor_list", "capacity_bucket", "count", "edge_vectors",
    "exceeds_within_cutoff_bounds", "fortran_available", "max_displacement", "needs_rebuild", "pack",
]
