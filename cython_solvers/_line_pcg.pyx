# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False, nonecheck=False
"""Compiled line-preconditioned conjugate gradients for the linear crossbar.

Only called through :mod:`xbar_circuit.cython_solvers.line_pcg`, which validates
every argument; this module trusts its inputs (shapes, C-contiguity, dtypes,
positive wire conductances) and never touches a Python object inside its loops.

The nodal system of an M x N crossbar, unknowns ``x_r`` (row nodes r(i, j)) and
``x_c`` (column nodes c(i, j)), both stored as C-contiguous (M, N) arrays::

    [ A_r  -D ] [x_r]   [b_r]
    [ -D  A_c ] [x_c] = [b_c]

``D = diag(G)``; ``A_r`` holds M tridiagonal row chains, ``A_c`` N tridiagonal
column chains. The kernel runs conjugate gradients on the Schur complement
``S = A_c - D A_r^{-1} D`` (symmetric positive definite) preconditioned by
``A_c``; both chains are factored once (:func:`factor_lines`) and every iteration
costs one row-chain solve and one column-chain solve. Then
``x_r = A_r^{-1} (b_r + D x_c)``.

Chain factorization (LDL^T, pivots written as ``w + s`` with ``s > 0`` summed
from the grounded end, so that no pivot is computed by cancellation)::

    row i, grounded at j = 0 through g_first:     factor from j = 0 to N-1
    column j, grounded at i = M-1 through g_last:  factor from i = M-1 to 0
"""

from libc.math cimport fabs, sqrt, isfinite
from libc.stdlib cimport calloc, free

from _chains cimport (all_finite, cg_finish, chain_solve4, col_solve, dot, dot2, factor_row,
                     factor_rows4, port_rule, sum_clear)

cimport numpy as cnp

cnp.import_array()


def factor_lines(const double[:, ::1] G, double w_row, double w_col, double g_first,
                 double g_last, double[:, ::1] row_e, double[:, ::1] row_inv,
                 double[:, ::1] col_e, double[:, ::1] col_inv, int which=0):
    """Factor every row and column chain; write the factors in place.

    ``which``: 0 both, 1 the row chains only, 2 the column chains only (the two are
    independent, so two threads can share the work).

    ``row_e[i, j] = w_row / d_j`` couples r(i, j) to r(i, j+1) (0 for j = N-1) and
    ``row_inv[i, j] = 1 / d_j``; ``col_e[i, j] = w_col / d_i`` couples c(i, j) to
    c(i-1, j) (0 for i = 0) and ``col_inv[i, j] = 1 / d_i``. Return whether every factor
    written is finite.
    """
    cdef Py_ssize_t m = G.shape[0]
    cdef Py_ssize_t n = G.shape[1]
    cdef Py_ssize_t i, j
    cdef double t
    cdef bint finite
    cdef double first[4]
    cdef double last[4]
    cdef double* w = NULL
    cdef double* sc = NULL
    with nogil:
        if which != 2:
            # Row chains, four at a time (the recurrence is latency bound).
            w = _scratch(4 * n)
            for j in range(4 * n):
                w[j] = w_row
            for j in range(4):
                first[j] = g_first
                last[j] = 0.0
            for i in range(0, m - m % 4, 4):
                factor_rows4(&G[i, 0], w, first, last, &row_e[i, 0], &row_inv[i, 0], n)
            for i in range(m - m % 4, m):
                factor_row(&G[i, 0], w, g_first, 0.0, &row_e[i, 0], &row_inv[i, 0], n)
            free(w)
        if which != 1:
            # Column chains, all N at once, from the grounded bottom row upwards; sc[j]
            # is the pivot's part seen looking down column j. One division per node:
            # the series conductance through node i is ``col_e s`` (see pivot_series).
            sc = _scratch(n)
            for j in range(n):
                sc[j] = G[m - 1, j] + g_last
            for i in range(m - 1, 0, -1):
                for j in range(n):
                    t = 1.0 / (w_col + sc[j])
                    col_inv[i, j] = t
                    col_e[i, j] = w_col * t
                    sc[j] = G[i - 1, j] + (w_col * t) * sc[j]
            for j in range(n):
                col_inv[0, j] = 1.0 / sc[j]
                col_e[0, j] = 0.0
            free(sc)
        finite = True
        if which != 2:
            finite = all_finite(&row_e[0, 0], m * n) and all_finite(&row_inv[0, 0], m * n)
        if which != 1:
            finite = finite and all_finite(&col_e[0, 0], m * n) and all_finite(
                &col_inv[0, 0], m * n)
    return finite


