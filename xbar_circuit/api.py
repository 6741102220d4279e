"""The public solve call: one spec, many backends, one result."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from ._memory import check_memory, solve_bytes
from ._validate import MAX_VOLTAGE, as_real_array, check_finite_array
from .backends import DEFAULT_BACKEND, backend_solver
from .errors import InputError, NonFiniteResultError, ResultError, SpecError
from .solution import BackendOutput, CrossbarSolution
from .spec import Crossbar

__all__ = ["check_output", "solve", "validate_inputs"]


def validate_inputs(crossbar: Crossbar, v_in: ArrayLike) -> tuple[np.ndarray, bool]:
    """Check input voltages against ``crossbar`` and return them as (B, M) float64.

    Parameters
    ----------
    crossbar : Crossbar
        The array the inputs drive.
    v_in : array_like, shape (M,) or (B, M)
        Source voltages in volts: real numbers with ``|v| <=`` :data:`MAX_VOLTAGE`.

    Returns
    -------
    v_batch : ndarray, shape (B, M)
        C-contiguous float64 copy of the inputs.
    batched : bool
        Whether ``v_in`` had a batch axis.

    Raises
    ------
    InputError
        For a wrong shape, an empty batch, NaN/inf or out-of-range values, or values
        that are not real numbers (complex, boolean, strings...).
    """
    if not isinstance(crossbar, Crossbar):
        raise SpecError(f"expected an xbar_circuit.Crossbar, got {type(crossbar).__name__}")
    v = as_real_array("v_in", v_in, error=InputError, unit="V")
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
    check_finite_array("v_in", v if batched else v[0], error=InputError, hi=MAX_VOLTAGE,
                       magnitude=True, unit="V")
    return np.ascontiguousarray(v), batched


def _check_memory(crossbar: Crossbar, batch: int, backend: str, options: dict[str, Any]
                  ) -> None:
    m, n = crossbar.shape
    threads = options.get("threads")
    threads = threads if isinstance(threads, int) and not isinstance(threads, bool) else 1
    effective = options.get("use_effective") is True
    needed = solve_bytes(m, n, batch, backend, effective=effective, threads=min(threads, 64))
    check_memory(needed, f"solving a {m}x{n} crossbar for {batch} input vector(s) with "
                         f"backend {backend!r}" + (" (use_effective=True)" if effective else ""))


def _first(mask: np.ndarray) -> str:
    return ", ".join(str(int(i)) for i in np.argwhere(mask)[0])


def check_output(crossbar: Crossbar, v_batch: np.ndarray, backend: str,
                 output: BackendOutput) -> None:
    """Refuse a backend result that is non-finite or physically impossible.

    Every circuit xbar-circuit models is passive apart from its sources (row drivers
    at ``v_in``, virtual grounds and loads at 0 V), so every node voltage lies in the
    range spanned by 0 and the inputs, and with linear cells each column current is
    at most ``span · sum_i G[i, j]`` in magnitude. A result outside those bounds (by
    more than 1% of the span, far beyond any solver tolerance) is wrong.

    Parameters
    ----------
    crossbar : Crossbar
        The solved array.
    v_batch : ndarray, shape (B, M)
        The validated inputs, volts.
    backend : str
        Backend name, for the message.
    output : BackendOutput
        What the backend returned.

    Raises
    ------
    NonFiniteResultError
        For NaN or infinite voltages or currents.
    ResultError
        For node voltages outside the sources' range or currents beyond the bound.
    """
    arrays = {"row_voltages": output.row_voltages, "column_voltages": output.column_voltages,
              "column_currents": output.column_currents}
    if output.port_voltages is not None:
        arrays["port_voltages"] = output.port_voltages
    # The extremes first (NaN propagates through min and max): two read-only passes
    # over each array; the element-wise masks are built only to report a failure.
    extremes = {}
    for name, array in arrays.items():
        values = np.asarray(array, dtype=np.float64)
        extremes[name] = (float(values.min()), float(values.max())) if values.size else (
            0.0, 0.0)
        if all(math.isfinite(x) for x in extremes[name]):
            continue
        bad = ~np.isfinite(values)
        raise NonFiniteResultError(
            f"backend {backend!r} returned non-finite {name}: {name}[{_first(bad)}] = "
            f"{float(values[tuple(np.argwhere(bad)[0])])!r} ({int(bad.sum())} value(s)); "
            "the circuit is too ill-conditioned for this backend or the backend failed")
    low = min(0.0, float(v_batch.min()))
    high = max(0.0, float(v_batch.max()))
    span = high - low
    slack = 1e-2 * span + 1e-9
    for name in ("row_voltages", "column_voltages"):
        lowest, highest = extremes[name]
        if lowest >= low - slack and highest <= high + slack:
            continue
        values = np.asarray(arrays[name])
        bad = (values < low - slack) | (values > high + slack)
        if bad.any():
            where = tuple(np.argwhere(bad)[0])
            raise ResultError(
                f"backend {backend!r} returned {name} outside the range of the sources "
                f"[{low:g}, {high:g}] V: {name}[{_first(bad)}] = {float(values[where])!r} V; "
                "a passive circuit cannot do that, so the result is wrong")
    if crossbar.is_linear:
        bound = span * crossbar.conductance.sum(axis=0)
        currents = np.abs(np.asarray(arrays["column_currents"]))
        bad = currents > bound * (1 + 1e-2) + 1e-2 * float(bound.max()) + 1e-300
        if bad.any():
            where = tuple(np.argwhere(bad)[0])
            raise ResultError(
                f"backend {backend!r} returned column_currents[{_first(bad)}] = "
                f"{float(np.asarray(arrays['column_currents'])[where])!r} A, beyond the "
                f"largest current the column's cells can carry ({float(bound[where[-1]]):g} "
                "A); the result is wrong")


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
    MemoryLimitError
        (an InputError) when the request needs more memory than is available; checked
        before any backend allocates.
    NgspiceNotFoundError, NgspiceError, ConvergenceError
        When a backend cannot run or does not converge.
    NonFiniteResultError, ResultError
        When a backend's result is non-finite or physically impossible.

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
    _check_memory(crossbar, v_batch.shape[0], backend, options)
    output: BackendOutput = solver(crossbar, v_batch, **options)  # type: ignore[assignment]
    check_output(crossbar, v_batch, backend, output)
    return CrossbarSolution(crossbar, v_batch, backend, output, batched)
