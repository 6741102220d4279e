"""The effective conductance of a linear crossbar: the exact map ``I = V · G_eff``.

For a linear, passive array the column currents are a linear function of the row
voltages, so one (M, N) matrix replaces the circuit for any number of inputs:
``I = V @ G_eff`` costs one dense product per batch. ``G_eff`` is computed with
``min(M, N)`` solves of the compiled line solver: M solves with unit row inputs, or,
by reciprocity of the network, N solves with a unit voltage at each column port
(the current then flowing into row i's grounded source is ``G_eff[i, j]``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._validate import renamed_keywords
from .backends import BACKENDS
from .backends.nodal import DEFAULT_RTOL, check_converged
from .errors import BackendError, SpecError
from .spec import Crossbar

__all__ = ["effective_conductance"]

_METHODS = ("auto", "rows", "columns")


def effective_conductance(
    crossbar: Crossbar,
    *,
    rtol: float = DEFAULT_RTOL,
    cg_max_iter: int | None = None,
    threads: int | None = None,
    method: str = "auto",
    backend: str = "nodal",
    **former: Any,
) -> np.ndarray:
    """Return the exact (M, N) effective conductance ``G_eff`` with ``I = V · G_eff``.

    ``G_eff[i, j]`` is the current in amperes flowing into column j's virtual ground
    per volt applied at row i's source (all other sources at 0 V), including every
    wire, driver and sense resistance. Without parasitics it equals the cell
    conductances ``G``; with them, ``G - G_eff`` is the loss the parasitics cause
    (sneak paths through other cells can make an entry non-zero where ``G`` is zero).

    Parameters
    ----------
    crossbar : Crossbar
        A linear crossbar.
    rtol : float, optional
        Relative CG tolerance of each unit solve (default 1e-12).
    cg_max_iter : int, optional
        CG iteration cap per solve (default ``200 + 20 (M + N)``); its former name
        ``max_iter`` is accepted with a :class:`DeprecationWarning`.
    threads : int, optional
        Worker threads over the unit solves (default ``min(2, os.cpu_count())``).
    method : {"auto", "rows", "columns"}, optional
        ``"rows"``: M solves with unit row inputs; ``"columns"``: N solves with a unit
        voltage at each column port (reciprocity); ``"auto"`` picks the smaller count.
    backend : str, optional
        ``"nodal"`` (default) computes ``G_eff`` as below. Any other backend of
        :func:`xbar_circuit.solve` (``"reference"``, ``"ngspice"``) solves the M unit
        inputs one by one, as an independent cross-check; ``rtol``, ``cg_max_iter``,
        ``threads`` and ``method`` then do not apply.

    Returns
    -------
    ndarray, shape (M, N)
        Effective conductances in siemens (a new, writable array).

    Raises
    ------
    SpecError
        If ``crossbar`` is not a :class:`Crossbar`, or its cells are nonlinear.
    BackendError
        For an unknown ``method`` or invalid solver options.
    ConvergenceError
        If a unit solve does not converge.

    Notes
    -----
    Every linear topology (docs/models.md) is computed by the ``"nodal"`` backend's
    :class:`~xbar_circuit.backends.nodal.NodalSolver`: M unit-input solves in chunks,
    so memory stays O(M·N). For the default circuit ``"columns"`` uses N solves with a
    unit voltage at each column port instead. With every parasitic resistance zero
    the result is ``G`` itself.

    Examples
    --------
    >>> import numpy as np
    >>> from xbar_circuit import Crossbar, solve
    >>> from xbar_circuit.effective import effective_conductance
    >>> xbar = Crossbar.random(16, 8, r_row=1.0, r_col=1.0, seed=0)
    >>> g_eff = effective_conductance(xbar)
    >>> v = np.random.default_rng(1).uniform(0.0, 0.2, size=(5, 16))
    >>> bool(np.allclose(v @ g_eff, solve(xbar, v).column_currents, rtol=1e-9, atol=0))
    True
    """
    if not isinstance(crossbar, Crossbar):
        raise SpecError(f"expected an xbar_circuit.Crossbar, got {type(crossbar).__name__}")
    cg_max_iter = renamed_keywords(former, {"max_iter": "cg_max_iter"},
                                   "effective_conductance", {"cg_max_iter": cg_max_iter},
                                   {"cg_max_iter": None})["cg_max_iter"]
    if former:
        raise TypeError(f"effective_conductance: unexpected keyword(s) {sorted(former)}")
    if backend not in BACKENDS:
        raise BackendError(f"unknown backend {backend!r}; known: {', '.join(sorted(BACKENDS))}")
    if method not in _METHODS:
        raise BackendError(f"method must be one of {', '.join(_METHODS)}, got {method!r}")
    m, n = crossbar.shape
    if not crossbar.is_linear:
        raise SpecError(
            f"an effective conductance exists only for linear cells; this crossbar's device "
            f"is {type(crossbar.device).__name__} (solve() handles nonlinear arrays)"
        )
    if backend != "nodal":
        from .api import solve

        unit_inputs = np.eye(m)
        return np.array(np.atleast_2d(solve(crossbar, unit_inputs, backend=backend)
                                      .column_currents), dtype=np.float64)
    from .backends.nodal import NodalSolver

    solver = NodalSolver(crossbar, rtol=rtol, cg_max_iter=cg_max_iter, threads=threads)
    by_rows = method == "rows" or (method == "auto" and m <= n)
    if solver.path != "line" or by_rows:
        return solver.effective_conductance()
    from .cython_solvers import line_pcg

    opts = solver.opts
    result = line_pcg.solve(solver.line_factors, None, np.eye(n), store=False,
                            rtol=opts["rtol"], max_iter=opts["cg_max_iter"],
                            threads=opts["threads"])
    check_converged(result, opts["rtol"], opts["cg_max_iter"],
                    f"{m}x{n} crossbar (effective conductance)")
    # Row i delivers row_currents[j, i] into the array when column port j is at 1 V;
    # the current into its grounded source is the negative, equal to G_eff[i, j].
    return np.ascontiguousarray(-result.row_currents.T)
