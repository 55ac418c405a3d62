"""Energy functions: ``load(name, ...)`` returns a model with ``energy_fn(species, cell)``."""

from __future__ import annotations

MODELS = ("bpnn",)


def load(name: str, directory=None, **kwargs):
    """Load a model by name.

    ``load("bpnn", directory)``: a Behler–Parrinello potential in n2p2/RuNNer format.
    """
    if name == "bpnn":
        if directory is None:
            raise ValueError("load('bpnn', directory): the n2p2 potential directory is required")
        from .bpnn import load as load_bpnn

        return load_bpnn(directory, **kwargs)
    raise ValueError(f"unknown model {name!r}; available: {', '.join(MODELS)}")
