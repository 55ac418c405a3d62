! Cell-list pair search: the Fortran twin of nemd/neighbors/_numba_kernel.py.
!
! Same two passes, arguments and results as the Numba kernels (see their docstrings).
! Atom, slot and bin indices are 0-based values (they come from and go back to
! Python); arrays are indexed 1-based here. Row-major (N, 3) arrays from Python arrive
! as column-major (3, N) arrays. Built with numpy.f2py by `make fortran`;
! `threadsafe` releases the GIL so several Python threads can search at once.

subroutine search_slots(sorted_positions, sorted_index, atom_bin, basis, bin_start, n_bins, &
        stencil, periodic, cutoff2, key_base, p0, p1, keys, seg_start, counts, &
        n_atoms, n_bins_total, n_rows, capacity, n_written, p_next)
    implicit none
    integer(8), intent(in) :: n_atoms, n_bins_total, n_rows, capacity
    real(8), intent(in) :: sorted_positions(3, n_atoms), basis(3, 3), cutoff2
    integer(8), intent(in) :: sorted_index(n_atoms), atom_bin(3, n_atoms), bin_start(n_bins_total)
    integer(8), intent(in) :: n_bins(3), stencil(4, n_rows), periodic(3), key_base, p0, p1
    integer(8), intent(inout) :: keys(capacity), seg_start(n_atoms), counts(n_atoms)
    integer(8), intent(out) :: n_written, p_next
    !f2py threadsafe
    !f2py intent(hide) :: n_atoms, n_bins_total, n_rows, capacity

    integer(8) :: q, i, row, p, n, start, half, key_cube, shift_key
    integer(8) :: c0, c1, c2, w0, w1, w2, s0, s1, s2, lo, hi, last, row_base
    real(8) :: xi(3), d(3), r1, r2, r3
    logical :: zero_shift

    half = key_base / 2
    key_cube = key_base * key_base * key_base
    n = 0
    do q = p0 + 1, p1
        i = sorted_index(q)
        start = n
        xi = sorted_positions(:, q)
        do row = 1, n_rows
            c0 = atom_bin(1, i + 1) + stencil(1, row)
            c1 = atom_bin(2, i + 1) + stencil(2, row)
            lo = atom_bin(3, i + 1) + stencil(3, row)
            hi = atom_bin(3, i + 1) + stencil(4, row)
            if (periodic(1) /= 0) then
                w0 = modulo(c0, n_bins(1))
                s0 = (c0 - w0) / n_bins(1)
            else if (c0 < 0 .or. c0 >= n_bins(1)) then
                cycle
            else
                w0 = c0
                s0 = 0
            end if
            if (periodic(2) /= 0) then
                w1 = modulo(c1, n_bins(2))
                s1 = (c1 - w1) / n_bins(2)
            else if (c1 < 0 .or. c1 >= n_bins(2)) then
                cycle
            else
                w1 = c1
                s1 = 0
            end if
            if (periodic(3) == 0) then
                lo = max(lo, 0_8)
                hi = min(hi, n_bins(3) - 1)
            end if
            row_base = (w0 * n_bins(2) + w1) * n_bins(3)
            c2 = lo
            do while (c2 <= hi)  ! one segment per periodic image along the third axis
                w2 = modulo(c2, n_bins(3))
                s2 = (c2 - w2) / n_bins(3)
                last = min(hi, c2 - w2 + n_bins(3) - 1)
                ! Same operation order as the Numba kernel, so the cutoff test is bitwise equal.
                d(1) = s0 * basis(1, 1) + s1 * basis(1, 2) + s2 * basis(1, 3) - xi(1)
                d(2) = s0 * basis(2, 1) + s1 * basis(2, 2) + s2 * basis(2, 3) - xi(2)
                d(3) = s0 * basis(3, 1) + s1 * basis(3, 2) + s2 * basis(3, 3) - xi(3)
                zero_shift = (s0 == 0 .and. s1 == 0 .and. s2 == 0)
                shift_key = ((s0 + half) * key_base + (s1 + half)) * key_base + (s2 + half)
                do p = bin_start(row_base + w2 + 1) + 1, bin_start(row_base + w2 + last - c2 + 2)
                    r1 = sorted_positions(1, p) + d(1)
                    r2 = sorted_positions(2, p) + d(2)
                    r3 = sorted_positions(3, p) + d(3)
                    if (r1 * r1 + r2 * r2 + r3 * r3 < cutoff2) then
                        if (p == q .and. zero_shift) cycle
                        if (n >= capacity) then
                            n_written = start
                            p_next = q - 1
                            return
                        end if
                        n = n + 1
                        keys(n) = sorted_index(p) * key_cube + shift_key
                    end if
                end do
                c2 = last + 1
            end do
        end do
        if (n - start > 1) call sort_keys(keys(start + 1:n), n - start)
        seg_start(i + 1) = start
        counts(i + 1) = n - start
    end do
    n_written = n
    p_next = p1