cdef inline void _row_solve(double* y, const double* e, const double* inv,
                            Py_ssize_t n) noexcept nogil:
    """Solve one row chain in place: ``y <- A_row^{-1} y``."""
    cdef Py_ssize_t j
    cdef double t = y[0]
    for j in range(1, n):
        t = y[j] + e[j - 1] * t
        y[j] = t
    t = y[n - 1] * inv[n - 1]
    y[n - 1] = t
    for j in range(n - 2, -1, -1):
        t = y[j] * inv[j] + e[j] * t
        y[j] = t


cdef inline void _row_block_solve(double* y, const double* e, const double* inv,
                                  Py_ssize_t rows, Py_ssize_t n) noexcept nogil:
    """Solve ``rows`` (1 to 4) consecutive row chains in place."""
    cdef Py_ssize_t r
    if rows == 4:
        chain_solve4(y, e, inv, n)
    else:
        for r in range(rows):
            _row_solve(y + r * n, e + r * n, inv + r * n, n)


cdef double* _scratch(Py_ssize_t count) except NULL nogil:
    """``count`` zeroed doubles of scratch (free them with ``free``)."""
    cdef double* buf = <double*> calloc(count, sizeof(double))
    if buf == NULL:
        with gil:
            raise MemoryError(f"cannot allocate {count} doubles of scratch")
    return buf


cdef inline void _rows_of_schur(const double* g, const double* y, const double* e,
                                const double* inv, double* buf, Py_ssize_t rows,
                                Py_ssize_t n) noexcept nogil:
    """``buf = A_r^{-1} D y`` on ``rows`` (1 to 4) consecutive rows (pointers at the
    block's first row)."""
    cdef Py_ssize_t j
    for j in range(rows * n):
        buf[j] = g[j] * y[j]
    _row_block_solve(buf, e, inv, rows, n)


cdef inline void _q_row(const double* g, const double* p, const double* u, double* q,
                        double* acc, double w_col, double g_last, bint has_prev,
                        bint has_next, Py_ssize_t n) noexcept nogil:
    """One row of ``q = A_c p - D u`` (u = A_r^{-1} D p), accumulating ``p * q``.

    ``A_c p`` is written in difference form, ``g p + w (p - p_up) + w (p - p_down)``,
    which avoids cancellation for smooth ``p``.
    """
    cdef Py_ssize_t j
    cdef double pc, aq
    if has_prev and has_next:
        for j in range(n):
            pc = p[j]
            aq = g[j] * (pc - u[j]) + w_col * ((pc - p[j - n]) + (pc - p[j + n]))
            q[j] = aq
            acc[j] += pc * aq
    elif has_next:
        for j in range(n):
            pc = p[j]
            aq = g[j] * (pc - u[j]) + w_col * (pc - p[j + n])
            q[j] = aq
            acc[j] += pc * aq
    elif has_prev:
        for j in range(n):
            pc = p[j]
            aq = g[j] * (pc - u[j]) + w_col * (pc - p[j - n]) + g_last * pc
            q[j] = aq
            acc[j] += pc * aq
    else:
        for j in range(n):
            pc = p[j]
            aq = g[j] * (pc - u[j]) + g_last * pc
            q[j] = aq
            acc[j] += pc * aq


