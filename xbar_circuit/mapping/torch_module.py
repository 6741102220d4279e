"""Optional PyTorch layers computed by crossbar circuits, with gradients.

PyTorch is imported only inside these functions (``pip install torch``; this package
does not depend on it).

- :func:`analog_linear` / :func:`analog_conv2d` build ``AnalogLinear`` /
  ``AnalogConv2d`` modules from ``nn.Linear`` / ``nn.Conv2d``; :func:`convert_to_analog`
  swaps every such layer of a model; :func:`calibrate_model` fits the readout
  calibration of every analog layer on a batch of calibration inputs.
- Forward (``forward=``): ``"circuit"`` (default) computes the layer exactly as
  :func:`~xbar_circuit.mapping.layer_output` does (input quantization, every tile's
  exact G_eff or a solve for nonlinear cells, ADC and calibration of the periphery);
  ``"geff"`` computes ``x @ W_eff + b`` with the exact effective weights of the mapped
  circuit (:func:`~xbar_circuit.mapping.effective_weights`, linear cells, no input
  quantization): a smooth, differentiable model of the circuit's distortion.
- Backward (``gradient=``): ``"geff"`` (default) propagates through ``W_eff``, the exact
  Jacobian of the circuit with respect to its inputs; ``"ste"`` through the ideal
  weights (straight-through). The weight gradient is always straight-through
  (``x^T dL/dy``, as for an ideal layer), so hardware-aware training updates the float
  weights, which are re-mapped (quantized, tiled, solved) at the next forward pass
  after they change.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .circuit import (
    Calibration,
    as_circuit,
    calibrate_layer,
    effective_weights,
    layer_output,
)
from .layout import MappedLayer, MappingConfig, map_layer
from .quantize import MappingError
from .readout import Periphery

__all__ = ["as_torch_module", "analog_linear", "analog_conv2d", "convert_to_analog",
           "calibrate_model"]

FORWARDS = ("circuit", "geff")
GRADIENTS = ("geff", "ste")


def _check_modes(forward: str, gradient: str) -> None:
    if forward not in FORWARDS:
        raise MappingError(f"forward must be one of {', '.join(FORWARDS)}, got {forward!r}")
    if gradient not in GRADIENTS:
        raise MappingError(f"gradient must be one of {', '.join(GRADIENTS)}, got {gradient!r}")


def _classes() -> dict[str, Any]:
    """Define the torch module classes on first use (torch imported here only)."""
    if "AnalogLinear" in _CLASSES:
        return _CLASSES
    import torch
    import torch.nn.functional as F  # noqa: N812

    class _AnalogBase(torch.nn.Module):
        """Shared state: float weight (O, K), mapping, circuit, readout, cached mapping."""

        def _setup(self, weight: torch.Tensor, bias: torch.Tensor | None,
                   config: MappingConfig, circuit: Any, periphery: Periphery | None,
                   forward: str, gradient: str) -> None:
            _check_modes(forward, gradient)
            self.weight = torch.nn.Parameter(weight.detach().clone())
            self.bias = None if bias is None else torch.nn.Parameter(bias.detach().clone())
            self.config = config
            self.circuit = as_circuit(circuit)
            self.periphery = periphery or Periphery()
            self.forward_mode = forward
            self.gradient = gradient
            self.calibration: Calibration | None = None
            self._mapped: MappedLayer | None = None
            self._w_eff: np.ndarray | None = None
            # Not _version: nn.Module keeps its state-dict format number there.
            self._weights_stamp: tuple[int, int] | None = None
            self._capture: list[np.ndarray] | None = None

        def _matrix(self) -> torch.Tensor:
            """The (O, K) float weight matrix of the crossbar."""
            return self.weight.reshape(self.weight.shape[0], -1)

        @property
        def mapped(self) -> MappedLayer:
            """The current mapping of the weights (re-mapped when they change)."""
            self._refresh()
            return self._mapped  # type: ignore[return-value]

        def _refresh(self) -> None:
            version = (id(self.weight), self.weight._version)
            if self._mapped is not None and version == self._weights_stamp:
                return
            w = self._matrix().detach().to("cpu", torch.float64).numpy().T
            self._mapped = map_layer(w, self.config)
            self._w_eff = None
            self.calibration = None
            self._weights_stamp = version

        def effective_matrix(self) -> np.ndarray:
            """``W_eff`` (K, O) of the current mapping under the circuit."""
            self._refresh()
            if self._w_eff is None:
                self._w_eff = effective_weights(self._mapped, self.circuit)  # type: ignore[arg-type]
            return self._w_eff

        def calibrate(self, x: Any) -> None:
            """Fit the readout calibration on calibration inputs (B, K) of this layer."""
            self._refresh()
            if self.periphery.needs_calibration:
                flat = np.asarray(x, dtype=np.float64).reshape(-1, self._matrix().shape[1])
                self.calibration = calibrate_layer(self._mapped, flat,  # type: ignore[arg-type]
                                                   self.circuit, self.periphery)

        def _linear(self, flat: torch.Tensor) -> torch.Tensor:
            """(N, K) -> (N, O) through the circuit, with the chosen gradient."""
            if self._capture is not None:
                self._capture.append(flat.detach().to("cpu", torch.float64).numpy())
                return flat @ self._matrix().t()
            w = self._matrix().t()
            if self.gradient == "geff" or self.forward_mode == "geff":
                w_eff = torch.as_tensor(self.effective_matrix(), dtype=flat.dtype,
                                        device=flat.device)
                surrogate = flat @ (w + (w_eff - w).detach())
            else:
                surrogate = flat @ w
            if self.forward_mode == "geff":
                return surrogate
            self._refresh()
            if self.periphery.needs_calibration and self.calibration is None:
                raise MappingError("this analog layer's readout needs calibration: call "
                                   "calibrate_model(model, x) first")
            y = layer_output(self._mapped, flat.detach().to("cpu", torch.float64).numpy(),  # type: ignore[arg-type]
                             self.circuit,
                             periphery=None if self.calibration else self.periphery,
                             calibration=self.calibration)
            exact = torch.as_tensor(np.ascontiguousarray(y), dtype=flat.dtype,
                                    device=flat.device)
            return surrogate + (exact - surrogate).detach()

    class AnalogLinear(_AnalogBase):
        """``nn.Linear`` computed by crossbar circuits (see the module docstring)."""

        def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None,
                     config: MappingConfig, circuit: Any, periphery: Periphery | None = None,
                     forward: str = "circuit", gradient: str = "geff") -> None:
            super().__init__()
            self._setup(weight, bias, config, circuit, periphery, forward, gradient)
            self.out_features, self.in_features = weight.shape

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            flat = x.reshape(-1, self.in_features)
            y = self._linear(flat)
            if self.bias is not None:
                y = y + self.bias
            return y.reshape(*x.shape[:-1], self.out_features)

        def extra_repr(self) -> str:
            return (f"in_features={self.in_features}, out_features={self.out_features}, "
                    f"forward={self.forward_mode}, gradient={self.gradient}")

    class AnalogConv2d(_AnalogBase):
        """``nn.Conv2d`` (groups 1, dilation 1) computed by crossbar circuits on im2col patches."""

        def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None,
                     config: MappingConfig, circuit: Any, stride: tuple[int, int],
                     padding: tuple[int, int], periphery: Periphery | None = None,
                     forward: str = "circuit", gradient: str = "geff") -> None:
            super().__init__()
            self._setup(weight, bias, config, circuit, periphery, forward, gradient)
            self.out_channels, self.in_channels = weight.shape[:2]
            self.kernel_size = tuple(weight.shape[2:])
            self.stride, self.padding = stride, padding

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            b, _, h, w = x.shape
            kh, kw = self.kernel_size
            ho = (h + 2 * self.padding[0] - kh) // self.stride[0] + 1
            wo = (w + 2 * self.padding[1] - kw) // self.stride[1] + 1
            cols = F.unfold(x, self.kernel_size, padding=self.padding, stride=self.stride)
            flat = cols.transpose(1, 2).reshape(-1, cols.shape[1])
            y = self._linear(flat)
            if self.bias is not None:
                y = y + self.bias
            return y.reshape(b, ho * wo, -1).transpose(1, 2).reshape(b, -1, ho, wo)

        def extra_repr(self) -> str:
            return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                    f"stride={self.stride}, padding={self.padding}, forward={self.forward_mode}, "
                    f"gradient={self.gradient}")

    _CLASSES.update(AnalogLinear=AnalogLinear, AnalogConv2d=AnalogConv2d, base=_AnalogBase)
    return _CLASSES


_CLASSES: dict[str, Any] = {}


def analog_linear(linear: Any, config: MappingConfig, circuit: Any, *,
                  periphery: Periphery | None = None, forward: str = "circuit",
                  gradient: str = "geff") -> Any:
    """An ``AnalogLinear`` module with the weights and bias of ``linear`` (``nn.Linear``).

    Parameters
    ----------
    linear : torch.nn.Linear
    config : MappingConfig
        How the weights are mapped (layout, bits, tile size).
    circuit : CircuitParams, MappingCircuit or Crossbar template
    periphery : Periphery, optional
        Readout (default ideal); calibrated with :func:`calibrate_model`.
    forward : {"circuit", "geff"}
    gradient : {"geff", "ste"}

    Returns
    -------
    torch.nn.Module
    """
    cls = _classes()["AnalogLinear"]
    return cls(linear.weight, linear.bias, config, circuit, periphery, forward, gradient)


def _pair(value: Any) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else tuple(value)  # type: ignore[return-value]


def analog_conv2d(conv: Any, config: MappingConfig, circuit: Any, *,
                  periphery: Periphery | None = None, forward: str = "circuit",
                  gradient: str = "geff") -> Any:
    """An ``AnalogConv2d`` module from ``conv`` (``nn.Conv2d``, groups 1, dilation 1).

    Parameters are as in :func:`analog_linear`.

    Raises
    ------
    MappingError
        For grouped or dilated convolutions, string padding or a padding mode other
        than zeros.
    """
    if conv.groups != 1 or _pair(conv.dilation) != (1, 1):
        raise MappingError("only convolutions with groups=1 and dilation=1 can be mapped")
    if isinstance(conv.padding, str) or conv.padding_mode != "zeros":
        raise MappingError("only explicit zero padding can be mapped (not 'same'/'valid' or "
                           f"padding_mode={conv.padding_mode!r})")
    cls = _classes()["AnalogConv2d"]
    return cls(conv.weight, conv.bias, config, circuit, _pair(conv.stride), _pair(conv.padding),
               periphery, forward, gradient)


def convert_to_analog(model: Any, config: MappingConfig, circuit: Any, *,
                      periphery: Periphery | None = None, forward: str = "circuit",
                      gradient: str = "geff", inplace: bool = False) -> Any:
    """Swap every ``nn.Linear`` and ``nn.Conv2d`` of a model for its analog version.

    Parameters
    ----------
    model : torch.nn.Module
    config, circuit, periphery, forward, gradient
        As in :func:`analog_linear`, shared by every converted layer.
    inplace : bool
        Modify ``model`` itself instead of a deep copy.

    Returns
    -------
    torch.nn.Module
        The converted model.
    """
    import copy

    import torch

    _check_modes(forward, gradient)
    model = model if inplace else copy.deepcopy(model)
    for name, child in list(model.named_children()):
        if isinstance(child, torch.nn.Linear):
            setattr(model, name, analog_linear(child, config, circuit, periphery=periphery,
                                               forward=forward, gradient=gradient))
        elif isinstance(child, torch.nn.Conv2d):
            setattr(model, name, analog_conv2d(child, config, circuit, periphery=periphery,
                                               forward=forward, gradient=gradient))
        else:
            convert_to_analog(child, config, circuit, periphery=periphery, forward=forward,
                              gradient=gradient, inplace=True)
    return model


def calibrate_model(model: Any, x: Any) -> int:
    """Calibrate the readout of every analog layer on calibration inputs ``x``.

    Runs ``model(x)`` once with ideal layers to capture each analog layer's inputs, then
    fits each layer's calibration (ADC range, gain/offset) on them.

    Returns
    -------
    int
        Number of analog layers calibrated.
    """
    import torch

    base = _classes()["base"]
    layers = [m for m in model.modules() if isinstance(m, base)]
    for m in layers:
        m._capture = []
    try:
        with torch.no_grad():
            model(x)
    finally:
        captured = [(m, m._capture) for m in layers]
        for m in layers:
            m._capture = None
    for m, batches in captured:
        if batches:
            m.calibrate(np.concatenate(batches, axis=0))
    return len(layers)


def as_torch_module(layer: MappedLayer, circuit: Any = None, *, method: str = "auto",
                    input_scale: float | str = "dynamic") -> Any:
    """Wrap an already mapped layer as a forward-only ``torch.nn.Module`` (no gradient).

    Inputs of shape (..., K) give (..., O) through :func:`layer_output`. For training,
    use :func:`analog_linear` or :func:`convert_to_analog`.
    """
    import torch

    class CrossbarLinear(torch.nn.Module):
        """A mapped linear layer computed by crossbar circuits (forward only)."""

        def __init__(self) -> None:
            super().__init__()
            self.layer = layer
            self.circuit = circuit
            self.in_features, self.out_features = layer.shape

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            flat = x.detach().to("cpu", torch.float64).reshape(-1, self.in_features).numpy()
            y = layer_output(layer, flat, circuit, method=method, input_scale=input_scale)
            out = torch.from_numpy(np.ascontiguousarray(y)).to(dtype=x.dtype, device=x.device)
            return out.reshape(*x.shape[:-1], self.out_features)

    return CrossbarLinear()
