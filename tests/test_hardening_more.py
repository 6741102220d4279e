"""Named errors for the last raw tracebacks: ngspice timeouts beyond what a timer takes,
and a mapping config that is not JSON."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from xbar_circuit import Crossbar, solve
from xbar_circuit.cli import main
from xbar_circuit.errors import BackendError


@pytest.mark.parametrize("timeout", [1e300, 10**400, float("inf"), float("nan"), -1.0])
def test_ngspice_timeout_out_of_range_is_named(timeout) -> None:
    xbar = Crossbar.random(3, 3, r_row=1.0, r_col=1.0, seed=0)
    with pytest.raises(BackendError, match="timeout"):
        solve(xbar, np.full(3, 0.2), backend="ngspice", timeout=timeout)


def test_map_config_that_is_not_json_is_named(tmp_path) -> None:
    weights = tmp_path / "w.npy"
    np.save(weights, np.random.default_rng(0).normal(size=(16, 8)))
    config = tmp_path / "bad.json"
    config.write_text("not json {")
    result = CliRunner().invoke(main, ["map", str(weights), "--config", str(config)])
    assert result.exit_code != 0
    assert "not valid JSON" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_preset_refuses_conflicting_explicit_options() -> None:
    result = CliRunner().invoke(main, ["solve", "--random", "6x6", "--preset",
                                       "aihwkit_ir_drop", "--r-row", "5"])
    assert result.exit_code == 2
    assert "conflicts with --r-row" in result.output


def test_preset_inputs_default_to_its_read_voltage() -> None:
    import json

    from xbar_circuit.presets import get_preset

    preset = get_preset("neurosim_rram_40nm")
    result = CliRunner().invoke(main, ["solve", "--random", "6x6", "--preset",
                                       "neurosim_rram_40nm", "--json", "--backend",
                                       "reference"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    xbar = preset.crossbar(6, 6, seed=0)
    expected = solve(xbar, np.full(6, preset.v_read), backend="reference").column_currents
    np.testing.assert_allclose(report["backends"]["reference"]["column_currents"], expected,
                               rtol=1e-12)
    explicit = CliRunner().invoke(main, ["solve", "--random", "6x6", "--preset",
                                         "neurosim_rram_40nm", "--json", "--backend",
                                         "reference", "--v-in", "0.1"])
    report = json.loads(explicit.stdout)
    expected = solve(xbar, np.full(6, 0.1), backend="reference").column_currents
    np.testing.assert_allclose(report["backends"]["reference"]["column_currents"], expected,
                               rtol=1e-12)


# --------------------------------------------------------------- Dask as users run it
SMALL_SWEEP = {"grid": {"rows": [4], "cols": [4, 5], "r_row": [1.0], "r_col": [1.0],
                        "g_on": [1e-4], "g_off": [1e-6], "density": [0.5]},
               "samples": 2, "seed": 5, "map_max": 4}


def _table(path) -> dict[str, np.ndarray]:
    import xarray as xr

    with xr.open_dataset(path, engine="h5netcdf") as ds:
        return {name: np.asarray(ds[name].values) for name in ds.data_vars}


@pytest.mark.timeout(60)
def test_unreachable_scheduler_fails_fast_with_a_named_error(tmp_path, monkeypatch) -> None:
    from xbar_circuit.tables import Sweep, calibrate
    from xbar_circuit.tables.calibration import TableError

    sweep = Sweep.from_dict(SMALL_SWEEP)
    with pytest.raises(TableError, match=r"cannot reach the Dask scheduler at tcp://127\.0\.0"):
        calibrate(sweep, tmp_path / "a.nc", scheduler="tcp://127.0.0.1:9", progress=False,
                  ngspice_check=False)
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", "tcp://127.0.0.1:9")
    with pytest.raises(TableError, match=r"127\.0\.0\.1:9"):
        calibrate(sweep, tmp_path / "b.nc", progress=False, ngspice_check=False)
    # An explicit worker count is a local run: the environment does not redirect it.
    result = calibrate(sweep, tmp_path / "c.nc", workers=0, progress=False,
                       ngspice_check=False)
    assert result.workers == 0


@pytest.mark.timeout(120)
def test_small_sweeps_run_serially_and_a_client_is_accepted(tmp_path) -> None:
    from distributed import Client, LocalCluster

    from xbar_circuit.tables import Sweep, calibrate

    sweep = Sweep.from_dict(SMALL_SWEEP)
    serial = calibrate(sweep, tmp_path / "serial.nc", progress=False, ngspice_check=False)
    assert serial.workers == 0                # default workers, 4 samples: no cluster
    with LocalCluster(n_workers=1, processes=False, dashboard_address=":0") as cluster, \
            Client(cluster) as client:
        remote = calibrate(sweep, tmp_path / "client.nc", scheduler=client, progress=False,
                           ngspice_check=False)
        assert remote.workers == 1
        assert client.status == "running"       # the caller's client is left open
    a, b = _table(tmp_path / "serial.nc"), _table(tmp_path / "client.nc")
    assert a.keys() == b.keys()
    for name in a:
        np.testing.assert_array_equal(a[name], b[name])


# -------------------------------------------------------- xbar map: any option, no crash
@pytest.mark.timeout(600)
def test_map_options_either_work_or_give_a_clean_error(tmp_path) -> None:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    weights = tmp_path / "w.npy"
    np.save(weights, np.random.default_rng(0).normal(size=(12, 6)))
    texts = st.sampled_from(["8x8", "4x4", "0x4", "axb", "8", "-4x4", "1e9x1e9", "8x8x8",
                             "2147483648x2"])
    numbers = st.sampled_from(["0", "-1", "1", "3", "16", "nan", "inf", "1e-4", "x", "1e400"])
    layouts = st.sampled_from(["naive", "mdm", "naive,mdm", "bogus", ",", "mdm,mdm"])
    configs = st.sampled_from(['{}', '[]', '{"mapping": {"weight_bits": "x"}}',
                               '{"mapping": {"tile_rows": 0}}', '{"circuit": {"r_row": -1}}',
                               '{"layouts": 5}', '{"mapping": 7}', 'null', '1' * 5000])

    outcomes: list[int] = []

    @settings(max_examples=60, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow,
                                     HealthCheck.function_scoped_fixture])
    @given(tile=texts, bits=numbers, g_on=numbers, r_row=numbers, lay=layouts,
           config=st.one_of(st.none(), configs))
    def check(tile, bits, g_on, r_row, lay, config) -> None:
        args = ["map", str(weights), "--tile", tile, "--bits", bits, "--g-on", g_on,
                "--r-row", r_row, "--layouts", lay, "--serial", "--out-dir", str(tmp_path / "out")]
        if config is not None:
            path = tmp_path / "config.json"
            path.write_text(config)
            args += ["--config", str(path)]
        result = CliRunner().invoke(main, args)
        outcomes.append(result.exit_code)
        # Exit 0, or a Click error (1 or 2) with a message: never an uncaught exception.
        assert result.exit_code in (0, 1, 2), result.output
        if result.exit_code != 0:
            assert result.exception is None or isinstance(result.exception, SystemExit), (
                args, repr(result.exception))
            assert "Error" in result.output

    check()
    # The options drawn are mostly bad; a plain valid run must still map.
    valid = CliRunner().invoke(main, ["map", str(weights), "--tile", "8x8", "--bits", "3",
                                      "--serial", "--out-dir", str(tmp_path / "ok")])
    assert valid.exit_code == 0, valid.output
    assert 2 in outcomes                        # usage errors were exercised


@pytest.mark.timeout(600)
def test_validate_options_either_work_or_give_a_clean_error(tmp_path) -> None:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    spec = tmp_path / "spec.json"
    Crossbar.random(4, 3, r_row=1.0, r_col=1.0, seed=1).save(spec)
    not_json = tmp_path / "bad.json"
    not_json.write_text("{")
    outcomes: list[int] = []

    @settings(max_examples=25, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow,
                                     HealthCheck.function_scoped_fixture])
    @given(backends=st.lists(st.sampled_from(["nodal", "reference", "bogus", ""]),
                             max_size=2),
           spec_file=st.sampled_from([None, str(spec), str(not_json)]),
           v_in=st.sampled_from(["0.2", "x", "1e400", "nan", "-0.1", "[0.1, 0.2]"]),
           timeout=st.sampled_from([None, "0", "-1", "inf", "1e300", "x", "30"]),
           mode=st.sampled_from(["auto", "subprocess", "shared", "bogus"]))
    def check(backends, spec_file, v_in, timeout, mode) -> None:
        args = ["validate", *backends, "--quick", "--mode", mode, "--v-in", v_in]
        if spec_file is not None:
            args += ["--spec", spec_file]
        if timeout is not None:
            args += ["--timeout", timeout]
        result = CliRunner().invoke(main, args)
        outcomes.append(result.exit_code)
        assert result.exit_code in (0, 1, 2), result.output
        assert result.exception is None or isinstance(result.exception, SystemExit), (
            args, repr(result.exception))

    check()
    assert 2 in outcomes                        # usage errors were exercised
