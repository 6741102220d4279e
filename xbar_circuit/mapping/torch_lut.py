"""PyTorch layers that inject a lookup table's calibrated per-tile distortion (no solve).

Beside the exact layers of :mod:`~xbar_circuit.mapping.torch_module` (every tile's
exact G_eff, one circuit solve per tile and weight update), these layers apply the
distortion that a calibrated :class:`~xbar_circuit.tables.LookupTable` predicts for
each tile of the current mapping: O(R·C) closed-form work per tile, no linear system,
so they are cheap enough for hardware-aware training. PyTorch is imported only inside
the functions that build modules.

Distortion model
----------------
The weights (K, O) are mapped exactly as :func:`~xbar_circuit.mapping.map_layer` maps
them (``MappingConfig``: quantization, sign handling, bit slicing, tiling, layout).
For every tile t the table gives a per-cell loss map ``l_t[i, j] = 1 - V_cell/V_in``
(dimensionless) at the tile's stimulus (every real row at ``v_read``, padded rows at
0 V, as in ``layer_nf``'s all-on metrics):

- ``model="pattern"`` (default): :meth:`LookupTable.predict_attenuation` of the tile's
  actual conductance pattern: the closed-form (cell-wise Padé) loss of that pattern
  times the table's exact/model ratio, interpolated over the grid (size, resistances,
  ``g_on``/``g_off``, density) and bilinearly over normalized cell position;
- ``model="density"``: the table's mean measured loss map ``cell_loss`` interpolated
  at the tile's size, resistances, conductance range and density (ON fraction of all
  its cells, padding included), resampled bilinearly to the tile's cell positions:
  the tile's statistics only, not its pattern;
- a callable ``loss(crossbar, v_in) -> (R, C)`` instead of a table: a precomputed or
  user-supplied per-tile loss (e.g. from exact solves).

Each cell then conducts ``G (1 - l)`` (its current under the all-on stimulus, so the
per-column attenuation ``1 - NF_j = sum_i G_ij (1 - l_ij) / sum_i G_ij`` is the
table's). The readout of the existing layers (``g_off`` removed digitally, divided by
the level step, shift-and-add over slices with ``2**(b·slice)``, arrays combined with
their polarity) turns these cells into the integer matrix ``W_int`` the circuit applies.
It is written per weight as ``W_eff = A ∘ W + B``:

- ``A[k, o]`` (gain): the bit-significance-weighted mean of ``1 - l`` over the cells
  holding weight (k, o)'s ON digits, ``sum 2**(b·s) d (1 - l) / sum 2**(b·s) d``
  (for a zero weight, over all its cells);
- ``B[k, o]`` (offset, weight units): the rest, ``(W_int - A ∘ q) · scale``, mainly the
  loss of the ``g_off`` cells that the digital offset removal does not see.

With ``quantize=False`` (default) ``W`` is the float weight, so only the circuit's
distortion is injected (with zero resistances ``A = 1``, ``B = 0`` exactly and the
layer equals ``nn.Linear``/``nn.Conv2d``); ``quantize=True`` uses the quantized weight
with a straight-through rounding, so ``W_eff`` is the full mapped matrix. ``A`` and
``B`` are recomputed (weights re-mapped, tables queried) whenever the weights change,
unless the layer is frozen (:meth:`freeze`). Inputs are not quantized.

Gradients (``gradient=``): ``"model"`` (default) differentiates ``W_eff = A ∘ W + B``
with ``A``, ``B`` held constant: ``dL/dx`` through ``W_eff`` (exact for this linear
model), ``dL/dW = A ∘ (xᵀ dL/dy)``. ``"ste"``: the weight gradient of an ideal layer
(``xᵀ dL/dy``), the input gradient still through ``W_eff``. Optional training noise
multiplies every effective weight by ``1 + noise · N(0, 1)`` (training mode only).
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from .circuit import LUTRangeWarning, MappingCircuit, _recombination, as_circuit, tile_crossbar
from .layout import MappedLayer, MappingConfig, Tile, map_layer
from .quantize import MappingError

__all__ = ["LUT_MODELS", "convert_to_lut", "lut_conv2d", "lut_effective_terms", "lut_linear",
           "lut_tile_loss"]

LUT_MODELS = ("pattern", "density")
"""Per-tile loss models of a lookup table (see the module docstring)."""
LUT_GRADIENTS = ("model", "ste")

LossFunction = Callable[[Any, np.ndarray], np.ndarray]


def _check_lut(lut: Any) -> None:
    from ..tables import LookupTable

    if not (isinstance(lut, LookupTable) or callable(lut)):
        raise MappingError("lut must be an xbar_circuit.tables.LookupTable or a callable "
                           f"loss(crossbar, v_in) -> (R, C), got {type(lut).__name__}")


def _check_options(model: str, gradient: str, noise: Any, out_of_range: str) -> float:
    if not isinstance(model, str) or model not in LUT_MODELS:
        raise MappingError(f"model must be one of {', '.join(LUT_MODELS)}, got {model!r}")
    if not isinstance(gradient, str) or gradient not in LUT_GRADIENTS:
        raise MappingError(f"gradient must be one of {', '.join(LUT_GRADIENTS)}, got "
                           f"{gradient!r}")
    if out_of_range not in ("clip", "error", "ignore"):
        raise MappingError(f"out_of_range must be 'clip', 'error' or 'ignore', got "
                           f"{out_of_range!r}")
    if isinstance(noise, (bool, np.bool_)) or not isinstance(noise, numbers.Real) \
            or not math.isfinite(noise) or noise < 0:
        raise MappingError(f"noise must be a finite number >= 0, got {noise!r}")
    return float(noise)


def _check_circuit(circuit: Any, lut: Any) -> MappingCircuit | None:
    circ = as_circuit(circuit)
    if circ is None or circ.is_ideal:
        return circ
    if not circ.is_linear:
        raise MappingError("lookup tables model linear cells only; this circuit's device is "
                           f"{circ.template.device!r}")
    from ..tables import LookupTable

    if isinstance(lut, LookupTable) and not circ.template.is_default_topology:
        raise MappingError("lookup tables are calibrated for the default circuit only "
                           "(drivers left, sense bottom, ideal virtual grounds, scalar wires)")
    return circ


def _density_loss(lut: Any, crossbar: Any, out_of_range: str) -> np.ndarray:
    """The table's mean measured loss map at the crossbar's statistics, (M, N)."""
    params = lut.crossbar_params(crossbar)
    values = np.asarray(lut.dataset["cell_loss"].values, dtype=np.float64)
    m, n = crossbar.n_rows, crossbar.n_cols
    by_size: dict[tuple[int, int], Any] = {}
    for idx, w in lut._corners(lut._brackets(params, out_of_range)):
        key = (idx[0], idx[1])
        by_size[key] = by_size.get(key, 0.0) + w * values[idx]
    u_rows = np.linspace(0.0, 1.0, m) if m > 1 else np.zeros(1)
    u_cols = np.linspace(0.0, 1.0, n) if n > 1 else np.zeros(1)
    out = np.zeros((m, n))
    for (a, b), loss in by_size.items():
        rows = lut._map_rows[a][lut._map_rows[a] >= 0]
        cols = lut._map_cols[b][lut._map_cols[b] >= 0]
        loss = np.nan_to_num(loss[: rows.size, : cols.size])
        pr = rows / max(int(lut._axes["rows"][a]) - 1, 1)
        pc = cols / max(int(lut._axes["cols"][b]) - 1, 1)
        along = np.array([np.interp(u_cols, pc, line) for line in loss])
        out += np.array([np.interp(u_rows, pr, along[:, j]) for j in range(n)]).T
    return out


def lut_tile_loss(tile: Tile, layer: MappedLayer, lut: Any, circuit: Any, *,
                  model: str = "pattern", out_of_range: str = "clip") -> np.ndarray:
    """Per-cell loss ``1 - V_cell/V_in`` of one tile predicted without a circuit solve.

    Parameters
    ----------
    tile : Tile
        A tile of ``layer``.
    layer : MappedLayer
    lut : LookupTable or callable
        The calibrated table, or ``loss(crossbar, v_in) -> (R, C)``.
    circuit : CircuitParams, MappingCircuit or Crossbar template
        The tile's circuit (default linear circuit; resistances in ohms).
    model : {"pattern", "density"}
        See the module docstring (ignored for a callable).
    out_of_range : {"clip", "error", "ignore"}
        Table parameters outside the grid (see :meth:`LookupTable.interpolate`).

    Returns
    -------
    ndarray, shape (R, C)
        Dimensionless loss at the all-on stimulus (real rows at ``v_read`` volts,
        padded rows at 0 V); 0 on padded rows and for an ideal circuit.
    """
    _check_options(model, "model", 0.0, out_of_range)
    _check_lut(lut)
    circ = _check_circuit(circuit, lut)
    if circ is None or circ.is_ideal:
        return np.zeros(tile.shape)
    xbar = tile_crossbar(tile, circ, layer)
    v = np.where(tile.rows >= 0, layer.config.v_read, 0.0)
    if callable(lut) and not hasattr(lut, "predict_attenuation"):
        try:
            loss = np.asarray(lut(xbar, v), dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise MappingError(f"the loss function must return an array of real numbers: "
                               f"{exc}") from None
        if loss.shape != tile.shape:
            raise MappingError(f"the loss function returned shape {loss.shape}, expected "
                               f"{tile.shape}")
    elif model == "pattern":
        loss = lut.predict_attenuation(xbar, v, out_of_range=out_of_range)
    else:
        loss = _density_loss(lut, xbar, out_of_range)
    real = tile.rows >= 0
    user = callable(lut) and not hasattr(lut, "predict_attenuation")
    bad = ~np.isfinite(loss[real]) if user else np.isinf(loss[real])
    if np.any(bad):
        raise MappingError(f"the {'loss function' if user else 'predicted loss map'} gave "
                           f"{int(np.sum(bad))} non-finite value(s) on the tile's real rows "
                           f"(tile {tile.key}); the loss 1 - V_cell/V_in must be finite")
    return np.where(real[:, None], np.nan_to_num(loss), 0.0)


def lut_effective_terms(layer: MappedLayer, lut: Any, circuit: Any, *,
                        model: str = "pattern", out_of_range: str = "clip"
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gain, offset and effective matrix of a mapped layer under a table's distortion.

    Parameters are as in :func:`lut_tile_loss`. Tiles outside the table's grid give one
    :class:`~xbar_circuit.mapping.LUTRangeWarning` per call (``out_of_range="clip"``).

    Returns
    -------
    gain : ndarray, shape (K, O)
        ``A``: dimensionless per-weight attenuation.
    offset : ndarray, shape (K, O)
        ``B`` in weight units.
    w_eff : ndarray, shape (K, O)
        ``A ∘ W_q + B``: the matrix the distorted circuit applies to inputs (weight
        units; the analogue of :func:`~xbar_circuit.mapping.effective_weights`).
    """
    _check_options(model, "model", 0.0, out_of_range)
    _check_lut(lut)
    circ = _check_circuit(circuit, lut)
    cfg = layer.config
    q = layer.weights.q.astype(np.float64)
    scale = np.asarray(layer.weights.scale, dtype=np.float64)
    if circ is None or circ.is_ideal:
        return np.ones(q.shape), np.zeros(q.shape), q * scale
    k, o = q.shape
    w_int, num, den, num1, den1 = (np.zeros((k, o)) for _ in range(5))
    g0, dg = cfg.level_array[0], cfg.g_step
    clipped = 0
    for tile in layer.tiles:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            loss = lut_tile_loss(tile, layer, lut, circ, model=model, out_of_range=out_of_range)
        clipped += any(w.category.__name__ == "OutOfRangeWarning" for w in caught)
        for w in caught:
            if w.category.__name__ != "OutOfRangeWarning":
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        g = tile_crossbar(tile, circ, layer).conductance
        keep = 1.0 - loss
        m = (g * keep - g0) / dg
        real, outs, r = _recombination(layer, tile)
        rr = np.flatnonzero(tile.rows >= 0)
        sub = np.ix_(rr, real)
        at = np.ix_(tile.rows[rr], outs)
        r_abs = np.abs(r)
        d = tile.digits.astype(np.float64)
        w_int[at] += m[sub] @ r
        num[at] += (d * keep)[sub] @ r_abs
        den[at] += d[sub] @ r_abs
        num1[at] += keep[sub] @ r_abs
        den1[at] += r_abs.sum(axis=0)[None, :]
    if cfg.offset:
        w_int -= cfg.offset
    if clipped:
        warnings.warn(f"{clipped} of {len(layer.tiles)} tiles lie outside the lookup table's "
                      "grid and were clipped to its edge", LUTRangeWarning, stacklevel=2)
    with np.errstate(divide="ignore", invalid="ignore"):
        gain = np.where(den > 0, num / np.where(den > 0, den, 1.0),
                        num1 / np.where(den1 > 0, den1, 1.0))
    offset = (w_int - gain * q) * scale
    return gain, offset, w_int * scale