cdef int _solve_one(const double* G, const double* re, const double* rinv,
                    const double* ce, const double* cinv,
                    double w_col, double g_first, double g_last,
                    const double* v_row, const double* v_col,
                    double* xr, double* xc, double* r, double* z, double* p, double* q,
                    double* buf, double* acc, Py_ssize_t m, Py_ssize_t n,
                    double rtol, Py_ssize_t max_iter,
                    Py_ssize_t* iters_out, double* resid_out) noexcept nogil:
    """Solve one right-hand side. Return 1 converged, 0 iteration cap, 2 breakdown.

    ``buf`` holds 4 rows (4 N doubles), ``acc`` N doubles, zero on entry.
    """
    cdef Py_ssize_t i, i0, j, k, rows, done, it = 0, mn = m * n
    cdef double fnorm2, rr, rz, beta
    cdef int status = 1, step

    # Schur right-hand side f = b_c + D A_r^{-1} b_r, kept in r; x_c = p = 0.
    for i0 in range(0, m, 4):
        rows = m - i0 if m - i0 < 4 else 4
        for k in range(rows * n):
            buf[k] = 0.0
        for i in range(rows):
            buf[i * n] = g_first * v_row[i0 + i]
        _row_block_solve(buf, re + i0 * n, rinv + i0 * n, rows, n)
        k = i0 * n
        for j in range(rows * n):
            r[k + j] = G[k + j] * buf[j]
            xc[k + j] = 0.0
            p[k + j] = 0.0
    k = (m - 1) * n
    for j in range(n):
        r[k + j] += g_last * v_col[j]
    for i in range(m):
        k = i * n
        for j in range(n):
            acc[j] += r[k + j] * r[k + j]
    fnorm2 = sum_clear(acc, n)
    rr = fnorm2

    if fnorm2 > 0.0:
        if not isfinite(fnorm2):
            status = 2
        else:
            rz = col_solve(r, ce, cinv, z, acc, m, n)
            beta = 0.0
            status = 0
            while it < max_iter:
                it += 1
                # p = z + beta p (rows updated just ahead of use) and q = S p.
                done = 0
                for i0 in range(0, m, 4):
                    rows = m - i0 if m - i0 < 4 else 4
                    while done < m and done <= i0 + rows:
                        k = done * n
                        for j in range(n):
                            p[k + j] = z[k + j] + beta * p[k + j]
                        done += 1
                    k = i0 * n
                    _rows_of_schur(G + k, p + k, re + k, rinv + k, buf, rows, n)
                    for i in range(rows):
                        k = (i0 + i) * n
                        _q_row(G + k, p + k, buf + i * n, q + k, acc, w_col, g_last,
                               i0 + i > 0, i0 + i + 1 < m, n)
                step = cg_finish(xc, r, z, p, q, ce, cinv, acc, &rz, &beta, &rr, fnorm2, rtol,
                                 m, n)
                if step >= 0:
                    status = step
                    break
    iters_out[0] = it
    if fnorm2 > 0.0 and isfinite(fnorm2):
        resid_out[0] = sqrt(rr / fnorm2)
    elif fnorm2 > 0.0:
        resid_out[0] = fnorm2
    else:
        resid_out[0] = 0.0

    # Row voltages x_r = A_r^{-1} (b_r + D x_c).
    for i in range(m):
        k = i * n
        for j in range(n):
            xr[k + j] = G[k + j] * xc[k + j]
        xr[k] += g_first * v_row[i]
    for i0 in range(0, m, 4):
        rows = m - i0 if m - i0 < 4 else 4
        _row_block_solve(xr + i0 * n, re + i0 * n, rinv + i0 * n, rows, n)
    return status


