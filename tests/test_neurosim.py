"""NeuroSim V1.5 output-noise table (xbar_circuit.neurosim) against independent references.

References:

- zero wire resistance, no variability: the exact column current is ``V · G`` summed,
  so every level's mean is the ideal code and its spread is zero (hypothesis);
- lognormal variability with open OFF cells and binary digits: a level-k output is a sum
  of k independent lognormal factors, ``mean = k e^{σ²/2}``,
  ``var = k e^{σ²}(e^{σ²} - 1)`` (``mean = k``, ``var = k (e^{σ²} - 1)`` when the mean is
  preserved), checked within five standard errors;
- which codes exist: brute-force enumeration of every input/cell digit pattern;
- the file: parsed with NeuroSim V1.5's own reading rules, reimplemented below from its
  source (HikiJun97/NeuroSim, pytorch-quantization/pytorch_quantization/cim/modules/
  _utils.py, ``init_cim``; cim/modules/macro.py, ``ADC_output``).
"""

from __future__ import annotations

import csv
import itertools
import json
import math
import warnings
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xbar_circuit import Crossbar, Sinh
from xbar_circuit.errors import BackendError, InputError, SpecError
from xbar_circuit.neurosim import (
    CSV_COLUMNS,
    NeuroSimADCTable,
    neurosim_adc_table,
    read_neurosim_csv,
    write_neurosim_csv,
)
from xbar_circuit.neurosim_cli import neurosim_command


def ideal_array(m: int, n: int) -> Crossbar:
    return Crossbar(np.zeros((m, n)), r_row=0.0, r_col=0.0)


# ------------------------------------------------------------------ NeuroSim's reader
def neurosim_read(path: Path, adc_precision: int) -> dict[str, list[float]]:
    """NeuroSim V1.5's reading of --output_noise_file (init_cim), as plain Python.

    The header row is read first; "output" must be in it (else NeuroSim exits), "std" and
    "mean" are looked up by name; every following row is converted with float(); more
    than 2**adc_precision + 1 rows makes NeuroSim exit.
    """
    with open(path) as file:
        reader = csv.reader(file)
        header = next(reader)
        assert "output" in header, "NeuroSim: The required columns 'output' is not in the CSV"
        value_index = header.index("output")
        std_index = header.index("std")  # unbound (NameError) in NeuroSim when missing
        mean_index = header.index("mean")
        values, stds, means = [], [], []
        for row in reader:
            values.append(float(row[value_index]))
            stds.append(float(row[std_index]))
            means.append(float(row[mean_index]))
    assert len(values) <= 2 ** adc_precision + 1, "NeuroSim: more outputs than ADC codes"
    return {"output": values, "mean": means, "std": stds}


def neurosim_adc_output(table: dict[str, list[float]], mac: np.ndarray, adc_precision: int,
                        rng: np.random.Generator) -> np.ndarray:
    """NeuroSim V1.5's ADC_output with output_noise == -1 (macro.py): clamp the ideal
    integer MAC to [0, 2**adc], index the means and stds *by position*, sample a normal,
    round and clamp."""
    ref = np.clip(mac.astype(np.int64), 0, 2 ** adc_precision)
    means = np.asarray(table["mean"])
    stds = np.asarray(table["std"])
    out = rng.normal(means[ref], stds[ref])
    return np.clip(np.round(out), 0.0, float(2 ** adc_precision))


# ------------------------------------------------------------------ ideal circuit
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(m=st.integers(1, 10), n=st.integers(1, 5), bits_per_cell=st.integers(1, 3),
       dac_bits=st.integers(1, 2), adc_bits=st.integers(1, 6),
       g_on=st.floats(1e-6, 1e-3), ratio=st.sampled_from([0.0, 0.01, 0.1, 0.5]),
       v_read=st.floats(0.05, 1.0), offset=st.sampled_from(["digital", "reference"]),
       seed=st.integers(0, 2**16))
