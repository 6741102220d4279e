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

from libc.math cimport fabs, sqrt, isfinite, isinf
from libc.stdlib cimport calloc, free

cimport numpy as cnp

from _cells cimport cell
from _chains cimport (all_finite, cg_finish, chain_solve, chain_solve4, col_solve, factor_row,
                     factor_rows4, pivot_series, port_currents, sum_clear)

cnp.import_array()


cdef int _factor(const double* D, const double* wr, const double* gl, const double* gr,
                 const double* wc, const double* gb, double* re, double* rinv, double* ce,
                 double* cinv, double* sc, Py_ssize_t m, Py_ssize_t n) noexcept nogil:
    """Factor every row chain (from the left) and column chain (from the bottom).

    ``re[i, j]`` couples r(i, j) to r(i, j+1); ``ce[i, j]`` couples c(i, j) to c(i-1, j);
    ``sc``: N doubles of scratch. Infinite conductances are factored by their exact
    limits. Return 1 when every factor is finite, else 0.
    """
    cdef Py_ssize_t i, j, k
    for i in range(0, m - m % 4, 4):
        k = i * n
        factor_rows4(D + k, wr + k, gl + i, gr + i, re + k, rinv + k, n)
    for i in range(m - m % 4, m):
        k = i * n
        factor_row(D + k, wr + k, gl[i], gr[i], re + k, rinv + k, n)
    # Column chains, all N at once, from the bottom row upwards: sc[j] is the pivot's
    # part seen looking down column j.
    for j in range(n):
        sc[j] = D[(m - 1) * n + j] + gb[j]
    for i in range(m - 1, 0, -1):
        k = i * n
        for j in range(n):
            sc[j] = D[k - n + j] + pivot_series(wc[k - n + j], sc[j], &ce[k + j],
                                                &cinv[k + j])
    for j in range(n):
        cinv[j] = 0.0 if isinf(sc[j]) else 1.0 / sc[j]
        ce[j] = 0.0
    return (all_finite(re, m * n) and all_finite(rinv, m * n) and all_finite(ce, m * n)
            and all_finite(cinv, m * n))


def factor(const double[:, ::1] D, const double[:, ::1] wr, const double[::1] gl,
           const double[::1] gr, const double[:, ::1] wc, const double[::1] gb,
           double[:, ::1] row_e, double[:, ::1] row_inv,
           double[:, ::1] col_e, double[:, ::1] col_inv):
    """Factor every row and column chain in place (see :func:`_factor`); return whether
    every factor is finite."""
    cdef Py_ssize_t m = D.shape[0]
    cdef Py_ssize_t n = D.shape[1]
    cdef int finite
    cdef double* sc = <double*> calloc(n, sizeof(double))
    if sc == NULL:
        raise MemoryError("cannot allocate the column pivots")
    with nogil:
        finite = _factor(&D[0, 0], &wr[0, 0], &gl[0], &gr[0], &wc[0, 0], &gb[0],
                         &row_e[0, 0], &row_inv[0, 0], &col_e[0, 0], &col_inv[0, 0], sc, m, n)
    free(sc)
    return bool(finite)


cdef void _source(const double* wr, const double* gl, const double* gr, const double* re,
                  const double* rinv, double* h, Py_ssize_t m, Py_ssize_t n) noexcept nogil:
    """Row voltages per volt of source, with every column node held at 0 V.

    Nodes tied to a source by zero-ohm paths get exactly 1; the others are the chain
    solution for a unit voltage behind the first and last finite couplings, computed
    without subtraction (every term is positive).
    """
    cdef Py_ssize_t i, j, k, p, q, last
    cdef double t
    for i in range(m):
        k = i * n
        p = 0
        if isinf(gl[i]):
            p = 1
            while p < n and isinf(wr[k + p - 1]):
                p += 1
        q = 0
        if isinf(gr[i]):
            q = 1
            while q < n and isinf(wr[k + n - 1 - q]):
                q += 1
        for j in range(n):
            h[k + j] = 1.0
        if p + q >= n:
            continue
        last = n - q - 1
        t = wr[k + p - 1] if p > 0 else gl[i]
        if p == last and q == 0:
            t = t + gr[i]
        h[k + p] = t
        for j in range(p + 1, last + 1):
            t = re[k + j - 1] * t
            if j == n - 1:
                t = t + gr[i]
            h[k + j] = t
        t = h[k + last] * rinv[k + last]
        if q > 0:
            t = t + re[k + last]
        h[k + last] = t
        for j in range(last - 1, p - 1, -1):
            t = h[k + j] * rinv[k + j] + re[k + j] * t
            h[k + j] = t