def _classes() -> dict[str, Any]:
    """Define the torch module classes on first use (torch imported here only)."""
    if "LUTDistortedLinear" in _CLASSES:
        return _CLASSES
    import torch
    import torch.nn.functional as F  # noqa: N812

    class _LUTBase(torch.nn.Module):
        """Float weight, mapping, table; gain and offset of the current weights."""

        def _setup(self, weight: torch.Tensor, bias: torch.Tensor | None, lut: Any,
                   config: MappingConfig, circuit: Any, model: str, quantize: bool,
                   noise: float, gradient: str, out_of_range: str) -> None:
            self.noise = _check_options(model, gradient, noise, out_of_range)
            _check_lut(lut)
            if not isinstance(config, MappingConfig):
                raise MappingError(f"config must be a MappingConfig, got "
                                   f"{type(config).__name__}")
            self.circuit = _check_circuit(circuit, lut)
            self.weight = torch.nn.Parameter(weight.detach().clone())
            self.bias = None if bias is None else torch.nn.Parameter(bias.detach().clone())
            self.lut, self.config, self.model = lut, config, model
            self.quantize, self.gradient, self.out_of_range = bool(quantize), gradient, \
                out_of_range
            self.frozen = False
            self._stamp: tuple[int, int] | None = None
            self._seen: torch.Tensor | None = None
            self._mapped: MappedLayer | None = None
            self._terms: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None

        def _matrix(self) -> torch.Tensor:
            return self.weight.reshape(self.weight.shape[0], -1)

        def _refresh(self) -> None:
            stamp = (id(self.weight), self.weight._version)
            current = self.weight.detach()
            # ``weight.data = ...`` keeps id and version: compare the values as well.
            if self._terms is not None and (self.frozen or (
                    stamp == self._stamp and self._seen is not None
                    and self._seen.shape == current.shape
                    and self._seen.device == current.device
                    and torch.equal(self._seen, current))):
                return
            w = self._matrix().detach().to("cpu", torch.float64).numpy().T
            self._mapped = map_layer(w, self.config)
            gain, offset, _ = lut_effective_terms(self._mapped, self.lut, self.circuit,
                                                  model=self.model,
                                                  out_of_range=self.out_of_range)
            deq = self._mapped.weights.dequantized
            self._terms = (torch.from_numpy(np.ascontiguousarray(gain.T)),
                           torch.from_numpy(np.ascontiguousarray(offset.T)),
                           torch.from_numpy(np.ascontiguousarray(deq.T)))
            self._stamp = stamp
            self._seen = current.clone()

        def freeze(self) -> None:
            """Keep the current gain and offset (and quantized weights) from now on."""
            self._refresh()
            self.frozen = True

        def unfreeze(self) -> None:
            """Re-map and re-query the table whenever the weights change (default)."""
            self.frozen = False
            self._stamp = None

        @property
        def mapped(self) -> MappedLayer:
            """The mapping of the weights the current gain and offset belong to."""
            self._refresh()
            return self._mapped  # type: ignore[return-value]

        def distortion(self) -> tuple[np.ndarray, np.ndarray]:
            """``(A, B)``, each (K, O): gain (dimensionless) and offset (weight units)."""
            self._refresh()
            gain, offset, _ = self._terms  # type: ignore[misc]
            return gain.numpy().T.copy(), offset.numpy().T.copy()

        def effective_matrix(self) -> np.ndarray:
            """``W_eff`` (K, O) of the current weights (noise-free), weight units."""
            with torch.no_grad():
                return self._effective().detach().to("cpu", torch.float64).numpy().reshape(
                    self.weight.shape[0], -1).T.copy()

        def _effective(self) -> torch.Tensor:
            """``A ∘ W + B`` as a tensor of the weight's shape, with the chosen gradient."""
            self._refresh()
            gain, offset, deq = (t.to(self.weight.dtype).to(self.weight.device)
                                 for t in self._terms)  # type: ignore[union-attr]
            w = self._matrix()
            if self.quantize:
                w = w + (deq - w).detach()
            if self.gradient == "model":
                eff = gain * w + offset
            else:
                eff = w + (gain * w + offset - w).detach()
            if self.training and self.noise > 0:
                eff = eff * (1.0 + self.noise * torch.randn_like(eff))
            return eff.reshape(self.weight.shape)

    class LUTDistortedLinear(_LUTBase):
        """``nn.Linear`` with a lookup table's per-tile distortion (module docstring)."""

        def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None, lut: Any,
                     config: MappingConfig, circuit: Any, model: str = "pattern",
                     quantize: bool = False, noise: float = 0.0, gradient: str = "model",
                     out_of_range: str = "clip") -> None:
            super().__init__()
            self._setup(weight, bias, lut, config, circuit, model, quantize, noise, gradient,
                        out_of_range)
            self.out_features, self.in_features = weight.shape

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return F.linear(x, self._effective(), self.bias)

        def extra_repr(self) -> str:
            return (f"in_features={self.in_features}, out_features={self.out_features}, "
                    f"model={self.model}, quantize={self.quantize}, noise={self.noise}")

    class LUTDistortedConv2d(_LUTBase):
        """``nn.Conv2d`` (groups 1, dilation 1) with a table's per-tile distortion."""

        def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None, lut: Any,
                     config: MappingConfig, circuit: Any, stride: tuple[int, int],
                     padding: tuple[int, int], model: str = "pattern", quantize: bool = False,
                     noise: float = 0.0, gradient: str = "model",
                     out_of_range: str = "clip") -> None:
            super().__init__()
            self._setup(weight, bias, lut, config, circuit, model, quantize, noise, gradient,
                        out_of_range)
            self.out_channels, self.in_channels = weight.shape[:2]
            self.kernel_size = tuple(weight.shape[2:])
            self.stride, self.padding = stride, padding

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return F.conv2d(x, self._effective(), self.bias, self.stride, self.padding)

        def extra_repr(self) -> str:
            return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                    f"stride={self.stride}, padding={self.padding}, model={self.model}, "
                    f"quantize={self.quantize}, noise={self.noise}")

    _CLASSES.update(LUTDistortedLinear=LUTDistortedLinear,
                    LUTDistortedConv2d=LUTDistortedConv2d, base=_LUTBase)
    return _CLASSES


