# cython: language_level=3
"""Inline chain primitives shared by the compiled crossbar kernels.

A *chain* is one row or one column wire of the crossbar: a tridiagonal, symmetric
positive definite block of the nodal matrix. Chains are factored as LDL^T with the
pivots written as ``d = w + s``, where ``s`` (the conductance seen looking back towards
the grounded end) is accumulated as a sum of positive terms, so that no pivot is
computed by cancellation. A factored chain is stored as two arrays per node:
``e[k] = w_k / d_k`` (the coupling to the next node, 0 for the last one) and
``inv[k] = 1 / d_k``.

Infinite conductances (zero-ohm segments, ideal sources) are expressed by the limits
of these factors, which the routines below handle exactly:

* an infinite coupling ``w_k`` merges nodes k and k+1: ``e[k] = 1``, ``inv[k] = 0``;
  the forward sweep then sums the right-hand sides of the merged nodes and the
  backward sweep copies the group's value to every member;
* an infinite ``s`` (a node tied to a fixed voltage) gives ``inv[k] = 0`` and
  ``e[k] = 0``: the node's solution of the homogeneous system is exactly zero, and
  whatever right-hand side it carries is ignored (it cannot move a fixed node).
"""

from libc.math cimport fabs, isfinite, isinf


cdef inline double series(double a, double b) noexcept nogil:
    """Series combination ``a b / (a + b)`` of two conductances, exact for infinities."""
    if isinf(a):
        return b
    if isinf(b):
        return a
    if a < 1e150 and b < 1e150:
        # One division; the product cannot overflow below 1e150 S each.
        return a * b / (a + b) if a + b > 0.0 else 0.0
    # b / (1 + b/a) rather than a b / (a + b): no overflow for conductances past 1e154.
    if a >= b:
        return b / (1.0 + b / a)
    return a / (1.0 + a / b)


cdef inline void pivot(double w, double s, double* e, double* inv) noexcept nogil:
    """Factors of one chain node with pivot ``w + s`` and coupling ``w`` to the next."""
    if isinf(w):
        e[0] = 1.0
        inv[0] = 0.0
    elif isinf(s):
        e[0] = 0.0
        inv[0] = 0.0
    else:
        inv[0] = 1.0 / (w + s)
        # w / (w + s) as w * inv: one division per node (w + s cannot overflow: every
        # conductance is below 1e308 / 2 by the spec's bounds).
        e[0] = w * inv[0]


cdef inline double pivot_series(double w, double s, double* e, double* inv) noexcept nogil:
    """:func:`pivot` of ``(w, s)``, returning ``series(w, s)``: the conductance the next
    node sees back through this one. Both share ``1 / (w + s)``, so a finite node costs
    one division: ``w s / (w + s) = e s`` with ``e = w / (w + s) <= 1`` (no overflow)."""
    cdef double t
    if isinf(w) or isinf(s):
        pivot(w, s, e, inv)
        return series(w, s)
    t = 1.0 / (w + s)
    inv[0] = t
    e[0] = w * t
    if e[0] < 1e-290:
        # s beyond 1e290 w: e is subnormal and e s would lose digits.
        return series(w, s)
    return e[0] * s


cdef inline void factor_row(const double* d, const double* w, double g_first,
                            double g_last, double* e, double* inv,
                            Py_ssize_t n) noexcept nogil:
    """Factor one row chain of n nodes from its first node: cells ``d`` to the column
    layer, couplings ``w[j]`` between nodes j and j+1, ``g_first`` / ``g_last`` from
    the first / last node to its source."""
    cdef Py_ssize_t j
    cdef double s = d[0] + g_first
    for j in range(n - 1):
        s = d[j + 1] + pivot_series(w[j], s, &e[j], &inv[j])
    s = s + g_last
    inv[n - 1] = 0.0 if isinf(s) else 1.0 / s
    e[n - 1] = 0.0


cdef inline void factor_rows4(const double* d, const double* w, const double* g_first,
                              const double* g_last, double* e, double* inv,
                              Py_ssize_t n) noexcept nogil:
    """:func:`factor_row` for four consecutive rows (n apart) at once: the recurrence
    is latency bound, four independent ones keep the divider busy. ``g_first``,
    ``g_last``: the four rows' source conductances."""
    cdef Py_ssize_t j
    cdef Py_ssize_t n2 = 2 * n
    cdef Py_ssize_t n3 = 3 * n
    cdef double s0 = d[0] + g_first[0]
    cdef double s1 = d[n] + g_first[1]
    cdef double s2 = d[n2] + g_first[2]
    cdef double s3 = d[n3] + g_first[3]
    for j in range(n - 1):
        s0 = d[j + 1] + pivot_series(w[j], s0, &e[j], &inv[j])
        s1 = d[n + j + 1] + pivot_series(w[n + j], s1, &e[n + j], &inv[n + j])
        s2 = d[n2 + j + 1] + pivot_series(w[n2 + j], s2, &e[n2 + j], &inv[n2 + j])
        s3 = d[n3 + j + 1] + pivot_series(w[n3 + j], s3, &e[n3 + j], &inv[n3 + j])
    s0 = s0 + g_last[0]
    s1 = s1 + g_last[1]
    s2 = s2 + g_last[2]
    s3 = s3 + g_last[3]
    inv[n - 1] = 0.0 if isinf(s0) else 1.0 / s0
    inv[2 * n - 1] = 0.0 if isinf(s1) else 1.0 / s1
    inv[3 * n - 1] = 0.0 if isinf(s2) else 1.0 / s2
    inv[4 * n - 1] = 0.0 if isinf(s3) else 1.0 / s3
    e[n - 1] = 0.0
    e[2 * n - 1] = 0.0
    e[3 * n - 1] = 0.0
    e[4 * n - 1] = 0.0


