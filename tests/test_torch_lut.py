"""LUT-distorted torch layers (xbar_circuit.mapping.torch_lut) against independent references:
``nn.Linear``/``nn.Conv2d`` at zero resistance, the exact circuit (effective_weights,
tile_currents, the exact-G_eff torch layer) for the distortion, autograd.gradcheck and
the closed-form weight gradient of ``A ∘ W + B``, and named errors for bad input."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch is optional (pip install torch)")
pytest.importorskip("xarray", reason="lookup tables need xarray (pip install xbar-circuit[tables])")
pytest.importorskip("h5netcdf", reason="lookup tables need h5netcdf")

from xbar_circuit import Crossbar, Sinh  # noqa: E402
from xbar_circuit.errors import XbarError  # noqa: E402
from xbar_circuit.mapping import (  # noqa: E402
    CircuitParams,
    LUTRangeWarning,
    MappingConfig,
    MappingError,
    convert_to_analog,
    convert_to_lut,
    effective_weights,
    lut_conv2d,
    lut_effective_terms,
    lut_linear,
    lut_tile_loss,
    map_layer,
    tile_currents,
)
from xbar_circuit.tables import LookupTable, Sweep, TableError, calibrate  # noqa: E402

TILE = 16
CIRCUIT = CircuitParams(r_row=2.0, r_col=2.0, r_driver=2.0, r_sense=2.0)
NF_TOLERANCE = 0.005  # the LUT's documented accuracy on a tile's column NF (docs/mapping.md)


@pytest.fixture(scope="module")
def lut(tmp_path_factory: pytest.TempPathFactory) -> LookupTable:
    """A 16x16 table of the test circuit (4 points, 2 exact solves each)."""
    sweep = Sweep.from_dict({"grid": {
        "rows": [TILE], "cols": [TILE], "r_row": [2.0], "r_col": [2.0], "r_driver": [2.0],
        "r_sense": [2.0], "g_on": 1e-4, "g_off": 1e-6, "density": [0.01, 0.1, 0.3, 0.6]},
        "samples": 2, "seed": 3, "map_max": TILE})
    path = tmp_path_factory.mktemp("lut") / "t16.nc"
    calibrate(sweep, str(path), workers=0, progress=False, ngspice_check=False)
    return LookupTable.load(path)


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)
    warnings.simplefilter("ignore", LUTRangeWarning)


def _config(preset: str = "mdm") -> MappingConfig:
    return MappingConfig.preset(preset, tile_rows=TILE, tile_cols=TILE)


# ------------------------------------------------------------------ zero resistance
def test_zero_resistance_equals_torch_layers_exactly(lut: LookupTable) -> None:
    torch.manual_seed(0)
    zero = CircuitParams(r_row=0.0, r_col=0.0)
    linear = torch.nn.Linear(20, 5).double()
    conv = torch.nn.Conv2d(2, 3, 3, stride=2, padding=1).double()
    x, img = torch.rand(4, 20, dtype=torch.float64), torch.rand(2, 2, 7, 7, dtype=torch.float64)
    for module, layer, inp in ((linear, lut_linear(linear, lut, _config(), zero), x),
                               (conv, lut_conv2d(conv, lut, _config(), zero), img)):
        assert torch.equal(layer(inp), module(inp))
        gain, offset = layer.distortion()
        assert np.all(gain == 1.0) and np.all(offset == 0.0)
    # quantize=True: exactly the dequantized weights of map_layer.
    q = lut_linear(linear, lut, _config(), zero, quantize=True)
    deq = map_layer(linear.weight.detach().numpy().T, _config()).weights.dequantized
    ref = torch.nn.functional.linear(x, torch.from_numpy(deq.T.copy()), linear.bias)
    assert torch.allclose(q(x), ref, rtol=0, atol=1e-14)


# ------------------------------------------------------------ against the circuit
@pytest.mark.parametrize("preset", ["mdm", "naive", "planes_high_first"])
def test_effective_weights_match_the_exact_circuit(lut: LookupTable, preset: str) -> None:
    w = np.random.default_rng(1).normal(size=(20, 6))
    layer = map_layer(w, _config(preset))
    exact = effective_weights(layer, CIRCUIT)
    ideal = layer.weights.dequantized
    distortion = np.linalg.norm(ideal - exact)
    assert distortion > 0.005 * np.linalg.norm(exact)       # the circuit does distort
    _, _, pattern = lut_effective_terms(layer, lut, CIRCUIT, model="pattern")
    _, _, density = lut_effective_terms(layer, lut, CIRCUIT, model="density")
    assert np.linalg.norm(pattern - exact) < 0.05 * distortion   # measured 0.3-0.8 %
    assert np.linalg.norm(density - exact) < 0.7 * distortion    # measured 37-39 %


def test_column_attenuation_within_the_tables_accuracy(lut: LookupTable) -> None:
    """Per tile and real column: 1 - NF_j of the loss map against exact all-on currents."""
    layer = map_layer(np.random.default_rng(2).normal(size=(30, 5)), _config())
    v_read = layer.config.v_read
    for tile in layer.tiles:
        v = np.where(tile.rows >= 0, v_read, 0.0)
        g = tile.conductance
        ideal = v @ g
        exact = tile_currents(tile, CIRCUIT, v[None, :], layer)[0]
        loss = lut_tile_loss(tile, layer, lut, CIRCUIT)
        predicted = v @ (g * (1.0 - loss))
        real = tile.real_columns
        nf_exact = 1.0 - exact[real] / ideal[real]
        nf_lut = 1.0 - predicted[real] / ideal[real]
        assert nf_exact.max() > 0.005
        assert np.max(np.abs(nf_lut - nf_exact)) < NF_TOLERANCE


def test_layer_matches_the_exact_geff_layer(lut: LookupTable) -> None:
    torch.manual_seed(3)
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(),
                              torch.nn.Flatten(), torch.nn.Linear(4 * 6 * 6, 10)).double()
    x = torch.rand(6, 1, 6, 6, dtype=torch.float64)
    exact = convert_to_analog(net, _config(), CIRCUIT, forward="geff")
    ideal = convert_to_analog(net, _config(), None, forward="geff")
    table = convert_to_lut(net, lut, _config(), CIRCUIT, quantize=True)
    with torch.no_grad():
        y_exact, y_ideal, y_lut = exact(x), ideal(x), table(x)
    assert (y_lut - y_exact).norm() < 0.05 * (y_ideal - y_exact).norm()
    # The converted model's parameters load back into the original architecture.
    plain = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(),
                                torch.nn.Flatten(), torch.nn.Linear(4 * 6 * 6, 10)).double()
    plain.load_state_dict(table.state_dict())
    assert torch.equal(plain[3].weight, net[3].weight)


def test_precomputed_loss_callable(lut: LookupTable) -> None:
    """A callable loss(crossbar, v) replaces the table: a uniform loss scales the weights."""
    linear = torch.nn.Linear(12, 3).double()
    layer = lut_linear(linear, lambda xbar, v: np.full(xbar.shape, 0.1), _config(), CIRCUIT)
    gain, _ = layer.distortion()
    assert np.allclose(gain, 0.9, rtol=0, atol=1e-12)


# ------------------------------------------------------------------ gradients
def test_gradcheck_linear_and_conv(lut: LookupTable) -> None:
    torch.manual_seed(4)
    linear = lut_linear(torch.nn.Linear(7, 3).double(), lut, _config(), CIRCUIT)
    conv = lut_conv2d(torch.nn.Conv2d(2, 2, 2).double(), lut, _config(), CIRCUIT)
    for layer, shape in ((linear, (2, 7)), (conv, (1, 2, 3, 3))):
        layer.freeze()      # A and B held fixed: the layer is A ∘ W + B, smooth in W and x
        x = torch.rand(*shape, dtype=torch.float64, requires_grad=True)
        w = layer.weight.detach().clone().requires_grad_(True)
        b = layer.bias.detach().clone().requires_grad_(True)

        def f(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor, layer=layer) -> torch.Tensor:
            return torch.func.functional_call(layer, {"weight": w, "bias": b}, (x,))

        assert torch.autograd.gradcheck(f, (x, w, b), eps=1e-6, atol=1e-8)


def test_weight_gradient_is_gain_times_ideal_gradient(lut: LookupTable) -> None:
    torch.manual_seed(5)
    base = torch.nn.Linear(9, 4).double()
    x = torch.rand(3, 9, dtype=torch.float64)
    g_out = torch.rand(3, 4, dtype=torch.float64)
    ideal = g_out.t() @ x                                   # x^T dL/dy, (O, K)
    for gradient in ("model", "ste"):
        layer = lut_linear(base, lut, _config(), CIRCUIT, gradient=gradient)
        layer(x).backward(g_out)
        gain, _ = layer.distortion()
        expected = ideal * torch.from_numpy(gain.T.copy()) if gradient == "model" else ideal
        assert torch.allclose(layer.weight.grad, expected, rtol=1e-12, atol=1e-14)
        w_eff = torch.from_numpy(layer.effective_matrix().T.copy())
        xr = x.clone().requires_grad_(True)
        layer(xr).backward(g_out)
        assert torch.allclose(xr.grad, g_out @ w_eff, rtol=1e-12, atol=1e-14)


def test_weights_are_remapped_after_an_update_and_noise_only_in_training(lut: LookupTable
                                                                         ) -> None:
    torch.manual_seed(6)
    layer = lut_linear(torch.nn.Linear(10, 3).double(), lut, _config(), CIRCUIT, noise=0.05)
    before = layer.distortion()[0]
    with torch.no_grad():
        layer.weight.add_(0.5 * torch.randn_like(layer.weight))   # other digits and cells
    assert not np.array_equal(layer.distortion()[0], before)
    x = torch.rand(4, 10, dtype=torch.float64)
    layer.eval()
    assert torch.equal(layer(x), layer(x))
    layer.train()
    assert not torch.equal(layer(x), layer(x))


# ---------------------------------------------------------------------- errors
def test_bad_inputs_raise_named_errors(lut: LookupTable) -> None:
    linear = torch.nn.Linear(4, 2)
    cfg = _config()
    bad = [dict(model="exact"), dict(gradient="geff"), dict(noise=-0.1),
           dict(noise=float("nan")), dict(out_of_range="wrap")]
    for kwargs in bad:
        with pytest.raises(MappingError):
            lut_linear(linear, lut, cfg, CIRCUIT, **kwargs)
    with pytest.raises(MappingError, match="LookupTable"):
        lut_linear(linear, "table.nc", cfg, CIRCUIT)
    with pytest.raises(MappingError, match="MappingConfig"):
        lut_linear(linear, lut, {"tile_rows": 16}, CIRCUIT)
    sinh = Crossbar(np.zeros((1, 1)), r_row=1.0, r_col=1.0, device=Sinh(k=5.0))
    with pytest.raises(MappingError, match="linear cells"):
        lut_linear(linear, lut, cfg, sinh)
    with pytest.raises(MappingError, match="groups"):
        lut_conv2d(torch.nn.Conv2d(2, 2, 3, groups=2), lut, cfg, CIRCUIT)
    with pytest.raises(MappingError):
        convert_to_lut(torch.nn.Sequential(linear), lut, cfg, CIRCUIT, distortion="nope")
    far = CircuitParams(r_row=8.0, r_col=8.0, r_driver=2.0, r_sense=2.0)  # off the grid
    layer = lut_linear(linear, lut, cfg, far, out_of_range="error")
    with pytest.raises(TableError):
        layer(torch.rand(1, 4))
    with pytest.warns(LUTRangeWarning):
        warnings.simplefilter("always", LUTRangeWarning)
        lut_effective_terms(map_layer(np.ones((4, 2)), cfg), lut, far)
    assert issubclass(MappingError, XbarError) and issubclass(TableError, XbarError)


def test_bad_loss_callables_and_modules_are_named_errors() -> None:
    """A loss callable returning NaN/inf used to be read as "no loss" (NaN -> 0) or to
    give infinite weights; non-modules gave AttributeError; a bare nn.Linear given to
    convert_to_lut came back unconverted."""
    linear = torch.nn.Linear(12, 3).double()
    cfg = _config()
    for value in (np.nan, np.inf, -np.inf):
        layer = lut_linear(linear, lambda xbar, v, value=value: np.full(xbar.shape, value),
                           cfg, CIRCUIT)
        with pytest.raises(MappingError, match="non-finite"):
            layer.distortion()
    layer = lut_linear(linear, lambda xbar, v: np.full(xbar.shape, "x"), cfg, CIRCUIT)
    with pytest.raises(MappingError, match="real numbers"):
        layer.distortion()
    with pytest.raises(MappingError, match=r"torch\.nn\.Linear"):
        lut_linear("linear", lambda xbar, v: np.zeros(xbar.shape), cfg, CIRCUIT)
    with pytest.raises(MappingError, match=r"torch\.nn\.Conv2d"):
        lut_conv2d(linear, lambda xbar, v: np.zeros(xbar.shape), cfg, CIRCUIT)
    uniform = lambda xbar, v: np.full(xbar.shape, 0.1)  # noqa: E731
    converted = convert_to_lut(linear, uniform, cfg, CIRCUIT)
    assert type(converted).__name__ == "LUTDistortedLinear"
    assert np.allclose(converted.distortion()[0], 0.9, rtol=0, atol=1e-12)
    assert lut_linear(linear, uniform, cfg, CIRCUIT, noise=np.float32(0.5)).noise == 0.5


def test_weights_replaced_through_data_are_remapped() -> None:
    """``layer.weight.data = w`` keeps the parameter's id and version counter: the gain
    and offset of the old weights were silently kept."""
    def loss(xbar, v):
        return np.where(xbar.conductance > 5e-5, 0.2, 0.0)

    layer = lut_linear(torch.nn.Linear(12, 3).double(), loss, _config(), CIRCUIT)
    layer.effective_matrix()
    new = torch.randn(3, 12, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    layer.weight.data = new.clone()
    reference = torch.nn.Linear(12, 3).double()
    reference.weight.data = new.clone()
    fresh = lut_linear(reference, loss, _config(), CIRCUIT)
    assert np.array_equal(layer.effective_matrix(), fresh.effective_matrix())