_CLASSES: dict[str, Any] = {}


def lut_linear(linear: Any, lut: Any, config: MappingConfig, circuit: Any, *,
               model: str = "pattern", quantize: bool = False, noise: float = 0.0,
               gradient: str = "model", out_of_range: str = "clip") -> Any:
    """A ``LUTDistortedLinear`` module with the weights and bias of ``linear``.

    Parameters
    ----------
    linear : torch.nn.Linear
    lut : LookupTable or callable
        Calibrated table (:meth:`LookupTable.load`) or ``loss(crossbar, v_in)``.
    config : MappingConfig
        How the weights are mapped (bits, bit slicing, sign, tile size, layout).
    circuit : CircuitParams, MappingCircuit or Crossbar template
        Wire, driver and sense resistances (ohms) of every tile; linear cells.
    model : {"pattern", "density"}
        Per-tile loss from the tile's pattern or from its statistics.
    quantize : bool
        Apply the distortion to the quantized weights (straight-through rounding)
        instead of the float ones.
    noise : float
        Relative standard deviation of multiplicative Gaussian noise on every effective
        weight, in training mode (dimensionless, default 0).
    gradient : {"model", "ste"}
        Weight gradient through ``A ∘ W`` or straight-through.
    out_of_range : {"clip", "error", "ignore"}
        Table parameters outside its grid.

    Returns
    -------
    torch.nn.Module

    Raises
    ------
    MappingError
        For an unknown option, a bad ``lut``, ``config`` or ``noise``, or a circuit
        the table does not model (nonlinear cells, other topologies).
    """
    import torch

    if not isinstance(linear, torch.nn.Linear):
        raise MappingError(f"linear must be a torch.nn.Linear, got {type(linear).__name__}")
    cls = _classes()["LUTDistortedLinear"]
    return cls(linear.weight, linear.bias, lut, config, circuit, model, quantize, noise,
               gradient, out_of_range)


