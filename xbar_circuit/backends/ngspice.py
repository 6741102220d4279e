"""The ``"ngspice"`` backend: write the crossbar's SPICE deck and run it through ngspice.

Each input vector of the batch is its own deck and its own ``.op`` run
(:func:`xbar_circuit.netlists.write_deck`). Values are read at full double precision:
from the binary rawfile in subprocess mode, from libngspice's vectors in shared mode
(see :mod:`xbar_circuit.netlists.runner` and docs/ngspice.md).

Column currents are ngspice's branch currents of the 0 V virtual-ground sources
``Vtia_j`` as measured (SPICE's sign convention already makes them positive for
current flowing from the array into the virtual ground); they agree with the sum of
the cell currents to about 1e-13 relative.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from ..errors import BackendError, NgspiceError
from ..netlists import (
    NgspiceCostWarning,
    ammeter_name,
    capabilities,
    col_node,
    estimate_seconds,
    resolve_mode,
    row_node,
    run_deck,
    warn_if_costly,
    write_deck,
)
from ..solution import BackendOutput
from ..spec import Crossbar

__all__ = ["DEFAULT_TIMEOUT_FLOOR", "NgspiceCostWarning", "estimate_seconds", "solve_batch"]

DEFAULT_TIMEOUT_FLOOR = 600.0
"""Seconds: without ``timeout=``, each run may take 20 times its estimated time
(:func:`~xbar_circuit.netlists.estimate_seconds`), and never less than this."""

MAX_TIMEOUT = 7 * 24 * 3600.0
"""Largest ngspice timeout accepted, seconds (one week)."""


def _lookup(values: dict[str, float], key: str, deck_path: str | None) -> float:
    try:
        return values[key]
    except KeyError:
        raise NgspiceError(
            f"ngspice's result has no value {key!r} ({len(values)} values read)",
            deck_path=deck_path,
        ) from None


def arrays_from_values(
    crossbar: Crossbar, values: dict[str, float], deck_path: str | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pick a crossbar's node voltages and column currents out of ngspice's values.

    Parameters
    ----------
    crossbar : Crossbar
        The simulated array (gives M and N).
    values : dict of str to float
        ``v(node)`` in volts and ``i(vsource)`` in amperes, names lower-case, as read
        from a rawfile (:func:`xbar_circuit.netlists.op_values`) or libngspice.
    deck_path : str, optional
        The deck, named in the error when a value is missing.

    Returns
    -------
    row_voltages, column_voltages : ndarray, shape (M, N)
        Volts at r(i, j) and c(i, j).
    column_currents : ndarray, shape (N,)
        Amperes into each virtual ground, ``I(Vtia_j)``.

    Raises
    ------
    NgspiceError
        If a node or branch current of the crossbar is missing from ``values``.
    """
    m, n = crossbar.shape
    row_v = np.array([_lookup(values, f"v({row_node(i, j).lower()})", deck_path)
                      for i in range(m) for j in range(n)]).reshape(m, n)
    col_v = np.array([_lookup(values, f"v({col_node(i, j).lower()})", deck_path)
                      for i in range(m) for j in range(n)]).reshape(m, n)
    col_i = np.array([_lookup(values, f"i({ammeter_name(j).lower()})", deck_path)
                      for j in range(n)])
    return row_v, col_v, col_i


