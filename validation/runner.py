"""Run backends against the reference corpus, the closed forms and the identities.

Used by ``xbar validate`` and ``make validate``; :func:`run_validation` returns one
:class:`CheckResult` row per (check, backend) and :func:`write_report` turns them
into ``docs/validation.md`` with parity plots.
"""

from __future__ import annotations

import dataclasses
import datetime
import math
import os
import platform
import warnings
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from xbar_circuit import Crossbar, CrossbarSolution, solve
from xbar_circuit.netlists import NgspiceCostWarning

from .cases import CASES, QUICK_CASES, Case
from .checks import (
    bit_line_case,
    kcl_error,
    power_balance_error,
    word_line_case,
)
from .corpus import REFERENCE_DIR, load_manifest, load_reference
from .tolerances import TOLERANCES, tolerance_for

__all__ = ["CheckResult", "run_validation", "validate_spec", "write_report", "format_table",
           "Solver"]

Solver = Callable[[Crossbar, np.ndarray], CrossbarSolution]
"""A solver under test: ``(crossbar, v_in) -> CrossbarSolution``."""

CLOSED_FORM_CASES = [(1, 2.0, 1e-3), (16, 1.0, 1e-4), (64, 0.5, 2e-5), (128, 10.0, 1e-4)]
IDENTITY_CASES = [
    # name, M, N, r_row, r_col, r_driver, r_sense, seed
    ("identity_7x5", 7, 5, 2.0, 0.5, 0.0, 0.0, 1),
    ("identity_12x9_periphery", 12, 9, 1.0, 3.0, 50.0, 20.0, 2),
    ("identity_9x3_zero_row", 9, 3, 0.0, 1.0, 10.0, 0.0, 3),
]


@dataclasses.dataclass
class CheckResult:
    """One row of the validation table.

    Attributes
    ----------
    family : str
        ``"ngspice corpus"``, ``"live ngspice"``, ``"closed form"`` or ``"identity"``.
    case, size, backend, model : str
        What was checked, with which backend and device model.
    current_error : float
        Max relative error on column currents (relative to the case's largest
        reference column current); NaN when not applicable.
    voltage_error : float
        Max absolute error on node voltages in volts; NaN when not applicable.
    nf : float
        The backend's array NF for the case (mean column NF).
    checks : dict
        Every error measured, by quantity (matching :data:`TOLERANCES` keys).
    passed : bool
        Whether every error is within its tolerance.
    note : str
        Error message when the backend raised.
    currents : tuple of ndarray, optional
        (backend, reference) column currents in amperes, for the parity plot.
    """

    family: str
    case: str
    size: str
    backend: str
    model: str
    current_error: float
    voltage_error: float
    nf: float
    checks: dict[str, float]
    passed: bool
    note: str = ""
    currents: tuple[np.ndarray, np.ndarray] | None = dataclasses.field(default=None, repr=False)


def _passed(checks: dict[str, float], model: str) -> bool:
    return all(math.isfinite(err) and err <= tolerance_for(q, model) for q, err in checks.items())


def _solver(backend: str, solvers: dict[str, Solver] | None, mode: str = "auto") -> Solver:
    if solvers and backend in solvers:
        return solvers[backend]
    if backend == "ngspice":
        return lambda xbar, v: solve(xbar, v, backend=backend, mode=mode)
    return lambda xbar, v: solve(xbar, v, backend=backend)


def _progress(total: int, description: str, enabled: bool) -> Any:
    """A tqdm bar on stderr (a no-op object when disabled)."""
    from tqdm import tqdm

    return tqdm(total=total, desc=description, unit="run", disable=not enabled,
                dynamic_ncols=True, leave=True)