def _pair(value: Any) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else tuple(value)  # type: ignore[return-value]


def lut_conv2d(conv: Any, lut: Any, config: MappingConfig, circuit: Any, *,
               model: str = "pattern", quantize: bool = False, noise: float = 0.0,
               gradient: str = "model", out_of_range: str = "clip") -> Any:
    """A ``LUTDistortedConv2d`` from ``conv`` (``nn.Conv2d``, groups 1, dilation 1).

    Parameters are as in :func:`lut_linear`; the weight (O, C, kh, kw) is mapped as its
    (C·kh·kw, O) matrix (:func:`~xbar_circuit.mapping.conv2d_weight_matrix`).

    Raises
    ------
    MappingError
        As :func:`lut_linear`, and for grouped or dilated convolutions, string padding
        or a padding mode other than zeros.
    """
    import torch

    if not isinstance(conv, torch.nn.Conv2d):
        raise MappingError(f"conv must be a torch.nn.Conv2d, got {type(conv).__name__}")
    if conv.groups != 1 or _pair(conv.dilation) != (1, 1):
        raise MappingError("only convolutions with groups=1 and dilation=1 can be mapped")
    if isinstance(conv.padding, str) or conv.padding_mode != "zeros":
        raise MappingError("only explicit zero padding can be mapped (not 'same'/'valid' or "
                           f"padding_mode={conv.padding_mode!r})")
    cls = _classes()["LUTDistortedConv2d"]
    return cls(conv.weight, conv.bias, lut, config, circuit, _pair(conv.stride),
               _pair(conv.padding), model, quantize, noise, gradient, out_of_range)


