"""The S2-MLP-Mixer of Facet (Miklaucic et al.): irreps -> values on a spherical grid -> an
MLP per grid point -> irreps, an equivariant nonlinearity (up to the grid's quadrature error)."""

from __future__ import annotations

import functools

import e3nn_jax as e3nn
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from .blocks import map_atoms


def s2_irreps(lmax: int) -> e3nn.Irreps:
    """One irrep of each l with the parity of spherical harmonics: a function on S2."""
    return e3nn.Irreps.spherical_harmonics(lmax)


def to_grid(x: e3nn.IrrepsArray, grid) -> jax.Array:
    """(..., C, (lmax+1)^2) coefficients -> (..., C, beta, alpha) values on the sphere."""
    return e3nn.to_s2grid(x, *grid, quadrature="gausslegendre", p_val=1, p_arg=-1).grid_values


def from_grid(values: jax.Array, lmax: int, grid) -> e3nn.IrrepsArray:
    """Inverse of ``to_grid`` for band-limited signals (Gauss–Legendre quadrature)."""
    signal = e3nn.SphericalSignal(values, quadrature="gausslegendre", p_val=1, p_arg=-1)
    return e3nn.from_s2grid(signal, s2_irreps(lmax))


@functools.lru_cache(maxsize=None)
def grid_matrices(lmax: int, grid) -> tuple[np.ndarray, np.ndarray]:
    """``to_grid`` and ``from_grid`` as matrices: ``((points, (lmax+1)^2), ((lmax+1)^2,
    points))`` (both linear; built once from e3nn on unit inputs, eagerly even when
    called while tracing)."""
    size = (lmax + 1) ** 2
    with jax.ensure_compile_time_eval():
        forward = np.asarray(to_grid(e3nn.IrrepsArray(s2_irreps(lmax), np.eye(size)), tuple(grid)))
        forward = forward.reshape(size, -1)
        points = forward.shape[1]
        inverse = np.asarray(from_grid(np.eye(points).reshape(points, *grid), lmax, tuple(grid)).array)
    return forward.T, inverse.T


class S2MLPMixer(nn.Module):
    """Equivariant nonlinearity: irreps -> spherical grid -> MLP per point (per head) -> irreps.

    Input ``(N, C, (lmax+1)^2)`` coefficients of C functions on the sphere; the MLP mixes
    the channels of one head at every grid point (same weights at every point, hence
    rotation equivariant up to the grid's quadrature error). The grid transforms are two
    small matrices applied with the channels last.
    """

    lmax: int
    heads: int
    hidden: int
    grid: tuple[int, int]
    block_atoms: int = 0  # atoms per block (the grid values are large: a block at a time)

    @nn.compact
    def __call__(self, x: e3nn.IrrepsArray) -> e3nn.IrrepsArray:
        c = x.shape[1]
        forward, inverse = (jnp.asarray(m, x.dtype) for m in grid_matrices(self.lmax, self.grid))
        per_head = c // self.heads
        w1 = self.param("w1", nn.initializers.normal(per_head**-0.5), (self.heads, per_head, self.hidden))
        w2 = self.param("w2", nn.initializers.normal(self.hidden**-0.5), (self.heads, self.hidden, per_head))
        w1, w2 = w1.astype(x.dtype), w2.astype(x.dtype)

        def mix(coefficients):  # (B, C, (lmax+1)^2)
            values = jnp.einsum("pl,ncl->npc", forward, coefficients)  # (B, points, C)
            values = values.reshape(*values.shape[:2], self.heads, per_head)
            hidden = jax.nn.silu(jnp.einsum("nphc,hcd->nphd", values, w1))
            out = jnp.einsum("nphd,hdc->nphc", hidden, w2).reshape(*values.shape[:2], c)
            return jnp.einsum("lp,npc->ncl", inverse, out)

        return e3nn.IrrepsArray(s2_irreps(self.lmax), map_atoms(mix, x.array, self.block_atoms))
