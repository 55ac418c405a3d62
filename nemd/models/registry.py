"""Models by name: one table from names to loaders (``nemd.models.load``).

    load("bpnn-rpbe-d3")                 # the reference water potential (weights from $NEMD_DATA or ../shared)
    load("bpnn", "path/to/n2p2-dir")     # any n2p2/RuNNer potential directory
    load("nemp-small")                   # random (untrained) weights of a preset: tests, benchmarks
    load("nemp", params_path="m.nemd")   # a model saved with model.save
    load("runs/nemp-water/model.nemd")   # the same: a saved NEMP or Facet model by its path
    load("nemp-water")                   # a trained model shipped with the package (nemd/models/trained/)
    load("nequip-nemp-small")            # JAX-MD's NequIP sized like a preset (benchmark peer)
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Callable

from ..data import water_data_dir
from .potential import Potential

#: The files an n2p2 potential directory must hold besides the per-element weights.
N2P2_FILES = ("input.nn", "scaling.data")


@dataclasses.dataclass(frozen=True)
class Entry:
    description: str
    loader: Callable[..., Potential]
    #: False for random weights: only good for tests and benchmarks.
    trained: bool = True


def _bpnn(directory=None, **_) -> Potential:
    from .bpnn import load as load_bpnn

    if directory is None:
        raise ValueError("load('bpnn', directory): the n2p2 potential directory is required")
    return load_bpnn(directory)


def _water_bpnn(name: str) -> Callable[..., Potential]:
    def loader(directory=None, **_) -> Potential:
        from .bpnn import load as load_bpnn

        base = Path(directory) if directory is not None else water_data_dir()
        if base is None:
            raise FileNotFoundError(f"no weight files for {name}: pass the directory that holds {name}/ "
                                    f"({', '.join(N2P2_FILES)}, weights.*.data) or set NEMD_DATA to it")
        folder = base if (base / "input.nn").is_file() else base / name
        missing = [f for f in N2P2_FILES if not (folder / f).is_file()]
        if missing:
            raise FileNotFoundError(f"weight files for {name} not found in {folder} (missing {', '.join(missing)}); "
                                    "pass their directory or set NEMD_DATA")
        return load_bpnn(folder)

    return loader


def _graph(name: str) -> Callable[..., Potential]:
    def loader(directory=None, *, params_path=None, preset=None, seed: int = 0, **_) -> Potential:
        family = name.split("-")[0]
        if name != family:  # "nemp-small" is the preset of the "nemp" family
            if preset not in (None, name):
                raise ValueError(f"load({name!r}, preset={preset!r}): conflicting presets")
            preset = name
        if family == "nemp":
            from .nemp import NEMPModel as model_class
        else:
            from .facet import FacetModel as model_class
        return model_class.load(params_path, preset=preset, seed=seed)

    return loader


#: Trained weights shipped with the package (model cards in docs/models.md).
TRAINED_DIR = Path(__file__).parent / "trained"


def load_saved(path) -> Potential:
    """A NEMP, Facet or NequIP model written by ``model.save``, its family read from the file."""
    from .params_io import load_params

    family = load_params(path)[0].get("model")
    if family == "nequip":
        from .nequip import JaxMDNequIP

        return JaxMDNequIP.load(path)
    if family not in ("nemp", "facet"):
        raise ValueError(f"{path} holds a {family!r} model; nemd saves only 'nemp', 'facet' and 'nequip' models")
    return _graph(family)(params_path=path)


def _shipped(name: str) -> Callable[..., Potential]:
    def loader(directory=None, **_) -> Potential:
        path = TRAINED_DIR / f"{name}.nemd"
        if not path.is_file():
            raise FileNotFoundError(f"the weights of {name} are missing from the installed package ({path})")
        return load_saved(path)

    return loader


def _nequip(preset: str) -> Callable[..., Potential]:
    def loader(directory=None, *, seed: int = 0, **_) -> Potential:
        from .nequip import JaxMDNequIP

        return JaxMDNequIP.like(_graph(preset)().config, seed=seed)

    return loader


def _lennard_jones(directory=None, **_) -> Potential:
    from .lennard_jones import LennardJones

    return LennardJones()


MODELS: dict[str, Entry] = {
    "bpnn-rpbe-d3": Entry("RPBE-D3 Behler–Parrinello water potential (n2p2 example; Morawietz et al., "
                          "PNAS 2016)", _water_bpnn("bpnn-rpbe-d3")),
    "bpnn-revpbe0-d3": Entry("revPBE0-D3 Behler–Parrinello water potential (Cheng et al., PNAS 2019)",
                             _water_bpnn("bpnn-revpbe0-d3")),
    "bpnn": Entry("any n2p2/RuNNer potential directory (load('bpnn', directory))", _bpnn),
    "nemp": Entry("NEMP, the authors' 3-layer configuration (random weights)", _graph("nemp"), False),
    "nemp-small": Entry("NEMP, 2 layers, 8 channels (random weights)", _graph("nemp-small"), False),
    "nemp-l3": Entry("NEMP with angular order 3 (random weights)", _graph("nemp-l3"), False),
    "facet": Entry("Facet, 3 blocks (random weights)", _graph("facet"), False),
    "facet-small": Entry("Facet, 2 blocks, half the channels (random weights)", _graph("facet-small"), False),
    **{f"nequip-{p}": Entry(f"JAX-MD's NequIP sized like {p} (benchmark peer, random weights)", _nequip(p), False)
       for p in ("nemp", "nemp-small", "nemp-l3", "facet", "facet-small")},
    "nemp-water": Entry("nemp-small distilled from the RPBE-D3 BPNN (trained; docs/models.md)",
                        _shipped("nemp-water")),
    "facet-water": Entry("facet-small distilled from the RPBE-D3 BPNN (trained; docs/models.md)",
                         _shipped("facet-water")),
    "lennard-jones": Entry("shifted-force Lennard-Jones argon (tests)", _lennard_jones),
}


def load(name: str, directory=None, *, params_path=None, preset: str | None = None, seed: int = 0) -> Potential:
    """The model registered as ``name`` (``MODELS``), or saved in the file ``name``
    (``*.nemd``, written by ``model.save``).

    ``directory``: an n2p2 potential directory (``bpnn``), or for the named BPNN water
    potentials that directory or the one holding it (default ``$NEMD_DATA`` or
    ``../shared/data/water``). ``params_path``: a file written by ``model.save`` (NEMP,
    Facet). ``preset``/``seed``: random weights of a preset (``load("nemp", preset=
    "nemp-small")`` is ``load("nemp-small")``).
    """
    if name not in MODELS:
        if str(name).endswith(".nemd"):
            return load_saved(name)
        raise ValueError(f"unknown model {name!r}; available: {', '.join(MODELS)} or a saved .nemd file")
    return MODELS[name].loader(directory, params_path=params_path, preset=preset, seed=seed)