def solve_lines(const double[:, ::1] G, const double[:, ::1] row_e,
                const double[:, ::1] row_inv, const double[:, ::1] col_e,
                const double[:, ::1] col_inv, double w_col, double g_first, double g_last,
                const double[:, ::1] v_row, const double[:, ::1] v_col,
                double[:, :, ::1] row_v, double[:, :, ::1] col_v, bint store_rows, bint store_cols,
                double[:, ::1] i_col, double[:, ::1] i_row,
                cnp.int64_t[::1] iterations, double[::1] residual, cnp.int8_t[::1] status,
                double rtol, Py_ssize_t max_iter, double[:, :, ::1] work):
    """Solve B right-hand sides with the GIL released.

    Parameters (all validated by the wrapper)
    ----------
    G, row_e, row_inv, col_e, col_inv : (M, N)
        Conductances (S) and the chain factors of :func:`factor_lines`.
    w_col, g_first, g_last : float
        Column segment conductance, source-to-r(i,0) and c(M-1,j)-to-ground
        conductances (S).
    v_row : (B, M)
        Row source voltages (V). v_col : (B, N) voltages of the column ports (V),
        applied behind r_sense (0 for the normal read).
    row_v : (B, M, N) if ``store_rows`` else (1, M, N); col_v likewise with
        ``store_cols``
        Node voltages out (V); an array of length 1 is scratch.
    i_col : (B, N), i_row : (B, M)
        Sum of cell currents G (x_r - x_c) over each column / each row (A).
    iterations, residual, status : (B,)
        Per vector: CG iterations, relative Schur residual reached, 1 converged /
        0 iteration cap / 2 breakdown or non-finite values.
    work : (4, M, N)
        Scratch.
    """
    cdef Py_ssize_t m = G.shape[0]
    cdef Py_ssize_t n = G.shape[1]
    cdef Py_ssize_t nb = v_row.shape[0]
    cdef Py_ssize_t b, i, j, k, slot
    cdef Py_ssize_t it = 0
    cdef double res = 0.0, cur, t
    cdef double* buf
    cdef double* acc
    cdef double* xr
    cdef double* xc
    cdef const double* g = &G[0, 0]
    with nogil:
        buf = _scratch(5 * n)
        acc = buf + 4 * n
        for b in range(nb):
            slot = b if store_rows else 0
            xr = &row_v[slot, 0, 0]
            slot = b if store_cols else 0
            xc = &col_v[slot, 0, 0]
            status[b] = _solve_one(
                g, &row_e[0, 0], &row_inv[0, 0], &col_e[0, 0], &col_inv[0, 0],
                w_col, g_first, g_last, &v_row[b, 0], &v_col[b, 0],
                xr, xc, &work[0, 0, 0], &work[1, 0, 0], &work[2, 0, 0], &work[3, 0, 0],
                buf, acc, m, n, rtol, max_iter, &it, &res)
            iterations[b] = it
            residual[b] = res
            # One pass for row currents, column currents and the size of their terms.
            for j in range(n):
                i_col[b, j] = 0.0
                buf[j] = 0.0
            for i in range(m):
                k = i * n
                cur = 0.0
                for j in range(n):
                    t = g[k + j] * (xr[k + j] - xc[k + j])
                    cur += t
                    i_col[b, j] += t
                    buf[j] += fabs(g[k + j] * xr[k + j]) + fabs(g[k + j] * xc[k + j])
                i_row[b, i] = cur
            port_rule(&i_col[b, 0], buf, xc + (m - 1) * n, NULL, g_last, n)
        free(buf)


def rows_from_columns(const double[:, ::1] G, const double[:, ::1] row_e,
                      const double[:, ::1] row_inv, double g_first,
                      const double[:, ::1] v_row, const double[:, :, ::1] col_v,
                      double[:, :, ::1] row_v):
    """Row voltages ``x_r = A_r^{-1} (b_r + D x_c)`` for B known column voltages.

    v_row : (B, M) volts; col_v, row_v : (B, M, N) volts. GIL released.
    """
    cdef Py_ssize_t m = G.shape[0]
    cdef Py_ssize_t n = G.shape[1]
    cdef Py_ssize_t nb = v_row.shape[0]
    cdef Py_ssize_t b, i, j, k
    cdef const double* g = &G[0, 0]
    cdef double* xr
    cdef const double* xc
    with nogil:
        for b in range(nb):
            xr = &row_v[b, 0, 0]
            xc = &col_v[b, 0, 0]
            for i in range(m):
                k = i * n
                for j in range(n):
                    xr[k + j] = g[k + j] * xc[k + j]
                xr[k] += g_first * v_row[b, i]
            for i in range(0, m, 4):
                _row_block_solve(xr + i * n, &row_e[i, 0], &row_inv[i, 0],
                                 m - i if m - i < 4 else 4, n)


# ------------------------------------------------------------------------------------
# Phase kernels of the coarse-corrected (deflated) CG driven from Python.
#
# Each works on a row range [i0, i1) or a column range [j0, j1) of (M, N) arrays, so
# that two threads can share one large solve; each returns its partial dot product.

def schur_rows(const double[:, ::1] G, const double[:, ::1] row_e,
               const double[:, ::1] row_inv, double w_col, double g_last,
               const double[:, ::1] p, double[:, ::1] q, Py_ssize_t i0, Py_ssize_t i1):
    """``q = S p`` on rows ``[i0, i1)`` (``S = A_c - D A_r^{-1} D``); return ``p . q`` there."""
    cdef Py_ssize_t m = G.shape[0]
    cdef Py_ssize_t n = G.shape[1]
    cdef Py_ssize_t i, ib, j, rows
    cdef double total
    cdef double* buf
    cdef double* acc
    with nogil:
        buf = _scratch(5 * n)
        acc = buf + 4 * n
        for ib in range(i0, i1, 4):
            rows = i1 - ib if i1 - ib < 4 else 4
            _rows_of_schur(&G[ib, 0], &p[ib, 0], &row_e[ib, 0], &row_inv[ib, 0], buf, rows, n)
            for i in range(rows):
                _q_row(&G[ib + i, 0], &p[ib + i, 0], buf + i * n, &q[ib + i, 0], acc,
                       w_col, g_last, ib + i > 0, ib + i + 1 < m, n)
        total = sum_clear(acc, n)
        free(buf)
    return total


