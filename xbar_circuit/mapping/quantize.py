"""Quantization of weights and inputs, and the lowering of convolutions to matrices.

Conventions: a layer is the matrix product ``y = x @ W`` with ``W`` of shape (K, O)
(K inputs on the crossbar rows, O outputs); a PyTorch ``nn.Linear`` weight is
``W.T``. Weights are quantized symmetrically to signed B-bit integers
``q = round(W / scale)`` with ``|q| <= 2**(B-1) - 1``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from .._validate import check_int
from ..errors import XbarError

__all__ = [
    "MappingError",
    "QuantizedWeights",
    "QuantizedInputs",
    "quantize_weights",
    "quantize_inputs",
    "conv2d_weight_matrix",
    "im2col",
    "as_matrix",
]


class MappingError(XbarError, ValueError):
    """Invalid input to a weight mapping (shape, NaN, bits out of range, bad option...)."""


def as_matrix(weights: ArrayLike, name: str = "weights") -> np.ndarray:
    """Return ``weights`` as a finite float64 (K, O) array or raise :class:`MappingError`."""
    try:
        array = np.array(weights, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise MappingError(f"{name} must be a numeric array: {exc}") from None
    if array.ndim != 2 or array.shape[0] < 1 or array.shape[1] < 1:
        raise MappingError(f"{name} must be a non-empty 2-D (K, O) array, got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise MappingError(f"{name} contains {int((~np.isfinite(array)).sum())} NaN/inf value(s)")
    return array


def _check_int(name: str, value: int, low: int, high: int) -> int:
    return check_int(name, value, low, high, error=MappingError)


@dataclass(frozen=True)
class QuantizedWeights:
    """Signed integer weights and their scale: ``W ≈ q * scale``.

    Attributes
    ----------
    q : ndarray of int64, shape (K, O)
        Signed integers with ``|q| <= 2**(bits-1) - 1``.
    scale : ndarray, shape (O,)
        Weight units per integer step, one per output channel (all equal for a
        per-tensor quantization).
    bits : int
        Signed bit width B.
    """

    q: np.ndarray
    scale: np.ndarray
    bits: int

    @property
    def dequantized(self) -> np.ndarray:
        """``q * scale``, the weights as the crossbar represents them; (K, O)."""
        return self.q * self.scale[None, :]


def quantize_weights(weights: ArrayLike, bits: int = 8,
                     granularity: str = "tensor") -> QuantizedWeights:
    """Quantize a (K, O) weight matrix symmetrically to signed ``bits``-bit integers.

    Parameters
    ----------
    weights : array_like, shape (K, O)
        Real weights (dimensionless), ``y = x @ weights``.
    bits : int
        Signed bit width B in [2, 16]; integers lie in ``[-(2**(B-1)-1), 2**(B-1)-1]``.
    granularity : {"tensor", "channel"}
        One scale for the whole matrix, or one per output channel (column).

    Returns
    -------
    QuantizedWeights

    Raises
    ------
    MappingError
        For a non-2-D or non-finite matrix, bits out of range or an unknown granularity.

    Examples
    --------
    >>> import numpy as np
    >>> qw = quantize_weights(np.array([[0.5, -1.0], [0.25, 0.1]]), bits=3)
    >>> qw.q.tolist(), qw.scale.tolist()
    ([[2, -3], [1, 0]], [0.3333333333333333, 0.3333333333333333])
    """
    w = as_matrix(weights)
    bits = _check_int("bits", bits, 2, 16)
    qmax = 2 ** (bits - 1) - 1
    if granularity == "tensor":
        peak = np.full(w.shape[1], np.abs(w).max())
    elif granularity == "channel":
        peak = np.abs(w).max(axis=0)
    else:
        raise MappingError(f"granularity must be 'tensor' or 'channel', got {granularity!r}")
    scale = np.where(peak > 0, peak / qmax, 1.0)
    q = np.clip(np.rint(w / scale[None, :]), -qmax, qmax).astype(np.int64)
    return QuantizedWeights(q=q, scale=scale, bits=bits)


@dataclass(frozen=True)
class QuantizedInputs:
    """Signed integer inputs: ``x ≈ q * scale[:, None]``.

    Attributes
    ----------
    q : ndarray of int64, shape (B, K)
        Integers with ``|q| <= 2**bits - 1`` (magnitude bits; the sign is applied by
        a bipolar DAC or by a second bit-serial pass).
    scale : ndarray, shape (B,)
        Input units per integer step, per input vector.
    bits : int
        Magnitude bit width of the inputs.
    """

    q: np.ndarray
    scale: np.ndarray
    bits: int


def quantize_inputs(x: ArrayLike, bits: int = 8, scale: float | str = "dynamic") -> QuantizedInputs:
    """Quantize input vectors to ``bits`` magnitude bits (plus sign).

    Parameters
    ----------
    x : array_like, shape (K,) or (B, K)
        Inputs (dimensionless activations).
    bits : int
        Magnitude bits in [1, 16]: ``|q| <= 2**bits - 1``.
    scale : float or "dynamic"
        Input units per integer step. ``"dynamic"`` uses each vector's own peak
        ``max|x| / (2**bits - 1)`` (1.0 for an all-zero vector).

    Returns
    -------
    QuantizedInputs
        Always batched, shape (B, K).

    Raises
    ------
    MappingError
        For NaN/inf inputs, a wrong rank, bits out of range or a non-positive scale.
    """
    try:
        xa = np.array(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise MappingError(f"inputs must be numeric: {exc}") from None
    if xa.ndim == 1:
        xa = xa[None, :]
    if xa.ndim != 2 or xa.shape[0] < 1 or xa.shape[1] < 1:
        raise MappingError(f"inputs must have shape (K,) or (B, K), got {np.shape(x)}")
    if not np.all(np.isfinite(xa)):
        raise MappingError("inputs contain NaN/inf values")
    bits = _check_int("input_bits", bits, 1, 16)
    qmax = 2**bits - 1
    if isinstance(scale, str):
        if scale != "dynamic":
            raise MappingError(f"input scale must be a positive number or 'dynamic', got {scale!r}")
        peak = np.abs(xa).max(axis=1)
        s = np.where(peak > 0, peak / qmax, 1.0)
    else:
        if not np.isfinite(scale) or scale <= 0:
            raise MappingError(f"input scale must be a positive finite number, got {scale!r}")
        s = np.full(xa.shape[0], float(scale))
    q = np.clip(np.rint(xa / s[:, None]), -qmax, qmax).astype(np.int64)
    return QuantizedInputs(q=q, scale=s, bits=bits)


# ----------------------------------------------------------------- convolutions
def conv2d_weight_matrix(weight: ArrayLike) -> np.ndarray:
    """Lower a conv weight (O, C, kh, kw) to the (C*kh*kw, O) matrix of :func:`im2col`.

    Examples
    --------
    >>> conv2d_weight_matrix(np.zeros((4, 3, 2, 2))).shape
    (12, 4)
    """
    w = np.asarray(weight, dtype=np.float64)
    if w.ndim != 4:
        raise MappingError(f"a conv weight must have shape (O, C, kh, kw), got {w.shape}")
    return w.reshape(w.shape[0], -1).T.copy()


def im2col(x: ArrayLike, kernel: tuple[int, int], stride: int = 1, padding: int = 0) -> np.ndarray:
    """Unfold images (B, C, H, W) into patches (B, L, C*kh*kw) for ``patches @ W``.

    Parameters
    ----------
    x : array_like, shape (B, C, H, W)
        Images.
    kernel : (int, int)
        Kernel height and width.
    stride, padding : int
        Convolution stride and zero padding (pixels).

    Returns
    -------
    ndarray, shape (B, H_out*W_out, C*kh*kw)
        Patch vectors in the channel-major order of :func:`conv2d_weight_matrix`;
        ``(patches @ W).reshape(B, H_out, W_out, O)`` is the convolution output.
    """
    xa = np.asarray(x)
    if xa.ndim != 4:
        raise MappingError(f"images must have shape (B, C, H, W), got {xa.shape}")
    kh, kw = kernel
    if padding:
        xa = np.pad(xa, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    b, c, h, w = xa.shape
    ho, wo = (h - kh) // stride + 1, (w - kw) // stride + 1
    if ho < 1 or wo < 1:
        raise MappingError(f"kernel {kernel} does not fit images of {h}x{w} (after padding)")
    cols = np.empty((b, c, kh, kw, ho, wo), dtype=xa.dtype)
    for i in range(kh):
        for j in range(kw):
            cols[:, :, i, j] = xa[:, :, i : i + stride * ho : stride, j : j + stride * wo : stride]
    return cols.reshape(b, c * kh * kw, ho * wo).transpose(0, 2, 1).copy()