def source_response(const double[:, ::1] wr, const double[::1] gl, const double[::1] gr,
                    const double[:, ::1] row_e, const double[:, ::1] row_inv,
                    double[:, ::1] h):
    """Row voltages per volt of source (see :func:`_source`), written into ``h``."""
    with nogil:
        _source(&wr[0, 0], &gl[0], &gr[0], &row_e[0, 0], &row_inv[0, 0], &h[0, 0],
                wr.shape[0], wr.shape[1])


cdef inline const cnp.uint8_t* _mask(const cnp.uint8_t* mask, Py_ssize_t size,
                                     cnp.uint8_t usual) noexcept nogil:
    """``mask``, or NULL when every entry is ``usual`` (nothing to merge or to fix), so
    that the loops below are skipped on arrays without zero-ohm wires or fixed nodes."""
    cdef Py_ssize_t k
    for k in range(size):
        if mask[k] != usual:
            return mask
    return NULL


cdef inline void _collect(double* q, const cnp.uint8_t* link, const cnp.uint8_t* free_c,
                          Py_ssize_t m, Py_ssize_t n) noexcept nogil:
    """Move the values of merged column nodes to the group's top member; zero fixed nodes.

    ``link`` / ``free_c`` NULL: no merged / no fixed column nodes (see :func:`_mask`)."""
    cdef Py_ssize_t i, j, k
    if link != NULL:
        for i in range(m - 2, -1, -1):
            k = i * n
            for j in range(n):
                if link[k + j]:
                    q[k + j] += q[k + n + j]
                    q[k + n + j] = 0.0
    if free_c != NULL:
        for k in range(m * n):
            if not free_c[k]:
                q[k] = 0.0


cdef void _rows(double* x, const double* d, const double* xc, const double* br,
                const double* v, const double* h, const double* re, const double* rinv,
                Py_ssize_t m, Py_ssize_t n) noexcept nogil:
    """``x = A_r^{-1} (b_r + D x_c) + V h`` (any of b_r, x_c, v may be NULL)."""
    cdef Py_ssize_t i, i0, j, k
    for i0 in range(0, m, 4):
        for i in range(i0, min(i0 + 4, m)):
            k = i * n
            for j in range(n):
                x[k + j] = 0.0
            if br != NULL:
                for j in range(n):
                    x[k + j] = br[k + j]
            if xc != NULL:
                for j in range(n):
                    x[k + j] += d[k + j] * xc[k + j]
        # The Thomas recurrences are latency bound: four rows at once when there are four.
        k = i0 * n
        if i0 + 4 <= m:
            chain_solve4(x + k, re + k, rinv + k, n)
        else:
            for i in range(i0, m):
                chain_solve(x + i * n, re + i * n, rinv + i * n, n, 1)
        if v != NULL:
            for i in range(i0, min(i0 + 4, m)):
                k = i * n
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
    cdef double fnorm2, rr, rz, beta, pc, aq
    cdef int status = 1, step

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
            rz = col_solve(r, ce, cinv, z, acc, m, n)
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
                step = cg_finish(xc, r, z, p, q, ce, cinv, acc, &rz, &beta, &rr, fnorm2, rtol,
                                 m, n)
                if step >= 0:
                    status = step
                    break
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
    cdef const cnp.uint8_t* lk
    cdef const cnp.uint8_t* fx
    with nogil:
        lk = _mask(&link[0, 0], m * n, 0)
        fx = _mask(&free_c[0, 0], m * n, 1)
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
                &h[0, 0], lk, fx,
                &v_row[b, 0] if use_v else NULL,
                &b_r[b, 0, 0] if use_br else NULL,
                &b_c[b, 0, 0] if use_bc else NULL,
                xr, xc, &work[0, 0, 0], &work[1, 0, 0], &work[2, 0, 0], &work[3, 0, 0],
                acc, m, n, rtol, max_iter, &it, &res)
            iterations[b] = it
            residual[b] = res
            port_currents(d, xr, xc, &wcf[m - 1, 0], 0.0, &i_col[b, 0], acc, m, n)
            for j in range(n):
                acc[j] = 0.0
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


