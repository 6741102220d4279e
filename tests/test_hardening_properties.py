"""Property tests over every entry point a user reaches: any input either works or raises
an XbarError subclass. No other exception type, no crash, no hang (each test has a
timeout and hypothesis runs a bounded, derandomized set of examples)."""

from __future__ import annotations

import io
import json
import math
import os
import shutil
import zipfile

import numpy as np
import pytest
from click.testing import CliRunner

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from xbar_circuit import TIA, Crossbar, solve  # noqa: E402
from xbar_circuit.cli import main  # noqa: E402
from xbar_circuit.errors import XbarError  # noqa: E402

pytestmark = pytest.mark.timeout(240)

BOUNDED = settings(max_examples=50, deadline=None, derandomize=True, database=None,
                   suppress_health_check=[HealthCheck.too_slow,
                                          HealthCheck.function_scoped_fixture,
                                          HealthCheck.data_too_large])
FEW = settings(BOUNDED, max_examples=20)

# ------------------------------------------------------------------ strategies
EDGE_FLOATS = [0.0, -0.0, 1e-300, 5e-324, 1e-6, 1e-4, 1.0, 1e6, 1e12, 1e13, 1e30, 1e308,
               -1.0, -1e-9, math.inf, -math.inf, math.nan]
numbers = st.one_of(st.sampled_from(EDGE_FLOATS), st.floats(allow_nan=True),
                    st.integers(min_value=-10**5, max_value=10**5),
                    st.sampled_from([10**20, 10**400, -(10**400)]))
scalars = st.one_of(numbers, st.booleans(), st.none(), st.text(max_size=8),
                    st.sampled_from(["1e-4", "0.2", "nan", "1", "x" * 300]),
                    st.complex_numbers(allow_nan=True),
                    st.sampled_from([np.float32(1e-4), np.int64(2), np.bool_(True),
                                     np.array(1.0), np.array([1.0, 2.0])]))
json_like = st.recursive(
    st.one_of(st.none(), st.booleans(), st.floats(allow_nan=False, allow_infinity=False),
              st.integers(min_value=-10**30, max_value=10**30), st.text(max_size=6)),
    lambda children: st.one_of(st.lists(children, max_size=4),
                               st.dictionaries(st.text(max_size=6), children, max_size=4)),
    max_leaves=12)
anything = st.one_of(scalars, json_like)

shapes = st.tuples(st.integers(0, 4), st.integers(0, 4))


def _float(x) -> float:
    """``x`` as a float, integers beyond the float range becoming signed infinities."""
    try:
        return float(x)
    except OverflowError:
        return math.inf if x > 0 else -math.inf


@st.composite
def arrays(draw, shape=None, elements=None):
    """Arrays of awkward dtypes and values, or nested lists of mixed Python values."""
    shape = draw(shapes) if shape is None else shape
    kind = draw(st.sampled_from(["f8", "f4", "i8", "bool", "c16", "U4", "O", "list"]))
    size = int(np.prod(shape))
    elements = numbers if elements is None else elements
    items = draw(st.lists(elements, min_size=size, max_size=size))
    if kind == "list":
        mixed = draw(st.lists(st.one_of(elements, scalars), min_size=size,
                              max_size=size))
        return np.array(mixed, dtype=object).reshape(shape).tolist() if size else []
    with np.errstate(all="ignore"):
        if kind in ("f8", "f4", "c16"):
            values = [_float(x) for x in items]
            return np.array(values, dtype=kind).reshape(shape)
        if kind == "i8":
            return np.array([int(x) if math.isfinite(_float(x)) and abs(x) < 2**62 else 0
                             for x in items], dtype=np.int64).reshape(shape)
        if kind == "bool":
            return np.array([bool(x) for x in items], dtype=bool).reshape(shape)
        if kind == "U4":
            return np.array([str(x)[:4] for x in items]).reshape(shape)
        return np.array(items, dtype=object).reshape(shape)


conductances = st.floats(min_value=0.0, max_value=1e-3)
good_arrays = st.builds(lambda g: g, st.integers(1, 4).flatmap(
    lambda m: st.integers(1, 4).flatmap(
        lambda n: st.lists(st.one_of(conductances, st.sampled_from([0.0, 1e-300, 1e6])),
                           min_size=m * n, max_size=m * n).map(
            lambda v: np.array(v).reshape(m, n)))))
