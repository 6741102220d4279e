# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Compiled assembly of the crossbar's nodal conductance matrix (CSR, O(M·N)).

Only called through :mod:`xbar_circuit.cython_solvers.assembly`, which validates
every argument; this module trusts its inputs.

Unknown ordering: row node r(i, j) is ``i*N + j``; column node c(i, j) is
``M*N + i*N + j``. Columns of each CSR row are sorted.
"""

import numpy as np
cimport numpy as cnp

cnp.import_array()


def assemble_csr(const double[:, ::1] conductance, double g_row, double g_col,
                 double g_row_first, double g_col_last):
    """Return ``(indptr, indices, data)`` of the 2MN x 2MN nodal matrix.

    Parameters
    ----------
    conductance : (M, N) float64, C-contiguous, finite, >= 0 (siemens)
    g_row : float
        1 / r_row, conductance of one row segment (S), > 0.
    g_col : float
        1 / r_col, conductance of one column segment (S), > 0.
    g_row_first : float
        1 / (r_driver + r_row): from the ideal source to r(i, 0) (S), > 0.
    g_col_last : float
        1 / (r_col + r_sense): from c(M-1, j) to the virtual ground (S), > 0.
    """
    cdef Py_ssize_t m = conductance.shape[0]
    cdef Py_ssize_t n = conductance.shape[1]
    cdef Py_ssize_t mn = m * n
    cdef Py_ssize_t size = 2 * mn
    # Each node has itself, its cell partner and up to two wire neighbours.
    cdef Py_ssize_t nnz = 2 * mn + 2 * mn + 2 * (m * (n - 1)) + 2 * (n * (m - 1))
    indptr_arr = np.empty(size + 1, dtype=np.int64)
    indices_arr = np.empty(nnz, dtype=np.int64)
    data_arr = np.empty(nnz, dtype=np.float64)
    cdef cnp.int64_t[::1] indptr = indptr_arr
    cdef cnp.int64_t[::1] indices = indices_arr
    cdef double[::1] data = data_arr
    cdef Py_ssize_t i, j, k = 0, node
    cdef double g, diag
    with nogil:
        # Row nodes.
        for i in range(m):
            for j in range(n):
                node = i * n + j
                indptr[node] = k
                g = conductance[i, j]
                diag = g + g_row
                if j == 0:
                    diag = g + g_row_first
                if j < n - 1:
                    diag = diag + g_row
                if j > 0:
                    indices[k] = node - 1
                    data[k] = -g_row
                    k += 1
                indices[k] = node
                data[k] = diag
                k += 1
                if j < n - 1:
                    indices[k] = node + 1
                    data[k] = -g_row
                    k += 1
                indices[k] = mn + node
                data[k] = -g
                k += 1
        # Column nodes.
        for i in range(m):
            for j in range(n):
                node = mn + i * n + j
                indptr[node] = k
                g = conductance[i, j]
                indices[k] = node - mn
                data[k] = -g
                k += 1
                diag = g
                if i > 0:
                    diag = diag + g_col
                    indices[k] = node - n
                    data[k] = -g_col
                    k += 1
                if i < m - 1:
                    diag = diag + g_col
                else:
                    diag = diag + g_col_last
                indices[k] = node
                data[k] = diag
                k += 1
                if i < m - 1:
                    indices[k] = node + n
                    data[k] = -g_col
                    k += 1
        indptr[size] = k
    return indptr_arr, indices_arr, data_arr
