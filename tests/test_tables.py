"""Lookup tables: sweeps, exactness at grid points, Dask == serial bit for bit,
kill-and-resume, schema checks, interpolation accuracy off the grid, CLI."""

from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys

import numpy as np
import pytest

from xbar_circuit import Crossbar, solve
from xbar_circuit.tables import DIMS, LookupTable, Sweep, SweepError, TableError, calibrate
from xbar_circuit.tables.physics import model_loss, point_inputs, point_rng

BASE = {
    "name": "test",
    "grid": {"rows": [8, 16], "cols": [8, 16], "r_row": [1.0, 4.0], "r_col": [1.0, 4.0],
             "r_driver": [0.0, 20.0], "r_sense": [0.0], "g_on": [1e-4], "g_off": [1e-6],
             "density": [0.3, 0.7]},
    "samples": 2, "seed": 11, "map_max": 10,
}


def make_sweep(**changes: object) -> Sweep:
    data = json.loads(json.dumps(BASE))
    data.update(changes)
    return Sweep.from_dict(data)


def dataset_arrays(path: str) -> dict[str, np.ndarray]:
    import xarray as xr

    with xr.open_dataset(path, engine="h5netcdf") as ds:
        return {k: np.array(ds[k].values) for k in ds.variables}


def assert_same_table(a: str, b: str) -> None:
    """Every variable and coordinate identical bit for bit (NaN padding included)."""
    x, y = dataset_arrays(a), dataset_arrays(b)
    assert x.keys() == y.keys()
    for key in x:
        assert x[key].dtype == y[key].dtype, key
        assert x[key].tobytes() == y[key].tobytes(), f"{key} differs"


