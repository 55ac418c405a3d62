"""The ``nemd`` command line: ``nemd --version``, ``nemd info``, ``nemd run``, ``nemd water``, ``nemd rdf``,
``nemd export``, ``nemd train``,
``nemd distill``, ``nemd errors``."""

from __future__ import annotations

import argparse
import platform
import sys
from importlib.metadata import PackageNotFoundError, version

from .. import __version__

_PACKAGES = ["jax", "jaxlib", "jax-md", "e3nn-jax", "flax", "optax", "numpy", "numba", "h5py",
             "MDAnalysis", "ase"]


def _info() -> int:
    print(f"nemd {__version__} (Python {platform.python_version()}, {platform.machine()})")
    for name in _PACKAGES:
        try:
            print(f"  {name:<11} {version(name)}")
        except PackageNotFoundError:
            print(f"  {name:<11} not installed")
    import jax

    from ..neighbors import available_backends
    from ..neighbors.builders import default_threads, resolve_backend

    print(f"JAX backend: {jax.default_backend()}; devices: {', '.join(str(d) for d in jax.devices())}")
    print(f"neighbour backends: {', '.join(available_backends())} (auto -> {resolve_backend('auto')}, "
          f"{default_threads()} threads)")
    return 0


def main(argv: list[str] | None = None) -> int:
    command_line, argv = argv is None, sys.argv[1:] if argv is None else argv
    if argv[:1] == ["water"]:  # its own parser: `nemd water --help`
        from .water import main as water

        return water(argv[1:], restart=command_line)
    if argv[:1] == ["rdf"]:
        from .rdf import main as rdf

        return rdf(argv[1:])
    if argv[:1] == ["export"]:
        from .export import main as export

        return export(argv[1:])
    if argv[:1] == ["run"]:
        from .run import main as run

        return run(argv[1:], restart=command_line)
    if argv[:1] in (["train"], ["distill"], ["errors"], ["prune"]):
        from .train import main as train

        return train(argv[0], argv[1:])
    parser = argparse.ArgumentParser(prog="nemd", description=__doc__)
    parser.add_argument("--version", action="version", version=f"nemd {__version__}")
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("info", help="versions, devices and built neighbour backends")
    sub.add_parser("water", help="liquid-water NVT (simulations/water_nvt.py; `nemd water --help`)")
    sub.add_parser("rdf", help="radial distribution functions of an H5MD trajectory (`nemd rdf --help`)")
    sub.add_parser("export", help="frames of an H5MD trajectory to extended XYZ (`nemd export --help`)")
    sub.add_parser("run", help="NVT MD of any structure ASE reads (`nemd run structure.xyz --help`)")
    sub.add_parser("train", help="train a model on labelled structures (`nemd train config.toml`)")
    sub.add_parser("errors", help="errors of a trained model against labelled data (`nemd errors --help`)")
    sub.add_parser("prune", help="prune a NEMP or Facet model by irreps blocks (`nemd prune --help`)")
    sub.add_parser("distill", help="teacher-labelled water data made with the BPNN (`nemd distill --help`)")
    args = parser.parse_args(argv)
    if args.command == "info":
        return _info()
    parser.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