def test_ideal_array_means_are_the_closed_form(m, n, bits_per_cell, dac_bits, adc_bits, g_on,
                                                ratio, v_read, offset, seed):
    if offset == "reference" and n < 2:
        n = 2
    g_off = ratio * g_on
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # codes no pattern reaches
        table = neurosim_adc_table(ideal_array(m, n), adc_bits=adc_bits,
                                   bits_per_cell=bits_per_cell, dac_bits=dac_bits, g_on=g_on,
                                   g_off=g_off, v_read=v_read, n_samples=3, offset=offset,
                                   seed=seed)
    d_max, x_max = 2 ** bits_per_cell - 1, 2 ** dac_bits - 1
    top = min(2 ** adc_bits, m * x_max * d_max)
    assert table.output.tolist() == list(range(top + 1))
    # One code is the current of one unit of Σ x·d: (v_read / x_max) · (g_on - g_off) / d_max.
    lsb = v_read / x_max * (g_on - g_off) / d_max
    assert table.lsb_current == pytest.approx(lsb, rel=1e-12)
    seen = table.count > 0
    np.testing.assert_allclose(table.mean[seen], table.output[seen], rtol=0, atol=1e-9)
    np.testing.assert_allclose(table.std, 0.0, atol=1e-9)
    np.testing.assert_allclose(table.mean_current[seen], table.output[seen] * lsb,
                               rtol=1e-9, atol=1e-9 * lsb)
    assert np.all(table.count[seen] == 3)
    s = table.samples
    # Every exact current is V·G summed, and the offset-removed one is k codes.
    np.testing.assert_allclose(s["current"], s["ideal_current"], rtol=1e-12,
                               atol=1e-15 * max(1.0, float(np.abs(s["current"]).max())))
    np.testing.assert_allclose(s["current"] - s["offset_current"], s["level"] * lsb,
                               rtol=1e-9, atol=1e-9 * lsb)


def brute_force_codes(m: int, x_max: int, d_max: int) -> set[int]:
    pairs = [x * d for x in range(x_max + 1) for d in range(d_max + 1)]
    return {sum(combo) for combo in itertools.product(set(pairs), repeat=m)}


@pytest.mark.parametrize("m, bits_per_cell, dac_bits", [(1, 2, 2), (2, 2, 2), (3, 1, 2),
                                                         (2, 3, 1), (3, 2, 2)])
def test_levels_no_pattern_reaches_are_exactly_the_unreachable_codes(m, bits_per_cell,
                                                                      dac_bits):
    d_max, x_max = 2 ** bits_per_cell - 1, 2 ** dac_bits - 1
    codes = brute_force_codes(m, x_max, d_max)
    top = m * x_max * d_max
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        table = neurosim_adc_table(ideal_array(m, 3), adc_bits=8, bits_per_cell=bits_per_cell,
                                   dac_bits=dac_bits, g_on=1e-5, g_off=1e-7, n_samples=2,
                                   seed=1)
    assert table.output.tolist() == list(range(top + 1))
    assert {int(k) for k in table.output[table.count > 0]} == codes
    missing = sorted(set(range(top + 1)) - codes)
    assert bool(missing) == any("cannot be produced" in str(w.message) for w in caught)
    # Rows of unreachable codes keep the ideal code, so positions stay aligned.
    assert table.mean[missing].tolist() == [float(k) for k in missing]


def test_levels_stop_at_the_adc_range_or_the_array_capacity():
    big = neurosim_adc_table(ideal_array(64, 4), adc_bits=3, g_on=1e-5, g_off=0.0,
                             n_samples=2)
    assert big.output.tolist() == list(range(9))          # 2**3 + 1 ADC codes
    small = neurosim_adc_table(ideal_array(3, 4), adc_bits=6, g_on=1e-5, g_off=0.0,
                               n_samples=2)
    assert small.output.tolist() == [0, 1, 2, 3]           # 3 rows x 1 x 1 at most


# ------------------------------------------------------------------ variability
@pytest.mark.parametrize("preserve_mean", [False, True])
def test_lognormal_spread_matches_a_sum_of_independent_cells(preserve_mean):
    sigma, n_samples = 0.25, 240
    table = neurosim_adc_table(ideal_array(16, 16), adc_bits=4, g_on=2e-5, g_off=0.0,
                               n_samples=n_samples, sigma=sigma, preserve_mean=preserve_mean,
                               seed=7)
    s2 = sigma * sigma
    # One cell's factor exp(σz) (or exp(σz - σ²/2)): its mean, variance, excess kurtosis.
    mu1 = 1.0 if preserve_mean else math.exp(s2 / 2)
    var1 = (math.exp(s2) - 1.0) * (1.0 if preserve_mean else math.exp(s2))
    kurt1 = math.exp(4 * s2) + 2 * math.exp(3 * s2) + 3 * math.exp(2 * s2) - 6
    assert table.mean[0] == 0.0 and table.std[0] == 0.0     # no ON cell: no current at all
    ratios = []
    for k in range(1, 17):
        mean, std = k * mu1, math.sqrt(k * var1)
        assert table.count[k] == n_samples
        assert abs(table.mean[k] - mean) < 5 * std / math.sqrt(n_samples)
        # Standard error of a sample standard deviation: std · sqrt((2 + γ₂) / (4 n)).
        se = std * math.sqrt((2 + kurt1 / k) / (4 * n_samples))
        assert abs(table.std[k] - std) < 5 * se, (k, table.std[k], std, se)
        ratios.append(table.std[k] ** 2 / std ** 2)
    # Pooled over the 16 levels, the variance ratio is within 5 standard errors of 1.
    pooled_se = math.sqrt((2 + kurt1) / n_samples) / math.sqrt(16)
    assert abs(np.mean(ratios) - 1.0) < 5 * pooled_se