def compare_to_reference(sol: CrossbarSolution, row_v: np.ndarray, col_v: np.ndarray,
                         col_i: np.ndarray) -> tuple[float, float]:
    """Return (max relative column-current error, max absolute node-voltage error [V])."""
    scale = float(np.abs(col_i).max())
    diff = float(np.abs(sol.column_currents - col_i).max())
    current_error = diff / scale if scale > 0 else diff
    voltage_error = float(max(np.abs(sol.row_voltages - row_v).max(),
                              np.abs(sol.column_voltages - col_v).max()))
    return current_error, voltage_error


def _failure(family: str, name: str, size: str, backend: str, model: str,
             exc: Exception) -> CheckResult:
    return CheckResult(family, name, size, backend, model, math.nan, math.nan, math.nan, {},
                       False, f"{type(exc).__name__}: {exc}")


def _port_error(sol: CrossbarSolution, crossbar: Crossbar, folder: Path) -> float | None:
    """Relative error of TIA output / sense-load voltages against the committed rawfile."""
    if crossbar.tia is None and crossbar.sense_load is None:
        return None
    from xbar_circuit.netlists import op_values, read_rawfile

    values = op_values(read_rawfile(folder / "ngspice.raw")[-1])
    node = "out" if crossbar.tia is not None else "ld"
    ref = np.array([values[f"v({node}_{j})"] for j in range(crossbar.n_cols)])
    ours = sol.tia_output_voltages if crossbar.tia is not None else sol.sense_voltages
    scale = float(np.abs(ref).max())
    diff = float(np.abs(np.asarray(ours) - ref).max())
    return diff / scale if scale > 0 else diff


def _corpus_rows(cases: Iterable[Case], backends: Sequence[str],
                 solvers: dict[str, Solver] | None, directory: Path, mode: str = "auto",
                 progress: bool = False) -> list[CheckResult]:
    manifest = load_manifest(directory)
    rows = []
    cases = list(cases)
    bar = _progress(len(cases) * len(backends), "corpus", progress)
    for case in cases:
        ref = load_reference(case, directory, manifest)
        for backend in backends:
            family = "live ngspice" if backend == "ngspice" else "ngspice corpus"
            bar.set_postfix_str(f"{case.name} {backend}")
            try:
                with warnings.catch_warnings():
                    # The corpus is meant to be run; its size is known and bounded.
                    warnings.simplefilter("ignore", NgspiceCostWarning)
                    sol = _solver(backend, solvers, mode)(ref.crossbar, ref.v_in)
            except Exception as exc:
                rows.append(_failure(family, case.name, case.size, backend, case.model, exc))
                bar.update()
                continue
            bar.update()
            cur, volt = compare_to_reference(sol, ref.row_voltages, ref.column_voltages,
                                             ref.column_currents)
            checks = {"column_currents": cur, "node_voltages": volt}
            port_error = _port_error(sol, ref.crossbar, directory / case.name)
            if port_error is not None:
                checks["port_voltages"] = port_error
            rows.append(CheckResult(family, case.name, case.size, backend, case.model, cur, volt,
                                    float(sol.nf), checks, _passed(checks, case.model),
                                    currents=(sol.column_currents, ref.column_currents)))
    bar.close()
    return rows


def _closed_form_rows(backends: Sequence[str],
                      solvers: dict[str, Solver] | None) -> list[CheckResult]:
    rows = []
    for kind, builder in (("word line", word_line_case), ("bit line", bit_line_case)):
        for n_cells, r, g in CLOSED_FORM_CASES:
            xbar, v_in, expected = builder(n_cells, r, g)
            name = f"{kind} N={n_cells} r={r:g} g={g:g}"
            size = f"{xbar.n_rows}x{xbar.n_cols}"
            for backend in backends:
                try:
                    sol = _solver(backend, solvers)(xbar, v_in)
                except Exception as exc:
                    rows.append(_failure("closed form", name, size, backend, "linear", exc))
                    continue
                err = float(np.abs(sol.cell_voltages - expected).max() / np.abs(v_in).max())
                checks = {"closed_form": err}
                rows.append(CheckResult("closed form", name, size, backend, "linear", math.nan,
                                        math.nan, float(sol.nf), checks,
                                        _passed(checks, "linear")))
    return rows


