"""Hostile and careless inputs to the lookup-table side: sweep files, checkpoints, table
files, the calibrate/plot commands. Each must give a named XbarError, never a traceback,
a wrong table or an unbounded allocation."""

from __future__ import annotations

import io
import json
import os
import shutil
import tracemalloc
import warnings
import zipfile

import numpy as np
import pytest
from click.testing import CliRunner

from xbar_circuit.errors import MemoryLimitError
from xbar_circuit.tables import LookupTable, Sweep, SweepError, TableError, calibrate

pytestmark = pytest.mark.timeout(120)

TINY = {"grid": {"rows": [4], "cols": [4, 5, 6, 7, 8, 9, 10], "r_row": [1.0], "r_col": [1.0],
                 "g_on": [1e-4], "g_off": [1e-6], "density": [0.5]},
        "samples": 2, "seed": 5, "map_max": 4}


def run(sweep: Sweep, out: os.PathLike | str, **kwargs):
    return calibrate(sweep, out, workers=0, progress=False, ngspice_check=False, **kwargs)


def table_values(path) -> dict[str, bytes]:
    import xarray as xr

    with xr.open_dataset(path, engine="h5netcdf") as ds:
        return {k: np.asarray(ds[k].values).tobytes() for k in ds.variables}


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> tuple[str, str]:
    """A clean table and a copy of the checkpoints it was assembled from."""
    folder = tmp_path_factory.mktemp("clean")
    path = str(folder / "t.nc")
    run(Sweep.from_dict(TINY), path, keep_partial=True)
    shutil.copytree(path + ".partial", folder / "checkpoints")
    shutil.rmtree(path + ".partial")
    return path, str(folder / "checkpoints")


@pytest.fixture(scope="module")
def clean(finished) -> str:
    return finished[0]


@pytest.fixture(scope="module")
def table(clean) -> LookupTable:
    return LookupTable.load(clean)


@pytest.fixture
def kept(finished, tmp_path):
    """The checkpoints of a finished run, without its table, in a fresh folder."""
    out = tmp_path / "t.nc"
    shutil.copytree(finished[1], tmp_path / "t.nc.partial")
    return out, tmp_path / "t.nc.partial"


def rewrite_point(path, **fields) -> None:
    """Replace some fields of a checkpoint .npz, keeping the others."""
    with np.load(path) as data:
        values = {k: np.array(data[k]) for k in data.files}
    values.update(fields)
    with open(path, "wb") as handle:
        np.savez(handle, **values)


# ------------------------------------------------------------------ checkpoints
BAD_FIELDS = [
    ("nf", np.array([0.01])),                         # one value instead of one per sample
    ("nf", np.array([[0.01, 0.02]])),                 # right count, wrong shape
    ("cell_loss", np.zeros((3, 4))),                  # loss map of another array
    ("nf_columns", np.zeros(9)),                      # more columns than the point has
    ("model_loss", np.zeros((4, 4), dtype=np.int64)),  # wrong dtype
    ("nf_model", np.array([np.inf, 0.0])),            # right shape, impossible value
]


def declare_huge(path, field: str) -> None:
    """Rewrite ``field`` of a checkpoint with a header declaring 16 GB (and no data)."""
    with np.load(path) as data:
        values = {k: np.array(data[k]) for k in data.files}
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f8", "fortran_order": False, "shape": (2, 10**9)})
    with zipfile.ZipFile(path, "w") as archive:
        for key, array in values.items():
            member = io.BytesIO()
            np.lib.format.write_array(member, array)
            data = header.getvalue() + b"\0" * 64 if key == field else member.getvalue()
            archive.writestr(f"{key}.npy", data)


def test_bad_checkpoint_fields_are_discarded_and_recomputed(clean, kept) -> None:
    out, partial = kept
    assert len(BAD_FIELDS) + 1 == Sweep.from_dict(TINY).n_points
    for index, (field, value) in enumerate(BAD_FIELDS):
        rewrite_point(partial / f"point-{index:07d}.npz", **{field: value})
    declare_huge(partial / f"point-{len(BAD_FIELDS):07d}.npz", "cell_loss")
    tracemalloc.start()
    try:
        with pytest.warns(RuntimeWarning) as caught:
            result = run(Sweep.from_dict(TINY), out)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 100 * 2**20  # the declared 16 GB were never allocated
    messages = sorted(str(w.message) for w in caught if "corrupt checkpoint" in str(w.message))
    assert len(messages) == len(BAD_FIELDS) + 1
    for index, (field, _) in enumerate([*BAD_FIELDS, ("cell_loss", None)]):
        assert f"point-{index:07d}.npz" in messages[index] and repr(field) in messages[index]
    assert "'cell_loss' has shape (2, 1000000000)" in messages[-1]
    assert result.computed == len(BAD_FIELDS) + 1
    assert table_values(out) == table_values(clean)