resistances = st.one_of(st.sampled_from([0.0, 1e-9, 1.0, 1e3, 1e12]),
                        st.floats(min_value=0.0, max_value=1e12))


def xbar_error_or_ok(call):
    """Run ``call``; return its value, or None when it raised an XbarError."""
    try:
        return call()
    except XbarError as exc:
        assert str(exc), "an XbarError must say what is wrong"
        assert len(str(exc)) < 2000, "messages are bounded"
        return None


def valid_crossbar(draw) -> Crossbar:
    g = draw(good_arrays)
    options = draw(st.fixed_dictionaries({}, optional={
        "driver_side": st.sampled_from(["left", "right", "both"]),
        "sense_side": st.sampled_from(["bottom", "top"]),
        "tia": st.builds(TIA, st.sampled_from([1.0, 1e3, 1e6]),
                         st.sampled_from([1.0, 1e4])),
        "sense_load": st.sampled_from([1.0, 1e3, 1e9]),
    }))
    if "tia" in options and "sense_load" in options:
        del options["sense_load"]
    return Crossbar(g, r_row=draw(resistances), r_col=draw(resistances),
                    r_driver=draw(resistances), r_sense=draw(resistances), **options)


# ------------------------------------------------------------------ Crossbar
@BOUNDED
@given(conductance=st.one_of(arrays(), anything), r_row=st.one_of(scalars, arrays()),
       r_col=st.one_of(scalars, arrays()), r_driver=scalars, r_sense=scalars,
       extra=st.dictionaries(st.sampled_from(["driver_side", "sense_side", "tia",
                                              "sense_load", "device"]), anything, max_size=2))
def test_crossbar_construction(conductance, r_row, r_col, r_driver, r_sense, extra) -> None:
    xbar = xbar_error_or_ok(lambda: Crossbar(conductance, r_row=r_row, r_col=r_col,
                                             r_driver=r_driver, r_sense=r_sense, **extra))
    if xbar is not None:
        g = xbar.conductance
        assert g.dtype == np.float64 and g.ndim == 2 and np.all(np.isfinite(g))
        assert np.all((g >= 0) & (g <= 1e6))
        assert Crossbar.from_json(xbar.to_json()) == xbar


@BOUNDED
@given(data=st.data())
def test_crossbar_from_json_with_mutated_fields(data) -> None:
    base = json.loads(Crossbar(np.full((2, 2), 1e-4), r_row=1.0, r_col=1.0).to_json())
    for _ in range(data.draw(st.integers(1, 3))):
        key = data.draw(st.sampled_from([*base, "device", "tia", "driver_side", "extra"]))
        base[key] = data.draw(json_like)
    version = data.draw(st.sampled_from([1, 2, None]))
    if version is not None:
        base["version"] = version
    xbar_error_or_ok(lambda: Crossbar.from_json(json.dumps(base)))
    base[data.draw(st.sampled_from([*base, "shape"]))] = data.draw(anything)
    xbar_error_or_ok(lambda: Crossbar.from_dict(base))


@BOUNDED
@given(text=st.one_of(st.text(max_size=200), st.binary(max_size=200),
                      st.sampled_from(["[" * 50000, '{"a": ' + "9" * 5000 + "}", "NaN",
                                       '{"format": "xbar-circuit/crossbar"}'])))
def test_crossbar_from_json_with_any_text(text) -> None:
    assert xbar_error_or_ok(lambda: Crossbar.from_json(text)) is None


@BOUNDED
@given(args=st.tuples(st.one_of(numbers, scalars), st.one_of(numbers, scalars)),
       kwargs=st.dictionaries(st.sampled_from(["g_off", "g_on", "density", "seed"]),
                              st.one_of(numbers, scalars), max_size=3))
def test_crossbar_random(args, kwargs) -> None:
    m, n = args
    if isinstance(m, int) and isinstance(n, int) and 4 < m * n and abs(m * n) < 10**12:
        return  # mid-size arrays only cost time; tiny and absurd ones are the cases
    xbar_error_or_ok(lambda: Crossbar.random(m, n, r_row=1.0, r_col=1.0, **kwargs))


