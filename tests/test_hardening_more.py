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
