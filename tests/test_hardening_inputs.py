"""Hostile and careless inputs to Crossbar, solve() and the xbar command: each gives a
named XbarError (never a raw NumPy/JSON exception, a warning, or a silently wrong
answer), and requests beyond the machine's memory are refused before allocating."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from click.testing import CliRunner

import xbar_circuit.api as api
from xbar_circuit import Crossbar, InputError, SpecError, solve
from xbar_circuit._memory import available_bytes, solve_bytes
from xbar_circuit._validate import (
    as_real_array,
    check_int,
    check_real,
    load_json,
    short_repr,
)
from xbar_circuit.backends import backend_solver
from xbar_circuit.cli import main
from xbar_circuit.errors import MemoryLimitError, NonFiniteResultError, ResultError, XbarError
from xbar_circuit.solution import BackendOutput

pytestmark = pytest.mark.timeout(60)

G = np.full((2, 3), 1e-4)


# ------------------------------------------------------------------- Crossbar
@pytest.mark.parametrize(("conductance", "message"), [
    ([[True, 1e-4, 1e-4], [1e-4, 1e-4, 1e-4]], r"found True \(type bool\)"),
    (np.ones((2, 3), dtype=bool), "got booleans"),
    ([["1e-4", "1e-4", "1e-4"]] * 2, "got strings"),
    ([[1e-4, "1e-4", 1e-4]] * 2, "must be real numbers"),
    ([[1e-4, None, 1e-4]] * 2, "NoneType"),
    (np.array([["1e-4"] * 3] * 2), "got strings"),
    ([[1e-4, 2e-4], [1e-4]], "ragged"),
    ([[10**400, 1e-4, 1e-4]] * 2, "too large for a float"),
    (np.full((2, 3), 1e30), r"conductance must be <= 1e\+06 S; conductance\[0, 0\] = 1e\+30"),
    ("1e-4", "got the string"),
])
def test_conductance_must_be_real_numbers_in_range(conductance, message) -> None:
    with pytest.raises(SpecError, match=message):
        Crossbar(conductance, r_row=1.0, r_col=1.0)


@pytest.mark.parametrize(("field", "value", "message"), [
    ("r_row", 1e300, r"r_row must be <= 1e\+12 ohm"),
    ("r_driver", np.float64("nan"), "r_driver must be finite"),
    ("r_sense", 1 + 0j, "r_sense must be a real number"),
    ("r_col", [[True] * 3] * 2, "r_col must be real numbers"),
    ("r_col", np.full((2, 3), 1e13), r"r_col must be finite and >= 0 ohm \(at most 1e\+12"),
    ("sense_load", "10", "sense_load must be a real number"),
])
def test_resistances_use_the_shared_validators(field, value, message) -> None:
    with pytest.raises(SpecError, match=message):
        Crossbar(G, **{"r_row": 1.0, "r_col": 1.0, field: value})


def test_random_refuses_bad_arguments_before_drawing() -> None:
    for kwargs, message in (({"g_off": "a"}, "g_off must be a real number"),
                            ({"g_on": 1e9}, r"g_on must be <= 1e\+06 S"),
                            ({"g_off": 1e-4, "g_on": 1e-6}, "g_off <= g_on"),
                            ({"density": True}, "density must be a real number"),
                            ({"seed": -1}, "seed must be an integer >= 0"),
                            ({"seed": "x"}, "seed must be an integer")):
        with pytest.raises(SpecError, match=message):
            Crossbar.random(2, 2, r_row=1.0, r_col=1.0, **kwargs)
    with pytest.raises(SpecError, match="n_cols must be an integer >= 1"):
        Crossbar.random(2, True, r_row=1.0, r_col=1.0)


def test_former_conductance_names_still_draw_the_same_array() -> None:
    new = Crossbar.random(3, 4, r_row=1.0, r_col=1.0, g_off=2e-6, g_on=3e-5, seed=4)
    with pytest.warns(DeprecationWarning, match="'g_m(in|ax)' is now called 'g_o(ff|n)'"):
        old = Crossbar.random(3, 4, r_row=1.0, r_col=1.0, g_min=2e-6, g_max=3e-5, seed=4)
    assert np.array_equal(new.conductance, old.conductance)
    assert new.conductance.min() >= 2e-6 and new.conductance.max() <= 3e-5
    with pytest.raises(TypeError, match="pass 'g_off' only"):
        Crossbar.random(2, 2, r_row=1.0, r_col=1.0, g_off=1e-6 * 2, g_min=1e-6)


@pytest.mark.timeout(60)    # allocating 300 GB first would swap or be killed, not return
def test_absurd_sizes_are_refused_before_allocating() -> None:
    if available_bytes() is None:
        pytest.skip("the available memory cannot be read on this machine")
    with pytest.raises(MemoryLimitError, match=r"random 200000x200000 crossbar needs at least "
                                               r".* GiB .* available") as err:
        Crossbar.random(200000, 200000, r_row=1.0, r_col=1.0)
    assert err.value.needed >= 3 * 200000**2 * 8 > err.value.available
    assert isinstance(err.value, InputError)


def test_memory_limit_environment_variable(monkeypatch) -> None:
    monkeypatch.setenv("XBAR_MEMORY_LIMIT", "1M")
    with pytest.raises(MemoryLimitError, match=r"only 1\.0 MiB"):
        Crossbar.random(512, 512, r_row=1.0, r_col=1.0)
    with pytest.raises(MemoryLimitError, match="conductance array"):
        Crossbar(np.full((400, 400), 1e-4), r_row=1.0, r_col=1.0)
    monkeypatch.setenv("XBAR_MEMORY_LIMIT", "lots")
    with pytest.raises(InputError, match="XBAR_MEMORY_LIMIT must be"):
        Crossbar.random(2, 2, r_row=1.0, r_col=1.0)


# ------------------------------------------------------------------- spec files
def test_version_1_specs_refuse_per_segment_wires() -> None:
    segments = Crossbar(G, r_row=np.ones((2, 3)), r_col=1.0)
    data = segments.to_dict()
    assert data["version"] == 2
    assert Crossbar.from_dict(data) == segments
    data = {k: v for k, v in data.items()
            if k not in ("device", "driver_side", "sense_side", "tia", "sense_load")}
    data["version"] = 1
    with pytest.raises(SpecError, match="version 1 takes scalar wire resistances only; r_row"):
        Crossbar.from_dict(data)


@pytest.mark.parametrize("text", [
    '{"format": "xbar-circuit/crossbar", "version": 1, "conductance": [[1e-4]], '
    '"r_row": ' + "1" * 4301 + ', "r_col": 1}',
    '{"format": "xbar-circuit/crossbar", "version": ' + "1" * 5000 + "}",
    '{"format": "xbar-circuit/crossbar", "version": 1, "conductance": [[true]], '
    '"r_row": 1, "r_col": 1}',
    '{"format": "xbar-circuit/crossbar", "version": 1, "conductance": [["1e-4"]], '
    '"r_row": 1, "r_col": 1}',
    '{"format": "xbar-circuit/crossbar", "version": true, "conductance": [[1e-4]], '
    '"r_row": 1, "r_col": 1}',
    b'\xff\xfe{"format": 1}',
])
def test_spec_json_failures_are_spec_errors(text) -> None:
    with pytest.raises(SpecError) as err:
        Crossbar.from_json(text)
    assert type(err.value) is SpecError and len(str(err.value)) < 500


def test_spec_messages_are_bounded() -> None:
    data = json.loads(Crossbar(G, r_row=1.0, r_col=1.0).to_json())
    data["format"] = ["x" * 1000] * 1000
    with pytest.raises(SpecError) as err:
        Crossbar.from_dict(data)
    assert len(str(err.value)) < 400


# --------------------------------------------------------------------- solve()
@pytest.mark.parametrize("backend", ["nodal", "reference"])
@pytest.mark.parametrize(("v_in", "message"), [
    (np.array([0.2, 0.1 + 1e-3j]), "got complex numbers"),
    ([0.2, 0.1j], "complex"),
    (np.array([True, False]), "got booleans"),
    ([0.2, True], "found True"),
    ("0.2", "got the string"),
    (["0.2", "0.2"], "got strings"),
    ([0.2, None], "NoneType"),
    ([0.2, 1e308], r"\|v_in\| must be <= 1e\+06 V; v_in\[1\] = 1e\+308"),
    ([[0.2, 0.2], [-2e6, 0.0]], r"v_in\[1, 0\] = -2000000\.0"),
    ([0.2, 10**400], "too large for a float"),
])
def test_non_real_or_huge_inputs_are_input_errors(backend, v_in, message) -> None:
    xbar = Crossbar(G, r_row=1.0, r_col=1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no ComplexWarning on the way to the error
        with pytest.raises(InputError, match=message):
            solve(xbar, v_in, backend=backend)


def test_solve_refuses_requests_beyond_memory(monkeypatch) -> None:
    xbar = Crossbar.random(32, 32, r_row=1.0, r_col=1.0, seed=0)
    monkeypatch.setenv("XBAR_MEMORY_LIMIT", "2M")
    batch = np.full((200, 32), 0.2)
    for backend in ("nodal", "reference"):
        with pytest.raises(MemoryLimitError, match=rf"32x32 crossbar for 200 .*'{backend}'"):
            solve(xbar, batch, backend=backend)
    assert solve_bytes(32, 32, 200, "nodal") > 2 * 2**20
    small = solve(xbar, batch[:2], backend="nodal")  # the same array, fewer vectors
    assert small.column_currents.shape == (2, 32)
    monkeypatch.setenv("XBAR_MEMORY_LIMIT", "20M")
    big = Crossbar.random(128, 128, r_row=1.0, r_col=1.0, seed=0)
    with pytest.raises(MemoryLimitError, match="use_effective=True"):
        solve(big, np.full(128, 0.2), use_effective=True)


def fake_backend(**fields):
    """A backend returning the reference solution with some arrays replaced."""
    real = backend_solver("reference")

    def solver(crossbar, v_batch, **options):
        out = real(crossbar, v_batch, **options)
        for name, edit in fields.items():
            setattr(out, name, edit(np.array(getattr(out, name))))
        return out
    return solver


def _nan_first(a):
    a.flat[0] = np.nan
    return a


@pytest.mark.parametrize(("fields", "error", "message"), [
    ({"column_currents": _nan_first}, NonFiniteResultError, r"non-finite column_currents"),
    ({"row_voltages": _nan_first}, NonFiniteResultError, r"row_voltages\[0, 0, 0\] = nan"),
    ({"column_voltages": lambda a: a + 1.0}, ResultError, "outside the range of the sources"),
    ({"row_voltages": lambda a: -a}, ResultError, "outside the range of the sources"),
    ({"column_currents": lambda a: 3 * a}, ResultError, "beyond the largest current"),
])
def test_impossible_backend_results_are_refused(monkeypatch, fields, error, message) -> None:
    monkeypatch.setattr(api, "backend_solver", lambda name: fake_backend(**fields))
    xbar = Crossbar.random(4, 5, r_row=1.0, r_col=1.0, seed=2)
    with pytest.raises(error, match=message):
        solve(xbar, np.full(4, 0.2), backend="reference")


def test_output_check_accepts_exact_results_of_every_input_sign() -> None:
    xbar = Crossbar.random(6, 5, r_row=5.0, r_col=5.0, r_driver=20.0, seed=3)
    v = np.array([[0.3, -0.2, 0.0, 0.1, -0.4, 0.2], [0.0] * 6])
    for backend in ("nodal", "reference"):
        sol = solve(xbar, v, backend=backend)
        api.check_output(xbar, v, backend, BackendOutput(
            sol.row_voltages, sol.column_voltages, sol.column_currents))
        assert np.all(sol.column_currents[1] == 0.0)


# ------------------------------------------------------------------- validators
def test_shared_validators() -> None:
    assert check_int("n", np.int64(3), 1) == 3
    assert check_int("n", 16.0, 1, integral_float=True) == 16
    for value in (True, 2.5, "3", None, 3 + 0j):
        with pytest.raises(InputError, match="n must be an integer"):
            check_int("n", value, 1)
    with pytest.raises(SpecError, match=r"n must be an integer in \[1, 4\], got 5"):
        check_int("n", 5, 1, 4, error=SpecError)
    assert check_real("x", np.float32(0.5), 0.0, 1.0) == 0.5
    assert check_real("x", np.array(2.0)) == 2.0
    for value, message in ((np.bool_(True), "real number"), ("1", "real number"),
                           (float("nan"), "finite"), (10**400, "too large"),
                           (0.0, "> 0")):
        with pytest.raises(InputError, match=message):
            check_real("x", value, 0.0, lo_open=True)
    assert as_real_array("a", [[1, 2], [3, 4]]).dtype == np.float64
    deep: list = [1.0] * 9
    for _ in range(9):
        deep = [deep] * 9  # 9**10 leaves, shared: repr would never finish
    assert len(short_repr(deep)) <= 200
    for text, message in (("[" * 100000, "nested too deeply"), ("9" * 4400, "4400 digits"),
                          (b"\xff", "not valid JSON"), ("{", "not valid JSON")):
        with pytest.raises(SpecError, match=message):
            load_json(text, "x", error=SpecError)
    assert load_json("-" + "9" * 300, "x") == -int("9" * 300)


# ------------------------------------------------------------------- the CLI
def invoke(*args: str):
    result = CliRunner().invoke(main, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        repr(result.exception)
    return result


@pytest.mark.parametrize("value", ["inf", "nan", "-1", "-inf"])
def test_timeout_must_be_finite_and_positive(value, tmp_path) -> None:
    result = invoke("solve", "--random", "3x3", "--backend", "ngspice", "--timeout", value)
    assert result.exit_code == 2 and "--timeout must be" in result.output
    Crossbar(G, r_row=1.0, r_col=1.0).save(tmp_path / "spec.json")
    result = invoke("validate", "--spec", str(tmp_path / "spec.json"), "--timeout", value)
    assert result.exit_code == 2 and "--timeout must be" in result.output
    result = invoke("solve", "--random", "3x3", "--rtol", value if value != "-1" else "nan")
    assert result.exit_code == 2 and "--rtol must be" in result.output


@pytest.mark.parametrize(("name", "content", "message"), [
    ("v.json", "[" * 100000 + "]" * 100000, "nested too deeply"),
    ("v.json", "[" + "1" * 4400 + ", 0, 0]", "4400 digits"),
    ("v.json", "[true, false, true]", "got booleans"),
    ("v.json", "[0.1, true, 0.2]", "found True"),
    ("v.json", '["0.1", "0.2", "0.3"]', "got strings"),
    ("v.json", "[0.1, 0.2, 1e999]", "v_in[2] = inf"),
    ("v.txt", "0.1 0.2 1e308", "|v_in| must be <= 1e+06 V"),
])
def test_bad_v_in_files_are_clear_errors(tmp_path, name, content, message) -> None:
    path = tmp_path / name
    path.write_text(content)
    result = invoke("solve", "--random", "3x3", "--v-in", str(path))
    assert result.exit_code in (1, 2) and message in result.output, result.output
    assert "Traceback" not in result.output


def test_npy_v_in_declaring_a_huge_array_is_refused_from_its_header(tmp_path) -> None:
    path = tmp_path / "v.npy"
    header = {"descr": "<f8", "fortran_order": False, "shape": (10**12,)}
    with open(path, "wb") as handle:
        np.lib.format.write_array_header_1_0(handle, header)
        handle.write(b"\0" * 24)
    result = invoke("solve", "--random", "3x3", "--v-in", str(path))
    assert result.exit_code == 2 and "shape (1000000000000,)" in result.output


@pytest.mark.parametrize(("args", "message"), [
    (["solve", "--random", "200000x200000"], "needs at least"),
    (["solve", "--random", "3x3", "--g-on", "1e30"], "g_on must be <="),
    (["solve", "--random", "3x3", "--r-row", "nan"], "r_row must be finite"),
    (["solve", "--random", "3x3", "--density", "nan"], "density must be finite"),
    (["solve", "--random", "3x3", "--v-in", "1e308"], "|v_in| must be <="),
    (["solve", "--random", "3x3", "--v-in", "nan"], "v_in must be finite"),
    (["solve", "--random", "1" * 5000 + "x2"], "size must look like"),
    (["netlist", "--random", "3x3", "--v-in", "1e300"], "|v_in| must be <="),
])
def test_cli_user_errors_are_named(args, message) -> None:
    if "200000x200000" in args[2] and available_bytes() is None:
        pytest.skip("the available memory cannot be read on this machine")
    result = invoke(*args)
    assert result.exit_code in (1, 2) and message in result.output, result.output


def test_every_error_class_is_an_xbar_error() -> None:
    for cls in (MemoryLimitError, NonFiniteResultError, ResultError):
        assert issubclass(cls, XbarError)


def test_inputs_guide_example_runs(tmp_path, monkeypatch, capsys) -> None:
    import re
    from pathlib import Path

    guide = Path(__file__).resolve().parent.parent / "docs" / "inputs.md"
    blocks = re.findall(r"```python\n(.*?)```", guide.read_text(), re.S)
    assert blocks
    monkeypatch.chdir(tmp_path)
    for index, code in enumerate(blocks):
        exec(compile(code, f"docs/inputs.md, example {index}", "exec"), {})
    printed = capsys.readouterr().out
    assert printed.count("InputError - ") == 4 and "found True" in printed