# ------------------------------------------------------------------ solve()
@BOUNDED
@given(data=st.data(), backend=st.sampled_from(["nodal", "reference"]))
def test_solve_on_valid_crossbars(data, backend) -> None:
    xbar = data.draw(st.builds(lambda: None).flatmap(lambda _: st.composite(
        lambda d: valid_crossbar(d))()))
    m = xbar.n_rows
    v_in = data.draw(st.one_of(
        arrays(shape=data.draw(st.sampled_from([(m,), (2, m), (m + 1,), (0, m)]))),
        arrays(shape=(m,), elements=st.floats(-1.0, 1.0)), anything))
    names = st.sampled_from(["rtol", "cg_max_iter", "max_iter", "threads"])
    options = data.draw(st.dictionaries(names, anything, max_size=1))
    sol = xbar_error_or_ok(lambda: solve(xbar, v_in, backend=backend, **options))
    if sol is not None:
        assert np.all(np.isfinite(sol.column_currents))
        # The ideal product and KCL at the sense nodes: the currents the cells carry.
        v = np.atleast_2d(np.asarray(sol.v_in))
        span = max(float(np.max(np.abs(v))), 0.0)
        bound = span * xbar.conductance.sum(axis=0)
        assert np.all(np.abs(np.atleast_2d(sol.column_currents)) <= bound * 1.01 + 1e-300)


# ------------------------------------------------------------------ sweeps
SWEEP = {"grid": {"rows": [4], "cols": [4], "r_row": [1.0], "r_col": [1.0], "g_on": [1e-4],
                  "g_off": [1e-6], "density": [0.5]}, "samples": 1, "seed": 0}


@BOUNDED
@given(data=st.data())
def test_sweep_from_dict_with_mutated_fields(data) -> None:
    from xbar_circuit.tables import Sweep

    sweep = json.loads(json.dumps(SWEEP))
    for _ in range(data.draw(st.integers(1, 3))):
        where = data.draw(st.sampled_from(["top", "grid", "inputs"]))
        if where == "grid" and isinstance(sweep.get("grid"), dict):
            sweep["grid"][data.draw(st.sampled_from([*sweep["grid"], "r_driver", "x"]))] = \
                data.draw(st.one_of(anything, st.lists(numbers, max_size=3)))
        elif where == "inputs":
            sweep["inputs"] = data.draw(st.dictionaries(
                st.sampled_from(["pattern", "v_read", "density", "q"]), anything, max_size=3))
        else:
            sweep[data.draw(st.sampled_from(["samples", "seed", "name", "device", "backend",
                                             "map_max", "version", "format", "grid"]))] = \
                data.draw(anything)
    result = xbar_error_or_ok(lambda: Sweep.from_dict(sweep))
    if result is not None:
        assert Sweep.from_dict(json.loads(result.to_json())) == result


@FEW
@given(content=st.one_of(st.binary(max_size=300), st.text(max_size=300),
                         st.sampled_from(["a: &x [1]\nb: *x\n", "[" * 50, "grid: !!python/"
                                          "object:os.system 'true'", "{a: 1e-4, b: 0x10}",
                                          json.dumps(SWEEP)])),
       suffix=st.sampled_from([".yaml", ".json", ".txt"]))
def test_sweep_files_with_any_content(tmp_path_factory, content, suffix) -> None:
    from xbar_circuit.tables import Sweep

    path = tmp_path_factory.mktemp("sweep") / f"s{suffix}"
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    else:
        path.write_bytes(content)
    xbar_error_or_ok(lambda: Sweep.from_file(path))


# ------------------------------------------------------------------ tables and checkpoints
@pytest.fixture(scope="module")
def table_bytes(tmp_path_factory) -> bytes:
    from xbar_circuit.tables import Sweep, calibrate

    path = tmp_path_factory.mktemp("table") / "t.nc"
    calibrate(Sweep.from_dict(SWEEP), path, workers=0, progress=False, ngspice_check=False)
    return path.read_bytes()


