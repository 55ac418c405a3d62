"""Energy models behind one contract (``Potential``), loaded by name (``load``)."""

from .potential import Potential
from .registry import MODELS, load

__all__ = ["MODELS", "Potential", "load"]
