"""The Crossbar spec validates itself and round-trips through JSON exactly."""

from __future__ import annotations

import json

import numpy as np
import pytest

from xbar_circuit import Crossbar, SpecError


def test_fields_are_stored_as_read_only_float64_copies() -> None:
    g = np.array([[1e-4, 2e-5], [0.0, 3e-6]], dtype=np.float32)
    xbar = Crossbar(g, r_row=1, r_col=2.5)
    assert xbar.conductance.dtype == np.float64
    assert xbar.shape == (2, 2) and xbar.n_rows == 2 and xbar.n_cols == 2
    assert isinstance(xbar.r_row, float) and xbar.r_row == 1.0
    g[0, 0] = 99.0  # the caller's array is copied
    assert xbar.conductance[0, 0] == np.float32(1e-4)
    with pytest.raises(ValueError):
        xbar.conductance[0, 0] = 1.0
    with pytest.raises(AttributeError):
        xbar.r_row = 3.0  # type: ignore[misc]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"conductance": np.ones(3)}, "2-D"),
        ({"conductance": np.ones((2, 2, 2))}, "2-D"),
        ({"conductance": np.ones((0, 3))}, "at least one row"),
        ({"conductance": np.ones((3, 0))}, "at least one row"),
        ({"conductance": [[1e-4, np.nan]]}, r"conductance\[0, 1\] = nan"),
        ({"conductance": [[1e-4], [np.inf]]}, r"conductance\[1, 0\] = inf"),
        ({"conductance": [[1e-4, -1e-6]]}, r"conductance\[0, 1\] = -1e-06"),
        ({"conductance": [["a", "b"]]}, "conductance"),
        ({"r_row": -1.0}, "r_row must be >= 0 ohm, got -1.0"),
        ({"r_col": np.nan}, "r_col must be finite"),
        ({"r_driver": np.inf}, "r_driver must be finite"),
        ({"r_sense": -1e-9}, "r_sense must be >= 0"),
        ({"r_row": "1"}, "r_row must be a real number"),
        ({"r_col": [1.0, 2.0]}, "r_col must be a real number"),
        ({"r_sense": True}, "r_sense must be a real number"),
    ],
)
def test_invalid_fields_raise_naming_the_field(kwargs: dict, match: str) -> None:
    base = {"conductance": np.full((2, 2), 1e-4), "r_row": 1.0, "r_col": 1.0}
    base.update(kwargs)
    with pytest.raises(SpecError, match=match):
        Crossbar(**base)


def test_spec_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        Crossbar(np.ones((1, 1)), r_row=-1.0, r_col=0.0)


def test_json_round_trip_is_bit_exact() -> None:
    rng = np.random.default_rng(7)
    g = rng.lognormal(mean=-10, sigma=3, size=(7, 5))
    g[0, 0] = 5e-324  # smallest subnormal survives too
    g[1, 1] = 0.0
    xbar = Crossbar(g, r_row=0.1 + 0.2, r_col=1 / 3, r_driver=1e-300, r_sense=123456.789)
    back = Crossbar.from_json(xbar.to_json())
    assert back == xbar
    assert back.conductance.tobytes() == xbar.conductance.tobytes()
    for name in ("r_row", "r_col", "r_driver", "r_sense"):
        assert getattr(back, name).hex() == getattr(xbar, name).hex()


def test_save_and_load(tmp_path) -> None:
    xbar = Crossbar.random(3, 4, r_row=0.5, r_col=0.25, seed=3)
    path = tmp_path / "spec.json"
    xbar.save(path)
    assert Crossbar.load(path) == xbar


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        ('{"format": "something-else", "version": 1}', "not an xbar-circuit crossbar spec"),
        ('{"format": "xbar-circuit/crossbar", "version": 99}', "unsupported crossbar spec version"),
        ('{"format": "xbar-circuit/crossbar", "version": 1, "r_row": 1}', "missing field"),
    ],
)
def test_corrupt_json_gives_clear_errors(text: str, match: str) -> None:
    with pytest.raises(SpecError, match=match):
        Crossbar.from_json(text)