cdef inline void chain_solve(double* y, const double* e, const double* inv,
                             Py_ssize_t n, Py_ssize_t stride) noexcept nogil:
    """Solve one factored chain in place, ``y <- A^{-1} y``; nodes ``stride`` apart,
    factored from node 0 (the grounded end) towards node n-1."""
    cdef Py_ssize_t k
    cdef double t = y[0]
    for k in range(1, n):
        t = y[k * stride] + e[(k - 1) * stride] * t
        y[k * stride] = t
    t = y[(n - 1) * stride] * inv[(n - 1) * stride]
    y[(n - 1) * stride] = t
    for k in range(n - 2, -1, -1):
        t = y[k * stride] * inv[k * stride] + e[k * stride] * t
        y[k * stride] = t


cdef inline void chain_solve4(double* y, const double* e, const double* inv,
                             Py_ssize_t n) noexcept nogil:
    """Solve four consecutive chains of n nodes (stride 1, n apart) in place, interleaved.

    The Thomas recurrences are latency bound; four independent chains keep the
    floating-point units busy.
    """
    cdef Py_ssize_t j
    cdef double* y1 = y + n
    cdef double* y2 = y + 2 * n
    cdef double* y3 = y + 3 * n
    cdef const double* e1 = e + n
    cdef const double* e2 = e + 2 * n
    cdef const double* e3 = e + 3 * n
    cdef const double* v1 = inv + n
    cdef const double* v2 = inv + 2 * n
    cdef const double* v3 = inv + 3 * n
    cdef double t0 = y[0], t1 = y1[0], t2 = y2[0], t3 = y3[0]
    for j in range(1, n):
        t0 = y[j] + e[j - 1] * t0
        t1 = y1[j] + e1[j - 1] * t1
        t2 = y2[j] + e2[j - 1] * t2
        t3 = y3[j] + e3[j - 1] * t3
        y[j] = t0
        y1[j] = t1
        y2[j] = t2
        y3[j] = t3
    t0 = y[n - 1] * inv[n - 1]
    t1 = y1[n - 1] * v1[n - 1]
    t2 = y2[n - 1] * v2[n - 1]
    t3 = y3[n - 1] * v3[n - 1]
    y[n - 1] = t0
    y1[n - 1] = t1
    y2[n - 1] = t2
    y3[n - 1] = t3
    for j in range(n - 2, -1, -1):
        t0 = y[j] * inv[j] + e[j] * t0
        t1 = y1[j] * v1[j] + e1[j] * t1
        t2 = y2[j] * v2[j] + e2[j] * t2
        t3 = y3[j] * v3[j] + e3[j] * t3
        y[j] = t0
        y1[j] = t1
        y2[j] = t2
        y3[j] = t3


cdef inline double dot(const double* a, const double* b, Py_ssize_t n) noexcept nogil:
    """``a . b`` over n entries with four partial sums: a single running sum is bound
    by the adder's latency and keeps the compiler from vectorizing."""
    cdef Py_ssize_t j
    cdef Py_ssize_t n4 = n - n % 4
    cdef double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0
    for j in range(0, n4, 4):
        s0 += a[j] * b[j]
        s1 += a[j + 1] * b[j + 1]
        s2 += a[j + 2] * b[j + 2]
        s3 += a[j + 3] * b[j + 3]
    for j in range(n4, n):
        s0 += a[j] * b[j]
    return (s0 + s1) + (s2 + s3)


cdef inline void dot2(const double* a, const double* b, const double* z, Py_ssize_t n,
                      double* az, double* bz) noexcept nogil:
    """Add ``a . z`` to ``az[0]`` and ``b . z`` to ``bz[0]`` in one pass over ``z``."""
    cdef Py_ssize_t j
    cdef Py_ssize_t n2 = n - n % 2
    cdef double s0 = 0.0, s1 = 0.0, u0 = 0.0, u1 = 0.0
    for j in range(0, n2, 2):
        s0 += a[j] * z[j]
        s1 += a[j + 1] * z[j + 1]
        u0 += b[j] * z[j]
        u1 += b[j + 1] * z[j + 1]
    for j in range(n2, n):
        s0 += a[j] * z[j]
        u0 += b[j] * z[j]
    az[0] += s0 + s1
    bz[0] += u0 + u1


