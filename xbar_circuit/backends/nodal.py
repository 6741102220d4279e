"""The ``"nodal"`` backend: structured nodal analysis with the compiled assembly kernel.

The 2MN x 2MN nodal matrix is assembled in O(M·N) by the Cython kernel and solved
with SuperLU, factored once for the whole batch.  Arrays with a zero-ohm row or
column wire (which the structured system cannot express) are solved by the
graph-based reference solver, and the result's ``info["method"]`` says so.  With
every parasitic resistance zero the result is the ideal product V·G.
"""

from __future__ import annotations

import time

import numpy as np
import scipy.sparse.linalg as spla

from ..solution import BackendOutput
from ..spec import Crossbar

__all__ = ["solve_batch"]


def ideal_output(crossbar: Crossbar, v_in: np.ndarray, start: float) -> BackendOutput:
    """Exact solution of an array without any parasitic resistance."""
    m, n = crossbar.shape
    batch = v_in.shape[0]
    row_v = np.broadcast_to(v_in[:, :, None], (batch, m, n)).copy()
    col_v = np.zeros((batch, m, n))
    col_i = v_in @ crossbar.conductance
    info = {"method": "ideal product V·G (all parasitics zero)",
            "seconds": time.perf_counter() - start}
    return BackendOutput(row_v, col_v, col_i, info)


def solve_batch(crossbar: Crossbar, v_in: np.ndarray) -> BackendOutput:
    """Solve a batch of inputs, shape (B, M) in volts, on the structured nodal system.

    Returns
    -------
    BackendOutput
    """
    start = time.perf_counter()
    if crossbar.is_ideal:
        return ideal_output(crossbar, v_in, start)
    if crossbar.r_row == 0.0 or crossbar.r_col == 0.0:
        from .reference import solve_batch as graph_solve

        out = graph_solve(crossbar, v_in)
        out.info["method"] = "graph solver (zero-ohm wire segments): " + out.info["method"]
        return out
    from ..cython_solvers.assembly import nodal_matrix, nodal_rhs

    m, n = crossbar.shape
    matrix = nodal_matrix(crossbar).tocsc()
    rhs = nodal_rhs(crossbar, v_in)
    lu = spla.splu(matrix)
    x = lu.solve(np.ascontiguousarray(rhs.T)).T
    row_v = x[:, : m * n].reshape(-1, m, n)
    col_v = x[:, m * n :].reshape(-1, m, n)
    col_i = np.einsum("ij,bij->bj", crossbar.conductance, row_v - col_v)
    info = {"method": "compiled CSR assembly + SuperLU", "seconds": time.perf_counter() - start}
    return BackendOutput(row_v, col_v, col_i, info)