@pytest.mark.parametrize("content", [b"{not json", b"[1, 2]", b'{"format": 3}',
                                     b"1" * 5000, b"[" * 100000])
def test_corrupt_sweep_json_is_reported_as_corrupt(kept, content) -> None:
    out, partial = kept
    (partial / "sweep.json").write_bytes(content)
    with pytest.raises(TableError, match=r"corrupt checkpoint directory .*t\.nc\.partial") as err:
        run(Sweep.from_dict(TINY), out)
    assert "different sweep" not in str(err.value)
    assert len(str(err.value)) < 700


def test_other_sweep_is_still_reported_as_different(kept) -> None:
    out, _ = kept
    with pytest.raises(TableError, match="different sweep"):
        run(Sweep.from_dict({**TINY, "seed": 6}), out)


def test_partial_path_that_is_not_a_checkpoint_directory(tmp_path) -> None:
    out = tmp_path / "t.nc"
    (tmp_path / "t.nc.partial").write_text("a file in the way")
    with pytest.raises(TableError, match=r"t\.nc\.partial exists and is not a directory"):
        run(Sweep.from_dict(TINY), out)
    os.remove(tmp_path / "t.nc.partial")
    os.makedirs(tmp_path / "t.nc.partial" / "sweep.json")
    with pytest.raises(TableError, match=r"sweep\.json is not a regular file"):
        run(Sweep.from_dict(TINY), out)
    shutil.rmtree(tmp_path / "t.nc.partial")
    os.makedirs(tmp_path / "t.nc.partial")
    with pytest.raises(TableError, match=r"has no sweep\.json"):
        run(Sweep.from_dict(TINY), out)


def test_unusable_output_paths(tmp_path) -> None:
    os.makedirs(tmp_path / "dir.nc")
    with pytest.raises(TableError, match="is a directory"):
        run(Sweep.from_dict(TINY), tmp_path / "dir.nc")
    with pytest.raises(TableError, match="does not exist"):
        run(Sweep.from_dict(TINY), tmp_path / "missing" / "t.nc")
    with pytest.raises(TableError, match="output must be a file path"):
        run(Sweep.from_dict(TINY), 3.5)
    with pytest.raises(SweepError, match="sweep must be a Sweep or the path"):
        run(42, tmp_path / "t.nc")


