# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False, nonecheck=False
"""Compiled device models: current and ``di/dv`` of every cell of an array.

Only called through :mod:`xbar_circuit.cython_solvers.newton`, which passes
C-contiguous float64 arrays of matching shapes; the models (:mod:`._cells`) are those
of :mod:`xbar_circuit.devices` (equations in docs/models.md).
"""

from _cells cimport cell


def eval_cells(int first_kind, double a, double b, int mem_kind, double k,
               const double[:, ::1] G, const double[:, ::1] V, const double[::1] gates,
               double[:, ::1] I, double[:, ::1] dI, Py_ssize_t inner_max):
    """Cell currents ``I`` (A) and ``dI = di/dv`` (S) at cell voltages ``V`` (V).

    ``first_kind`` 0: the memory element alone; 1: selector (i_0 = a, v_0 = b) in
    series; 2: access transistor (v_th = a, k_n = b, gate-source voltage
    ``gates[i]`` for row i) in series.
    """
    cdef Py_ssize_t m = G.shape[0]
    cdef Py_ssize_t n = G.shape[1]
    cdef Py_ssize_t i, j
    with nogil:
        for i in range(m):
            for j in range(n):
                cell(first_kind, a, b, mem_kind, k, G[i, j], V[i, j], gates[i], inner_max,
                     &I[i, j], &dI[i, j])
