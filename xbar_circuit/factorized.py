"""A reusable solver: factor a crossbar once, solve it for any number of inputs.

In the manner of :func:`scipy.sparse.linalg.splu`: ``solver = factorize(xbar)`` does
the per-array work (orientation, chain factors) once, and ``solver.solve(V)`` costs
only the conjugate-gradient iterations of each input. The effective conductance is
computed on first request and cached, after which a linear batch costs one matrix
product (``solver.solve(V, exact=False)``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from .api import _check_memory, check_output, validate_inputs
from .backends.nodal import NodalSolver
from .errors import SpecError
from .solution import CrossbarSolution
from .spec import Crossbar

__all__ = ["CrossbarSolver", "factorize"]


class CrossbarSolver:
    """The ``"nodal"`` solver of one crossbar, prepared once (see :func:`factorize`).

    Attributes
    ----------
    crossbar : Crossbar
        The array this solver belongs to.
    path : str
        Which kernel serves it: ``"ideal"`` (no parasitics), ``"line"`` (the default
        circuit's specialised kernel), ``"structured"`` (every other linear topology) or
        ``"newton"`` (nonlinear cells).
    """

    def __init__(self, crossbar: Crossbar, **options: Any) -> None:
        if not isinstance(crossbar, Crossbar):
            raise SpecError(f"expected an xbar_circuit.Crossbar, got {type(crossbar).__name__}")
        self.crossbar = crossbar
        self._nodal = NodalSolver(crossbar, **options)
        self.path: str = self._nodal.path

    def solve(self, v_in: ArrayLike, v_gate: Any = None) -> CrossbarSolution:
        """Solve for one input vector (M,) or a batch (B, M) of row voltages in volts.

        Returns
        -------
        CrossbarSolution
            The same result as :func:`xbar_circuit.solve` with ``backend="nodal"``.

        Raises
        ------
        InputError, ConvergenceError, NonFiniteResultError
            As :func:`xbar_circuit.solve`.
        """
        v_batch, batched = validate_inputs(self.crossbar, v_in)
        _check_memory(self.crossbar, v_batch.shape[0], "nodal", {})
        output = self._nodal.solve_batch(v_batch, v_gate)
        check_output(self.crossbar, v_batch, "nodal", output)
        return CrossbarSolution(self.crossbar, v_batch, "nodal", output, batched)

    def column_currents(self, v_in: ArrayLike) -> np.ndarray:
        """Column currents (amperes) of a linear array as ``V · G_eff``, shape (B, N).

        The first call computes :meth:`effective_conductance` (M unit solves); every
        later call is one matrix product, exact to the contract of the solver.
        """
        v_batch, batched = validate_inputs(self.crossbar, v_in)
        currents = v_batch @ self.effective_conductance()
        return currents if batched else currents[0]

    def effective_conductance(self) -> np.ndarray:
        """The exact (M, N) effective conductance ``G_eff`` in siemens (cached).

        Raises
        ------
        SpecError
            For nonlinear cells.
        """
        return self._nodal.effective_conductance()

    def __repr__(self) -> str:
        m, n = self.crossbar.shape
        return f"CrossbarSolver({m}x{n}, path={self.path!r})"


def factorize(crossbar: Crossbar, **options: Any) -> CrossbarSolver:
    """Prepare the ``"nodal"`` solver of ``crossbar`` for many solves.

    Parameters
    ----------
    crossbar : Crossbar
        Any legal spec.
    **options
        ``rtol``, ``cg_max_iter``, ``threads``, ``use_effective``, ``newton_max_iter`` and
        ``refine``, as for ``solve(..., backend="nodal")``.

    Returns
    -------
    CrossbarSolver

    Raises
    ------
    SpecError, BackendError
        For a non-crossbar or invalid options.

    Examples
    --------
    >>> import numpy as np
    >>> from xbar_circuit import Crossbar, factorize, solve
    >>> xbar = Crossbar.random(32, 16, r_row=1.0, r_col=1.0, driver_side="both", seed=0)
    >>> solver = factorize(xbar)
    >>> v = np.random.default_rng(1).uniform(0.0, 0.2, size=(10, 32))
    >>> sol = solver.solve(v)
    >>> bool(np.allclose(sol.column_currents, solve(xbar, v).column_currents, rtol=1e-12))
    True
    >>> bool(np.allclose(solver.column_currents(v), sol.column_currents, rtol=1e-9))
    True
    """
    return CrossbarSolver(crossbar, **options)
