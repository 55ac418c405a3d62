"""Numba cell-list pair search (GIL released, one slice of receivers per call).

Two passes, both in ``fortran_nl/cell_list.f90`` too (same arguments, identical output):

1. ``search_slots`` visits receivers in bin order (neighbouring receivers touch the
   same memory) and records each neighbour as one int64 key encoding (sender,
   wrapped-frame shift), sorted per receiver.
2. ``decode_slots`` writes each receiver's keys as (receiver, sender, shift) at the
   receiver's place in the canonical (receiver-ordered) output.
"""

from __future__ import annotations

from numba import njit


@njit(nogil=True, cache=True, inline="always")
def image_offset(basis, s0, s1, s2, x0, x1, x2):
    """``(s0, s1, s2) @ basis - x``: where a periodic image of a bin sits relative to x.

    Shared by the pair search and the RDF histogram so both test the same distances.
    """
    return (s0 * basis[0, 0] + s1 * basis[1, 0] + s2 * basis[2, 0] - x0,
            s0 * basis[0, 1] + s1 * basis[1, 1] + s2 * basis[2, 1] - x1,
            s0 * basis[0, 2] + s1 * basis[1, 2] + s2 * basis[2, 2] - x2)


@njit(nogil=True, cache=True, inline="always")
def row_segment(c2, hi, n2):
    """The part of a bin row [c2, hi] inside one periodic image along the third axis:
    (wrapped start bin, image index, last unwrapped bin of the segment)."""
    w2 = c2 % n2
    return w2, (c2 - w2) // n2, min(hi, c2 - w2 + n2 - 1)


@njit(nogil=True, cache=True)
def search_slots(
    sorted_positions, sorted_index, atom_bin, basis, bin_start, n_bins, stencil, periodic,
    cutoff2, key_base, p0, p1, keys, seg_start, counts,
):
    """Find the neighbours of the receivers in bin slots ``p0 <= p < p1``.

    For receiver ``i = sorted_index[p]`` its sorted keys are stored at
    ``keys[seg_start[i] : seg_start[i] + counts[i]]``. Returns ``(n_written, p_next)``:
    when ``keys`` is full the search stops before the receiver that did not fit
    (``p_next < p1``) and the caller continues from there with a new buffer. Bins are
    walked in rows along the third axis (contiguous in slot order), split where a row
    crosses a periodic boundary.
    """
    capacity = keys.shape[0]
    half = key_base // 2
    key_cube = key_base * key_base * key_base
    n0, n1, n2 = n_bins[0], n_bins[1], n_bins[2]
    n = 0
    for q in range(p0, p1):
        i = sorted_index[q]
        start = n
        xi0 = sorted_positions[q, 0]
        xi1 = sorted_positions[q, 1]
        xi2 = sorted_positions[q, 2]
        for row in range(stencil.shape[0]):
            c0 = atom_bin[i, 0] + stencil[row, 0]
            c1 = atom_bin[i, 1] + stencil[row, 1]
            lo = atom_bin[i, 2] + stencil[row, 2]
            hi = atom_bin[i, 2] + stencil[row, 3]
            if periodic[0]:
                w0 = c0 % n0
                s0 = (c0 - w0) // n0
            elif c0 < 0 or c0 >= n0:
                continue
            else:
                w0 = c0
                s0 = 0
            if periodic[1]:
                w1 = c1 % n1
                s1 = (c1 - w1) // n1
            elif c1 < 0 or c1 >= n1:
                continue
            else:
                w1 = c1
                s1 = 0
            if not periodic[2]:
                lo = max(lo, 0)
                hi = min(hi, n2 - 1)
            row_base = (w0 * n1 + w1) * n2
            c2 = lo
            while c2 <= hi:  # one segment per periodic image along the third axis
                w2, s2, last = row_segment(c2, hi, n2)
                d0, d1, d2 = image_offset(basis, s0, s1, s2, xi0, xi1, xi2)
                zero_shift = s0 == 0 and s1 == 0 and s2 == 0
                shift_key = ((s0 + half) * key_base + (s1 + half)) * key_base + (s2 + half)
                for p in range(bin_start[row_base + w2], bin_start[row_base + w2 + last - c2 + 1]):
                    r0 = sorted_positions[p, 0] + d0
                    r1 = sorted_positions[p, 1] + d1
                    r2 = sorted_positions[p, 2] + d2
                    if r0 * r0 + r1 * r1 + r2 * r2 < cutoff2:
                        if p == q and zero_shift:
                            continue
                        if n >= capacity:
                            return start, q
                        keys[n] = sorted_index[p] * key_cube + shift_key
                        n += 1
                c2 = last + 1
        keys[start:n].sort()
        seg_start[i] = start
        counts[i] = n - start
    return n, p1


@njit(nogil=True, cache=True)
def decode_slots(
    keys, seg_start, counts, offsets, sorted_index, image, key_base, p0, p1,
    out_receivers, out_senders, out_shifts,
):
    """Write the keys of the receivers in slots [p0, p1) to the canonical output.

    Receiver ``i`` goes to ``out_*[offsets[i] : offsets[i] + counts[i]]``; shifts
    become shifts of the positions as given: ``S' + image[i] - image[j]``.
    """
    half = key_base // 2
    key_square = key_base * key_base
    key_cube = key_square * key_base
    for q in range(p0, p1):
        i = sorted_index[q]
        src = seg_start[i]
        dst = offsets[i]
        for e in range(counts[i]):
            key = keys[src + e]
            j = key // key_cube
            rest = key - j * key_cube
            out_receivers[dst + e] = i
            out_senders[dst + e] = j
            out_shifts[dst + e, 0] = rest // key_square - half + image[i, 0] - image[j, 0]
            out_shifts[dst + e, 1] = (rest // key_base) % key_base - half + image[i, 1] - image[j, 1]
            out_shifts[dst + e, 2] = rest % key_base - half + image[i, 2] - image[j, 2]


@njit(nogil=True, cache=True)
def count_within_by_kind(positions, cell, senders, receivers, shifts, kinds, cutoff2, counts):
    """``counts[i, k]`` += edges of receiver i from senders of kind k closer than the cutoff
    (``r = positions[s] + shift @ cell - positions[r]``, ``|r|^2 < cutoff2``)."""
    for e in range(senders.shape[0]):
        s, r = senders[e], receivers[e]
        a0, a1, a2 = shifts[e, 0], shifts[e, 1], shifts[e, 2]
        d0 = positions[s, 0] - positions[r, 0] + a0 * cell[0, 0] + a1 * cell[1, 0] + a2 * cell[2, 0]
        d1 = positions[s, 1] - positions[r, 1] + a0 * cell[0, 1] + a1 * cell[1, 1] + a2 * cell[2, 1]
        d2 = positions[s, 2] - positions[r, 2] + a0 * cell[0, 2] + a1 * cell[1, 2] + a2 * cell[2, 2]
        if d0 * d0 + d1 * d1 + d2 * d2 < cutoff2:
            counts[r, kinds[s]] += 1
