"""Energy functions: ``load(name, ...)`` returns a model with ``energy_fn(species, cell)``."""

from __future__ import annotations

MODELS = ("bpnn", "nemp", "nemp-small", "facet", "facet-small")


def load(name: str, directory=None, *, params_path=None, preset: str | None = None, seed: int = 0, **kwargs):
    """Load a model by name.

    * ``load("bpnn", directory)``: a Behler–Parrinello potential in n2p2/RuNNer format.
    * ``load("nemp", params_path=None, preset="nemp")``: an NEMP model from a parameter
      file written by ``model.save``, or random (untrained) weights for ``preset``
      (``"nemp"`` or ``"nemp-small"``; ``load("nemp-small")`` is the same as
      ``load("nemp", preset="nemp-small")``), initialised from ``seed``.
    * ``load("facet", params_path=None, preset="facet")``: the same for Facet
      (``"facet"``, ``"facet-small"``).
    """
    if name == "bpnn":
        if directory is None:
            raise ValueError("load('bpnn', directory): the n2p2 potential directory is required")
        from .bpnn import load as load_bpnn

        return load_bpnn(directory, **kwargs)
    if name in ("nemp", "nemp-small", "facet", "facet-small"):
        if name.endswith("-small"):
            if preset not in (None, name):
                raise ValueError(f"load({name!r}, preset={preset!r}): conflicting presets")
            preset = name
        if name.startswith("nemp"):
            from .nemp import NEMPModel as model_class
        else:
            from .facet import FacetModel as model_class
        return model_class.load(params_path, preset=preset, seed=seed)
    raise ValueError(f"unknown model {name!r}; available: {', '.join(MODELS)}")
