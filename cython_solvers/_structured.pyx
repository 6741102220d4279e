# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False, nonecheck=False
"""Compiled kernel for every crossbar topology: line-preconditioned CG with exact limits.

Only called through :mod:`xbar_circuit.cython_solvers.structured`, which orients the
array, validates every argument and owns the scratch memory; this module trusts its
inputs and never touches a Python object inside its loops.

The array is in *solver orientation*: every row is fed at its left end through
``gl[i]`` (and at its right end through ``gr[i]``, 0 when there is no right driver)
from the row's source voltage, and every column is grounded at its bottom end through
``gb[j]``. The nodal system for row voltages ``x_r`` and column voltages ``x_c``,
both C-contiguous (M, N)::

    [ A_r  -D ] [x_r]   [b_r + V h-terms]
    [ -D  A_c ] [x_c] = [b_c           ]

with ``D = diag(d)`` (cell conductances, or ``di/dv`` inside Newton), row couplings
``wr[i, j]`` between r(i, j) and r(i, j+1) and column couplings ``wc[i, j]`` between
c(i, j) and c(i+1, j). Any of ``wr``, ``wc``, ``gl``, ``gr``, ``gb`` may be ``+inf``
(a zero-ohm segment or an ideal source/ground): chains use the exact limits of
:mod:`._chains`, so merged nodes and fixed nodes cost nothing extra.

Method: conjugate gradients on the column Schur complement ``S = A_c - D A_r^{-1} D``
preconditioned by the factored column chains. Column nodes joined by infinite
couplings form one unknown: residual vectors keep a group's value at its top member
(``_collect``), search directions hold it at every member, so that inner products are
those of the reduced (merged) system. Column nodes fixed at 0 V by an infinite
``gb`` are masked out (``free_c``). Row voltages of the sources alone are
``V[i] h[i, :]``, with ``h`` the response of the row chain to a unit source voltage
(:func:`source_response`).
"""

from libc.math cimport sqrt, isfinite, isinf
from libc.stdlib cimport calloc, free

cimport numpy as cnp

from _chains cimport chain_solve, pivot, series, sum_clear

cnp.import_array()


def factor(const double[:, ::1] D, const double[:, ::1] wr, const double[::1] gl,
           const double[::1] gr, const double[:, ::1] wc, const double[::1] gb,
           double[:, ::1] row_e, double[:, ::1] row_inv,
           double[:, ::1] col_e, double[:, ::1] col_inv):
    """Factor every row chain (from the left) and column chain (from the bottom).

    ``row_e[i, j]`` couples r(i, j) to r(i, j+1); ``col_e[i, j]`` couples c(i, j) to
    c(i-1, j). Infinite conductances are factored by their exact limits.
    """
    cdef Py_ssize_t m = D.shape[0]
    cdef Py_ssize_t n = D.shape[1]
    cdef Py_ssize_t i, j
    cdef double s, d
    cdef double* sc
    with nogil:
        for i in range(m):
            s = D[i, 0] + gl[i]
            for j in range(n):
                if j > 0:
                    s = D[i, j] + series(wr[i, j - 1], s)
                if j < n - 1:
                    pivot(wr[i, j], s, &row_e[i, j], &row_inv[i, j])
                else:
                    d = s + gr[i]
                    row_inv[i, j] = 0.0 if isinf(d) else 1.0 / d
                    row_e[i, j] = 0.0
        sc = <double*> calloc(n, sizeof(double))
        if sc == NULL:
            with gil:
                raise MemoryError("cannot allocate the column pivots")
        for j in range(n):
            sc[j] = D[m - 1, j] + gb[j]
        for i in range(m - 1, -1, -1):
            for j in range(n):
                if i < m - 1:
                    sc[j] = D[i, j] + series(wc[i, j], sc[j])
                if i > 0:
                    pivot(wc[i - 1, j], sc[j], &col_e[i, j], &col_inv[i, j])
                else:
                    col_inv[0, j] = 0.0 if isinf(sc[j]) else 1.0 / sc[j]
                    col_e[0, j] = 0.0
        free(sc)