cdef inline bint all_finite(const double* a, Py_ssize_t size) noexcept nogil:
    """Whether every one of ``a[:size]`` is finite."""
    cdef Py_ssize_t k
    for k in range(size):
        if not isfinite(a[k]):
            return False
    return True


cdef inline double sum_clear(double* acc, Py_ssize_t n) noexcept nogil:
    """Return the sum of ``acc[:n]`` and reset it to zero."""
    cdef Py_ssize_t j
    cdef double total = 0.0
    for j in range(n):
        total += acc[j]
        acc[j] = 0.0
    return total


cdef inline double col_solve(const double* r, const double* e, const double* inv, double* z,
                             double* acc, Py_ssize_t m, Py_ssize_t n) noexcept nogil:
    """Solve every column chain of an (M, N) array at once, ``z = A_c^{-1} r``; return
    ``r . z``.

    Column chains are factored from the bottom row (the grounded end) upwards, with
    ``e[i, j]`` coupling c(i, j) to c(i-1, j). Sweeps run over whole array rows, so the
    inner loop over the N columns vectorizes; the dot product is accumulated per column
    in ``acc`` (N zeros on entry and exit).
    """
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


cdef inline double cg_update(double* x, double* r, const double* p, const double* q,
                             double alpha, double* acc, Py_ssize_t m,
                             Py_ssize_t n) noexcept nogil:
    """The CG update ``x += alpha p``, ``r -= alpha q``; return ``r . r`` (accumulated per
    column in ``acc``, N zeros on entry and exit)."""
    cdef Py_ssize_t i, j, k
    for i in range(m):
        k = i * n
        for j in range(n):
            x[k + j] += alpha * p[k + j]
            r[k + j] -= alpha * q[k + j]
            acc[j] += r[k + j] * r[k + j]
    return sum_clear(acc, n)


cdef inline void port_currents(const double* d, const double* xr, const double* xc,
                               const double* gport, double gport_all, double* out,
                               double* mag, Py_ssize_t m, Py_ssize_t n) noexcept nogil:
    """Current into each column's port (A), from the solved node voltages.

    By Kirchhoff's law it is both the sum of the column's cell currents
    ``sum_i d (x_r - x_c)`` and the current through the finite port path
    ``gport x_c[M-1]`` (``gport[j]``, or ``gport_all`` when ``gport`` is NULL; 0 means
    an ideal path). The sum is used unless it cancels, that is unless its terms are
    1e4 times larger than the result (cells far stiffer than the port path, where the
    cell drops are a few ulps of the node voltages); then the port path, whose voltage
    is large and accurate, gives the current. ``mag``: N doubles of scratch.
    """
    cdef Py_ssize_t i, j, k
    cdef double t
    for j in range(n):
        out[j] = 0.0
        mag[j] = 0.0
    for i in range(m):
        k = i * n
        for j in range(n):
            t = d[k + j] * (xr[k + j] - xc[k + j])
            out[j] += t
            mag[j] += fabs(d[k + j] * xr[k + j]) + fabs(d[k + j] * xc[k + j])
    port_rule(out, mag, xc + (m - 1) * n, gport, gport_all, n)


cdef inline void port_rule(double* out, const double* mag, const double* xc_last,
                           const double* gport, double gport_all,
                           Py_ssize_t n) noexcept nogil:
    """Replace a cell-sum column current ``out[j]`` (terms of total size ``mag[j]``) by
    the port-path current ``gport x_c[M-1]`` where the sum cancels (see
    :func:`port_currents`)."""
    cdef Py_ssize_t j
    cdef double gp
    for j in range(n):
        gp = gport[j] if gport != NULL else gport_all
        if gp > 0.0 and mag[j] > 1e4 * fabs(out[j]):
            out[j] = gp * xc_last[j]


cdef inline int cg_finish(double* x, double* r, double* z, const double* p, const double* q,
                          const double* ce, const double* cinv, double* acc, double* rz,
                          double* beta, double* rr, double fnorm2, double rtol, Py_ssize_t m,
                          Py_ssize_t n) noexcept nogil:
    """The rest of one preconditioned CG iteration once ``q = S p`` is known and
    ``acc`` holds ``p . q`` per column: step, residual test, preconditioning, ``beta``.

    Return -1 to go on, 1 converged (``rr <= rtol² fnorm2``), 2 breakdown (non-positive
    or non-finite curvature or residual).
    """
    cdef double pq = sum_clear(acc, n)
    cdef double rz_new
    if not (pq > 0.0) or not isfinite(pq):
        return 2
    rr[0] = cg_update(x, r, p, q, rz[0] / pq, acc, m, n)
    if not isfinite(rr[0]):
        return 2
    if rr[0] <= rtol * rtol * fnorm2:
        return 1
    rz_new = col_solve(r, ce, cinv, z, acc, m, n)
    if not (rz_new > 0.0):
        return 2
    beta[0] = rz_new / rz[0]
    rz[0] = rz_new
    return -1
