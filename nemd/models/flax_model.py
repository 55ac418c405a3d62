"""What the flax graph models (NEMP, Facet) share: the ``Potential`` contract, batches, I/O.

A model is a frozen dataclass of a config (hyper-parameters, incl. ``species`` and the
list ``cutoff`` in Å), a flax parameter pytree and layout settings that change time and
memory, never results: ``block_atoms`` (atoms per block of edge work; None: by backend)
and ``store_edges`` (keep each layer's edge state, or recompute it: least memory).
Subclasses set ``name``, ``make_module(block_atoms)`` (the flax network on a
``BlockedGraph``: ``(vectors, mask, senders, receivers, kinds) -> atomic energies``),
``presets`` and ``config_class``.

In MD the model evaluates only the edges inside its cutoff: it asks for lists with
in-cutoff bounds per block of its atoms (``uses_within_cutoff_bounds``,
``list_block_atoms``) and lays out each block's edges inside the cutoff
(``blocks.blocked_graph``); an outgrown list gives NaN, which the chunk runner never
accepts (it rebuilds the list with larger bounds).
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from .. import __version__
from .blocks import BlockedGraph, block_capacity_of, blocked_graph, default_block_atoms
from .params_io import load_params, same_shapes, save_params
from .potential import Potential


def _tuples(value):
    """Lists (as stored) back to the tuples of a frozen config, recursively."""
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


@dataclasses.dataclass(frozen=True)
class GraphModel(Potential):
    config: object
    params: dict
    preset: str | None = None
    block_atoms: int | None = None
    store_edges: bool = True
    #: Multipliers of irreps blocks (a "gates" collection the module may read; None: none).
    gates: dict | None = dataclasses.field(default=None, compare=False)

    name: ClassVar[str] = ""
    presets: ClassVar[dict] = {}
    config_class: ClassVar[type] = object
    #: Names of the per-element energy shift and scale parameters (training initialises them).
    shift_param: ClassVar[str] = ""
    scale_param: ClassVar[str] = ""
    uses_within_cutoff_bounds: ClassVar[bool] = True
    prefers_huge_pages: ClassVar[bool] = True  # 1.3-2x on CPUs (docs/benchmarks.md)

    def make_module(self, block_atoms: int = 1):
        """The flax network for graphs of ``block_atoms`` atoms per block."""
        raise NotImplementedError

    @property
    def list_block_atoms(self) -> int:
        """Atoms per block of edge work in MD (``block_atoms``, or the backend's default)."""
        return default_block_atoms() if self.block_atoms is None else int(self.block_atoms)

    def with_layout(self, *, block_atoms: int | None = None, store_edges: bool | None = None):
        """The same model evaluated with another layout (results equal to rounding)."""
        return dataclasses.replace(self, block_atoms=self.block_atoms if block_atoms is None else block_atoms,
                                   store_edges=self.store_edges if store_edges is None else store_edges)

    @staticmethod
    def _init_args(seed: int):
        """Arguments of ``module.init`` (two atoms, one block) on a tiny placeholder graph:
        parameter shapes do not depend on it."""
        k = 4
        vectors = jnp.array([[1.0, 0.5, 0.2]]) * jnp.arange(1, 2 * k + 1)[:, None] * 0.3
        senders = jnp.array([1] * k + [0] * k, jnp.int32)
        receivers = jnp.array([0] * k + [1] * k, jnp.int32)
        return (jax.random.PRNGKey(seed), vectors[None], jnp.ones((1, 2 * k), bool), senders[None], receivers[None],
                jnp.zeros(2, jnp.int32))

    @classmethod
    def init(cls, config="default", seed: int = 0):
        """Random (untrained) parameters for a preset name or a config."""
        preset = config if isinstance(config, str) else None
        if preset is not None:
            if preset not in cls.presets:
                raise ValueError(f"unknown {cls.name} preset {preset!r}; available: {', '.join(cls.presets)}")
            config = cls.presets[preset]
        module = cls(config, {}, preset).make_module(2)
        # jitted: e3nn run op by op on the placeholder graph is ~3x slower than compiling it
        params = jax.jit(module.init)(*cls._init_args(seed))["params"]
        return cls(config, params, preset)

    @property
    def species(self) -> tuple[str, ...]:
        return tuple(self.config.species)

    @property
    def cutoff(self) -> float:
        """The list cutoff (Å) this model needs."""
        return self.config.cutoff

    @property
    def interaction_cutoff(self) -> float:
        """Distance (Å) beyond which a pair contributes exactly nothing (<= cutoff)."""
        return self.config.cutoff

    @property
    def n_parameters(self) -> int:
        return sum(int(np.prod(p.shape)) for p in jax.tree_util.tree_leaves(self.params))

    def atomic_energies(self, positions: jax.Array, kinds, graph: BlockedGraph) -> jax.Array:
        """Per-atom energies (eV) in the dtype of ``positions`` (Å)."""
        params = jax.tree_util.tree_map(lambda p: jnp.asarray(p, positions.dtype), self.params)
        variables = {"params": params} if self.gates is None else {"params": params, "gates": self.gates}
        return self.make_module(graph.block_atoms).apply(
            variables, graph.edge_vectors(positions), graph.mask, graph.senders, graph.receivers,
            jnp.asarray(kinds, jnp.int32))

    def structure_offset(self, dtype) -> jax.Array:
        """Energy (eV) added once per structure (a global shift; zero by default)."""
        return jnp.zeros((), dtype)

    def graph_energies(self, positions: jax.Array, kinds, graph: BlockedGraph) -> jax.Array:
        """Energy (eV) of every structure of a batched graph, ``(graph.n_graphs,)``."""
        atomic = self.atomic_energies(positions, kinds, graph)
        return jax.ops.segment_sum(atomic, graph.graph_index, num_segments=graph.n_graphs) + \
            self.structure_offset(positions.dtype)

    def _energy(self, numbers, kinds):
        kinds, n_atoms = jnp.asarray(kinds), kinds.size

        block = self.list_block_atoms

        def energy(R, neighbor, cell):
            graph, fits = blocked_graph(neighbor, R, n_atoms, cell, self.cutoff, block,
                                        block_capacity_of(neighbor, block))
            total = jnp.sum(self.atomic_energies(R, kinds, graph)) + self.structure_offset(R.dtype)
            return jnp.where(fits, total, jnp.nan)

        return energy

    def with_energy_statistics(self, reference_energies, scale: float):
        """This model with per-element energy shifts ``reference_energies`` (eV, species
        order, e.g. least squares over training data) and output scale ``scale`` (eV)."""
        params = dict(self.params)
        params[self.shift_param] = jnp.asarray(reference_energies, jnp.float32)
        params[self.scale_param] = jnp.full(len(self.species), float(scale), jnp.float32)
        return dataclasses.replace(self, params=params)

    def metadata(self) -> dict:
        return {"model": self.name, "preset": self.preset, "version": __version__,
                "config": {**dataclasses.asdict(self.config), "species": list(self.config.species)}}

    def save(self, path):
        """Write parameters and metadata (model, preset, config incl. cutoff and species,
        nemd version) to one file."""
        return save_params(path, self.metadata(), self.params)

    @classmethod
    def load(cls, params_path=None, preset: str | None = None, seed: int = 0):
        """A saved model (``params_path``) or, without one, random weights for ``preset``.

        No trained weights ship yet: without ``params_path`` the model is untrained and
        only good for tests and benchmarks.
        """
        if params_path is None:
            return cls.init(preset or cls.name, seed)
        metadata, params = load_params(params_path)
        if metadata.get("model") != cls.name:
            raise ValueError(f"{params_path} holds a {metadata.get('model')!r} model, not {cls.name!r}")
        config = dict(metadata["config"])
        config = cls.config_class(**{k: _tuples(v) for k, v in config.items()})
        model = cls(config, params, metadata.get("preset"))
        if preset is not None and preset != model.preset:
            raise ValueError(f"{params_path} holds preset {model.preset!r}, not {preset!r}")
        reference = jax.eval_shape(model.make_module(2).init, *cls._init_args(0))["params"]
        if not same_shapes(reference, params):
            raise ValueError(f"{params_path}: parameters do not match the stored configuration")
        return model
