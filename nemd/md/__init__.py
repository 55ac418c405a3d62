"""Molecular dynamics over JAX-MD with CPU-streamed neighbour lists."""

from .driver import ChunkReport, Frame, MDSettings, Simulation, SimulationError

__all__ = ["ChunkReport", "Frame", "MDSettings", "Simulation", "SimulationError"]
