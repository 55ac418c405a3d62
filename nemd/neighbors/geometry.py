"""Input validation and the binning frame shared by every neighbour backend.

Conventions (used everywhere in nemd):

* ``cell`` rows are the lattice vectors a, b, c in Å; fractional coordinates ``f``
  satisfy ``R = f @ cell``.
* Edge vector: ``r_ij = R[sender] + shifts @ cell - R[receiver]`` (points from the
  receiver to the sender).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Relative slack used when deciding how many bins to search; it only enlarges the
#: search stencil, never the cutoff test itself.
_STENCIL_SLACK = 1e-9


def normalize_pbc(pbc) -> np.ndarray:
    """Return ``pbc`` as a bool array of shape (3,) (a scalar applies to all axes)."""
    arr = np.asarray(pbc, dtype=bool)
    if arr.ndim == 0:
        arr = np.repeat(arr, 3)
    if arr.shape != (3,):
        raise ValueError(f"pbc must be a bool or three bools, got shape {arr.shape}")
    return arr


def validate_inputs(positions, cell, pbc, cutoff):
    """Check and convert the arguments of :func:`nemd.neighbors.build`.

    Returns ``(positions float64 (N,3), cell float64 (3,3) or None, pbc bool (3,), cutoff)``.
    ``cell`` is None for a non-periodic cluster given without a cell (or a zero cell).
    Raises ``ValueError`` naming the problem.
    """
    positions = np.asarray(positions, dtype=np.float64)
    if positions.ndim != 2 or positions.shape[1] != 3:
        raise ValueError(f"positions must have shape (N, 3), got {positions.shape}")
    if not np.all(np.isfinite(positions)):
        bad = np.flatnonzero(~np.all(np.isfinite(positions), axis=1))
        raise ValueError(f"positions contain NaN or inf (atoms {bad[:5].tolist()}{'...' if bad.size > 5 else ''})")
    try:
        cutoff = float(cutoff)
    except (TypeError, ValueError):
        raise ValueError(f"cutoff must be a number in Å, got {cutoff!r}") from None
    if not np.isfinite(cutoff) or cutoff <= 0.0:
        raise ValueError(f"cutoff must be positive and finite, got {cutoff}")
    pbc = normalize_pbc(pbc)

    if cell is not None:
        cell = np.asarray(cell, dtype=np.float64)
        if cell.shape == (3,):
            cell = np.diag(cell)
        if cell.shape != (3, 3):
            raise ValueError(f"cell must have shape (3, 3) or (3,), got {cell.shape}")
        if not np.all(np.isfinite(cell)):
            raise ValueError("cell contains NaN or inf")
        if not pbc.any() and not cell.any():
            cell = None
    if cell is None:
        if pbc.any():
            raise ValueError("a periodic direction needs a cell: pass cell or set pbc=False")
        return positions, None, pbc, cutoff

    periodic_vectors = cell[pbc]
    rank = np.linalg.matrix_rank(periodic_vectors, tol=1e-8 * max(1.0, np.abs(cell).max()))
    if rank < pbc.sum():
        raise ValueError(
            f"cell is singular: the periodic lattice vectors {np.flatnonzero(pbc).tolist()} "
            "are linearly dependent (zero length or coplanar)"
        )
    return positions, cell, pbc, cutoff


def _complete_basis(cell: np.ndarray | None, pbc: np.ndarray) -> np.ndarray:
    """Binning basis: periodic lattice vectors kept, non-periodic ones replaced by unit
    vectors orthogonal to the periodic ones (their length and direction in the user's
    cell never matter because no images are taken along them)."""
    basis = np.zeros((3, 3))
    periodic = [a for a in range(3) if pbc[a]]
    for a in periodic:
        basis[a] = cell[a]
    # Orthonormal complement of span(periodic vectors).
    if periodic:
        q, _ = np.linalg.qr(np.asarray([cell[a] for a in periodic]).T, mode="complete")
        complement = [q[:, k] for k in range(len(periodic), 3)]
    else:
        complement = list(np.eye(3))
    for a, vec in zip([a for a in range(3) if not pbc[a]], complement):
        basis[a] = vec
    return basis


@dataclass(frozen=True)
class BinnedSystem:
    """Atoms wrapped into the cell and sorted into a grid of bins.

    ``wrapped = positions - image @ basis`` (image is zero along non-periodic axes).
    The kernels report shifts for the input positions: ``S' + image[i] - image[j]``
    where ``S'`` is the shift found between wrapped positions.
    """

    wrapped: np.ndarray  # (N, 3) float64 Cartesian, input order
    image: np.ndarray  # (N, 3) int64 cell offsets removed by wrapping
    basis: np.ndarray  # (3, 3) binning basis (periodic rows equal the cell's)
    atom_bin: np.ndarray  # (N, 3) int64 bin index per axis, input order
    bin_start: np.ndarray  # (n_bins + 1,) int64 CSR offsets into the sorted arrays
    sorted_index: np.ndarray  # (N,) int64 atom index of each slot, bins contiguous
    sorted_positions: np.ndarray  # (N, 3) float64 wrapped positions in slot order
    n_bins: np.ndarray  # (3,) int64
    stencil: np.ndarray  # (K, 4) int64 rows (o0, o1, o2_lo, o2_hi) of bin offsets to search
    periodic: np.ndarray  # (3,) bool
    key_base: int  # radix for encoding a shift S' in a sort key


def _stencil_rows(reach, bin_vectors, bin_widths, cutoff):
    """Rows of bins (along the third axis) that can hold a point within ``cutoff`` of
    the central bin, as ``(o0, o1, o2_lo, o2_hi)``.

    Points in bins differing by ``o`` are separated by ``(o + t) @ bin_vectors`` with
    ``t`` in (-1, 1)^3. Two lower bounds on that length prune the cube of offsets:
    the perpendicular bin widths (exact per axis) and the smallest singular value of
    ``bin_vectors`` times ``|o + t|``. Both are conservative, so nothing is lost; both
    grow with ``|o2|``, so what survives of each row is one contiguous range. Bins of
    a row are contiguous in memory, which is why the kernels walk rows, not bins.
    """
    grid = np.stack(np.meshgrid(*[np.arange(-r, r + 1) for r in reach], indexing="ij"), -1).reshape(-1, 3)
    gap = np.maximum(np.abs(grid) - 1, 0).astype(np.float64)
    sigma_min = np.linalg.svd(bin_vectors, compute_uv=False).min()
    bound = np.maximum((gap * bin_widths).max(axis=1), sigma_min * np.linalg.norm(gap, axis=1))
    kept = grid[bound < cutoff * (1.0 + _STENCIL_SLACK)]
    rows = []
    for o0, o1 in sorted(set(map(tuple, kept[:, :2].tolist()))):
        o2 = kept[(kept[:, 0] == o0) & (kept[:, 1] == o1), 2]
        rows.append((o0, o1, o2.min(), o2.max()))
    return np.asarray(rows, dtype=np.int64).reshape(-1, 4)


def bin_atoms(positions, cell, pbc, cutoff, bins_per_cutoff: int = 2) -> BinnedSystem:
    """Wrap atoms and assign them to bins about ``cutoff / bins_per_cutoff`` wide.

    The bins tile the periodic cell (fractional coordinates in [0, 1)) and the extent
    of the atoms along non-periodic axes. Any pair closer than ``cutoff`` lies within
    ``reach = ceil(cutoff / width)`` bins on every axis (width measured perpendicular
    to the bin faces), also in skewed cells; ``stencil`` prunes that cube further.
    """
    n_atoms = positions.shape[0]
    basis = _complete_basis(cell, pbc) if cell is not None else np.eye(3)
    frac = positions @ np.linalg.inv(basis)
    image = np.where(pbc, np.floor(frac), 0.0).astype(np.int64)
    frac = frac - image
    wrapped = positions - image @ basis

    # Perpendicular distance between opposite faces of a unit step along each axis.
    face_width = 1.0 / np.linalg.norm(np.linalg.inv(basis), axis=0)
    lo = np.where(pbc, 0.0, frac.min(axis=0) if n_atoms else 0.0)
    span = np.where(pbc, 1.0, (frac.max(axis=0) - lo) if n_atoms else 0.0)
    length = span * face_width  # Å across the binned region on each axis
    n_bins = np.maximum(1, np.floor(length * bins_per_cutoff / cutoff)).astype(np.int64)
    # Keep the grid no larger than a few bins per atom (sparse clusters, huge cells).
    max_bins = 8 * max(n_atoms, 1) + 64
    while np.prod(n_bins) > max_bins:
        n_bins = np.maximum(1, n_bins // 2)
    bin_width = length / n_bins
    with np.errstate(divide="ignore", invalid="ignore"):
        reach = np.ceil(cutoff * (1.0 + _STENCIL_SLACK) / bin_width + _STENCIL_SLACK)
    reach = np.where(bin_width > 0, reach, 0).astype(np.int64)
    reach = np.where(pbc, reach, np.minimum(reach, n_bins - 1))  # nothing beyond the grid
    bin_vectors = (span / n_bins)[:, None] * basis
    stencil = _stencil_rows(reach, bin_vectors, bin_width, cutoff)

    with np.errstate(divide="ignore", invalid="ignore"):
        scaled = np.where(span > 0, (frac - lo) / np.where(span > 0, span, 1.0), 0.0) * n_bins
    atom_bin = np.clip(np.floor(scaled), 0, n_bins - 1).astype(np.int64)
    linear = (atom_bin[:, 0] * n_bins[1] + atom_bin[:, 1]) * n_bins[2] + atom_bin[:, 2]
    order = np.argsort(linear, kind="stable")
    counts = np.bincount(linear, minlength=int(np.prod(n_bins)))
    bin_start = np.zeros(counts.size + 1, dtype=np.int64)
    np.cumsum(counts, out=bin_start[1:])
    if n_atoms and np.abs(image).max() >= 2**30:
        raise ValueError("positions are too far outside the cell: shifts would overflow int32")
    half = int(np.max(reach // n_bins)) + 1  # |S'| <= reach // n_bins + 1
    key_base = 2 * half + 1
    if n_atoms * float(key_base) ** 3 >= 2.0**62:
        raise ValueError(f"cutoff {cutoff} Å spans too many periodic images of this cell")
    return BinnedSystem(
        wrapped=np.ascontiguousarray(wrapped),
        image=np.ascontiguousarray(image),
        basis=np.ascontiguousarray(basis),
        atom_bin=np.ascontiguousarray(atom_bin),
        bin_start=bin_start,
        sorted_index=order.astype(np.int64),
        sorted_positions=np.ascontiguousarray(wrapped[order]),
        n_bins=n_bins,
        stencil=stencil,
        periodic=pbc.copy(),
        key_base=key_base,
    )