def column_solve(const double[:, ::1] col_e, const double[:, ::1] col_inv,
                 const double[:, ::1] r, double[:, ::1] z, Py_ssize_t j0, Py_ssize_t j1):
    """``z = A_c^{-1} r`` on columns ``[j0, j1)``; return ``r . z`` there."""
    cdef Py_ssize_t m = r.shape[0]
    cdef Py_ssize_t i, j
    cdef double total = 0.0
    if j1 <= j0:
        return 0.0
    with nogil:
        for j in range(j0, j1):
            z[m - 1, j] = r[m - 1, j]
        for i in range(m - 2, -1, -1):
            for j in range(j0, j1):
                z[i, j] = r[i, j] + col_e[i + 1, j] * z[i + 1, j]
        for j in range(j0, j1):
            z[0, j] = z[0, j] * col_inv[0, j]
        total += dot(&r[0, j0], &z[0, j0], j1 - j0)
        for i in range(1, m):
            for j in range(j0, j1):
                z[i, j] = z[i, j] * col_inv[i, j] + col_e[i, j] * z[i - 1, j]
            total += dot(&r[i, j0], &z[i, j0], j1 - j0)
    return total


def combine(double[:, ::1] out, const double[:, ::1] a, const double[:, ::1] b,
            double beta, Py_ssize_t i0, Py_ssize_t i1):
    """``out = a + beta b`` on rows ``[i0, i1)`` (``out`` may be ``b``; with ``beta = 0``,
    ``b`` is not read, so it may hold anything, even uninitialised memory)."""
    cdef Py_ssize_t n = out.shape[1]
    cdef Py_ssize_t i, j
    cdef bint in_place = &out[0, 0] == &b[0, 0]
    with nogil:
        # In place, ``b`` is not read through a second view: the compiler's overlap check
        # between ``out`` and ``b`` would otherwise send the loop down its scalar path.
        for i in range(i0, i1):
            if beta == 0.0:
                for j in range(n):
                    out[i, j] = a[i, j]
            elif in_place:
                for j in range(n):
                    out[i, j] = a[i, j] + beta * out[i, j]
            else:
                for j in range(n):
                    out[i, j] = a[i, j] + beta * b[i, j]


def difference_dot(double[:, ::1] out, const double[:, ::1] a, const double[:, ::1] b,
                   Py_ssize_t i0, Py_ssize_t i1):
    """``out = a - b`` on rows ``[i0, i1)``; return ``out . out`` there (``out`` must not
    be ``a`` or ``b``)."""
    cdef Py_ssize_t n = out.shape[1]
    cdef Py_ssize_t i, j
    cdef double total = 0.0
    with nogil:
        for i in range(i0, i1):
            for j in range(n):
                out[i, j] = a[i, j] - b[i, j]
            total += dot(&out[i, 0], &out[i, 0], n)
    return total


def fill_rows(double[:, ::1] out, double value, Py_ssize_t i0, Py_ssize_t i1):
    """``out = value`` on rows ``[i0, i1)`` (so that two threads share the first touch of
    a fresh array's pages)."""
    cdef Py_ssize_t n = out.shape[1]
    cdef Py_ssize_t i, j
    with nogil:
        for i in range(i0, i1):
            for j in range(n):
                out[i, j] = value


def dot_rows(const double[:, ::1] a, const double[:, ::1] b, Py_ssize_t i0, Py_ssize_t i1):
    """``a . b`` over rows ``[i0, i1)``."""
    cdef Py_ssize_t n = a.shape[1]
    cdef Py_ssize_t i
    cdef double total = 0.0
    with nogil:
        for i in range(i0, i1):
            total += dot(&a[i, 0], &b[i, 0], n)
    return total