def test_sweep_beyond_memory_is_refused_before_any_work(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("XBAR_MEMORY_LIMIT", "64M")
    big = {**TINY, "grid": {**TINY["grid"], "rows": [8192], "cols": [8192]}}
    with pytest.raises(MemoryLimitError, match=r"needs at least .* only 64\.0 MiB") as err:
        run(Sweep.from_dict(big), tmp_path / "t.nc")
    assert err.value.needed > err.value.available == 64 * 2**20
    assert not (tmp_path / "t.nc.partial").exists()
    many = {**TINY, "samples": 10**9}
    with pytest.raises(MemoryLimitError):
        run(Sweep.from_dict(many), tmp_path / "t.nc")


# ------------------------------------------------------------------ sweep files
BOMB = """\
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
grid: *i
samples: 1
seed: 0
"""


@pytest.mark.timeout(120)   # expanding the bomb would take minutes and gigabytes
def test_yaml_alias_bomb_is_refused_at_once(tmp_path) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text(BOMB)
    with pytest.raises(SweepError, match=r"bomb\.yaml: line 1: YAML anchor .* not accepted"):
        Sweep.from_file(path)
    path.write_text("grid: {rows: [4], cols: [4]}\nsamples: &n 2\nseed: *n\n")
    with pytest.raises(SweepError, match="anchor"):
        Sweep.from_file(path)
    path.write_text("samples: *n\n")
    with pytest.raises(SweepError, match="alias"):
        Sweep.from_file(path)


@pytest.mark.timeout(120)
def test_messages_print_bounded_values() -> None:
    # Built in Python (no YAML), the value is shared 9 levels deep: 9**9 leaves, which
    # an expanding message would take minutes and gigabytes to print (the timeout).
    value: list = ["lol"] * 9
    for _ in range(8):
        value = [value] * 9
    for change in ({"grid": {**TINY["grid"], "rows": value}}, {"name": value},
                   {"inputs": value}, {"device": value}, {"backend": value},
                   {"grid": {**TINY["grid"], "density": [0.5, 0.5, "x" * 10**6]}},
                   {"grid": {**TINY["grid"], "r_row": [1.0, 1.0] * 10**5}}):
        with pytest.raises(SweepError) as err:
            Sweep.from_dict({**TINY, **change})
        assert len(str(err.value)) < 500, str(err.value)[:600]


def test_unreadable_sweep_files_are_named(tmp_path) -> None:
    latin = tmp_path / "latin.yaml"
    latin.write_bytes(b"name: r\xe9sum\xe9\n")
    with pytest.raises(SweepError, match=r"latin\.yaml: not a UTF-8 text file"):
        Sweep.from_file(latin)
    deep = tmp_path / "deep.yaml"
    deep.write_text("grid: " + "[" * 20000 + "]" * 20000 + "\n")
    with pytest.raises(SweepError, match=r"deep\.yaml"):
        Sweep.from_file(deep)
    deep_json = tmp_path / "deep.json"
    deep_json.write_text('{"grid": ' + "[" * 100000 + "]" * 100000 + "}")
    with pytest.raises(SweepError, match="nested too deeply"):
        Sweep.from_file(deep_json)
    digits = tmp_path / "digits.json"
    digits.write_text(json.dumps({**TINY, "seed": 0}).replace('"seed": 0', '"seed": ' + "9" * 4400))
    with pytest.raises(SweepError, match="4400 digits"):
        Sweep.from_file(digits)
    huge = tmp_path / "huge.yaml"
    huge.write_bytes(b"#" * (2 << 20))
    with pytest.raises(SweepError, match="too large"):
        Sweep.from_file(huge)
    with pytest.raises(SweepError, match="cannot read sweep file"):
        Sweep.from_file(tmp_path)


@pytest.mark.parametrize(("change", "message"), [
    ({"samples": True}, "samples must be an integer"),
    ({"seed": 1.5}, "seed must be an integer"),
    ({"map_max": "64"}, "map_max must be an integer"),
    ({"inputs": {"v_read": 1e300}}, "v_read must be a positive number"),
    ({"inputs": {"density": "half"}}, "inputs.density must be a real number"),
    ({"grid": {**TINY["grid"], "rows": [4, 1e300]}}, "grid.rows must hold integers"),
    ({"grid": {**TINY["grid"], "g_on": [1e30]}}, r"grid.g_on must be <= 1e\+06 S"),
    ({"grid": {**TINY["grid"], "r_col": [float("nan")]}}, "grid.r_col must be finite"),
    ({"version": True}, "unsupported sweep version"),
])
def test_sweep_values_use_the_shared_validators(change, message) -> None:
    with pytest.raises(SweepError, match=message):
        Sweep.from_dict({**TINY, **change})


# ------------------------------------------------------------------ table files
def edited_copy(clean: str, tmp_path, edit) -> str:
    import h5py

    path = str(tmp_path / "edited.nc")
    shutil.copy(clean, path)
    with h5py.File(path, "a") as handle:
        edit(handle)
    return path


def test_table_declaring_a_huge_variable_is_refused_before_loading(clean, tmp_path) -> None:
    def grow(handle) -> None:
        shape = handle["nf_samples"].shape
        del handle["nf_samples"]
        handle.create_dataset("nf_samples", shape=(*shape[:-1], 2**28), dtype="f8",
                              chunks=True)

    path = edited_copy(clean, tmp_path, grow)
    assert os.path.getsize(path) < 1 << 20  # declares 4 GiB, stores nothing
    tracemalloc.start()
    try:
        with pytest.raises(TableError, match=r"'nf_samples' declares shape .* sweep implies"):
            LookupTable.load(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 50 * 2**20


def test_table_with_a_huge_foreign_variable_is_refused(clean, tmp_path) -> None:
    def add(handle) -> None:
        handle.create_dataset("extra", shape=(2**30,), dtype="f8", chunks=True)

    with pytest.raises(TableError, match="not part of a lookup table"):
        LookupTable.load(edited_copy(clean, tmp_path, add))


def _set(name: str, value) -> object:
    def edit(handle) -> None:
        handle[name][...] = value
    return edit


def _retype(name: str, dtype: str) -> object:
    def edit(handle) -> None:
        data = np.array(handle[name][...])
        attrs = dict(handle[name].attrs)
        del handle[name]
        handle.create_dataset(name, data=data.astype(dtype))
        for key in ("units", "description"):
            if key in attrs:
                handle[name].attrs[key] = attrs[key]
    return edit


@pytest.mark.parametrize(("edit", "message"), [
    (_set("nf_mean", np.nan), "'nf_mean' holds non-finite"),
    (_set("nf_samples", np.inf), "'nf_samples' holds non-finite"),
    (_set("nf_model_samples", np.nan), "'nf_model_samples' holds non-finite"),
    (_set("cell_loss", -np.inf), "'cell_loss' holds non-finite"),
    (_set("cols", 7), "coordinate 'cols' does not hold the grid"),
    (_set("map_col_index", 0), "'map_col_index' does not match"),
])
def test_tables_with_impossible_values_are_refused(clean, tmp_path, edit, message) -> None:
    with pytest.raises(TableError, match=message):
        LookupTable.load(edited_copy(clean, tmp_path, edit))


def test_table_with_wrong_dtype_is_refused(clean, tmp_path) -> None:
    with pytest.raises(TableError, match="'nf_mean' has dtype int64"):
        LookupTable.load(edited_copy(clean, tmp_path, _retype("nf_mean", "int64")))
    with pytest.raises(TableError, match="'rows' has dtype"):
        LookupTable.load(edited_copy(clean, tmp_path, _retype("rows", "float64")))
    import xarray as xr

    with xr.open_dataset(clean, engine="h5netcdf") as ds:
        ints = ds.load()
    ints["nf_mean"] = ints["nf_mean"].astype(np.int64)
    with pytest.raises(TableError, match="'nf_mean' has dtype int64"):
        LookupTable(ints)  # in-memory datasets get the same checks


def test_table_path_of_the_wrong_type() -> None:
    with pytest.raises(TableError, match="no lookup table"):
        LookupTable.load(b"\xff/not/there.nc")
    with pytest.raises(TableError, match="must be a string or path"):
        LookupTable.load(3)


# ------------------------------------------------------------------ plot --at
@pytest.mark.parametrize(("at", "message"), [
    ([1, 2], "must be a mapping"), ("x", "must be a mapping"),
    ({"densty": 0.5}, "unknown grid axis"), ({"density": "half"}, "density must be a real"),
    ({"density": float("inf")}, "density must be finite"),
])
def test_plot_grid_values_are_validated(table, at, message) -> None:
    from xbar_circuit.tables.plots import snap_fixed

    with pytest.raises(TableError, match=message):
        snap_fixed(table, at)


def test_plot_at_refuses_non_objects_and_typos_and_reports_snapping(clean, tmp_path) -> None:
    from xbar_circuit.cli import main

    runner = CliRunner()
    base = ["plot", clean, "--out-dir", str(tmp_path / "figs")]
    for at, message in (("[1, 2]", "must be a mapping"), ('{"densty": 0.5}', "unknown grid axis")):
        result = runner.invoke(main, [*base, "--at", at])
        assert result.exit_code == 2, (at, result.output)
        assert message in result.output and "--at" in result.output
    result = runner.invoke(main, [*base, "--at", '{"rows": 5, "density": 0.5}'])
    assert result.exit_code == 0, result.output
    assert "rows=5 -> 4 (nearest grid value)" in result.stderr
    assert "density" not in result.stderr  # 0.5 is on the grid: nothing to report
    assert sorted(os.listdir(tmp_path / "figs")) == ["table_cell_loss.png",
                                                      "table_nf_vs_size.png"]


def test_queries_refuse_text_complex_and_huge_values(table) -> None:
    from xbar_circuit import Crossbar

    grid = {"rows": 4, "cols": 5, "density": 0.5}
    for key, value in (("rows", "4"), ("cols", 5 + 0j), ("density", 10**400),
                       ("density", np.bool_(True))):
        with pytest.raises(TableError, match=f"parameter '{key}' must be a finite number"):
            table.interpolate("nf_mean", **{**grid, key: value})
    xbar = Crossbar(np.full((4, 4), 1e-4), r_row=1.0, r_col=1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no ComplexWarning on the way to the error
        with pytest.raises(TableError, match="v_in must be real numbers"):
            table.predict_nf(xbar, v_in=[0.2, 0.2, 0.2, 0.1j])
    assert table.interpolate("nf_mean", **grid) > 0