def source_response(const double[:, ::1] wr, const double[::1] gl, const double[::1] gr,
                    const double[:, ::1] row_e, const double[:, ::1] row_inv,
                    double[:, ::1] h):
    """Row voltages per volt of source, with every column node held at 0 V.

    Nodes tied to a source by zero-ohm paths get exactly 1; the others are the chain
    solution for a unit voltage behind the first and last finite couplings, computed
    without subtraction (every term is positive).
    """
    cdef Py_ssize_t m = wr.shape[0]
    cdef Py_ssize_t n = wr.shape[1]
    cdef Py_ssize_t i, j, p, q, last
    cdef double t
    with nogil:
        for i in range(m):
            p = 0
            if isinf(gl[i]):
                p = 1
                while p < n and isinf(wr[i, p - 1]):
                    p += 1
            q = 0
            if isinf(gr[i]):
                q = 1
                while q < n and isinf(wr[i, n - 1 - q]):
                    q += 1
            for j in range(n):
                h[i, j] = 1.0
            if p + q >= n:
                continue
            last = n - q - 1
            t = wr[i, p - 1] if p > 0 else gl[i]
            if p == last and q == 0:
                t = t + gr[i]
            h[i, p] = t
            for j in range(p + 1, last + 1):
                t = row_e[i, j - 1] * t
                if j == n - 1:
                    t = t + gr[i]
                h[i, j] = t
            t = h[i, last] * row_inv[i, last]
            if q > 0:
                t = t + row_e[i, last]
            h[i, last] = t
            for j in range(last - 1, p - 1, -1):
                t = h[i, j] * row_inv[i, j] + row_e[i, j] * t
                h[i, j] = t


cdef inline void _collect(double* q, const cnp.uint8_t* link, const cnp.uint8_t* free_c,
                          Py_ssize_t m, Py_ssize_t n) noexcept nogil:
    """Move the values of merged column nodes to the group's top member; zero fixed nodes."""
    cdef Py_ssize_t i, j, k
    for i in range(m - 2, -1, -1):
        k = i * n
        for j in range(n):
            if link[k + j]:
                q[k + j] += q[k + n + j]
                q[k + n + j] = 0.0
    for k in range(m * n):
        if not free_c[k]:
            q[k] = 0.0


cdef double _col_solve(const double* r, const double* e, const double* inv, double* z,
                       double* acc, Py_ssize_t m, Py_ssize_t n) noexcept nogil:
    """Solve every column chain, ``z = A_c^{-1} r``; return ``r . z``."""
    cdef Py_ssize_t i, j, k
    k = (m - 1) * n
    for j in range(n):
        z[k + j] = r[k + j]
    for i in range(m - 2, -1, -1):
        k = i * n
        for j in range(n):
            z[k + j] = r[k + j] + e[k + n + j] * z[k + n + j]
    for j in range(n):
        z[j] = z[j] * inv[j]
        acc[j] += r[j] * z[j]
    for i in range(1, m):
        k = i * n
        for j in range(n):
            z[k + j] = z[k + j] * inv[k + j] + e[k + j] * z[k - n + j]
            acc[j] += r[k + j] * z[k + j]
    return sum_clear(acc, n)


cdef void _rows(double* x, const double* d, const double* xc, const double* br,
                const double* v, const double* h, const double* re, const double* rinv,
                Py_ssize_t m, Py_ssize_t n) noexcept nogil:
    """``x = A_r^{-1} (b_r + D x_c) + V h`` (any of b_r, x_c, v may be NULL)."""
    cdef Py_ssize_t i, j, k
    for i in range(m):
        k = i * n
        for j in range(n):
            x[k + j] = 0.0
        if br != NULL:
            for j in range(n):
                x[k + j] = br[k + j]
        if xc != NULL:
            for j in range(n):
                x[k + j] += d[k + j] * xc[k + j]
        chain_solve(x + k, re + k, rinv + k, n, 1)
        if v != NULL:
            for j in range(n):
                x[k + j] += v[i] * h[k + j]


