"""Molecular dynamics and minimisation over JAX-MD with CPU-streamed neighbour lists."""

from ..neighbors import ListSettings
from .chunks import ChunkRunner, SimulationError
from .driver import ChunkReport, Frame, MDSettings, Simulation
from .minimize import MinimizationResult, fire_minimize

__all__ = ["ChunkReport", "ChunkRunner", "Frame", "ListSettings", "MDSettings", "MinimizationResult", "Simulation",
           "SimulationError", "fire_minimize"]
