# cython: language_level=3
"""Inline device models shared by the compiled kernels (equations in docs/models.md).

``first_kind`` 0: the memory element alone; 1: selector (``i_0 = a``, ``v_0 = b``) in
series; 2: access transistor (``v_th = a``, ``k_n = b``, gate-source voltage ``vg``)
in series. ``mem_kind`` 0: linear ``g v``; 1: sinh ``g sinh(k v) / k``.
"""

from libc.math cimport exp, expm1, fabs


cdef inline void _sinh_cosh(double x, double* sh, double* ch) noexcept nogil:
    """``sinh(x)`` and ``cosh(x)`` from one ``expm1``: with ``e = expm1(|x|)``,
    ``sinh|x| = e (e + 2) / (2 (e + 1))`` and ``cosh x = 1 + e² / (2 (e + 1))``, both
    free of cancellation (``e ≈ |x|`` for small x), at about half the cost of the pair."""
    cdef double ax = fabs(x)
    cdef double e, inv
    if ax > 20.0:
        # e^-|x| < 2e-9: both are e^|x| / 2 to within a relative 1e-17 (and overflow
        # only where sinh itself does).
        e = 0.5 * exp(ax)
        sh[0] = e if x >= 0.0 else -e
        ch[0] = e
        return
    e = expm1(ax)
    inv = 0.5 / (e + 1.0)
    sh[0] = e * (e + 2.0) * inv if x >= 0.0 else -e * (e + 2.0) * inv
    ch[0] = 1.0 + e * e * inv


cdef inline void _memory(int kind, double k, double g, double v, double* i,
                         double* di) noexcept nogil:
    """Memory element: 0 linear g v, 1 sinh g sinh(k v)/k."""
    cdef double sh, ch
    if kind == 0:
        i[0] = g * v
        di[0] = g
    else:
        _sinh_cosh(k * v, &sh, &ch)
        i[0] = g * sh / k
        di[0] = g * ch


cdef inline void _first(int kind, double a, double b, double vg, double u, double* i,
                        double* di) noexcept nogil:
    """Series element: 1 selector a sinh(u / b); 2 transistor (v_th = a, k_n = b)."""
    cdef double vov
    cdef double sh, ch
    if kind == 1:
        _sinh_cosh(u / b, &sh, &ch)
        i[0] = a * sh
        di[0] = (a / b) * ch
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


cdef inline void cell(int first_kind, double a, double b, int mem_kind, double k, double g,
                      double v, double vg, Py_ssize_t inner_max, double* i_out,
                      double* d_out) noexcept nogil:
    """Current (A) and ``di/dv`` (S) of one cell at voltage ``v`` (V).

    Series cells: safeguarded Newton on the internal node with the bracket
    ``[min(0, v), max(0, v)]``; ``di/dv = g1 g2 / (g1 + g2)``.
    """
    cdef Py_ssize_t it
    cdef double u, lo, hi, i1, g1, i2, g2, f, u_new, tot
    if first_kind == 0:
        _memory(mem_kind, k, g, v, i_out, d_out)
        return
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
    i_out[0] = 0.5 * (i1 + i2)
    tot = g1 + g2
    d_out[0] = g1 * g2 / tot if tot > 0.0 else 0.0
