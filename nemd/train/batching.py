"""Training batches: padded graphs of several structures with their labels.

Dynamic batching (as Nequix): structures are packed into a batch until adding one would
pass a cap on its atoms (by default 1.1 x the data's mean atoms per batch), then padded to
that cap, to a fixed number of structures and to a block capacity that only grows, so a
training run compiles a handful of times, not every step.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from ..models.blocks import BlockedGraph, batch_graph, with_capacity


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Batch:
    """Positions (A, 3) Å, kinds (A,), the graph, reference energies (G,) eV and forces
    (A, 3) eV/Å; masks say which atoms and structures are real (not padding)."""

    positions: jax.Array
    kinds: jax.Array
    graph: BlockedGraph
    energies: jax.Array
    forces: jax.Array
    atom_mask: jax.Array
    graph_mask: jax.Array
    n_atoms: jax.Array  # (G,) atoms per structure (1 for padding structures)


@dataclasses.dataclass
class Batcher:
    """Makes ``Batch``es of ``samples`` for ``model`` (its cutoff and kinds).

    ``structures_per_batch``: the target; caps are 1.1x its mean atoms and structures + 2.
    """

    model: object
    samples: list
    structures_per_batch: int = 4
    block_atoms: int = 64

    def __post_init__(self):
        if not self.samples:
            raise ValueError("no samples to batch")
        sizes = np.array([s.structure.n_atoms for s in self.samples])
        self.atom_cap = max(int(np.ceil(1.1 * self.structures_per_batch * sizes.mean())), int(sizes.max()))
        self.atom_cap = -(-self.atom_cap // self.block_atoms) * self.block_atoms
        self.graph_cap = self.structures_per_batch * 2 + 2
        self.capacity = 0  # grows to the largest block seen, in steps of 256 edges
        self._kinds = [self.model.kinds(s.structure.numbers) for s in self.samples]

    def groups(self, order) -> list[list[int]]:
        """Sample indices in ``order`` packed under the atom and structure caps."""
        groups, current, atoms = [], [], 0
        for i in order:
            n = self.samples[i].structure.n_atoms
            if current and (atoms + n > self.atom_cap or len(current) + 2 > self.graph_cap):
                groups.append(current)
                current, atoms = [], 0
            current.append(int(i))
            atoms += n
        return groups + ([current] if current else [])

    def batch(self, indices) -> Batch:
        samples = [self.samples[i] for i in indices]
        positions, _, graph = batch_graph([s.structure for s in samples], self.model.cutoff, self.block_atoms,
                                          n_atoms=self.atom_cap, n_graphs=self.graph_cap)
        self.capacity = max(self.capacity, -(-graph.senders.shape[1] // 256) * 256)  # only grows
        graph = with_capacity(graph, self.capacity)
        n_real = sum(s.structure.n_atoms for s in samples)
        kinds = np.zeros(self.atom_cap, np.int32)
        kinds[:n_real] = np.concatenate([self._kinds[i] for i in indices])
        forces = np.zeros((self.atom_cap, 3))
        forces[:n_real] = np.concatenate([s.forces for s in samples])
        energies = np.zeros(self.graph_cap)
        energies[:len(samples)] = [s.energy for s in samples]
        n_atoms = np.ones(self.graph_cap)
        n_atoms[:len(samples)] = [s.structure.n_atoms for s in samples]
        return Batch(jnp.asarray(positions), jnp.asarray(kinds), graph, jnp.asarray(energies), jnp.asarray(forces),
                     jnp.asarray(np.arange(self.atom_cap) < n_real), jnp.asarray(np.arange(self.graph_cap) < len(samples)),
                     jnp.asarray(n_atoms))

    def epoch(self, seed: int):
        """The batches of one epoch, shuffled by ``seed`` (the same seed, the same batches)."""
        order = np.random.default_rng(seed).permutation(len(self.samples))
        for group in self.groups(order):
            yield self.batch(group)
