"""Optional PyTorch wrapper: a mapped layer as an ``nn.Module`` (torch imported on use)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .circuit import CircuitParams, layer_output
from .layout import MappedLayer

__all__ = ["as_torch_module"]


def as_torch_module(layer: MappedLayer, circuit: CircuitParams | None = None, *,
                    method: str = "geff", input_scale: float | str = "dynamic") -> Any:
    """Wrap a mapped layer as a ``torch.nn.Module`` computing the circuit's output.

    The forward pass runs :func:`~xbar_circuit.mapping.layer_output` in NumPy (no
    gradient): use it to evaluate a trained PyTorch model under crossbar distortion
    by replacing its ``nn.Linear`` modules. Inputs of shape (..., K) give (..., O).

    Parameters
    ----------
    layer : MappedLayer
        From ``map_layer(linear.weight.T, ..., bias=linear.bias)``.
    circuit : CircuitParams, optional
        Parasitics; None is the ideal (quantized) circuit.
    method, input_scale
        As in :func:`~xbar_circuit.mapping.layer_output`.

    Returns
    -------
    torch.nn.Module

    Raises
    ------
    ImportError
        When PyTorch is not installed.
    """
    from .._optional import import_optional

    torch = import_optional("torch", "as_torch_module")

    class CrossbarLinear(torch.nn.Module):
        """A linear layer computed by crossbar circuits (forward only)."""

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

        def extra_repr(self) -> str:
            return (f"in_features={self.in_features}, out_features={self.out_features}, "
                    f"tiles={len(layer.tiles)}, circuit={circuit}")

    return CrossbarLinear()