def _identity_rows(backends: Sequence[str],
                   solvers: dict[str, Solver] | None) -> list[CheckResult]:
    rows = []
    for name, m, n, r_row, r_col, r_driver, r_sense, seed in IDENTITY_CASES:
        xbar = Crossbar.random(m, n, r_row=r_row, r_col=r_col, r_driver=r_driver,
                               r_sense=r_sense, g_off=1e-5, g_on=1e-3, seed=seed)
        v_in = np.random.default_rng(seed).uniform(0.05, 0.3, m)
        ideal = xbar.replace(r_row=0.0, r_col=0.0, r_driver=0.0, r_sense=0.0)
        for backend in backends:
            try:
                run = _solver(backend, solvers)
                sol = run(xbar, v_in)
                ideal_sol = run(ideal, v_in)
            except Exception as exc:
                rows.append(_failure("identity", name, f"{m}x{n}", backend, "linear", exc))
                continue
            expected = v_in @ xbar.conductance
            checks = {
                "kcl": kcl_error(sol),
                "power_balance": power_balance_error(sol),
                "ideal": float(np.abs(ideal_sol.column_currents - expected).max()
                               / np.abs(expected).max()),
            }
            rows.append(CheckResult("identity", name, f"{m}x{n}", backend, "linear", math.nan,
                                    math.nan, float(sol.nf), checks, _passed(checks, "linear")))
    return rows


def run_validation(
    backends: Sequence[str] = ("nodal", "reference"),
    *,
    quick: bool = False,
    solvers: dict[str, Solver] | None = None,
    directory: Path = REFERENCE_DIR,
    families: Sequence[str] = ("corpus", "closed form", "identity"),
    mode: str = "auto",
    progress: bool = False,
) -> list[CheckResult]:
    """Check backends against the corpus, the closed forms and the identities.

    Parameters
    ----------
    backends : sequence of str
        Backend names to check (``"ngspice"`` re-runs ngspice live on every corpus
        case and compares with the committed results).
    quick : bool
        Only the corpus cases up to 32x32 (:data:`validation.cases.QUICK_CASES`).
    solvers : dict, optional
        Extra solvers under test by name, ``(crossbar, v_in) -> CrossbarSolution``;
        a name here overrides a backend of the same name.
    directory : Path
        Corpus location.
    families : sequence of str
        Which families of checks to run.
    mode : {"auto", "subprocess", "shared"}
        How the ``"ngspice"`` backend runs ngspice.
    progress : bool
        Show a progress bar (tqdm, on stderr) over the corpus runs.

    Returns
    -------
    list of CheckResult
    """
    names = list(backends) + [s for s in (solvers or {}) if s not in backends]
    rows: list[CheckResult] = []
    if "corpus" in families:
        rows += _corpus_rows(QUICK_CASES if quick else CASES, names, solvers, directory, mode,
                             progress)
    if "closed form" in families:
        rows += _closed_form_rows([b for b in names if b != "ngspice" or not quick], solvers)
    if "identity" in families:
        rows += _identity_rows([b for b in names if b != "ngspice" or not quick], solvers)
    return rows


def column_groups(n_cols: int, group: int | None = None) -> list[tuple[int, int]]:
    """Split N columns into contiguous groups ``(first, last)`` for per-group agreement.

    Parameters
    ----------
    n_cols : int
        Number of columns N.
    group : int, optional
        Columns per group; default 32 (one group for N <= 32).

    Examples
    --------
    >>> column_groups(70)
    [(0, 31), (32, 63), (64, 69)]
    """
    size = group or 32
    return [(a, min(a + size, n_cols) - 1) for a in range(0, n_cols, size)]


