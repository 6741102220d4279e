"""Validated wrapper around the compiled nodal-matrix assembly kernel."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ..spec import Crossbar
from ._assembly import assemble_csr

__all__ = ["nodal_matrix", "nodal_rhs", "structured_conductances"]


def structured_conductances(crossbar: Crossbar) -> tuple[float, float, float, float]:
    """Return ``(g_row, g_col, g_row_first, g_col_last)`` in siemens.

    ``g_row_first`` joins the ideal source to r(i, 0) (driver plus first segment);
    ``g_col_last`` joins c(M-1, j) to the virtual ground (last segment plus sense).

    Raises
    ------
    ValueError
        If ``r_row`` or ``r_col`` is zero: the structured system needs finite wire
        conductances (callers use the graph solver for zero-ohm wires).
    """
    if crossbar.r_row <= 0.0 or crossbar.r_col <= 0.0:
        raise ValueError(
            "the structured nodal matrix needs r_row > 0 and r_col > 0, got "
            f"r_row={crossbar.r_row!r}, r_col={crossbar.r_col!r}"
        )
    return (
        1.0 / crossbar.r_row,
        1.0 / crossbar.r_col,
        1.0 / (crossbar.r_row + crossbar.r_driver),
        1.0 / (crossbar.r_col + crossbar.r_sense),
    )


def nodal_matrix(crossbar: Crossbar) -> sp.csr_matrix:
    """Assemble the 2MN x 2MN nodal conductance matrix with the compiled kernel.

    Unknowns: row nodes r(i, j) at ``i*N + j``, then column nodes c(i, j) at
    ``M*N + i*N + j``. The matrix is symmetric positive definite.

    Parameters
    ----------
    crossbar : Crossbar
        A validated spec with ``r_row > 0`` and ``r_col > 0``.

    Returns
    -------
    scipy.sparse.csr_matrix
        Entries in siemens.

    Examples
    --------
    >>> import numpy as np
    >>> from xbar_circuit import Crossbar
    >>> a = nodal_matrix(Crossbar(np.full((2, 2), 1e-3), r_row=1.0, r_col=1.0))
    >>> a.shape, bool(abs(a - a.T).max() == 0)
    ((8, 8), True)
    """
    if not isinstance(crossbar, Crossbar):
        raise TypeError(f"expected a Crossbar, got {type(crossbar).__name__}")
    g_row, g_col, g_first, g_last = structured_conductances(crossbar)
    conductance = np.ascontiguousarray(crossbar.conductance, dtype=np.float64)
    indptr, indices, data = assemble_csr(conductance, g_row, g_col, g_first, g_last)
    size = 2 * conductance.size
    return sp.csr_matrix((data, indices, indptr), shape=(size, size))


def nodal_rhs(crossbar: Crossbar, v_in: np.ndarray) -> np.ndarray:
    """Right-hand sides (injected currents, amperes) for a batch of inputs.

    Parameters
    ----------
    crossbar : Crossbar
    v_in : ndarray, shape (B, M)
        Source voltages in volts.

    Returns
    -------
    ndarray, shape (B, 2MN)
    """
    m, n = crossbar.shape
    _, _, g_first, _ = structured_conductances(crossbar)
    rhs = np.zeros((v_in.shape[0], 2 * m * n))
    rhs[:, 0 : m * n : n] = v_in * g_first
    return rhs