cdef void _kcl(const double* icell, const double* wr, const double* gl, const double* gr,
               const double* wc, const double* gb, const double* v, const double* xr,
               const double* xc, double* fr, double* fc, Py_ssize_t m,
               Py_ssize_t n) noexcept nogil:
    """Kirchhoff residuals (A, current leaving each node) in difference form.

    ``icell``: current through every cell from its row node to its column node (A).
    Terms through infinite conductances are left out: merged nodes balance as a group
    (the solver sums their residuals) and fixed nodes have no equation.
    """
    cdef Py_ssize_t i, j, k
    cdef double w, flow, vi
    for i in range(m):
        k = i * n
        vi = v[i]
        for j in range(n):
            fr[k + j] = icell[k + j]
            fc[k + j] = -icell[k + j]
        if not isinf(gl[i]):
            fr[k] += gl[i] * (xr[k] - vi)
        if not isinf(gr[i]) and gr[i] > 0.0:
            fr[k + n - 1] += gr[i] * (xr[k + n - 1] - vi)
        for j in range(n - 1):
            w = wr[k + j]
            if not isinf(w):
                flow = w * (xr[k + j] - xr[k + j + 1])
                fr[k + j] += flow
                fr[k + j + 1] -= flow
    for i in range(m - 1):
        k = i * n
        for j in range(n):
            w = wc[k + j]
            if not isinf(w):
                flow = w * (xc[k + j] - xc[k + n + j])
                fc[k + j] += flow
                fc[k + n + j] -= flow
    k = (m - 1) * n
    for j in range(n):
        if not isinf(gb[j]):
            fc[k + j] += gb[j] * xc[k + j]


cdef void _group(double* fr, double* fc, const cnp.uint8_t* link_r,
                 const cnp.uint8_t* free_r, const cnp.uint8_t* link_c,
                 const cnp.uint8_t* free_c, Py_ssize_t m, Py_ssize_t n) noexcept nogil:
    """Sum the residuals of merged nodes into one member and zero fixed nodes, in place.

    A NULL mask means no merged / no fixed nodes of that kind (see :func:`_mask`)."""
    cdef Py_ssize_t i, j, k
    if link_r != NULL or free_r != NULL:
        for i in range(m):
            k = i * n
            if link_r != NULL:
                for j in range(n - 1):
                    if link_r[k + j]:
                        fr[k + j + 1] += fr[k + j]
                        fr[k + j] = 0.0
            if free_r != NULL:
                for j in range(n):
                    if not free_r[k + j]:
                        fr[k + j] = 0.0
    _collect(fc, link_c, free_c, m, n)


def kcl_residual(const double[:, ::1] i_cell, const double[:, ::1] wr,
                 const double[::1] gl, const double[::1] gr, const double[:, ::1] wc,
                 const double[::1] gb, const double[::1] v, const double[:, ::1] x_r,
                 const double[:, ::1] x_c, double[:, ::1] f_r, double[:, ::1] f_c):
    """Kirchhoff residuals of one state (see :func:`_kcl`), written into ``f_r``, ``f_c``."""
    with nogil:
        _kcl(&i_cell[0, 0], &wr[0, 0], &gl[0], &gr[0], &wc[0, 0], &gb[0], &v[0], &x_r[0, 0],
             &x_c[0, 0], &f_r[0, 0], &f_c[0, 0], x_r.shape[0], x_r.shape[1])