end subroutine search_slots


subroutine decode_slots(keys, seg_start, counts, offsets, sorted_index, image, key_base, p0, p1, &
        out_receivers, out_senders, out_shifts, n_keys, n_atoms, n_pairs)
    implicit none
    integer(8), intent(in) :: n_keys, n_atoms, n_pairs
    integer(8), intent(in) :: keys(n_keys), seg_start(n_atoms), counts(n_atoms), offsets(n_atoms)
    integer(8), intent(in) :: sorted_index(n_atoms), image(3, n_atoms), key_base, p0, p1
    integer(4), intent(inout) :: out_receivers(n_pairs), out_senders(n_pairs), out_shifts(3, n_pairs)
    !f2py threadsafe
    !f2py intent(hide) :: n_keys, n_atoms, n_pairs

    integer(8) :: q, i, j, e, src, dst, key, rest, half, key_square, key_cube

    half = key_base / 2
    key_square = key_base * key_base
    key_cube = key_square * key_base
    do q = p0 + 1, p1
        i = sorted_index(q)
        src = seg_start(i + 1)
        dst = offsets(i + 1)
        do e = 1, counts(i + 1)
            key = keys(src + e)
            j = key / key_cube
            rest = key - j * key_cube
            out_receivers(dst + e) = int(i, 4)
            out_senders(dst + e) = int(j, 4)
            out_shifts(1, dst + e) = int(rest / key_square - half + image(1, i + 1) - image(1, j + 1), 4)
            out_shifts(2, dst + e) = int(modulo(rest / key_base, key_base) - half &
                                         + image(2, i + 1) - image(2, j + 1), 4)
            out_shifts(3, dst + e) = int(modulo(rest, key_base) - half + image(3, i + 1) - image(3, j + 1), 4)
        end do
    end do
end subroutine decode_slots


! Ascending in-place sort of one receiver's keys: insertion sort for short lists,
! heap sort otherwise (keys are unique, so any correct sort gives the same result).
subroutine sort_keys(keys, m)
    implicit none
    integer(8), intent(in) :: m
    integer(8), intent(inout) :: keys(m)
    integer(8) :: k, j, key, last, root, child, t

    if (m <= 32) then
        do k = 2, m
            key = keys(k)
            j = k - 1
            do while (j >= 1)
                if (keys(j) <= key) exit
                keys(j + 1) = keys(j)
                j = j - 1
            end do
            keys(j + 1) = key
        end do
        return
    end if
    do last = m, 1, -1  ! build the heap, then pop the maximum to the end repeatedly
        if (last <= m / 2) then
            root = last
            do while (2 * root <= m)
                child = 2 * root
                if (child < m) then
                    if (keys(child + 1) > keys(child)) child = child + 1
                end if
                if (keys(root) >= keys(child)) exit
                t = keys(root); keys(root) = keys(child); keys(child) = t
                root = child
            end do
        end if
    end do
    do last = m, 2, -1
        t = keys(1); keys(1) = keys(last); keys(last) = t
        root = 1
        do while (2 * root <= last - 1)
            child = 2 * root
            if (child < last - 1) then
                if (keys(child + 1) > keys(child)) child = child + 1
            end if
            if (keys(root) >= keys(child)) exit
            t = keys(root); keys(root) = keys(child); keys(child) = t
            root = child
        end do
    end do
end subroutine sort_keys
