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
