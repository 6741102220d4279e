"""Solutions to keep and look at: to_xarray, save/load round trips, plot, metric()."""

from __future__ import annotations

import numpy as np
import pytest

from xbar_circuit import Crossbar, CrossbarSolution, InputError, solve

pytest.importorskip("xarray")
pytest.importorskip("h5netcdf")


@pytest.fixture(scope="module")
def crossbar() -> Crossbar:
    return Crossbar.random(5, 7, r_row=2.0, r_col=3.0, r_driver=10.0, r_sense=5.0,
                           g_off=1e-6, g_on=1e-4, seed=4)


@pytest.fixture(scope="module")
def single(crossbar: Crossbar) -> CrossbarSolution:
    return solve(crossbar, np.linspace(0.05, 0.2, 5))


@pytest.fixture(scope="module")
def batch(crossbar: Crossbar) -> CrossbarSolution:
    return solve(crossbar, np.random.default_rng(1).uniform(0.0, 0.2, (3, 5)))


def test_to_xarray_labels_dims_and_units(single: CrossbarSolution,
                                         batch: CrossbarSolution) -> None:
    ds = single.to_xarray()
    assert dict(ds.sizes) == {"row": 5, "column": 7}
    assert ds["row_voltages"].dims == ("row", "column")
    np.testing.assert_array_equal(ds["column_currents"].values, single.column_currents)
    np.testing.assert_array_equal(ds["cell_currents"].values, single.cell_currents)
    units = {name: ds[name].attrs["units"] for name in ds.data_vars}
    assert units["v_in"] == units["row_voltages"] == units["column_voltages"] == "V"
    assert units["column_currents"] == units["cell_currents"] == "A"
    assert units["conductance"] == "S" and units["nf_columns"] == "1"
    assert ds.attrs["backend"] == "nodal"
    assert Crossbar.from_json(ds.attrs["crossbar"]) == single.crossbar

    bds = batch.to_xarray()
    assert dict(bds.sizes) == {"batch": 3, "row": 5, "column": 7}
    assert bds["column_voltages"].dims == ("batch", "row", "column")
    np.testing.assert_array_equal(bds["nf"].values, batch.nf)


@pytest.mark.parametrize("which", ["single", "batch"])
def test_save_load_round_trip_is_exact(which: str, request: pytest.FixtureRequest,
                                       tmp_path) -> None:
    sol: CrossbarSolution = request.getfixturevalue(which)
    path = tmp_path / "solution.nc"
    sol.save(path)
    back = CrossbarSolution.load(path)
    assert back.batched == sol.batched and back.backend == sol.backend
    assert back.crossbar == sol.crossbar
    for name in ("v_in", "row_voltages", "column_voltages", "column_currents"):
        np.testing.assert_array_equal(getattr(back, name), getattr(sol, name), err_msg=name)
    np.testing.assert_array_equal(back.nf, sol.nf)
    assert back.info["method"] == sol.info["method"]


def test_load_rejects_what_is_not_a_solution(tmp_path) -> None:
    with pytest.raises(InputError, match="no saved solution"):
        CrossbarSolution.load(tmp_path / "missing.nc")
    junk = tmp_path / "junk.nc"
    junk.write_bytes(b"not hdf5")
    with pytest.raises(InputError, match="not a readable NetCDF"):
        CrossbarSolution.load(junk)
    import xarray as xr

    other = tmp_path / "other.nc"
    xr.Dataset({"a": ("x", np.arange(3.0))}).to_netcdf(other, engine="h5netcdf")
    with pytest.raises(InputError, match="not a solution saved by"):
        CrossbarSolution.load(other)


def test_plot_draws_three_maps_with_units(single: CrossbarSolution, batch: CrossbarSolution,
                                          tmp_path) -> None:
    pytest.importorskip("matplotlib")
    path = tmp_path / "maps.png"
    fig = single.plot(path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    maps = [ax for ax in fig.axes if ax.get_images()]
    assert len(maps) == 3
    # The row-wire map shows the drop from the source, the last one the cell currents.
    drop = maps[0].get_images()[0].get_array()
    assert np.all(np.asarray(drop) >= 0)
    labels = [ax.get_ylabel() for ax in fig.axes if not ax.get_images()]
    assert any("(mV)" in label or "(V)" in label for label in labels)
    assert any(label.endswith("A)") for label in labels)
    batch.plot(index=2)
    with pytest.raises(InputError, match="outside the batch"):
        batch.plot(index=3)
    with pytest.raises(InputError, match="single input"):
        single.plot(index=1)


def test_metric_names_and_arguments(single: CrossbarSolution) -> None:
    with pytest.raises(InputError, match="nf_aggregate") as info:
        single.metric("bogus")
    assert "bogus" in str(info.value)
    with pytest.raises(InputError, match="column_weights"):
        single.metric("nf_bit_weighted")
    with pytest.raises(InputError, match="takes no arguments"):
        single.metric("nf", column_weights=[1.0])
    weights = 2.0 ** np.arange(7)
    assert single.metric("nf_bit_weighted", column_weights=weights) == \
        single.nf_bit_weighted(weights)
    assert single.metric("relative_error") == single.relative_error
    with pytest.raises(InputError, match="7 finite weights"):
        single.nf_bit_weighted(np.ones(3))


def test_cli_solve_saves_and_plots(tmp_path) -> None:
    pytest.importorskip("matplotlib")
    from click.testing import CliRunner

    from xbar_circuit.cli import main

    saved, image = tmp_path / "sol.nc", tmp_path / "sol.png"
    result = CliRunner().invoke(main, ["solve", "--random", "6x5", "--seed", "2", "--save",
                                       str(saved), "--plot", str(image), "--json"])
    assert result.exit_code == 0, result.output
    back = CrossbarSolution.load(saved)
    assert back.crossbar.shape == (6, 5) and back.backend == "nodal"
    currents = __import__("json").loads(result.output)["backends"]["nodal"]["column_currents"]
    np.testing.assert_allclose(back.column_currents, currents, rtol=0, atol=0)
    assert image.read_bytes()[:4] == b"\x89PNG"
    bad = CliRunner().invoke(main, ["solve", "--random", "2x2", "--plot",
                                    str(tmp_path / "x.bogus")])
    assert bad.exit_code != 0 and "bogus" in bad.output