def schur_rhs(const double[:, ::1] G, const double[:, ::1] row_e,
              const double[:, ::1] row_inv, double g_first, double g_last,
              const double[::1] v_row, const double[::1] v_col, double[:, ::1] f,
              Py_ssize_t i0, Py_ssize_t i1):
    """Rows ``[i0, i1)`` of the Schur right-hand side ``f = b_c + D A_r^{-1} b_r``."""
    cdef Py_ssize_t m = G.shape[0]
    cdef Py_ssize_t n = G.shape[1]
    cdef Py_ssize_t i, ib, j, rows
    cdef double* buf
    with nogil:
        buf = _scratch(4 * n)
        for ib in range(i0, i1, 4):
            rows = i1 - ib if i1 - ib < 4 else 4
            for j in range(rows * n):
                buf[j] = 0.0
            for i in range(rows):
                buf[i * n] = g_first * v_row[ib + i]
            _row_block_solve(buf, &row_e[ib, 0], &row_inv[ib, 0], rows, n)
            for i in range(rows):
                for j in range(n):
                    f[ib + i, j] = G[ib + i, j] * buf[i * n + j]
                if ib + i == m - 1:
                    for j in range(n):
                        f[ib + i, j] += g_last * v_col[j]
        free(buf)


def cell_currents(const double[:, ::1] G, const double[:, ::1] xr, const double[:, ::1] xc,
                  double g_last, double[::1] i_col, double[::1] i_row):
    """Column and row sums of ``G (x_r - x_c)`` (A), with the port rule where they cancel."""
    cdef Py_ssize_t m = G.shape[0]
    cdef Py_ssize_t n = G.shape[1]
    cdef Py_ssize_t i, j
    cdef double cur, t
    cdef double* mag
    with nogil:
        mag = _scratch(n)
        for j in range(n):
            i_col[j] = 0.0
        for i in range(m):
            cur = 0.0
            for j in range(n):
                t = G[i, j] * (xr[i, j] - xc[i, j])
                cur += t
                i_col[j] += t
                mag[j] += fabs(G[i, j] * xr[i, j]) + fabs(G[i, j] * xc[i, j])
            i_row[i] = cur
        port_rule(&i_col[0], mag, &xc[m - 1, 0], NULL, g_last, n)
        free(mag)


def deflation_residual(const double[:, ::1] G, const double[:, ::1] row_e,
                       const double[:, ::1] row_inv, const double[:, ::1] y,
                       const cnp.int64_t[::1] left, const double[::1] t,
                       double[:, ::1] out, Py_ssize_t i0, Py_ssize_t i1):
    """Rows ``[i0, i1)`` of ``(r - S y) L_j`` for ``y = A_c^{-1} r``.

    Since ``A_c y = r`` exactly, ``r - S y = D A_r^{-1} D y``: one row-chain solve, no
    subtraction. The result is restricted along each row at once (``out`` (M, K_j): coarse
    node ``left[j]`` takes ``1 - t[j]`` of fine node j, ``left[j] + 1`` takes ``t[j]``), so
    it is never stored at full size. ``left`` is non-decreasing (:func:`interpolation_weights`):
    the restriction runs as two dot products per run of equal ``left``.
    """
    cdef Py_ssize_t n = G.shape[1]
    cdef Py_ssize_t k = out.shape[1]
    cdef Py_ssize_t i, ib, j, b, rows, start, stop
    cdef double* buf
    cdef double* w0
    cdef double* v
    cdef const double* gk
    with nogil:
        buf = _scratch(5 * n)
        w0 = buf + 4 * n
        for j in range(n):
            w0[j] = 1.0 - t[j]
        for ib in range(i0, i1, 4):
            rows = i1 - ib if i1 - ib < 4 else 4
            _rows_of_schur(&G[ib, 0], &y[ib, 0], &row_e[ib, 0], &row_inv[ib, 0], buf, rows, n)
            for i in range(rows):
                v = buf + i * n
                gk = &G[ib + i, 0]
                for j in range(n):
                    v[j] = gk[j] * v[j]
                for b in range(k):
                    out[ib + i, b] = 0.0
                start = 0
                while start < n:
                    b = left[start]
                    stop = start + 1
                    while stop < n and left[stop] == b:
                        stop += 1
                    out[ib + i, b] += dot(w0 + start, v + start, stop - start)
                    if b + 1 < k:
                        out[ib + i, b + 1] += dot(&t[start], v + start, stop - start)
                    start = stop
        free(buf)