def validate_spec(crossbar: Crossbar, v_in: np.ndarray,
                  backends: Sequence[str] = ("nodal", "reference"), *,
                  timeout: float | None = None, mode: str = "auto", progress: bool = False,
                  group: int | None = None) -> list[CheckResult]:
    """Validate a user's own array: ngspice live versus each backend, plus identities.

    The ``"reference"`` backend (SciPy SuperLU with iterative refinement, independent of
    the compiled nodal solver) is compared with ngspice too: where ngspice cannot run
    (arrays above 512x512), it is the second yardstick.

    Parameters
    ----------
    crossbar : Crossbar
        The user's array.
    v_in : ndarray, shape (M,)
        Input voltages in volts.
    backends : sequence of str
        Backends to compare with ngspice.
    timeout : float, optional
        Seconds allowed for the ngspice run.
    mode : {"auto", "subprocess", "shared"}
        How ngspice runs.
    progress : bool
        Show a progress bar (tqdm, on stderr): the ngspice run, then each backend.
    group : int, optional
        Columns per group for the per-group rows (default 32).

    Returns
    -------
    list of CheckResult
        Per backend: one row for the whole array, then one per column group
        (``case`` = ``"columns a-b"``), whose current error is relative to the
        array's largest column current.
    """
    from xbar_circuit.netlists import capabilities, estimate_seconds

    options: dict[str, Any] = {"mode": mode}
    if timeout is not None:
        options["timeout"] = timeout
    size = f"{crossbar.n_rows}x{crossbar.n_cols}"
    model = model_name(crossbar)
    bar = _progress(1 + len(backends), "validate", progress)
    try:
        caps = capabilities(mode)
        guess = estimate_seconds(crossbar.n_rows, crossbar.n_cols, caps.klu)
        bar.set_postfix_str(f"ngspice {caps.version} {caps.solver}, about {guess:.0f} s")
    except Exception:  # the solve below reports a missing ngspice with its own error
        bar.set_postfix_str("ngspice")
    with warnings.catch_warnings():
        # The user asked for this run; the bar shows the estimate instead.
        warnings.simplefilter("ignore", NgspiceCostWarning)
        spice = solve(crossbar, v_in, backend="ngspice", **options)
    bar.update()
    rows = []
    scale = float(np.abs(spice.column_currents).max())
    for backend in backends:
        bar.set_postfix_str(backend)
        try:
            sol = solve(crossbar, v_in, backend=backend)
        except Exception as exc:
            rows.append(_failure("your spec vs ngspice", "spec", size, backend, model, exc))
            bar.update()
            continue
        bar.update()
        cur, volt = compare_to_reference(sol, spice.row_voltages, spice.column_voltages,
                                         spice.column_currents)
        checks = {"column_currents": cur, "node_voltages": volt}
        if crossbar.is_default_topology:
            # the KCL / power identities of checks.py are written for the default circuit
            checks["kcl"] = kcl_error(sol)
            checks["power_balance"] = power_balance_error(sol)
        rows.append(CheckResult("your spec vs ngspice", "all columns", size, backend, model,
                                cur, volt, float(sol.nf), checks, _passed(checks, model),
                                note=f"{spice.info['ngspice_version']} "
                                     f"{spice.info['matrix_solver']} {spice.info['mode']}"))
        groups = column_groups(crossbar.n_cols, group)
        if len(groups) > 1:
            for first, last in groups:
                cols = slice(first, last + 1)
                diff = np.abs(sol.column_currents[cols] - spice.column_currents[cols]).max()
                g_cur = float(diff / scale) if scale > 0 else float(diff)
                g_volt = float(max(
                    np.abs(sol.row_voltages[:, cols] - spice.row_voltages[:, cols]).max(),
                    np.abs(sol.column_voltages[:, cols] - spice.column_voltages[:, cols]).max()))
                g_checks = {"column_currents": g_cur, "node_voltages": g_volt}
                nf = float(np.nanmean(sol.nf_columns[cols])) if np.any(
                    np.isfinite(sol.nf_columns[cols])) else math.nan
                rows.append(CheckResult("your spec vs ngspice", f"columns {first}-{last}", size,
                                        backend, model, g_cur, g_volt, nf, g_checks,
                                        _passed(g_checks, model)))
    bar.close()
    return rows


