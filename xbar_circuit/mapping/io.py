"""Reading weight matrices from .npy, .npz and safetensors files."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .quantize import MappingError

__all__ = ["load_array", "load_weights"]


def _numeric(value: object, where: str) -> np.ndarray:
    """``value`` as a float64 array; MappingError naming ``where`` for non-numeric data."""
    arr = np.asarray(value)
    if arr.dtype.kind not in "biuf":
        raise MappingError(f"{where} holds {arr.dtype} data, not numbers (expected an integer "
                           "or floating-point array)")
    return arr.astype(np.float64)


def load_array(path: str | os.PathLike[str], what: str = "array") -> np.ndarray:
    """Read one numeric array from a ``.npy`` file (never unpickling).

    Raises
    ------
    MappingError
        If the file cannot be read, is not a plain .npy array (corrupt, pickled objects)
        or holds non-numeric data; the message names the file.
    """
    p = Path(path)
    try:
        data = np.load(p, allow_pickle=False)
    except Exception as exc:  # OSError, ValueError (pickled/corrupt), EOFError, ...
        raise MappingError(f"cannot read the {what} file {p}: {type(exc).__name__}: "
                           f"{exc}") from None
    if not isinstance(data, np.ndarray):
        data.close()
        raise MappingError(f"the {what} file {p} is an .npz archive, expected one .npy array")
    return _numeric(data, f"the {what} file {p}")


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
        For an unknown suffix, an unreadable or corrupt file, non-numeric data, a missing
        tensor name or a file with no matrix.
    """
    from .quantize import conv2d_weight_matrix

    p = Path(path)
    if p.suffix == ".npy":
        tensors = {p.stem: load_array(p, "weight")}
    elif p.suffix == ".npz":
        try:
            with np.load(p, allow_pickle=False) as data:
                tensors = {k: data[k] for k in data.files}
        except Exception as exc:  # BadZipFile, ValueError (pickled/corrupt), OSError, ...
            raise MappingError(f"cannot read the weight file {p}: {type(exc).__name__}: "
                               f"{exc}") from None
    elif p.suffix == ".safetensors":
        try:
            from safetensors.numpy import load_file
        except ImportError as exc:
            raise MappingError("reading .safetensors needs the 'safetensors' package") from exc
        try:
            tensors = load_file(str(p))
        except Exception as exc:  # SafetensorError, OSError
            raise MappingError(f"cannot read the weight file {p}: {type(exc).__name__}: "
                               f"{exc}") from None
    else:
        raise MappingError(f"unsupported weight file {p.name!r}: use .npy, .npz or .safetensors")
    if name is not None:
        if name not in tensors:
            raise MappingError(f"{p.name} has no tensor {name!r}; it has: "
                               f"{', '.join(sorted(tensors)[:20])}")
        tensors = {name: tensors[name]}
    out = {}
    for key, value in tensors.items():
        arr = _numeric(value, f"tensor {key!r} of {p}")
        if arr.ndim == 4:
            out[key] = conv2d_weight_matrix(arr)
        elif arr.ndim == 2:
            out[key] = arr.T.copy() if transpose else arr
    if not out:
        raise MappingError(f"{p.name} holds no 2-D (or 4-D conv) weight tensor")
    return out