def group_residual(double[:, ::1] f_r, double[:, ::1] f_c,
                   const cnp.uint8_t[:, ::1] link_r, const cnp.uint8_t[:, ::1] free_r,
                   const cnp.uint8_t[:, ::1] link_c, const cnp.uint8_t[:, ::1] free_c):
    """Residuals of the reduced system (one equation per node group), in place."""
    cdef Py_ssize_t size
    with nogil:
        size = f_r.shape[0] * f_r.shape[1]
        _group(&f_r[0, 0], &f_c[0, 0], _mask(&link_r[0, 0], size, 0),
               _mask(&free_r[0, 0], size, 1), _mask(&link_c[0, 0], size, 0),
               _mask(&free_c[0, 0], size, 1), f_r.shape[0], f_r.shape[1])


# ----------------------------------------------------------------- Newton-Raphson
cdef double CONVERGING = 1e-2
# A full Newton step that cut the residual norm at least this much counts as converging
# (superlinearly), so that the size of the next step can be predicted from it.
cdef double PREDICTED_FACTOR = 10.0
# Newton also stops when that predicted next step is below PREDICTED_FACTOR * tol * vmax
# (1e-11 of the largest input with the default tol): the error it leaves in the node
# voltages is 100x below the nodal solver's 1e-9 contract on linear arrays.