def model_name(crossbar: Crossbar) -> str:
    """Tolerance family of a spec's device: ``linear``, ``sinh``, ``1s1r`` or ``1t1r``."""
    if crossbar.is_linear:
        return "linear"
    kind = crossbar.device.kind
    return kind if kind in ("sinh", "1s1r", "1t1r") else "sinh"


def _fmt(value: float, spec: str = ".2e") -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) \
        else format(value, spec)


def format_table(rows: Sequence[CheckResult], markdown: bool = False) -> str:
    """Render the rows as a plain-text or Markdown table."""
    header = ["family", "case", "size", "backend", "max rel err I_col", "max abs err V [V]",
              "other checks", "NF", "result"]
    lines = []
    body = []
    for r in rows:
        other = ", ".join(f"{k} {v:.1e}" for k, v in r.checks.items()
                          if k not in ("column_currents", "node_voltages"))
        body.append([r.family, r.case, r.size, r.backend, _fmt(r.current_error),
                     _fmt(r.voltage_error), other or "–", _fmt(r.nf, ".3e"),
                     "pass" if r.passed else f"FAIL {r.note}".strip()])
    if markdown:
        lines.append("| " + " | ".join(header) + " |")
        lines.append("|" + "---|" * len(header))
        lines += ["| " + " | ".join(row) + " |" for row in body]
        return "\n".join(lines)
    widths = [max(len(str(x)) for x in col) for col in zip(header, *body, strict=False)]
    fmt_row = lambda row: "  ".join(str(x).ljust(w) for x, w in zip(row, widths, strict=False))  # noqa: E731
    lines.append(fmt_row(header))
    lines.append("  ".join("-" * w for w in widths))
    lines += [fmt_row(row) for row in body]
    return "\n".join(lines)


def _yardstick_lines(rows: Sequence[CheckResult]) -> list[str]:
    """The report's paragraph on the second yardstick: reference backend vs ngspice."""
    pairs = [r for r in rows if r.backend == "reference" and r.family == "ngspice corpus"
             and math.isfinite(r.current_error)]
    if not pairs:
        return []
    worst = max(pairs, key=lambda r: r.current_error)
    largest = max(pairs, key=lambda r: _cells(r.size))
    failed = [r.case for r in pairs if not r.passed]
    return [
        "## The second yardstick",
        "",
        "Beyond SPICE's reach (above 512x512, where even ngspice with KLU needs minutes "
        "and gigabytes per input vector) the `reference` backend (SciPy SuperLU with "
        "iterative refinement, written independently of the compiled nodal solver) is the "
        "yardstick. Where both run, it agrees with ngspice: over "
        f"{len(pairs)} corpus cases up to {largest.size}, the largest column-current "
        f"difference is {worst.current_error:.1e} relative ({worst.case}); at "
        f"{largest.size} it is {largest.current_error:.1e} relative and "
        f"{largest.voltage_error:.1e} V on node voltages"
        + (f"; FAIL: {', '.join(failed)}." if failed else "."),
        "",
    ]


def _cells(size: str) -> int:
    rows_, cols_ = (int(x) for x in size.split("x"))
    return rows_ * cols_


