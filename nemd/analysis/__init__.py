"""Analysis of trajectories (radial distribution functions first)."""

from .rdf import RDFResult, describe_peaks, radial_distribution
from .temperature import kinetic_temperatures

__all__ = ["RDFResult", "describe_peaks", "kinetic_temperatures", "radial_distribution"]