cdef void _cells(int first, double a, double b, int mem, double k, const double* g,
                 const double* xr, const double* xc, const double* gates,
                 Py_ssize_t inner_max, double* icell, double* d, Py_ssize_t m,
                 Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i, j, q
    for i in range(m):
        for j in range(n):
            q = i * n + j
            cell(first, a, b, mem, k, g[q], xr[q] - xc[q], gates[i], inner_max, &icell[q],
                 &d[q])


cdef double _norm(double* fr, double* fc, double* gr_, double* gc_,
                  const cnp.uint8_t* link_r, const cnp.uint8_t* free_r,
                  const cnp.uint8_t* link_c, const cnp.uint8_t* free_c, Py_ssize_t m,
                  Py_ssize_t n) noexcept nogil:
    """2-norm of the reduced-system residual (``fr``, ``fc`` are left unchanged)."""
    cdef Py_ssize_t q
    cdef double total = 0.0
    for q in range(m * n):
        gr_[q] = fr[q]
        gc_[q] = fc[q]
    _group(gr_, gc_, link_r, free_r, link_c, free_c, m, n)
    for q in range(m * n):
        total += gr_[q] * gr_[q] + gc_[q] * gc_[q]
    return sqrt(total)


def newton_many(int first, double a, double b, int mem, double k, Py_ssize_t inner_max,
                const double[:, ::1] G, const double[:, ::1] wr, const double[::1] gl,
                const double[::1] gr, const double[:, ::1] wc, const double[::1] gb,
                const double[:, ::1] wcf, const cnp.uint8_t[:, ::1] link_r,
                const cnp.uint8_t[:, ::1] free_r, const cnp.uint8_t[:, ::1] link_c,
                const cnp.uint8_t[:, ::1] free_c, const double[::1] gates,
                const double[:, ::1] v_row, double[:, :, ::1] x_r, double[:, :, ::1] x_c,
                double[:, ::1] i_col, cnp.int64_t[::1] newton_its, cnp.int64_t[::1] cg_its,
                cnp.int8_t[::1] status, double rtol, Py_ssize_t max_iter,
                Py_ssize_t newton_max, double tol, double[:, :, ::1] work):
    """Damped Newton-Raphson for B input vectors, entirely with the GIL released.

    Per vector: a linear solve at the cells' zero-bias conductance, then Newton steps
    ``J dx = -F`` on the structured kernel with a backtracking line search on the
    reduced residual norm, until a step is below ``tol`` times the largest input
    voltage (the step is applied), or until, after a full step that cut the residual
    norm by ``CONVERGING`` or more, the next step predicted as ``step * new/old norm`` is
    below ``PREDICTED_FACTOR * tol`` times it. Each step's CG tolerance is
    ``clip(1e-3 ||F|| / ||F_0||, rtol, 1e-3)`` (inexact Newton). ``status``: 1 converged,
    0 not (the caller then tries gmin and source stepping). ``work``: (17, M, N) scratch.
    """
    cdef Py_ssize_t m = G.shape[0]
    cdef Py_ssize_t n = G.shape[1]
    cdef Py_ssize_t nb = v_row.shape[0]
    cdef Py_ssize_t mn = m * n
    cdef Py_ssize_t bi, q, it, its, cg_total, j
    cdef int st, ok
    cdef double vmax, norm, norm0, new_norm, step, t, res, eta
    cdef const double* g = &G[0, 0]
    cdef double* re = &work[0, 0, 0]
    cdef double* rinv = &work[1, 0, 0]
    cdef double* ce = &work[2, 0, 0]
    cdef double* cinv = &work[3, 0, 0]
    cdef double* h = &work[4, 0, 0]
    cdef double* fr = &work[5, 0, 0]
    cdef double* fc = &work[6, 0, 0]
    cdef double* d = &work[7, 0, 0]
    cdef double* icell = &work[8, 0, 0]
    cdef double* dr = &work[9, 0, 0]
    cdef double* dc = &work[10, 0, 0]
    cdef double* tr = &work[11, 0, 0]
    cdef double* tc = &work[12, 0, 0]
    cdef double* r = &work[13, 0, 0]
    cdef double* z = &work[14, 0, 0]
    cdef double* p = &work[15, 0, 0]
    cdef double* qv = &work[16, 0, 0]
    cdef double* xr
    cdef double* xc
    cdef double* acc
    cdef double* sc
    cdef const cnp.uint8_t* lr
    cdef const cnp.uint8_t* fr_
    cdef const cnp.uint8_t* lc
    cdef const cnp.uint8_t* fc_
    with nogil:
        lr = _mask(&link_r[0, 0], mn, 0)
        fr_ = _mask(&free_r[0, 0], mn, 1)
        lc = _mask(&link_c[0, 0], mn, 0)
        fc_ = _mask(&free_c[0, 0], mn, 1)
        acc = <double*> calloc(2 * n, sizeof(double))
        if acc == NULL:
            with gil:
                raise MemoryError("cannot allocate the Newton accumulators")
        sc = acc + n
        for bi in range(nb):
            xr = &x_r[bi, 0, 0]
            xc = &x_c[bi, 0, 0]
            status[bi] = 0
            newton_its[bi] = 0
            cg_total = 0
            vmax = 1e-30
            for j in range(m):
                if fabs(v_row[bi, j]) > vmax:
                    vmax = fabs(v_row[bi, j])
            # Start: the linear solve at the zero-bias conductances; a memory element
            # alone has di/dv = g there (linear, and sinh: cosh 0 = 1) without evaluation.
            if first == 0:
                for q in range(mn):
                    d[q] = g[q]
            else:
                for q in range(mn):
                    tr[q] = 0.0
                    tc[q] = 0.0
                _cells(first, a, b, mem, k, g, tr, tc, &gates[0], inner_max, icell, d, m, n)
            if not _factor(d, &wr[0, 0], &gl[0], &gr[0], &wc[0, 0], &gb[0], re, rinv, ce, cinv,
                           sc, m, n):
                cg_its[bi] = 0
                continue
            _source(&wr[0, 0], &gl[0], &gr[0], re, rinv, h, m, n)
            # Only a starting point: 1e-3 is enough, since the first Newton step solves
            # to 1e-3 anyway and the cells' nonlinearity moves the solution by far more
            # (nodes fixed by ideal sources are exact whatever the tolerance).
            st = _solve_one(d, &wcf[0, 0], re, rinv, ce, cinv, h, lc,
                            fc_, &v_row[bi, 0], NULL, NULL, xr, xc, r, z, p, qv,
                            acc, m, n, rtol if rtol > 1e-3 else 1e-3, max_iter, &its, &res)
            cg_total += its
            if st != 1:
                cg_its[bi] = cg_total
                continue
            _cells(first, a, b, mem, k, g, xr, xc, &gates[0], inner_max, icell, d, m, n)
            _kcl(icell, &wr[0, 0], &gl[0], &gr[0], &wc[0, 0], &gb[0], &v_row[bi, 0], xr, xc,
                 fr, fc, m, n)
            norm = _norm(fr, fc, tr, tc, lr, fr_, lc, fc_, m, n)
            ok = 0
            norm0 = norm
            for it in range(1, newton_max + 1):
                newton_its[bi] = it
                if not isfinite(norm):
                    break
                if not _factor(d, &wr[0, 0], &gl[0], &gr[0], &wc[0, 0], &gb[0], re, rinv, ce,
                               cinv, sc, m, n):
                    break
                for q in range(mn):
                    fr[q] = -fr[q]
                    fc[q] = -fc[q]
                # Inexact Newton: the step's CG tolerance shrinks with the residual, which
                # keeps quadratic convergence at a fraction of the CG work.
                eta = 1e-3 * norm / norm0 if norm0 > 0.0 else rtol
                if eta > 1e-3:
                    eta = 1e-3
                if eta < rtol:
                    eta = rtol
                st = _solve_one(d, &wcf[0, 0], re, rinv, ce, cinv, h, lc,
                                fc_, NULL, fr, fc, dr, dc, r, z, p, qv, acc, m, n,
                                eta, max_iter, &its, &res)
                cg_total += its
                if st != 1:
                    break
                step = 0.0
                for q in range(mn):
                    if fabs(dr[q]) > step:
                        step = fabs(dr[q])
                    if fabs(dc[q]) > step:
                        step = fabs(dc[q])
                if step <= tol * vmax:
                    # Apply the last step; the cell currents at the new state follow to
                    # first order, i(x + dx) = i(x) + di/dv dv, leaving an error quadratic
                    # in a step below tol * vmax (far below rounding).
                    for q in range(mn):
                        xr[q] += dr[q]
                        xc[q] += dc[q]
                        icell[q] += d[q] * (dr[q] - dc[q])
                    ok = 1
                    break
                t = 1.0
                while True:
                    for q in range(mn):
                        tr[q] = xr[q] + t * dr[q]
                        tc[q] = xc[q] + t * dc[q]
                    _cells(first, a, b, mem, k, g, tr, tc, &gates[0], inner_max, icell, d, m,
                           n)
                    _kcl(icell, &wr[0, 0], &gl[0], &gr[0], &wc[0, 0], &gb[0], &v_row[bi, 0],
                         tr, tc, fr, fc, m, n)
                    new_norm = _norm(fr, fc, r, z, lr, fr_, lc, fc_, m, n)
                    if (isfinite(new_norm) and new_norm <= norm * (1.0 + 1e-6)) or t < 1e-4:
                        break
                    t *= 0.5
                for q in range(mn):
                    xr[q] = tr[q]
                    xc[q] = tc[q]
                if (t == 1.0 and isfinite(new_norm) and new_norm <= CONVERGING * norm
                        and step * (new_norm / norm) <= PREDICTED_FACTOR * tol * vmax):
                    # Converging fast after a full step: the next step would be about
                    # ``step * new_norm / norm`` (J^-1 F scales with F), and that is the
                    # error left. Stop here rather than pay a refactorization and a tight
                    # CG solve to confirm it; the cell currents are those of this state.
                    ok = 1
                    break
                norm = new_norm
            cg_its[bi] = cg_total
            if ok:
                status[bi] = 1
                for j in range(n):
                    i_col[bi, j] = 0.0
                for q in range(mn):
                    i_col[bi, q % n] += icell[q]
        free(acc)