def convert_to_lut(model: Any, lut: Any, config: MappingConfig, circuit: Any, *,
                   distortion: str = "pattern", quantize: bool = False, noise: float = 0.0,
                   gradient: str = "model", out_of_range: str = "clip",
                   inplace: bool = False) -> Any:
    """Swap every ``nn.Linear`` and ``nn.Conv2d`` of a model for its LUT-distorted version.

    The converted layers keep the parameter names ``weight`` and ``bias``, so the
    model's ``state_dict`` loads back into the original architecture (e.g. to evaluate
    the fine-tuned weights under the exact circuit with
    :func:`~xbar_circuit.mapping.convert_to_analog`).

    Parameters
    ----------
    model : torch.nn.Module
    lut, config, circuit, quantize, noise, gradient, out_of_range
        As in :func:`lut_linear`, shared by every converted layer.
    distortion : {"pattern", "density"}
        The ``model=`` option of :func:`lut_linear`.
    inplace : bool
        Modify ``model`` itself instead of a deep copy.

    Returns
    -------
    torch.nn.Module
    """
    import copy

    import torch

    _check_options(distortion, gradient, noise, out_of_range)
    _check_lut(lut)
    model = model if inplace else copy.deepcopy(model)
    kw: dict[str, Any] = {"model": distortion, "quantize": quantize, "noise": noise,
                          "gradient": gradient, "out_of_range": out_of_range}
    if isinstance(model, torch.nn.Linear):        # the model is one layer: convert it
        return lut_linear(model, lut, config, circuit, **kw)
    if isinstance(model, torch.nn.Conv2d):
        return lut_conv2d(model, lut, config, circuit, **kw)
    for name, child in list(model.named_children()):
        if isinstance(child, torch.nn.Linear):
            setattr(model, name, lut_linear(child, lut, config, circuit, **kw))
        elif isinstance(child, torch.nn.Conv2d):
            setattr(model, name, lut_conv2d(child, lut, config, circuit, **kw))
        else:
            convert_to_lut(child, lut, config, circuit, distortion=distortion,
                           quantize=quantize, noise=noise, gradient=gradient,
                           out_of_range=out_of_range, inplace=True)
    return model
