"""The public solve call: one spec, many backends, one result."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from .backends import DEFAULT_BACKEND, backend_solver
from .errors import InputError, SpecError
from .solution import BackendOutput, CrossbarSolution
from .spec import Crossbar

__all__ = ["solve", "validate_inputs"]


def validate_inputs(crossbar: Crossbar, v_in: ArrayLike) -> tuple[np.ndarray, bool]:
    """Check input voltages against ``crossbar`` and return them as (B, M) float64.

    Parameters
    ----------
    crossbar : Crossbar
        The array the inputs drive.
    v_in : array_like, shape (M,) or (B, M)
        Source voltages in volts.

    Returns
    -------
    v_batch : ndarray, shape (B, M)
        C-contiguous float64 copy of the inputs.
    batched : bool
        Whether ``v_in`` had a batch axis.

    Raises
    ------
    InputError
        For a wrong shape, an empty batch, or NaN/inf values.
    """
    if not isinstance(crossbar, Crossbar):
        raise SpecError(f"expected an xbar_circuit.Crossbar, got {type(crossbar).__name__}")
    try:
        v = np.array(v_in, dtype=np.float64, copy=True)
    except (TypeError, ValueError) as exc:
        raise InputError(f"v_in must be an array of volts: {exc}") from None
    m = crossbar.n_rows
    if v.ndim == 1:
        batched = False
        v = v[None, :]
    elif v.ndim == 2:
        batched = True
    else:
        raise InputError(f"v_in must have shape (M,) or (B, M) with M={m}, got shape {v.shape}")
    if v.shape[1] != m:
        raise InputError(
            f"v_in has {v.shape[1]} entries per input vector but the crossbar has M={m} rows "
            f"(v_in shape {v.shape if batched else v.shape[1:]})"
        )
    if v.shape[0] == 0:
        raise InputError("v_in is an empty batch (shape (0, M))")
    bad = ~np.isfinite(v)
    if bad.any():
        b, i = np.argwhere(bad)[0]
        where = f"v_in[{b}, {i}]" if batched else f"v_in[{i}]"
        raise InputError(f"v_in must be finite; {where} = {float(v[b, i])!r}")
    return np.ascontiguousarray(v), batched


def solve(
    crossbar: Crossbar, v_in: ArrayLike, backend: str = DEFAULT_BACKEND, **options: Any
) -> CrossbarSolution:
    """Solve the crossbar's circuit for one input vector or a batch.

    Parameters
    ----------
    crossbar : Crossbar
        The array to solve.
    v_in : array_like, shape (M,) or (B, M)
        Row source voltages in volts; a 2-D array is a batch of B input vectors.
    backend : {"nodal", "reference", "ngspice"}
        Which engine solves the circuit (see :data:`xbar_circuit.BACKENDS`).
    **options
        Backend options, e.g. ``timeout`` (seconds) and ``mode`` for ``"ngspice"``.

    Returns
    -------
    CrossbarSolution
        Column currents, node voltages and metrics; same class for every backend.

    Raises
    ------
    InputError, SpecError, BackendError
        For invalid inputs, spec or backend name/options.
    NgspiceNotFoundError, NgspiceError, ConvergenceError
        When a backend cannot run or does not converge.

    Examples
    --------
    >>> import numpy as np
    >>> from xbar_circuit import Crossbar, solve
    >>> xbar = Crossbar(np.full((4, 4), 1e-4), r_row=1.0, r_col=1.0)
    >>> sol = solve(xbar, np.full(4, 0.2), backend="reference")
    >>> bool(np.all(sol.column_currents < sol.ideal_currents))
    True
    >>> round(sol.nf, 6)  # first order: 2 * r*g*(N+1)(2N+1)/6 = 1.5e-3
    0.001498
    """
    v_batch, batched = validate_inputs(crossbar, v_in)
    solver = backend_solver(backend)
    output: BackendOutput = solver(crossbar, v_batch, **options)  # type: ignore[assignment]
    return CrossbarSolution(crossbar, v_batch, backend, output, batched)