def write_report(rows: Sequence[CheckResult], path: Path, figures: Path, command: str,
                 directory: Path = REFERENCE_DIR) -> list[Path]:
    """Write the Markdown report and the parity plots; return the files written."""
    from xbar_circuit._optional import import_optional

    matplotlib = import_optional("matplotlib", "the validation report's parity plots")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from xbar_circuit import __version__
    from xbar_circuit.netlists import find_ngspice, ngspice_capabilities

    figures.mkdir(parents=True, exist_ok=True)
    manifest = load_manifest(directory)
    if find_ngspice():
        caps = ngspice_capabilities()
        live_version = f"{caps.version}, matrix solver {caps.solver}"
    else:
        live_version = "not installed"
    written = []

    corpus_rows = [r for r in rows if r.family in ("ngspice corpus", "live ngspice")]
    if corpus_rows:
        fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
        backends = sorted({r.backend for r in corpus_rows})
        for backend in backends:
            pairs = [r.currents for r in corpus_rows if r.backend == backend and r.currents]
            ours = [np.abs(p[0]) for p in pairs]
            theirs = [np.abs(p[1]) for p in pairs]
            if ours:
                axes[0].loglog(np.concatenate(theirs), np.concatenate(ours), ".", ms=3,
                               label=backend, alpha=0.6)
        lim = axes[0].get_xlim()
        axes[0].plot(lim, lim, "k-", lw=0.5)
        axes[0].set_xlabel("|I_col| ngspice (committed corpus) [A]")
        axes[0].set_ylabel("|I_col| backend [A]")
        axes[0].set_title("Column currents: backend vs ngspice")
        axes[0].legend()
        for backend in backends:
            errs = [max(r.current_error, 1e-18) for r in corpus_rows
                    if r.backend == backend and not r.note]
            if errs:
                axes[1].hist(np.log10(errs), bins=20, alpha=0.6,
                             label=f"{backend} (errors of 0 drawn at 1e-18)")
        axes[1].axvline(np.log10(tolerance_for("column_currents")), color="k", ls="--",
                        label="tolerance")
        axes[1].set_xlabel("log10 max relative error of column currents, per case")
        axes[1].set_ylabel("cases")
        axes[1].set_title("Error histogram")
        axes[1].legend()
        fig.tight_layout()
        parity = figures / "validation_parity.png"
        fig.savefig(parity, dpi=110)
        plt.close(fig)
        written.append(parity)

    failed = [r for r in rows if not r.passed]
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    tol_lines = ["| quantity | model | tolerance | kind | reason |", "|---|---|---|---|---|"]
    tol_lines += [f"| {t.quantity} | {t.model} | {t.value:g} | {t.kind} | {t.reason} |"
                  for t in TOLERANCES.values()]
    rel = os.path.relpath(figures, path.parent)
    text = [
        "# Validation report",
        "",
        f"Generated {now} by `{command}` with xbar-circuit {__version__} on "
        f"{platform.machine()}, {os.cpu_count()} cores ({platform.platform()}).",
        "",
        f"- Reference corpus: {len(manifest['cases'])} cases generated "
        f"{manifest['generated']} with {manifest['ngspice_version']}, matrix solver "
        f"{manifest.get('matrix_solver', 'Sparse 1.3')}, {manifest.get('mode', 'subprocess')} "
        f"mode (`{manifest['command']}`).",
        f"- ngspice on this machine: {live_version}.",
        f"- Result: **{len(rows) - len(failed)} of {len(rows)} checks pass**"
        + (f"; {len(failed)} FAIL." if failed else "."),
        "",
        "Families: *ngspice corpus* compares a backend with the committed ngspice "
        "results; *live ngspice* re-runs ngspice now on the committed decks; *closed "
        "form* is the cosh solution of docs/convention.md §3 (error: max |ΔV_cell| / V_in); "
        "*identity* is Kirchhoff's current law at every node, power balance and the ideal limit. "
        "Column-current errors are relative to the case's largest column current; NF is "
        "the mean column nonideality factor (docs/convention.md §2).",
        "",
        "## Tolerances",
        "",
        *tol_lines,
        "",
        *_yardstick_lines(rows),
        "## Results",
        "",
        format_table(rows, markdown=True),
        "",
    ]
    if written:
        text += ["## Parity", "", f"![parity]({rel}/validation_parity.png)", ""]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(text))
    written.insert(0, path)
    return written