def solve_batch(
    crossbar: Crossbar,
    v_in: np.ndarray,
    *,
    mode: str = "auto",
    timeout: float | None = None,
    keep_files: bool | None = None,
    v_gate: Any = None,
    **unknown: Any,
) -> BackendOutput:
    """Solve a batch of input vectors with one ngspice ``.op`` run per vector.

    Parameters
    ----------
    crossbar : Crossbar
        The array.
    v_in : ndarray, shape (B, M)
        Validated source voltages in volts.
    mode : {"auto", "subprocess", "shared"}
        ``"subprocess"`` runs the ``ngspice`` executable and reads its binary rawfile;
        ``"shared"`` uses libngspice through PySpice; ``"auto"`` prefers subprocess.
    timeout : float, optional
        Seconds allowed for *each* run; a run that takes longer is killed and
        :class:`~xbar_circuit.errors.NgspiceTimeoutError` is raised. Default: 20 times
        the run's estimated time, at least :data:`DEFAULT_TIMEOUT_FLOOR` (600 s).
    keep_files : bool, optional
        Subprocess mode: None keeps the temporary deck only when a run fails, True
        always keeps it (paths in ``info["deck_paths"]``), False never keeps it.
    v_gate : float or array_like (M,), optional
        Gate-line voltages of 1T1R rows, volts (default: the device's ``v_gate``).

    Returns
    -------
    BackendOutput
        ``row_voltages``/``column_voltages`` (B, M, N) in volts from the ``r_i_j`` /
        ``c_i_j`` nodes; ``column_currents`` (B, N) in amperes from ``I(Vtia_j)``;
        ``info`` with ``ngspice_version`` (e.g. ``"ngspice-46"``), ``matrix_solver``
        (``"KLU"`` or ``"Sparse 1.3"``, as ngspice reported it), ``klu_available``,
        ``mode`` (``"subprocess"`` or ``"shared"``) and seconds.

    Raises
    ------
    BackendError
        For an unknown mode or a bad timeout.
    NgspiceNotFoundError, NgspiceError, NgspiceTimeoutError
        When ngspice is missing, fails on a deck, or runs out of time.

    Warns
    -----
    NgspiceCostWarning
        Before runs of arrays above 64 x 64 cells, with the estimated time.

    Examples
    --------
    >>> import numpy as np
    >>> from xbar_circuit import Crossbar, solve
    >>> xbar = Crossbar.random(4, 4, r_row=1.0, r_col=1.0, seed=0)
    >>> a = solve(xbar, np.full(4, 0.2), backend="ngspice")  # doctest: +SKIP
    >>> b = solve(xbar, np.full(4, 0.2), backend="reference")
    >>> bool(np.allclose(a.column_currents, b.column_currents, rtol=1e-9))  # doctest: +SKIP
    True
    """
    if unknown:
        raise BackendError(
            f"unknown option(s) for backend 'ngspice': {', '.join(sorted(unknown))}; "
            "known: mode, timeout, keep_files, v_gate")
    start = time.perf_counter()
    if timeout is not None:
        try:
            timeout = float(timeout)
        except (TypeError, ValueError, OverflowError):
            raise BackendError(f"timeout must be a number of seconds, got "
                               f"{str(timeout)[:40]!r}") from None
        # A week bounds any run (and keeps the value inside what the OS timers accept).
        if not (timeout > 0 and timeout <= MAX_TIMEOUT):
            raise BackendError(f"timeout must be > 0 and at most {MAX_TIMEOUT:g} seconds, got "
                               f"{timeout!r}")
    if keep_files not in (None, True, False):
        raise BackendError(f"keep_files must be None, True or False, got {keep_files!r}")
    try:
        chosen = resolve_mode(mode)
    except ValueError as exc:
        raise BackendError(str(exc)) from None
    # Probed once per process and mode: KLU is what makes arrays above 64x64 affordable.
    caps = capabilities(chosen)
    gates = crossbar.gate_voltages(v_gate)
    v_in = np.asarray(v_in, dtype=np.float64)
    m, n = crossbar.shape
    batch = v_in.shape[0]
    estimate = warn_if_costly(m, n, batch, stacklevel=4, klu=caps.klu)
    if timeout is None:
        # Nothing blocks forever: a run gets twenty times its estimate, at least 10 min.
        timeout = max(DEFAULT_TIMEOUT_FLOOR, 20.0 * estimate_seconds(m, n, caps.klu))

    row_v = np.empty((batch, m, n))
    col_v = np.empty((batch, m, n))
    col_i = np.empty((batch, n))
    port_node = "out" if crossbar.tia is not None else \
        "ld" if crossbar.sense_load is not None else None
    port = np.empty((batch, n)) if port_node else None
    run_seconds: list[float] = []
    deck_paths: list[str] = []
    version = caps.version
    solvers: set[str] = set()
    for b in range(batch):
        deck = write_deck(crossbar, v_in[b], title=f"xbar-circuit crossbar {m}x{n} input {b}",
                          v_gate=gates, klu=caps.klu)
        result = run_deck(deck, mode=chosen, timeout=timeout, keep_files=keep_files)
        row_v[b], col_v[b], col_i[b] = arrays_from_values(crossbar, result.values,
                                                          result.deck_path)
        if port is not None:
            port[b] = [_lookup(result.values, f"v({port_node}_{j})", result.deck_path)
                       for j in range(n)]
        run_seconds.append(result.seconds)
        version = result.version
        solvers.add(result.solver)
        if result.deck_path:
            deck_paths.append(result.deck_path)
    info: dict[str, Any] = {
        "method": "ngspice .op, one run per input vector, values read as float64",
        "ngspice_version": version,
        "matrix_solver": ", ".join(sorted(solvers)) or caps.solver,
        "klu_available": caps.klu,
        "mode": chosen,
        "runs": batch,
        "run_seconds": run_seconds,
        "estimated_seconds": estimate,
        "timeout": timeout,
        "seconds": time.perf_counter() - start,
    }
    if deck_paths:
        info["deck_paths"] = deck_paths
    if gates is not None:
        info["v_gate"] = gates.tolist()
    return BackendOutput(row_v, col_v, col_i, info, port_voltages=port)