def test_variability_is_reproducible_and_seeded():
    xbar = Crossbar(np.zeros((8, 6)), r_row=1.0, r_col=1.0)
    a = neurosim_adc_table(xbar, adc_bits=3, g_on=1e-4, g_off=1e-6, sigma=0.1, n_samples=4,
                           seed=3)
    b = neurosim_adc_table(xbar, adc_bits=3, g_on=1e-4, g_off=1e-6, sigma=0.1, n_samples=4,
                           seed=3)
    c = neurosim_adc_table(xbar, adc_bits=3, g_on=1e-4, g_off=1e-6, sigma=0.1, n_samples=4,
                           seed=4)
    assert np.array_equal(a.mean, b.mean) and np.array_equal(a.std, b.std)
    assert not np.array_equal(a.mean, c.mean)


def test_wire_resistance_lowers_the_codes_and_grows_with_the_level():
    xbar = Crossbar(np.zeros((32, 8)), r_row=5.0, r_col=5.0)
    table = neurosim_adc_table(xbar, adc_bits=5, g_on=1e-4, g_off=1e-6, n_samples=8, seed=0)
    loss = table.output[1:] - table.mean[1:]
    assert np.all(loss > 0)                               # a passive array delivers less
    assert loss[-1] > loss[0]                             # more current, more IR drop
    assert table.std[1:].max() > 0                        # position-dependent spread


def test_reference_column_offset_and_a_nonlinear_template():
    xbar = Crossbar(np.zeros((6, 4)), r_row=0.0, r_col=0.0, device=Sinh(k=1e-3))
    table = neurosim_adc_table(xbar, adc_bits=3, g_on=1e-5, g_off=1e-6, v_read=0.2,
                               n_samples=3, offset="reference", seed=2)
    assert table.settings["device"] == "sinh" and table.settings["data_columns"] == 3
    assert not np.any(table.samples["column"] == 3)       # the last column is the reference
    np.testing.assert_allclose(table.mean, table.output, atol=1e-6)


def test_a_preset_gives_wires_range_and_read_voltage():
    table = neurosim_adc_table("neurosim_rram_40nm", shape=(8, 4), adc_bits=3, n_samples=2)
    assert table.settings["g_on"] == pytest.approx(1e-5)
    assert table.settings["g_off"] == pytest.approx(1e-7)
    assert table.settings["v_read"] == 0.5 and table.settings["preset"] == "neurosim_rram_40nm"
    assert table.lsb_current == pytest.approx(0.5 * (1e-5 - 1e-7))


# ------------------------------------------------------------------ the file
def test_the_csv_reads_back_with_neurosims_rules(tmp_path):
    adc_bits = 4
    table = neurosim_adc_table(Crossbar(np.zeros((16, 8)), r_row=2.0, r_col=2.0),
                               adc_bits=adc_bits, g_on=1e-5, g_off=1e-7, sigma=0.05,
                               n_samples=6, seed=5)
    path = write_neurosim_csv(tmp_path / "output_noise.csv", table)
    text = path.read_text()
    assert text.splitlines()[0] == "output,mean,std" and "\n\n" not in text
    parsed = neurosim_read(path, adc_bits)
    assert parsed["output"] == [float(k) for k in range(2 ** adc_bits + 1)]
    assert parsed["mean"] == table.mean.tolist()          # full precision, bit for bit
    assert parsed["std"] == table.std.tolist()
    assert read_neurosim_csv(path, adc_bits) == parsed    # the package's reader agrees
    # NeuroSim indexes by position: every clamped ideal MAC finds its own row.
    mac = np.arange(0, 40)
    codes = neurosim_adc_output(parsed, mac, adc_bits, np.random.default_rng(0))
    assert codes.min() >= 0 and codes.max() <= 2 ** adc_bits


