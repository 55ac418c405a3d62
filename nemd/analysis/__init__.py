"""Analysis of trajectories (radial distribution functions first)."""

from .rdf import RDFResult, describe_peaks, radial_distribution

__all__ = ["RDFResult", "describe_peaks", "radial_distribution"]