@FEW
@given(flips=st.lists(st.tuples(st.floats(0.0, 1.0, exclude_max=True), st.integers(0, 255)),
                      min_size=1, max_size=8))
def test_table_files_with_corrupted_bytes(table_bytes, tmp_path_factory, flips) -> None:
    from xbar_circuit.tables import LookupTable

    data = bytearray(table_bytes)
    for where, value in flips:
        data[int(where * len(data))] = value
    path = tmp_path_factory.mktemp("flip") / "t.nc"
    path.write_bytes(bytes(data))
    table = xbar_error_or_ok(lambda: LookupTable.load(path))
    if table is not None:
        xbar = Crossbar(np.full((4, 4), 1e-4), r_row=1.0, r_col=1.0)
        assert np.isfinite(table.predict_nf(xbar, out_of_range="ignore"))


@FEW
@given(fields=st.dictionaries(
    st.sampled_from(["nf", "nf_model", "nf_first_order", "nf_columns", "cell_loss",
                     "cell_loss_std", "current_attenuation", "model_loss", "other"]),
    arrays(), max_size=8), raw=st.one_of(st.none(), st.binary(max_size=100)))
def test_checkpoint_reader_with_any_content(tmp_path_factory, fields, raw) -> None:
    from xbar_circuit.tables import Sweep
    from xbar_circuit.tables.calibration import _point_path, _read_point

    partial = str(tmp_path_factory.mktemp("partial"))
    path = _point_path(partial, 0)
    if raw is not None:
        with open(path, "wb") as handle:
            handle.write(raw)
    else:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            for key, value in fields.items():
                member = io.BytesIO()
                try:
                    np.lib.format.write_array(member, np.asarray(value), allow_pickle=True)
                except (ValueError, TypeError):
                    continue
                archive.writestr(f"{key}.npy", member.getvalue())
        with open(path, "wb") as handle:
            handle.write(buffer.getvalue())
    out = xbar_error_or_ok(lambda: _read_point(partial, 0, Sweep.from_dict(SWEEP)))
    if out is not None:
        assert all(v.dtype == np.float64 for v in out.values())


# ------------------------------------------------------------------ the command line
WORDS = ["0", "1", "-1", "2.5", "1e308", "1e-300", "nan", "inf", "-inf", "abc", "",
         "1" * 5000, "3x3", "0x0", "2x3x4", "200000x200000", "3y3", "nodal,reference",
         "nodal", "reference,spectre", "aihwkit_ir_drop", "bogus", "[1, 2]", "{}"]
words = st.one_of(st.sampled_from(WORDS), st.text(max_size=6))


@st.composite
def solve_args(draw) -> list[str]:
    command = draw(st.sampled_from(["solve", "netlist"]))
    args = [command]
    if draw(st.booleans()):
        args += ["--random", draw(st.sampled_from(["1x1", "3x4", "4x4", "0x3", "3y4",
                                                   "200000x200000", "-2x3", "x"]))]
    options = ["--seed", "--r-row", "--r-col", "--r-driver", "--r-sense", "--g-min",
               "--g-max", "--density", "--v-in", "--preset"]
    if command == "solve":
        options += ["--backend", "--compare", "--rtol", "--timeout"]
    for option in draw(st.lists(st.sampled_from(options), max_size=4, unique=True)):
        args += [option, draw(words)]
    if command == "solve" and draw(st.booleans()):
        args.append("--json")
    return args


def run_cli(args: list[str]):
    result = CliRunner().invoke(main, args)
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        f"{args!r} raised {result.exception!r}"
    assert result.exit_code in (0, 1, 2, 3), (args, result.exit_code, result.output)
    assert "Traceback" not in result.output
    return result


@BOUNDED
@given(args=solve_args())
def test_cli_solve_and_netlist_options(args) -> None:
    if any(a in args for a in ("ngspice", "nodal,ngspice")):
        return
    run_cli(args)


@FEW
@given(content=st.one_of(st.binary(max_size=100), st.sampled_from(
    ["[" * 100000, "[0.1, true, 0.2]", "[0.1, 0.2, 1e999]", "1" * 5000, "0.1 0.2 0.3",
     "0.1\n0.2\n0.3\n", '{"a": 1}'])),
       suffix=st.sampled_from([".json", ".txt", ".npy"]))
