"""CPU neighbour lists (Numba, Fortran) and the device-side ``NeighborList`` pytree."""

from .builders import BACKENDS, Pairs, available_backends, build, fortran_available
from .neighbor_list import (
    NeighborList,
    build_neighbor_list,
    capacity_bucket,
    edge_vectors,
    exceeds_within_cutoff_bounds,
    from_pairs,
    max_displacement,
    needs_rebuild,
)

__all__ = [
    "BACKENDS", "NeighborList", "Pairs", "available_backends", "build", "build_neighbor_list",
    "capacity_bucket", "edge_vectors", "exceeds_within_cutoff_bounds", "fortran_available", "from_pairs",
    "max_displacement", "needs_rebuild",
]