cdef int _solve_one(const double* d, const double* wcf, const double* re,
                    const double* rinv, const double* ce, const double* cinv,
                    const double* h, const cnp.uint8_t* link, const cnp.uint8_t* free_c,
                    const double* v, const double* br, const double* bc,
                    double* xr, double* xc, double* r, double* z, double* p, double* q,
                    double* acc, Py_ssize_t m, Py_ssize_t n, double rtol,
                    Py_ssize_t max_iter, Py_ssize_t* iters_out,
                    double* resid_out) noexcept nogil:
    """One right-hand side. Return 1 converged, 0 iteration cap, 2 breakdown."""
    cdef Py_ssize_t i, j, k, it = 0, mn = m * n
    cdef double fnorm2, rr, rz, rz_new, pq, alpha, beta, pc, aq
    cdef int status = 1

    _rows(xr, d, NULL, br, v, h, re, rinv, m, n)
    for k in range(mn):
        r[k] = d[k] * xr[k]
        if bc != NULL:
            r[k] += bc[k]
        xc[k] = 0.0
        p[k] = 0.0
    _collect(r, link, free_c, m, n)
    fnorm2 = 0.0
    for k in range(mn):
        fnorm2 += r[k] * r[k]
    rr = fnorm2
    if fnorm2 > 0.0:
        if not isfinite(fnorm2):
            status = 2
        else:
            rz = _col_solve(r, ce, cinv, z, acc, m, n)
            beta = 0.0
            status = 0
            while it < max_iter:
                it += 1
                for k in range(mn):
                    p[k] = z[k] + beta * p[k]
                # q = S p = A_c p - D A_r^{-1} D p, the row solves in q as scratch.
                _rows(q, d, p, NULL, NULL, h, re, rinv, m, n)
                for i in range(m):
                    k = i * n
                    for j in range(n):
                        pc = p[k + j]
                        aq = d[k + j] * (pc - q[k + j]) + wcf[k + j] * pc
                        if i > 0:
                            aq = aq + wcf[k - n + j] * (pc - p[k - n + j])
                        if i < m - 1:
                            aq = aq - wcf[k + j] * p[k + n + j]
                        q[k + j] = aq
                _collect(q, link, free_c, m, n)
                for i in range(m):
                    k = i * n
                    for j in range(n):
                        acc[j] += p[k + j] * q[k + j]
                pq = sum_clear(acc, n)
                if not (pq > 0.0) or not isfinite(pq):
                    status = 2
                    break
                alpha = rz / pq
                for i in range(m):
                    k = i * n
                    for j in range(n):
                        xc[k + j] += alpha * p[k + j]
                        r[k + j] -= alpha * q[k + j]
                        acc[j] += r[k + j] * r[k + j]
                rr = sum_clear(acc, n)
                if not isfinite(rr):
                    status = 2
                    break
                if rr <= rtol * rtol * fnorm2:
                    status = 1
                    break
                rz_new = _col_solve(r, ce, cinv, z, acc, m, n)
                if not (rz_new > 0.0):
                    status = 2
                    break
                beta = rz_new / rz
                rz = rz_new
    iters_out[0] = it
    if fnorm2 > 0.0 and isfinite(fnorm2):
        resid_out[0] = sqrt(rr / fnorm2)
    else:
        resid_out[0] = 0.0 if fnorm2 == 0.0 else fnorm2
    _rows(xr, d, xc, br, v, h, re, rinv, m, n)
    return status


def solve_many(const double[:, ::1] D, const double[:, ::1] wcf,
               const double[:, ::1] row_e, const double[:, ::1] row_inv,
               const double[:, ::1] col_e, const double[:, ::1] col_inv,
               const double[:, ::1] h, const cnp.uint8_t[:, ::1] link,
               const cnp.uint8_t[:, ::1] free_c,
               const double[:, ::1] v_row, const double[:, :, ::1] b_r,
               const double[:, :, ::1] b_c, bint use_v, bint use_br, bint use_bc,
               double[:, :, ::1] x_r, double[:, :, ::1] x_c, bint store,
               double[:, ::1] i_col, cnp.int64_t[::1] iterations, double[::1] residual,
               cnp.int8_t[::1] status, double rtol, Py_ssize_t max_iter,
               double[:, :, ::1] work):
    """Solve B right-hand sides with the GIL released.

    ``wcf``: the finite column couplings (``wc`` with infinities as 0; its last row
    holds ``gb`` where finite, else 0). ``v_row`` (B, M) volts; ``b_r``, ``b_c``
    (B, M, N) amperes, each used only when its flag is set. ``x_r``, ``x_c``: (B, M, N)
    when ``store`` else (1, M, N) scratch. ``i_col`` (B, N): ``sum_i d (x_r - x_c)``.
    ``work``: (4, M, N) scratch.
    """
    cdef Py_ssize_t m = D.shape[0]
    cdef Py_ssize_t n = D.shape[1]
    cdef Py_ssize_t nb = iterations.shape[0]
    cdef Py_ssize_t b, i, j, k, slot, it = 0
    cdef double res = 0.0
    cdef double* acc
    cdef double* xr
    cdef double* xc
    cdef const double* d = &D[0, 0]
    with nogil:
        acc = <double*> calloc(n, sizeof(double))
        if acc == NULL:
            with gil:
                raise MemoryError("cannot allocate the CG accumulators")
        for b in range(nb):
            slot = b if store else 0
            xr = &x_r[slot, 0, 0]
            xc = &x_c[slot, 0, 0]
            status[b] = _solve_one(
                d, &wcf[0, 0], &row_e[0, 0], &row_inv[0, 0], &col_e[0, 0], &col_inv[0, 0],
                &h[0, 0], &link[0, 0], &free_c[0, 0],
                &v_row[b, 0] if use_v else NULL,
                &b_r[b, 0, 0] if use_br else NULL,
                &b_c[b, 0, 0] if use_bc else NULL,
                xr, xc, &work[0, 0, 0], &work[1, 0, 0], &work[2, 0, 0], &work[3, 0, 0],
                acc, m, n, rtol, max_iter, &it, &res)
            iterations[b] = it
            residual[b] = res
            for j in range(n):
                i_col[b, j] = 0.0
            for i in range(m):
                k = i * n
                for j in range(n):
                    i_col[b, j] += d[k + j] * (xr[k + j] - xc[k + j])
        free(acc)


