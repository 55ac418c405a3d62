"""Analysis of trajectories (radial distribution functions first)."""

from .pressure import frame_pressures, pressure_bar
from .rdf import RDFResult, describe_peaks, radial_distribution
from .temperature import kinetic_temperature_errors, kinetic_temperatures

__all__ = ["RDFResult", "describe_peaks", "frame_pressures", "kinetic_temperature_errors", "kinetic_temperatures", "pressure_bar",
           "radial_distribution"]