def prolong_dot(double[:, ::1] z, const double[:, ::1] y, const double[:, ::1] coarse_j,
                const cnp.int64_t[::1] left_i, const double[::1] t_i,
                const double[:, ::1] r, const double[:, ::1] q, Py_ssize_t i0, Py_ssize_t i1):
    """Rows ``[i0, i1)`` of ``z = y + L_i coarse_j``; return ``(r . z, q . z)`` there.

    ``z`` may be ``y`` (in place)."""
    cdef Py_ssize_t n = z.shape[1]
    cdef Py_ssize_t i, j, a
    cdef double w0, w1, rz = 0.0, qz = 0.0
    cdef bint in_place = &z[0, 0] == &y[0, 0]
    with nogil:
        for i in range(i0, i1):
            a = left_i[i]
            w1 = t_i[i]
            w0 = 1.0 - w1
            if not in_place:
                for j in range(n):
                    z[i, j] = y[i, j]
            if w1 != 0.0:
                for j in range(n):
                    z[i, j] += w0 * coarse_j[a, j] + w1 * coarse_j[a + 1, j]
            else:
                for j in range(n):
                    z[i, j] += w0 * coarse_j[a, j]
            dot2(&r[i, 0], &q[i, 0], &z[i, 0], n, &rz, &qz)
    return rz, qz


def mass_rows(const double[:, ::1] G, const cnp.int64_t[::1] left, const double[::1] t,
              double[:, ::1] same, double[:, ::1] next_, Py_ssize_t i0, Py_ssize_t i1):
    """Rows ``[i0, i1)`` of ``Σ_j G_ij L[j,b]²`` (``same``) and ``Σ_j G_ij L[j,b] L[j,b+1]``
    (``next_``) for linear interpolation ``L`` along the rows (both (M, K), overwritten)."""
    cdef Py_ssize_t n = G.shape[1]
    cdef Py_ssize_t k = same.shape[1]
    cdef Py_ssize_t i, j, b
    cdef double g, w0, w1
    with nogil:
        for i in range(i0, i1):
            for b in range(k):
                same[i, b] = 0.0
                next_[i, b] = 0.0
            for j in range(n):
                g = G[i, j]
                b = left[j]
                w1 = t[j]
                w0 = 1.0 - w1
                same[i, b] += g * w0 * w0
                if w1 != 0.0:
                    same[i, b + 1] += g * w1 * w1
                    next_[i, b] += g * w0 * w1


def step_and_column_solve(double[:, ::1] x, double[:, ::1] r, const double[:, ::1] p,
                          const double[:, ::1] q, double alpha,
                          const double[:, ::1] col_e, const double[:, ::1] col_inv,
                          double[:, ::1] y, bint first, Py_ssize_t j0, Py_ssize_t j1):
    """On columns ``[j0, j1)``: the CG update ``x += alpha p``, ``r -= alpha q`` fused with
    the column solve ``y = A_c^{-1} r`` (its first sweep runs bottom-up, row by row, just
    behind the update). Return ``r . r`` there. With ``first``, ``x = alpha p`` (the
    first step from ``x = 0``: ``x`` is not read, so it need not be initialised).

    Each row's work is split into single-purpose loops over the row segment (which stays
    in cache between them): a loop that both stores into several arrays and sums a
    reduction is not vectorized by the C compiler, and ran 2.6x slower (4096x4096).
    """
    cdef Py_ssize_t m = x.shape[0]
    cdef Py_ssize_t i, j
    cdef double total = 0.0
    with nogil:
        for i in range(m - 1, -1, -1):
            if first:
                for j in range(j0, j1):
                    x[i, j] = alpha * p[i, j]
            else:
                for j in range(j0, j1):
                    x[i, j] += alpha * p[i, j]
            for j in range(j0, j1):
                r[i, j] -= alpha * q[i, j]
            if i == m - 1:
                for j in range(j0, j1):
                    y[i, j] = r[i, j]
            else:
                for j in range(j0, j1):
                    y[i, j] = r[i, j] + col_e[i + 1, j] * y[i + 1, j]
            total += dot(&r[i, j0], &r[i, j0], j1 - j0)
        for j in range(j0, j1):
            y[0, j] = y[0, j] * col_inv[0, j]
        for i in range(1, m):
            for j in range(j0, j1):
                y[i, j] = y[i, j] * col_inv[i, j] + col_e[i, j] * y[i - 1, j]
    return total
