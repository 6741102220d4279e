# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False, nonecheck=False
"""Compiled kernels of the general (variant / nonlinear) crossbar solver.

Only called through :mod:`xbar_circuit.cython_solvers.newton`, which validates every
argument and orients the array so that every row is grounded at its left end (and
possibly also at its right end) and every column at its bottom end.

``solve_general``: one linear solve of the crossbar-structured system::

    [ A_r  -D ] [x_r]   [b_r]
    [ -D  A_c ] [x_c] = [b_c]

with ``D = diag(d)`` (cell conductances, or the Newton Jacobian ``di/dv``), per-segment
row couplings ``wr[i, j]`` (r(i,j)-r(i,j+1); last column unused), row ends grounded
through ``gl[i]`` (left) and ``gr[i]`` (right, may be 0), column couplings
``wc[i, j]`` (c(i,j)-c(i+1,j); last row unused), column bottoms grounded through
``gb[j]``, and a general right-hand side. Method as in ``_line_pcg`` (docs/solver.md):
CG on the column Schur complement preconditioned by the exactly factored column
chains, pivots accumulated without cancellation.

``eval_cells``: current and ``di/dv`` of every cell for the device models of
:mod:`xbar_circuit.devices` (series composites by a safeguarded inner Newton).
"""

from libc.math cimport sqrt, isfinite, sinh, cosh, fabs
from libc.stdlib cimport malloc, free

cimport numpy as cnp

cnp.import_array()


def factor_general(const double[:, ::1] D, const double[:, ::1] wr, const double[::1] gl,
                   const double[::1] gr, const double[:, ::1] wc, const double[::1] gb,
                   double[:, ::1] row_e, double[:, ::1] row_inv,
                   double[:, ::1] col_e, double[:, ::1] col_inv):
    """LDL^T factors of every row chain (from the left) and column chain (from the bottom)."""
    cdef Py_ssize_t m = D.shape[0]
    cdef Py_ssize_t n = D.shape[1]
    cdef Py_ssize_t i, j
    cdef double s, d, w
    with nogil:
        for i in range(m):
            s = D[i, 0] + gl[i]
            for j in range(n):
                if j > 0:
                    w = wr[i, j - 1]
                    s = D[i, j] + w * s / (w + s)
                if j < n - 1:
                    d = wr[i, j] + s
                    row_inv[i, j] = 1.0 / d
                    row_e[i, j] = wr[i, j] / d
                else:
                    d = s + gr[i]
                    row_inv[i, j] = 1.0 / d
                    row_e[i, j] = 0.0
        for j in range(n):
            s = D[m - 1, j] + gb[j]
            for i in range(m - 1, -1, -1):
                if i < m - 1:
                    w = wc[i, j]
                    s = D[i, j] + w * s / (w + s)
                if i > 0:
                    d = wc[i - 1, j] + s
                    col_inv[i, j] = 1.0 / d
                    col_e[i, j] = wc[i - 1, j] / d
                else:
                    col_inv[i, j] = 1.0 / s
                    col_e[i, j] = 0.0


cdef inline void _row_solve(double* y, const double* e, const double* inv,
                            Py_ssize_t n) noexcept nogil:
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


cdef double _col_solve(const double* r, const double* e, const double* inv, double* z,
                       double* acc, Py_ssize_t m, Py_ssize_t n) noexcept nogil:
    """z = A_c^{-1} r; return r . z (acc: N zeros on entry and exit)."""
    cdef Py_ssize_t i, j, k
    cdef double total = 0.0
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
    for j in range(n):
        total += acc[j]
        acc[j] = 0.0
    return total