def test_an_ideal_table_makes_neurosim_return_the_ideal_codes(tmp_path):
    table = neurosim_adc_table(ideal_array(40, 4), adc_bits=5, g_on=1e-5, g_off=1e-6,
                               n_samples=2)
    parsed = neurosim_read(write_neurosim_csv(tmp_path / "t.csv", table), 5)
    mac = np.arange(0, 41)
    codes = neurosim_adc_output(parsed, mac, 5, np.random.default_rng(1))
    assert codes.tolist() == np.minimum(mac, 32).astype(float).tolist()


def test_reader_refuses_what_neurosim_refuses(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("output,mean\n0,0\n")
    with pytest.raises(InputError, match="std"):
        read_neurosim_csv(path)
    path.write_text("output,mean,std\n0,0,0\n\n")
    with pytest.raises(InputError, match="line 3"):
        read_neurosim_csv(path)
    path.write_text("output,mean,std\n" + "".join(f"{k},{k},0\n" for k in range(4)))
    with pytest.raises(InputError, match="more than"):
        read_neurosim_csv(path, adc_bits=1)


# ------------------------------------------------------------------ bad inputs
@pytest.mark.parametrize("kwargs, error, name", [
    ({"adc_bits": 0}, SpecError, "adc_bits"),
    ({"adc_bits": 17}, SpecError, "adc_bits"),
    ({"adc_bits": 2.5}, SpecError, "adc_bits"),
    ({"bits_per_cell": 9}, SpecError, "bits_per_cell"),
    ({"dac_bits": 0}, SpecError, "dac_bits"),
    ({"n_samples": 1}, SpecError, "n_samples"),
    ({"sigma": -0.1}, SpecError, "sigma"),
    ({"sigma": float("nan")}, SpecError, "sigma"),
    ({"g_on": 1e-6, "g_off": 1e-5}, SpecError, "g_on must be > g_off"),
    ({"g_off": -1e-6}, SpecError, "g_off"),
    ({"v_read": 0.0}, SpecError, "v_read"),
    ({"offset": "analog"}, SpecError, "offset"),
    ({"shape": (3, 3)}, SpecError, "shape"),
    ({"backend": "spice3"}, BackendError, "spice3"),
])
def test_bad_arguments_raise_named_errors(kwargs, error, name):
    base = {"adc_bits": 3, "g_on": 1e-5, "g_off": 1e-7, "n_samples": 2}
    with pytest.raises(error, match=name):
        neurosim_adc_table(ideal_array(4, 4), **{**base, **kwargs})


def test_bad_arrays_raise_named_errors(tmp_path):
    with pytest.raises(SpecError, match="array must be"):
        neurosim_adc_table(np.zeros((4, 4)), g_on=1e-5, g_off=0.0)
    with pytest.raises(SpecError, match="unknown preset"):
        neurosim_adc_table("no_such_preset")
    with pytest.raises(SpecError, match="2 columns"):
        neurosim_adc_table(ideal_array(4, 1), g_on=1e-5, g_off=0.0, offset="reference")
    with pytest.raises(SpecError, match="g_on must be > g_off"):
        neurosim_adc_table(Crossbar(np.full((2, 2), 1e-5), r_row=0.0, r_col=0.0))
    with pytest.raises(InputError, match="NeuroSimADCTable"):
        write_neurosim_csv(tmp_path / "x.csv", {"output": [0]})  # type: ignore[arg-type]


# ------------------------------------------------------------------ the command
def test_command_writes_the_file_and_reports(tmp_path):
    out = tmp_path / "noise.csv"
    result = CliRunner().invoke(neurosim_command, [
        "-o", str(out), "--size", "12x6", "--r-row", "1", "--r-col", "1", "--adc-bits", "4",
        "--samples", "4", "--sigma", "0.05", "--seed", "3"])
    assert result.exit_code == 0, result.output
    assert "wrote" in result.output and "--output_noise_file" in result.output
    assert "one code = 99.00 µA" in result.output      # SI prefix, 4 digits (not 9.9e-05 A)
    parsed = neurosim_read(out, 4)
    assert len(parsed["output"]) == 13                     # 12 rows x 1 bit: codes 0 ... 12
    direct = neurosim_adc_table(Crossbar(np.full((12, 6), 1e-6), r_row=1.0, r_col=1.0),
                                adc_bits=4, g_on=1e-4, g_off=1e-6, v_read=1.0, n_samples=4,
                                sigma=0.05, seed=3)
    assert parsed["mean"] == direct.mean.tolist()


def test_command_json_and_quiet(tmp_path):
    out = tmp_path / "noise.csv"
    result = CliRunner().invoke(neurosim_command, [
        "-o", str(out), "--preset", "neurosim_rram_40nm", "--size", "8x4", "--adc-bits", "3",
        "--samples", "2", "--json", "--quiet"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["output"] == str(out)
    assert report["columns"] == list(CSV_COLUMNS)
    assert report["output_codes"] == list(range(9))
    assert report["settings"]["preset"] == "neurosim_rram_40nm"
    quiet = CliRunner().invoke(neurosim_command, ["-o", str(out), "--size", "4x4",
                                                  "--adc-bits", "2", "--samples", "2", "-q"])
    assert quiet.exit_code == 0 and quiet.output == ""


def test_command_spec_file(tmp_path):
    spec = tmp_path / "spec.json"
    Crossbar(np.array([[1e-6, 1e-4], [1e-4, 1e-6]]), r_row=0.0, r_col=0.0).save(spec)
    out = tmp_path / "noise.csv"
    result = CliRunner().invoke(neurosim_command, ["-o", str(out), "--spec", str(spec),
                                                   "--adc-bits", "2", "--samples", "2",
                                                   "--json", "-q"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["mean"] == [0.0, 1.0, 2.0]               # g range from the spec: 1e-6 … 1e-4


@pytest.mark.parametrize("args, message", [
    (["--preset", "neurosim_rram_40nm", "--r-row", "2"], "--preset fixes the wires"),
    (["--size", "4x"], "128x128"),
    (["--size", "4x4", "--adc-bits", "0"], "adc_bits"),
    (["--size", "4x4", "--sigma", "-1"], "sigma"),
    (["--size", "4x4", "--g-on", "1e-7", "--g-off", "1e-6"], "g_on must be > g_off"),
    (["--preset", "nope"], "unknown preset"),
])
def test_command_refuses_bad_options(tmp_path, args, message):
    result = CliRunner().invoke(neurosim_command, ["-o", str(tmp_path / "x.csv"), *args])
    assert result.exit_code != 0
    assert message in result.output
    assert not isinstance(result.exception, Exception) or isinstance(result.exception,
                                                                       SystemExit)


def test_command_requires_an_output():
    result = CliRunner().invoke(neurosim_command, ["--size", "4x4"])
    assert result.exit_code == 2 and "--output" in result.output


def test_table_type_is_exported():
    assert NeuroSimADCTable.__name__ == "NeuroSimADCTable"


def test_docstring_and_guide_examples_run(tmp_path, monkeypatch):
    import doctest
    import re

    import xbar_circuit.neurosim as module

    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0 and result.attempted > 0
    guide = Path(__file__).resolve().parent.parent / "docs" / "neurosim.md"
    blocks = re.findall(r"```python\n(.*?)```", guide.read_text(), re.S)
    assert blocks
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "docs_example"}
    for index, code in enumerate(blocks):
        exec(compile(code, f"docs/neurosim.md, example {index}", "exec"), namespace)
    assert (tmp_path / "output_noise.csv").is_file()


def test_bad_seed_progress_and_unreadable_files_are_named_errors(tmp_path):
    """A negative or string seed, a non-callable progress, a missing or binary CSV file
    raised ValueError/TypeError/FileNotFoundError/UnicodeDecodeError (the reader's
    docstring promises InputError)."""
    xbar = Crossbar(np.zeros((4, 3)), r_row=1.0, r_col=1.0)
    common = dict(adc_bits=2, n_samples=2, g_on=1e-4, g_off=1e-6)
    for seed in (-1, "a"):
        with pytest.raises(SpecError, match="seed"):
            neurosim_adc_table(xbar, seed=seed, **common)
    with pytest.raises(SpecError, match="progress"):
        neurosim_adc_table(xbar, progress=3, **common)
    with pytest.raises(InputError, match="cannot read"):
        read_neurosim_csv(tmp_path / "none.csv")
    binary = tmp_path / "binary.csv"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(InputError, match="not a text CSV"):
        read_neurosim_csv(binary)
    good = tmp_path / "good.csv"
    good.write_text("output,mean,std\n0,0,0\n")
    with pytest.raises(InputError, match="adc_bits"):
        read_neurosim_csv(good, adc_bits=-1)
    assert read_neurosim_csv(good, adc_bits=1)["mean"] == [0.0]


def test_command_refuses_a_missing_output_folder_before_solving(tmp_path):
    result = CliRunner().invoke(neurosim_command, [
        "-o", str(tmp_path / "nope" / "x.csv"), "--size", "4x4", "--adc-bits", "2",
        "--samples", "2"])
    assert result.exit_code == 2 and "does not exist" in result.output
    assert "solve" not in result.output                     # no progress bar ran