def test_load_names_the_file_and_rejects_inconsistent_shape(tmp_path) -> None:
    data = Crossbar.random(2, 3, r_row=1.0, r_col=1.0, seed=0).to_dict()
    data["shape"] = [3, 2]
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(SpecError, match=r"bad\.json.*does not match"):
        Crossbar.load(path)
    data["shape"] = [2, 3]
    data["extra"] = 1
    path.write_text(json.dumps(data))
    with pytest.raises(SpecError, match="unknown field"):
        Crossbar.load(path)


def test_random_is_seeded_and_binary_density() -> None:
    a = Crossbar.random(50, 40, r_row=1.0, r_col=1.0, density=0.3, seed=11)
    b = Crossbar.random(50, 40, r_row=1.0, r_col=1.0, density=0.3, seed=11)
    assert a == b
    on = a.conductance == 1e-4
    assert set(np.unique(a.conductance)) == {1e-6, 1e-4}
    # 2000 Bernoulli(0.3) draws: 5 standard deviations is about 0.051.
    assert abs(on.mean() - 0.3) < 0.051
    with pytest.raises(SpecError, match="density"):
        Crossbar.random(2, 2, r_row=1.0, r_col=1.0, density=1.5)


def test_replace_validates_and_is_ideal() -> None:
    xbar = Crossbar(np.full((2, 2), 1e-4), r_row=1.0, r_col=1.0)
    assert not xbar.is_ideal
    assert xbar.replace(r_row=0.0, r_col=0.0).is_ideal
    with pytest.raises(SpecError, match="r_row"):
        xbar.replace(r_row=-2.0)


@pytest.mark.parametrize(
    "text",
    [
        '{"format": "xbar-circuit/crossbar", "version": 1, "shape": 5, '
        '"conductance": [[1e-4]], "r_row": 1, "r_col": 1}',
        '{"format": "xbar-circuit/crossbar", "version": 1, '
        '"conductance": [[1' + "0" * 400 + ']], "r_row": 1, "r_col": 1}',
        '{"format": "xbar-circuit/crossbar", "version": 2, "device": {"type": ["sinh"]}, '
        '"conductance": [[1e-4]], "r_row": 1, "r_col": 1}',
        '{"format": "xbar-circuit/crossbar", "version": 1, "conductance": '
        + "[" * 5000 + "]" * 5000 + ', "r_row": 1, "r_col": 1}',
    ],
    ids=["shape-not-a-list", "overflowing-number", "unhashable-device", "deep-nesting"],
)
def test_malformed_json_content_is_a_spec_error(text: str) -> None:
    with pytest.raises(SpecError):
        Crossbar.from_json(text)


def test_non_text_inputs_are_spec_errors(tmp_path) -> None:
    with pytest.raises(SpecError, match="must be JSON text"):
        Crossbar.from_json(None)  # type: ignore[arg-type]
    with pytest.raises(SpecError, match="is a directory"):
        Crossbar.load(tmp_path)


def test_complex_values_sizes_and_field_typos_are_rejected() -> None:
    with pytest.raises(SpecError, match="conductance must be real"):
        Crossbar(np.full((2, 2), 1e-4 + 1e-6j), r_row=1.0, r_col=1.0)
    with pytest.raises(SpecError, match="r_row must be real"):
        Crossbar(np.full((2, 2), 1e-4), r_row=np.full((2, 2), 1.0 + 1j), r_col=1.0)
    with pytest.raises(SpecError, match="n_rows must be an integer"):
        Crossbar.random(2.5, 3, r_row=1.0, r_col=1.0)
    xbar = Crossbar(np.full((2, 2), 1e-4), r_row=1.0, r_col=1.0)
    with pytest.raises(SpecError, match=r"no field.*r_rows"):
        xbar.replace(r_rows=1.0)