def test_cli_v_in_files_with_any_content(tmp_path_factory, content, suffix) -> None:
    path = tmp_path_factory.mktemp("vin") / f"v{suffix}"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    run_cli(["solve", "--random", "3x3", "--backend", "reference", "--v-in", str(path)])


@settings(FEW, max_examples=4)
@given(at=st.one_of(words, st.builds(json.dumps, json_like)),
       prefix=st.sampled_from(["table", "x/y", ""]))
def test_cli_plot_options(table_bytes, tmp_path_factory, at, prefix) -> None:
    folder = tmp_path_factory.mktemp("plot")
    (folder / "t.nc").write_bytes(table_bytes)
    run_cli(["plot", str(folder / "t.nc"), "--out-dir", str(folder / "out"), "--prefix", prefix,
             "--at", at])


@FEW
@given(workers=st.one_of(st.none(), words), sweep=st.one_of(
    st.just(json.dumps({**SWEEP, "samples": 0})), st.binary(max_size=60),
    st.builds(json.dumps, json_like)))
def test_cli_calibrate_options(tmp_path_factory, workers, sweep) -> None:
    folder = tmp_path_factory.mktemp("cal")
    path = folder / "s.json"
    path.write_bytes(sweep if isinstance(sweep, bytes) else sweep.encode())
    args = ["calibrate", str(path), "-o", str(folder / "t.nc"), "--no-progress",
            "--no-ngspice-check", "--serial"]
    if workers is not None:
        args += ["--workers", workers]
    result = run_cli(args)
    if result.exit_code == 0:  # a valid sweep was drawn: the table is there
        assert os.path.isfile(folder / "t.nc")


def test_cli_info_and_help() -> None:
    for args in (["info"], ["--help"], ["solve", "--help"], ["calibrate", "--help"],
                 ["plot", "--help"], ["netlist", "--help"], ["validate", "--help"]):
        assert run_cli(args).exit_code == 0


@pytest.mark.ngspice
@pytest.mark.skipif(shutil.which("ngspice") is None, reason="ngspice is not installed")
@settings(FEW, max_examples=15)
@given(data=st.data())
def test_solve_with_ngspice(data) -> None:
    xbar = data.draw(st.composite(lambda d: valid_crossbar(d))())
    m = xbar.n_rows
    v_in = data.draw(st.one_of(arrays(shape=(m,), elements=st.floats(-1.0, 1.0)),
                               arrays(shape=data.draw(st.sampled_from([(m,), (2, m)])))))
    # Timeouts a run can meet (finite, up to an hour) or that are plainly invalid.
    timeouts = st.one_of(st.floats(1.0, 3600.0), st.sampled_from([0.0, -1.0, "x", None, True]))
    options = data.draw(st.fixed_dictionaries({}, optional={
        "timeout": timeouts, "mode": st.one_of(st.sampled_from(["subprocess", "shared"]),
                                               anything)}))
    sol = xbar_error_or_ok(lambda: solve(xbar, v_in, backend="ngspice", **options))
    if sol is not None:
        assert np.all(np.isfinite(sol.column_currents))


@FEW
@given(data=st.data(), backend=st.sampled_from(["nodal", "reference"]))
def test_solve_with_nonlinear_cells(data, backend) -> None:
    from xbar_circuit import OneS1R, OneT1R, Sinh

    g = data.draw(good_arrays)
    device = data.draw(st.sampled_from([Sinh(0.5), Sinh(5.0), OneS1R(), OneT1R()]))
    xbar = Crossbar(np.where(g > 1e-3, 1e-3, g), r_row=data.draw(resistances),
                    r_col=data.draw(resistances), device=device)
    v_in = data.draw(st.one_of(arrays(shape=(xbar.n_rows,), elements=st.floats(-2.0, 2.0)),
                               anything))
    options = data.draw(st.dictionaries(st.sampled_from(["v_gate", "newton_max_iter"]),
                                        anything, max_size=1))
    sol = xbar_error_or_ok(lambda: solve(xbar, v_in, backend=backend, **options))
    if sol is not None:
        assert np.all(np.isfinite(sol.column_currents))
