"""Molecular dynamics over JAX-MD with CPU-streamed neighbour lists."""

import warnings

# JAX-MD builds some constants with an explicit float64 dtype; in float32 runs JAX
# truncates them and warns each time. The truncation is intended here.
warnings.filterwarnings("ignore", message="Explicitly requested dtype float64", category=UserWarning)

from .driver import ChunkReport, Frame, MDSettings, Simulation, SimulationError

__all__ = ["ChunkReport", "Frame", "MDSettings", "Simulation", "SimulationError"]