def rows_from_columns(const double[:, ::1] D, const double[:, ::1] row_e,
                      const double[:, ::1] row_inv, const double[:, ::1] h,
                      const double[:, ::1] v_row, const double[:, :, ::1] x_c,
                      double[:, :, ::1] x_r):
    """Row voltages ``x_r = A_r^{-1} D x_c + V h`` for B known column voltages (GIL
    released)."""
    cdef Py_ssize_t m = D.shape[0]
    cdef Py_ssize_t n = D.shape[1]
    cdef Py_ssize_t nb = v_row.shape[0]
    cdef Py_ssize_t b
    with nogil:
        for b in range(nb):
            _rows(&x_r[b, 0, 0], &D[0, 0], &x_c[b, 0, 0], NULL, &v_row[b, 0], &h[0, 0],
                  &row_e[0, 0], &row_inv[0, 0], m, n)


def kcl_residual(const double[:, ::1] i_cell, const double[:, ::1] wr,
                 const double[::1] gl, const double[::1] gr, const double[:, ::1] wc,
                 const double[::1] gb, const double[::1] v, const double[:, ::1] x_r,
                 const double[:, ::1] x_c, double[:, ::1] f_r, double[:, ::1] f_c):
    """Kirchhoff residuals (A, current leaving each node) in difference form.

    ``i_cell``: current through every cell from its row node to its column node (A).
    Terms through infinite conductances are left out: merged nodes balance as a group
    (the solver sums their residuals) and fixed nodes have no equation.
    """
    cdef Py_ssize_t m = x_r.shape[0]
    cdef Py_ssize_t n = x_r.shape[1]
    cdef Py_ssize_t i, j
    cdef double w, flow, vi
    with nogil:
        for i in range(m):
            vi = v[i]
            for j in range(n):
                f_r[i, j] = i_cell[i, j]
                f_c[i, j] = -i_cell[i, j]
            if not isinf(gl[i]):
                f_r[i, 0] += gl[i] * (x_r[i, 0] - vi)
            if not isinf(gr[i]) and gr[i] > 0.0:
                f_r[i, n - 1] += gr[i] * (x_r[i, n - 1] - vi)
            for j in range(n - 1):
                w = wr[i, j]
                if not isinf(w):
                    flow = w * (x_r[i, j] - x_r[i, j + 1])
                    f_r[i, j] += flow
                    f_r[i, j + 1] -= flow
        for i in range(m - 1):
            for j in range(n):
                w = wc[i, j]
                if not isinf(w):
                    flow = w * (x_c[i, j] - x_c[i + 1, j])
                    f_c[i, j] += flow
                    f_c[i + 1, j] -= flow
        for j in range(n):
            if not isinf(gb[j]):
                f_c[m - 1, j] += gb[j] * x_c[m - 1, j]


def group_residual(double[:, ::1] f_r, double[:, ::1] f_c,
                   const cnp.uint8_t[:, ::1] link_r, const cnp.uint8_t[:, ::1] free_r,
                   const cnp.uint8_t[:, ::1] link_c, const cnp.uint8_t[:, ::1] free_c):
    """Sum the residuals of merged nodes into one member and zero fixed nodes, in place.

    After this, the entries are the Kirchhoff residuals of the reduced system (one
    equation per node group), whose norm measures convergence.
    """
    cdef Py_ssize_t m = f_r.shape[0]
    cdef Py_ssize_t n = f_r.shape[1]
    cdef Py_ssize_t i, j
    with nogil:
        for i in range(m):
            for j in range(n - 1):
                if link_r[i, j]:
                    f_r[i, j + 1] += f_r[i, j]
                    f_r[i, j] = 0.0
            for j in range(n):
                if not free_r[i, j]:
                    f_r[i, j] = 0.0
        _collect(&f_c[0, 0], &link_c[0, 0], &free_c[0, 0], m, n)
