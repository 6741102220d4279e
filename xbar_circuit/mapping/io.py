"""Reading weight matrices from .npy, .npz and safetensors files."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .quantize import MappingError

__all__ = ["load_weights"]


def load_weights(path: str | os.PathLike[str], name: str | None = None, *,
                 transpose: bool = False) -> dict[str, np.ndarray]:
    """Read 2-D weight matrices from a file.

    Parameters
    ----------
    path : path-like
        ``.npy`` (one array), ``.npz`` or ``.safetensors`` (named tensors; needs the
        ``safetensors`` package).
    name : str, optional
        Keep only this tensor (safetensors/npz); a 4-D conv weight is lowered to
        (C*kh*kw, O).
    transpose : bool
        Transpose every matrix (for PyTorch ``Linear`` weights stored as (O, K)).

    Returns
    -------
    dict of str to ndarray
        Name -> (K, O) float64 matrix, only the 2-D (and lowered 4-D) tensors.

    Raises
    ------
    MappingError
        For an unknown suffix, a missing tensor name or a file with no matrix.
    """
    from .quantize import conv2d_weight_matrix

    p = Path(path)
    if p.suffix == ".npy":
        tensors = {p.stem: np.load(p, allow_pickle=False)}
    elif p.suffix == ".npz":
        with np.load(p, allow_pickle=False) as data:
            tensors = {k: data[k] for k in data.files}
    elif p.suffix == ".safetensors":
        try:
            from safetensors.numpy import load_file
        except ImportError as exc:
            raise MappingError("reading .safetensors needs the 'safetensors' package") from exc
        tensors = load_file(str(p))
    else:
        raise MappingError(f"unsupported weight file {p.name!r}: use .npy, .npz or .safetensors")
    if name is not None:
        if name not in tensors:
            raise MappingError(f"{p.name} has no tensor {name!r}; it has: "
                               f"{', '.join(sorted(tensors)[:20])}")
        tensors = {name: tensors[name]}
    out = {}
    for key, value in tensors.items():
        arr = np.asarray(value, dtype=np.float64)
        if arr.ndim == 4:
            out[key] = conv2d_weight_matrix(arr)
        elif arr.ndim == 2:
            out[key] = arr.T.copy() if transpose else arr
    if not out:
        raise MappingError(f"{p.name} holds no 2-D (or 4-D conv) weight tensor")
    return out
