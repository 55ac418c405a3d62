"""Dense layers as pure functions over weights a flax module declares: what runs inside
``lax.map`` over blocks (where flax modules cannot be called) uses these."""

from __future__ import annotations

import flax.linen as nn
import jax


class MLPWeights(nn.Module):
    """Weights of a dense network ``sizes[0] -> ... -> sizes[-1]`` (SiLU between layers),
    returned for use in pure functions (blocks run under ``lax.map``)."""

    sizes: tuple[int, ...]

    @nn.compact
    def __call__(self):
        init = nn.initializers.lecun_normal()
        return [(self.param(f"kernel_{i}", init, (a, b)), self.param(f"bias_{i}", nn.initializers.zeros, (b,)))
                for i, (a, b) in enumerate(zip(self.sizes[:-1], self.sizes[1:]))]


def mlp(layers, x, first=None):
    """Apply ``MLPWeights``; ``first`` replaces the first layer's ``x @ W`` (e.g. a sum of
    per-piece products, so that a concatenated input is never built)."""
    for i, (w, b) in enumerate(layers):
        x = (first if i == 0 and first is not None else x @ w) + b
        if i < len(layers) - 1:
            x = jax.nn.silu(x)
    return x


def first_layer(kernel, pieces, tables=()):
    """``concat(pieces) @ kernel`` without the concatenation: one product per piece, the
    rows of ``kernel`` taken in order. ``tables`` are ``(table, index, scale)`` pieces
    whose product is a per-element-pair table: ``(table @ rows)[index] * scale``."""
    out, row = 0.0, 0
    for table, index, scale in tables:
        rows = kernel[row:row + table.shape[-1]]
        out = out + (table @ rows)[index] * scale[..., None]
        row += table.shape[-1]
    for x in pieces:
        out = out + x @ kernel[row:row + x.shape[-1]]
        row += x.shape[-1]
    return out