cdef double _dot_clear(double* acc, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t j
    cdef double total = 0.0
    for j in range(n):
        total += acc[j]
        acc[j] = 0.0
    return total


def solve_general(const double[:, ::1] D, const double[:, ::1] wc, const double[::1] gb,
                  const double[:, ::1] row_e, const double[:, ::1] row_inv,
                  const double[:, ::1] col_e, const double[:, ::1] col_inv,
                  const double[:, ::1] b_r, const double[:, ::1] b_c,
                  double[:, ::1] x_r, double[:, ::1] x_c, double rtol, Py_ssize_t max_iter,
                  double[:, :, ::1] work):
    """Solve one right-hand side; return ``(status, iterations, relative residual)``.

    status: 1 converged, 0 iteration cap, 2 breakdown. ``work``: (4, M, N) scratch.
    """
    cdef Py_ssize_t m = D.shape[0]
    cdef Py_ssize_t n = D.shape[1]
    cdef Py_ssize_t i, j, k, it = 0
    cdef double fnorm2 = 0.0, rr = 0.0, rz, rz_new, pq, alpha, beta, pc, aq
    cdef int status = 1
    cdef double* r = &work[0, 0, 0]
    cdef double* z = &work[1, 0, 0]
    cdef double* p = &work[2, 0, 0]
    cdef double* q = &work[3, 0, 0]
    cdef double* xr = &x_r[0, 0]
    cdef double* xc = &x_c[0, 0]
    cdef const double* d = &D[0, 0]
    cdef double* acc
    with nogil:
        acc = <double*> malloc(n * sizeof(double))
        for j in range(n):
            acc[j] = 0.0
        # f = b_c + D A_r^{-1} b_r
        for i in range(m):
            k = i * n
            for j in range(n):
                xr[k + j] = b_r[i, j]
            _row_solve(xr + k, &row_e[i, 0], &row_inv[i, 0], n)
            for j in range(n):
                r[k + j] = b_c[i, j] + d[k + j] * xr[k + j]
                xc[k + j] = 0.0
                p[k + j] = 0.0
                acc[j] += r[k + j] * r[k + j]
        fnorm2 = _dot_clear(acc, n)
        rr = fnorm2
        if fnorm2 > 0.0:
            if not isfinite(fnorm2):
                status = 2
            else:
                rz = _col_solve(r, &col_e[0, 0], &col_inv[0, 0], z, acc, m, n)
                beta = 0.0
                status = 0
                while it < max_iter:
                    it += 1
                    for k in range(m * n):
                        p[k] = z[k] + beta * p[k]
                    # q = S p = A_c p - D A_r^{-1} D p; xr used as scratch for u.
                    for i in range(m):
                        k = i * n
                        for j in range(n):
                            xr[k + j] = d[k + j] * p[k + j]
                        _row_solve(xr + k, &row_e[i, 0], &row_inv[i, 0], n)
                    for i in range(m):
                        k = i * n
                        for j in range(n):
                            pc = p[k + j]
                            aq = d[k + j] * (pc - xr[k + j])
                            if i > 0:
                                aq = aq + wc[i - 1, j] * (pc - p[k - n + j])
                            if i < m - 1:
                                aq = aq + wc[i, j] * (pc - p[k + n + j])
                            else:
                                aq = aq + gb[j] * pc
                            q[k + j] = aq
                            acc[j] += pc * aq
                    pq = _dot_clear(acc, n)
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
                    rr = _dot_clear(acc, n)
                    if not isfinite(rr):
                        status = 2
                        break
                    if rr <= rtol * rtol * fnorm2:
                        status = 1
                        break
                    rz_new = _col_solve(r, &col_e[0, 0], &col_inv[0, 0], z, acc, m, n)
                    if not (rz_new > 0.0):
                        status = 2
                        break
                    beta = rz_new / rz
                    rz = rz_new
        # x_r = A_r^{-1} (b_r + D x_c)
        for i in range(m):
            k = i * n
            for j in range(n):
                xr[k + j] = b_r[i, j] + d[k + j] * xc[k + j]
            _row_solve(xr + k, &row_e[i, 0], &row_inv[i, 0], n)
        free(acc)
    return status, it, (sqrt(rr / fnorm2) if fnorm2 > 0.0 and isfinite(fnorm2) else 0.0)


# ----------------------------------------------------------------- device models
cdef inline void _memory(int kind, double k, double g, double v, double* i,
                         double* di) noexcept nogil:
    """Memory element: 0 linear g v, 1 sinh g sinh(k v)/k."""
    if kind == 0:
        i[0] = g * v
        di[0] = g
    else:
        i[0] = g * sinh(k * v) / k
        di[0] = g * cosh(k * v)


cdef inline void _first(int kind, double a, double b, double vg, double u, double* i,
                        double* di) noexcept nogil:
    """Series element: 1 selector a sinh(u / b); 2 transistor (v_th = a, k_n = b)."""
    cdef double vov
    if kind == 1:
        i[0] = a * sinh(u / b)
        di[0] = (a / b) * cosh(u / b)
    else:
        vov = vg - a
        if vov > 0.0:
            if u < vov:
                i[0] = b * (vov * u - 0.5 * u * u)
                di[0] = b * (vov - u)
            else:
                i[0] = 0.5 * b * vov * vov
                di[0] = 0.0
        else:
            if u < vov:
                i[0] = -0.5 * b * (u - vov) * (u - vov)
                di[0] = b * (vov - u)
            else:
                i[0] = 0.0
                di[0] = 0.0


def eval_cells(int first_kind, double a, double b, int mem_kind, double k,
               const double[:, ::1] G, const double[:, ::1] V, const double[::1] gates,
               double[:, ::1] I, double[:, ::1] dI, Py_ssize_t inner_max):
    """Cell currents ``I`` (A) and ``dI = di/dv`` (S) at cell voltages ``V`` (V).

    ``first_kind`` 0: the memory element alone; 1: selector (i_0 = a, v_0 = b) in
    series; 2: access transistor (v_th = a, k_n = b, gate-source voltage
    ``gates[i]`` for row i) in series. Series cells: safeguarded Newton on the
    internal node with the bracket [min(0, v), max(0, v)]; ``di/dv = g1 g2/(g1+g2)``.
    """
    cdef Py_ssize_t m = G.shape[0]
    cdef Py_ssize_t n = G.shape[1]
    cdef Py_ssize_t i, j, it
    cdef double v, g, u, lo, hi, i1, g1, i2, g2, f, u_new, vg, tot
    with nogil:
        for i in range(m):
            vg = gates[i]
            for j in range(n):
                v = V[i, j]
                g = G[i, j]
                if first_kind == 0:
                    _memory(mem_kind, k, g, v, &I[i, j], &dI[i, j])
                    continue
                lo = v if v < 0.0 else 0.0
                hi = v if v > 0.0 else 0.0
                u = 0.5 * (lo + hi)
                _first(first_kind, a, b, vg, u, &i1, &g1)
                _memory(mem_kind, k, g, v - u, &i2, &g2)
                for it in range(inner_max):
                    f = i1 - i2
                    if f == 0.0:
                        break
                    if f > 0.0:
                        hi = u
                    else:
                        lo = u
                    tot = g1 + g2
                    if tot > 0.0:
                        u_new = u - f / tot
                    else:
                        u_new = lo - 1.0
                    if not (u_new > lo and u_new < hi):
                        u_new = 0.5 * (lo + hi)
                    if fabs(u_new - u) <= 1e-15 * (fabs(v) + 1e-300):
                        u = u_new
                        _first(first_kind, a, b, vg, u, &i1, &g1)
                        _memory(mem_kind, k, g, v - u, &i2, &g2)
                        break
                    u = u_new
                    _first(first_kind, a, b, vg, u, &i1, &g1)
                    _memory(mem_kind, k, g, v - u, &i2, &g2)
                I[i, j] = 0.5 * (i1 + i2)
                tot = g1 + g2
                dI[i, j] = g1 * g2 / tot if tot > 0.0 else 0.0
