"""Reading weight matrices from .npy, .npz and safetensors files."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .quantize import MappingError

__all__ = ["OrientationError", "load_array", "load_weights"]


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


class OrientationError(MappingError):
    """A weight tensor whose orientation ((K, O) or PyTorch's (O, K)) cannot be told."""


_TORCH_SUFFIXES = (".weight", "_weight")


def _torch_named(key: str) -> bool:
    """True for tensor names that PyTorch modules write (``fc1.weight``, ``weight``)."""
    return key == "weight" or key.endswith(_TORCH_SUFFIXES)


def load_weights(path: str | os.PathLike[str], name: str | None = None, *,
                 transpose: bool | None = None, notes: list[str] | None = None
                 ) -> dict[str, np.ndarray]:
    """Read 2-D weight matrices as (K, O), the right way round.

    Orientation rules (``y = x @ W`` with W of shape (K, O)):

    - ``.npy``: one array, read as (K, O) (this package's convention) unless
      ``transpose=True``.
    - ``.npz`` / ``.safetensors``: a 2-D tensor named like a PyTorch module parameter
      (``fc1.weight``, ``weight``) is a Linear weight stored (O, K) and is transposed;
      a 4-D one is a Conv weight (O, C, kh, kw) and is lowered to (C*kh*kw, O). Each
      such decision is appended to ``notes``. Any other 2-D tensor is ambiguous and
      refused with :class:`OrientationError` unless ``transpose`` is given.
    - ``transpose=True`` / ``False`` overrides the rule for every 2-D tensor.

    Parameters
    ----------
    path : path-like
        ``.npy``, ``.npz`` or ``.safetensors`` (needs the ``safetensors`` package).
    name : str, optional
        Keep only this tensor (safetensors/npz).
    transpose : bool, optional
        Force (True) or forbid (False) transposing 2-D tensors; None applies the rules.
    notes : list of str, optional
        Receives one line per tensor saying how it was oriented.

    Returns
    -------
    dict of str to ndarray
        Name -> (K, O) float64 matrix, only the 2-D (and lowered 4-D) tensors.

    Raises
    ------
    MappingError
        For an unknown suffix, an unreadable or corrupt file, non-numeric data, a missing
        tensor name or a file with no matrix; :class:`OrientationError` for an
        ambiguous tensor without ``transpose``.
    """
    from .quantize import conv2d_weight_matrix

    if transpose is not None and not isinstance(transpose, (bool, np.bool_)):
        raise MappingError(f"transpose must be True, False or None, got {transpose!r}")
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
    log = notes if notes is not None else []
    ambiguous = []
    for key, value in tensors.items():
        arr = _numeric(value, f"tensor {key!r} of {p}")
        if arr.ndim == 4:
            out[key] = conv2d_weight_matrix(arr)
            log.append(f"{key}: conv weight {tuple(arr.shape)} (O, C, kh, kw) lowered to "
                       f"{out[key].shape} (C*kh*kw, O)")
        elif arr.ndim == 2:
            if transpose is not None:
                flip, why = bool(transpose), ("--transpose" if transpose else "--no-transpose")
            elif p.suffix == ".npy":
                flip, why = False, ".npy is read as (K, O)"
            elif _torch_named(key):
                flip, why = True, "named like a PyTorch Linear weight, stored (O, K)"
            else:
                ambiguous.append(f"{key} {tuple(arr.shape)}")
                continue
            out[key] = arr.T.copy() if flip else arr
            log.append(f"{key}: {tuple(arr.shape)} " + (f"transposed to {out[key].shape}"
                       if flip else "kept as (K, O)") + f" ({why})")
    if ambiguous:
        raise OrientationError(
            f"{p.name}: cannot tell the orientation of {', '.join(ambiguous[:10])}"
            + (" ..." if len(ambiguous) > 10 else "")
            + ": not named like a PyTorch weight ('<module>.weight'). Say how it is stored: "
              "transpose=True / --transpose for (O, K) (PyTorch Linear), "
              "transpose=False / --no-transpose for (K, O)")
    if not out:
        raise MappingError(f"{p.name} holds no 2-D (or 4-D conv) weight tensor")
    return out