@pytest.fixture(scope="module")
def serial_table(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = str(tmp_path_factory.mktemp("serial") / "table.nc")
    result = calibrate(make_sweep(), path, workers=0, progress=False, ngspice_check=False)
    assert result.computed == result.n_points == 64
    assert not os.path.exists(path + ".partial")
    return path


@pytest.fixture(scope="module")
def cluster():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0") as lc:
        yield lc


# ----------------------------------------------------------------- sweep files
class TestSweep:
    def test_round_trip_and_defaults(self, tmp_path) -> None:
        sweep = make_sweep()
        assert sweep.n_points == 64 and sweep.shape == (2, 2, 2, 2, 2, 1, 1, 1, 2)
        path = tmp_path / "s.json"
        path.write_text(sweep.to_json())
        assert Sweep.from_file(path) == sweep
        yaml = pytest.importorskip("yaml")
        path = tmp_path / "s.yaml"
        path.write_text(yaml.safe_dump(sweep.to_dict()))
        assert Sweep.from_file(path).digest == sweep.digest
        assert sweep.device == {"model": "linear", "params": {}}

    @pytest.mark.parametrize(("change", "message"), [
        ({"colour": 1}, "unknown sweep key"),
        ({"grid": {"rows": [8]}}, "missing axis"),
        ({"grid": dict(BASE["grid"], width=[1])}, "unknown grid axis"),
        ({"grid": dict(BASE["grid"], density=[1.5])}, "density"),
        ({"grid": dict(BASE["grid"], rows=[8.5])}, "integers"),
        ({"grid": dict(BASE["grid"], r_row=[-1.0])}, ">= 0"),
        ({"grid": dict(BASE["grid"], r_row=[1.0, 1.0])}, "repeated"),
        ({"grid": dict(BASE["grid"], g_off=[1e-3])}, "g_off must be below"),
        ({"samples": 0}, "samples"),
        ({"seed": -1}, "seed"),
        ({"device": {"model": "sinh", "params": {"v0": 0.25}}}, "not supported yet"),
        ({"inputs": {"pattern": "zigzag"}}, "pattern"),
        ({"backend": "spice3"}, "backend"),
        ({"version": 7}, "version"),
    ])
    def test_bad_sweeps_raise_clear_errors(self, change: dict, message: str) -> None:
        data = json.loads(json.dumps(BASE))
        data.update(change)
        with pytest.raises(SweepError, match=message):
            Sweep.from_dict(data)

    def test_missing_field_and_bad_file(self, tmp_path) -> None:
        data = json.loads(json.dumps(BASE))
        del data["seed"]
        with pytest.raises(SweepError, match="missing field"):
            Sweep.from_dict(data)
        bad = tmp_path / "bad.yaml"
        bad.write_text("grid: [unclosed\n")
        with pytest.raises(SweepError, match=r"bad\.yaml"):
            Sweep.from_file(bad)


# ------------------------------------------------------- exactness at grid points
def test_table_matches_direct_solves_at_grid_points(serial_table: str) -> None:
    table = LookupTable.load(serial_table)
    sweep = table.sweep
    ds = table.dataset
    for index in (0, 21, 42, 63):
        p = sweep.point(index)
        m, n = p["rows"], p["cols"]
        nfs, losses, cols = [], [], []
        for s in range(sweep.samples):
            rng = point_rng(sweep.seed, p["index"][0], p["index"][1], s)
            g = np.where(rng.random((m, n)) < p["density"], p["g_on"], p["g_off"])
            v = point_inputs(sweep.inputs, m, rng)
            sol = solve(Crossbar(g, r_row=p["r_row"], r_col=p["r_col"],
                                 r_driver=p["r_driver"], r_sense=p["r_sense"]), v)
            nfs.append(sol.nf)
            cols.append(sol.nf_columns)
            keep = np.ix_(sweep.map_indices(m), sweep.map_indices(n))
            losses.append(sol.cell_loss[keep])
        at = dict(zip(DIMS, p["index"], strict=False))
        np.testing.assert_allclose(ds["nf_samples"].isel(at).values, nfs, rtol=0, atol=1e-12)
        assert abs(float(ds["nf_mean"].isel(at)) - np.mean(nfs)) < 1e-12
        np.testing.assert_allclose(ds["nf_columns"].isel(at).values[:n], np.mean(cols, axis=0),
                                   rtol=0, atol=1e-12)
        assert np.all(np.isnan(ds["nf_columns"].isel(at).values[n:]))
        loss = ds["cell_loss"].isel(at).values
        k_r, k_c = losses[0].shape
        np.testing.assert_allclose(loss[:k_r, :k_c], np.mean(losses, axis=0), rtol=0, atol=1e-12)
        # the map's cell indices are recorded: first and last cells are kept
        rows_kept = ds["map_row_index"].isel(rows=p["index"][0]).values
        assert rows_kept[0] == 0 and rows_kept[k_r - 1] == m - 1


def test_provenance_attributes(serial_table: str) -> None:
    table = LookupTable.load(serial_table)
    attrs = table.attrs
    assert attrs["schema"] == "xbar-circuit/lookup-table" and int(attrs["schema_version"]) == 1
    from xbar_circuit.backends.nodal import DEFAULT_RTOL

    assert attrs["backend"] == "nodal"
    assert f"{DEFAULT_RTOL:g}" in attrs["solver_tolerance"]  # the tolerance actually used
    from xbar_circuit import __version__

    assert attrs["package_version"] == __version__
    assert Sweep.from_dict(json.loads(attrs["sweep"])) == make_sweep()
    assert json.loads(attrs["ngspice_check"])["status"].startswith("skipped")
    assert attrs["created"][:2] == "20"


def test_interpolation_reproduces_grid_values(serial_table: str) -> None:
    table = LookupTable.load(serial_table)
    p = table.sweep.point(45)
    params = {k: p[k] for k in DIMS}
    at = dict(zip(DIMS, p["index"], strict=False))
    assert table.interpolate("nf_mean", **params) == float(table.dataset["nf_mean"].isel(at))
    with pytest.raises(TableError, match="outside"):
        table.interpolate("nf_mean", out_of_range="error", **dict(params, rows=64))
    with pytest.raises(TableError, match="unknown table parameter"):
        table.interpolate("nf_mean", **dict(params, width=3))


# ------------------------------------------------------- prediction off the grid
def test_prediction_off_grid_against_exact_solves(serial_table: str) -> None:
    """Off-grid sizes, resistances, densities and g_on: |NF error| < 2e-4, map error < 2e-3.

    Measured on this table: largest NF error about 1e-6 here (NF up to ~0.05); the
    closed-form model alone has larger errors, the first-order model far larger.
    """
    table = LookupTable.load(serial_table)
    rng = np.random.default_rng(2024)
    errors = []
    for _ in range(12):
        m, n = (int(x) for x in rng.integers(9, 16, size=2))
        g_on = float(rng.uniform(0.5e-4, 2e-4))
        scale = 1e-4 / g_on
        xbar = Crossbar.random(m, n, r_row=float(rng.uniform(1, 4)) * scale,
                               r_col=float(rng.uniform(1, 4)) * scale,
                               r_driver=float(rng.uniform(0, 20)) * scale, g_off=g_on / 100,
                               g_on=g_on, density=float(rng.uniform(0.3, 0.7)),
                               seed=int(rng.integers(1 << 30)))
        exact = solve(xbar, np.full(m, 0.2))
        pred = table.predict_nf(xbar, out_of_range="error")
        errors.append(abs(pred - exact.nf))
        assert exact.nf > 1e-3
        loss = table.predict_attenuation(xbar)
        assert loss.shape == (m, n)
        assert np.max(np.abs(loss - exact.cell_loss)) < 2e-3
        assert abs(table.predict_nf(xbar, method="map") - exact.nf) < 2e-4
    assert max(errors) < 2e-4, errors


def test_prediction_uses_the_pattern_and_circuit_scaling(serial_table: str) -> None:
    table = LookupTable.load(serial_table)
    g = np.full((12, 12), 1e-6)
    near, far = g.copy(), g.copy()
    near[:, :4] = 1e-4  # ON cells near the drivers
    far[:, -4:] = 1e-4  # same count, far from the drivers
    a = Crossbar(near, r_row=3.0, r_col=3.0)
    b = Crossbar(far, r_row=3.0, r_col=3.0)
    pa, pb = table.predict_nf(a), table.predict_nf(b)
    ea, eb = solve(a, np.full(12, 0.2)).nf, solve(b, np.full(12, 0.2)).nf
    assert pa < pb and ea < eb
    assert abs(pa - ea) < 2e-4 and abs(pb - eb) < 2e-4
    # G -> cG, r -> r/c leaves every voltage unchanged: same prediction
    c = 0.37
    scaled = Crossbar(near * c, r_row=3.0 / c, r_col=3.0 / c)
    assert table.predict_nf(scaled) == pytest.approx(pa, rel=1e-9)
    with pytest.warns(UserWarning, match="outside"):
        table.predict_nf(Crossbar(near, r_row=30.0, r_col=3.0))


# ---------------------------------------------------- Dask: identical to serial
def test_two_worker_cluster_gives_identical_table(serial_table: str, cluster, tmp_path) -> None:
    path = str(tmp_path / "dask.nc")
    result = calibrate(make_sweep(), path, scheduler=cluster.scheduler_address, progress=True,
                       ngspice_check=False)
    assert result.workers == 2 and result.computed == 64
    assert_same_table(serial_table, path)


def test_interrupted_sweep_resumes_without_recomputing(serial_table: str, cluster,
                                                       tmp_path) -> None:
    path = str(tmp_path / "resume.nc")

    class StopError(Exception):
        pass

    def stop_after_ten(done: int, total: int) -> None:
        if done == 10:
            raise StopError

    with pytest.raises(StopError):
        calibrate(make_sweep(), path, scheduler=cluster.scheduler_address, progress=False,
                  ngspice_check=False, on_point=stop_after_ten)
    partial = path + ".partial"
    finished = sorted(f for f in os.listdir(partial) if f.startswith("point-"))
    assert len(finished) == 10 and not os.path.exists(path)
    # a different sweep must not reuse these checkpoints
    with pytest.raises(TableError, match="different sweep"):
        calibrate(make_sweep(seed=12), path, workers=0, progress=False, ngspice_check=False)
    seen = []
    result = calibrate(make_sweep(), path, workers=0, progress=False, ngspice_check=False,
                       on_point=lambda done, total: seen.append(done))
    assert result.computed == 54 and seen == list(range(11, 65))
    assert_same_table(serial_table, path)


def test_worker_killed_mid_run(serial_table: str, cluster, tmp_path) -> None:
    """SIGKILL one worker of a real LocalCluster mid-sweep: every point is still computed
    once, written once, and the table equals the serial one."""
    distributed = pytest.importorskip("distributed")
    import xbar_circuit.tables.calibration as calmod

    path = str(tmp_path / "killed.nc")
    with distributed.Client(cluster.scheduler_address) as client:
        pids = sorted(client.run(os.getpid).values())
    assert len(pids) == 2
    killed: list[int] = []
    writes: list[int] = []

    def kill_one(done: int, total: int) -> None:
        if done == 5 and not killed:
            os.kill(pids[0], signal.SIGKILL)
            killed.append(pids[0])

    original = calmod._write_point

    def counting_write(partial: str, index: int, result: dict) -> None:
        writes.append(index)
        original(partial, index, result)

    calmod._write_point = counting_write
    try:
        result = calibrate(make_sweep(), path, scheduler=cluster.scheduler_address,
                           progress=False, ngspice_check=False, on_point=kill_one,
                           keep_partial=True)
    finally:
        calmod._write_point = original
    assert killed and result.computed == 64
    with pytest.raises(ProcessLookupError):
        os.kill(killed[0], 0)
    assert sorted(writes) == list(range(64))  # each point written exactly once
    assert len(os.listdir(path + ".partial")) == 65  # 64 points + sweep.json, no temp files
    assert_same_table(serial_table, path)


# ------------------------------------------------------------- file validation
class TestLoad:
    def test_missing_and_corrupt_files(self, tmp_path) -> None:
        with pytest.raises(TableError, match="no lookup table"):
            LookupTable.load(tmp_path / "nope.nc")
        junk = tmp_path / "junk.nc"
        junk.write_bytes(b"\x89HDF\r\n\x1a\n" + os.urandom(2000))
        with pytest.raises(TableError, match="not a readable NetCDF"):
            LookupTable.load(junk)

    def test_pickle_is_never_loaded(self, tmp_path) -> None:
        evil = tmp_path / "evil.nc"
        marker = tmp_path / "pwned"
        evil.write_bytes(pickle.dumps(_Exploit(str(marker))))
        with pytest.raises(TableError):
            LookupTable.load(evil)
        assert not marker.exists()

    def test_foreign_and_wrong_version(self, serial_table: str, tmp_path) -> None:
        import xarray as xr

        foreign = tmp_path / "foreign.nc"
        xr.Dataset({"x": ("t", np.arange(3.0))}).to_netcdf(foreign, engine="h5netcdf")
        with pytest.raises(TableError, match="not an xbar-circuit lookup table"):
            LookupTable.load(foreign)
        with xr.open_dataset(serial_table, engine="h5netcdf") as ds:
            ds = ds.load()
        newer = ds.copy()
        newer.attrs["schema_version"] = 99
        newer.to_netcdf(tmp_path / "v99.nc", engine="h5netcdf")
        with pytest.raises(TableError, match="version 99"):
            LookupTable.load(tmp_path / "v99.nc")
        ds.drop_vars("cell_loss").to_netcdf(tmp_path / "partial.nc", engine="h5netcdf")
        with pytest.raises(TableError, match="cell_loss"):
            LookupTable.load(tmp_path / "partial.nc")
        bad = ds.copy()
        bad.attrs["sweep"] = "{not json"
        bad.to_netcdf(tmp_path / "badsweep.nc", engine="h5netcdf")
        with pytest.raises(TableError, match="sweep"):
            LookupTable.load(tmp_path / "badsweep.nc")


class _Exploit:
    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


# ------------------------------------------------------------------- physics
def test_model_loss_is_exact_for_one_cell_and_close_for_lines() -> None:
    g = np.full((1, 1), 2e-3)
    assert model_loss(g, np.ones(1), 0.0, 0.0, r_driver=50.0)[0, 0] == pytest.approx(
        0.1 / 1.1, rel=1e-12)
    # one word line: docs/convention.md §3 closed form
    n, r, gc = 64, 2.0, 1e-4
    theta = np.arccosh(1 + r * gc / 2)
    k = np.arange(1, n + 1)
    exact = 1 - np.cosh((n + 0.5 - k) * theta) / np.cosh((n + 0.5) * theta)
    approx = model_loss(np.full((1, n), gc), np.ones(1), r, 0.0)[0]
    assert np.max(np.abs(approx - exact)) < 3e-3 * exact.max()  # measured 2.6e-3 at r*g*N^2 = 0.8


# ------------------------------------------------------------ CLI and imports
def test_cli_calibrate_and_plot(tmp_path) -> None:
    from click.testing import CliRunner

    from xbar_circuit.tables.cli import calibrate_command, plot_command

    sweep = tmp_path / "s.yaml"
    sweep.write_text(
        "grid: {rows: [4, 8], cols: [4, 8], r_row: [1.0, 2.0], r_col: 1.0, g_on: 1e-4,\n"
        "       g_off: 1e-6, density: 0.5}\nsamples: 1\nseed: 3\n")
    out = tmp_path / "t.nc"
    runner = CliRunner()
    res = runner.invoke(calibrate_command, [str(sweep), "-o", str(out), "--serial",
                                            "--no-progress", "--no-ngspice-check"])
    assert res.exit_code == 0, res.output
    assert "8 points, 8 computed" in res.output
    res = runner.invoke(plot_command, [str(out), "--out-dir", str(tmp_path / "figs")])
    assert res.exit_code == 0, res.output
    for name in ("table_nf_vs_size.png", "table_cell_loss.png"):
        assert (tmp_path / "figs" / name).read_bytes()[:4] == b"\x89PNG"
    bad = tmp_path / "bad.yaml"
    bad.write_text("grid: {rows: 4}\nsamples: 1\nseed: 1\nextra: 2\n")
    res = runner.invoke(calibrate_command, [str(bad), "-o", str(tmp_path / "x.nc"), "--serial"])
    assert res.exit_code != 0 and "unknown sweep key(s): extra" in res.output


def test_import_tables_stays_light() -> None:
    code = ("import sys, xbar_circuit, xbar_circuit.tables\n"
            "heavy = {'dask', 'distributed', 'xarray', 'matplotlib', 'h5netcdf'}\n"
            "print(sorted(heavy & {m.split('.')[0] for m in sys.modules}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"


@pytest.mark.parametrize("name", ["xbar_circuit.tables.sweep", "xbar_circuit.tables.physics",
                                  "xbar_circuit.tables.lut"])
def test_docstring_examples(name: str) -> None:
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(name),
                             optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0 and result.attempted > 0


# ------------------------------------------------------------ review findings
TINY = {"grid": {"rows": [4], "cols": [4, 6], "r_row": [1.0], "r_col": [1.0],
                 "g_on": [1e-4], "g_off": [1e-6], "density": [0.5]},
        "samples": 1, "seed": 5}


@pytest.mark.parametrize("workers", [-2, -1, 1.5, "2", True])
def test_calibrate_rejects_bad_worker_counts(tmp_path, workers) -> None:
    out = tmp_path / "t.nc"
    with pytest.raises(TableError, match="workers must be an integer >= 0"):
        calibrate(Sweep.from_dict(TINY), out, workers=workers, progress=False,
                  ngspice_check=False)
    assert not os.path.exists(str(out) + ".partial")


def test_cli_calibrate_rejects_negative_workers(tmp_path) -> None:
    from click.testing import CliRunner

    from xbar_circuit.tables.cli import calibrate_command

    sweep = tmp_path / "s.json"
    sweep.write_text(json.dumps(TINY))
    res = CliRunner().invoke(calibrate_command, [str(sweep), "-o", str(tmp_path / "t.nc"),
                                                 "--workers", "-2", "--no-progress"])
    assert res.exit_code != 0 and "--workers" in res.output
    assert not (tmp_path / "t.nc.partial").exists()


def test_prediction_rejects_non_default_circuits(serial_table: str) -> None:
    from xbar_circuit import TIA, Sinh

    lut = LookupTable.load(serial_table)
    xbar = Crossbar.random(12, 12, r_row=2.0, r_col=2.0, g_off=1e-6, g_on=1e-4,
                           density=0.5, seed=7)
    cases = {"device=Sinh": xbar.replace(device=Sinh(3.0)),
             "driver_side='both'": xbar.replace(driver_side="both"),
             "sense_side='top'": xbar.replace(sense_side="top"),
             "tia=TIA": xbar.replace(tia=TIA(1.0, 100.0)),
             "per-segment r_row": xbar.replace(r_row=np.full((12, 12), 2.0)),
             "per-segment r_col": xbar.replace(r_col=np.full((12, 12), 2.0))}
    for what, bad in cases.items():
        assert not bad.is_default_topology
        for predict in (lut.predict_nf, lut.predict_attenuation, lut.crossbar_params):
            with pytest.raises(TableError, match=f"unsupported: .*{what}"):
                predict(bad)
        with pytest.raises(TableError, match="unsupported"):
            lut.predict_nf(bad, method="model")
    for predict in (lut.predict_nf, lut.predict_attenuation):
        with pytest.raises(TableError, match=r"expected an xbar_circuit\.Crossbar, got ndarray"):
            predict(xbar.conductance)


def test_sweep_without_ideal_current_is_rejected(tmp_path) -> None:
    data = json.loads(json.dumps(TINY))
    data["grid"].update(density=[0.0], g_off=[0.0])
    with pytest.raises(SweepError, match="g_off = 0 together with density = 0"):
        Sweep.from_dict(data)
    data["grid"].update(density=[0.0, 0.5], g_off=[0.0, 1e-6])
    with pytest.raises(SweepError, match="undefined NF"):
        Sweep.from_dict(data)
    data["grid"].update(density=[0.0], g_off=[1e-6])  # fine: OFF cells still conduct
    Sweep.from_dict(data)


def test_assemble_refuses_undefined_nf(tmp_path) -> None:
    from xbar_circuit.tables.calibration import _write_point, assemble

    sweep = Sweep.from_dict(TINY)
    partial = str(tmp_path / "p")
    os.makedirs(partial)
    for index in range(sweep.n_points):
        p = sweep.point(index)
        loss = np.zeros((p["rows"], p["cols"]))
        _write_point(partial, index, {
            "nf": np.full(1, np.nan if index else 0.1), "nf_model": np.zeros(1),
            "nf_first_order": np.zeros(1), "nf_columns": np.zeros(p["cols"]),
            "cell_loss": loss, "cell_loss_std": loss, "current_attenuation": loss,
            "model_loss": loss})
    with pytest.raises(TableError, match=r"1 grid point.*non-finite"):
        assemble(sweep, partial, ngspice_check=False)


def test_ngspice_check_attribute_is_strict_json(monkeypatch) -> None:
    from xbar_circuit.tables import calibration

    monkeypatch.setattr(calibration, "_ngspice_check", lambda sweep: {
        "status": "done", "max_rel_current_diff": float("nan"), "nf_backend": np.nan,
        "nf_ngspice": float("inf"), "shape": [4, 4]})
    attrs = calibration.provenance(Sweep.from_dict(TINY))

    def strict(token: str) -> None:
        raise AssertionError(f"non-standard JSON constant {token}")

    check = json.loads(attrs["ngspice_check"], parse_constant=strict)
    assert check["max_rel_current_diff"] is None and check["nf_ngspice"] is None
    assert check["shape"] == [4, 4]


@pytest.mark.parametrize("garbage", [pickle.dumps({"x": 1}), b"junk", b""])
def test_corrupt_checkpoint_is_discarded_and_recomputed(tmp_path, garbage) -> None:
    sweep = Sweep.from_dict(TINY)
    first = tmp_path / "a.nc"
    calibrate(sweep, first, workers=0, progress=False, ngspice_check=False)
    out = tmp_path / "b.nc"
    calibrate(sweep, out, workers=0, progress=False, ngspice_check=False, keep_partial=True)
    os.remove(out)
    bad = tmp_path / "b.nc.partial" / "point-0000001.npz"
    bad.write_bytes(garbage)
    with pytest.warns(RuntimeWarning, match="corrupt checkpoint .*point-0000001.npz"):
        result = calibrate(sweep, out, workers=0, progress=False, ngspice_check=False)
    assert result.computed == 1
    assert_same_table(str(first), str(out))


def test_interpolate_and_predict_reject_bad_queries(serial_table: str) -> None:
    lut = LookupTable.load(serial_table)
    grid = {"rows": 8, "cols": 8, "r_row": 1.0, "r_col": 1.0, "r_driver": 0.0,
            "density": 0.3}
    with pytest.raises(TableError, match=r"unknown table variable 'nope'.*nf_mean"):
        lut.interpolate("nope", **grid)
    for key in ("rows", "r_row", "density"):
        with pytest.raises(TableError, match=f"parameter '{key}' must be a finite number"):
            lut.interpolate("nf_mean", **{**grid, key: float("nan")})
    with pytest.raises(TableError, match="must be a finite number"):
        lut.interpolate("nf_mean", **{**grid, "cols": float("inf")})
    with pytest.raises(TableError, match="out_of_range must be one of"):
        lut.interpolate("nf_mean", out_of_range="typo", **grid)
    with pytest.raises(TableError, match=r"g_on .* must not be below g_off"):
        lut.interpolate("nf_mean", **{**grid, "g_on": 1e-7, "g_off": 1e-6})
    xbar = Crossbar.random(12, 12, r_row=2.0, r_col=2.0, g_off=1e-6, g_on=1e-4,
                           density=0.5, seed=7)
    for kwargs in ({"g_on": float("nan")}, {"g_off": float("nan")}, {"g_on": float("inf")}):
        with pytest.raises(TableError, match="must be a finite number"):
            lut.predict_nf(xbar, **kwargs)
        with pytest.raises(TableError, match="must be a finite number"):
            lut.predict_attenuation(xbar, **kwargs)
    with pytest.raises(TableError, match="must not be below g_off"):
        lut.predict_nf(xbar, g_on=1e-6, g_off=1e-4)
    for method in ("scalar", "map", "model"):
        with pytest.raises(TableError, match="out_of_range must be one of"):
            lut.predict_nf(xbar, method=method, out_of_range="typo")
    with pytest.raises(TableError, match="out_of_range must be one of"):
        lut.predict_attenuation(xbar, out_of_range="typo")
    with pytest.raises(TableError, match="method must be 'scalar', 'map' or 'model'"):
        lut.predict_nf(xbar, method="exact")
    assert np.isfinite(lut.predict_nf(xbar, out_of_range="ignore"))
