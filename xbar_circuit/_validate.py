"""Shared validators of user-supplied values.

Every entry point (the Python API, the command line and the file readers) checks its
inputs with these functions, so that the same input is refused the same way
everywhere: with an :class:`~xbar_circuit.errors.XbarError` subclass chosen by the
caller, naming the parameter and showing a bounded repr of the offending value.

The physical bounds below are deliberately generous: they exist to refuse values
whose only effect would be overflow, loss of every significant digit in the solvers,
or a silently wrong answer, not to second-guess unusual but meaningful circuits.
"""

from __future__ import annotations

import json
import math
import numbers
import reprlib
import warnings
from typing import Any

import numpy as np

from .errors import InputError, XbarError

__all__ = [
    "MAX_CONDUCTANCE",
    "MAX_JSON_INT_DIGITS",
    "MAX_RESISTANCE",
    "MAX_VOLTAGE",
    "REPR_LIMIT",
    "as_real_array",
    "check_choice",
    "check_finite_array",
    "check_int",
    "check_real",
    "load_json",
    "renamed_keywords",
    "short_repr",
]

MAX_CONDUCTANCE = 1e6
"""Largest cell conductance accepted, in siemens (a 1 µΩ cell; real devices stay below 1 S)."""
MAX_RESISTANCE = 1e12
"""Largest wire, driver, sense or load resistance accepted, in ohms (1 TΩ)."""
MAX_VOLTAGE = 1e6
"""Largest input voltage magnitude accepted, in volts (1 MV)."""
REPR_LIMIT = 200
"""Most characters of an offending value shown in an error message."""
MAX_JSON_INT_DIGITS = 300
"""Longest integer literal accepted in JSON input (a float64 overflows beyond ~309 digits)."""

_REPR = reprlib.Repr()
_REPR.maxlevel = 3
_REPR.maxlist = _REPR.maxtuple = _REPR.maxset = _REPR.maxfrozenset = _REPR.maxdeque = 8
_REPR.maxdict = 8
_REPR.maxstring = _REPR.maxother = 80
_REPR.maxlong = 40


def short_repr(value: Any, limit: int = REPR_LIMIT) -> str:
    """A repr of ``value`` of at most ``limit`` characters, cheap for any input.

    Nested containers are summarised level by level (:mod:`reprlib`), so even a
    value expanded from YAML aliases into gigabytes is never rendered in full.

    Parameters
    ----------
    value : object
        Anything.
    limit : int
        Maximum length of the result, in characters.

    Returns
    -------
    str

    Examples
    --------
    >>> len(short_repr(list(range(10**6)))) <= 200
    True
    """
    try:
        text = _REPR.repr(value)
    except Exception:  # a broken __repr__ of a foreign object
        text = f"<{type(value).__name__} object>"
    if len(text) > limit:
        text = text[: max(limit - 3, 0)] + "..."
    return text


def renamed_keywords(options: dict[str, Any], renames: dict[str, str], where: str,
                     values: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    """Resolve keywords passed under their former names.

    Parameters
    ----------
    options : dict
        The caller's ``**options``; former names are popped from it.
    renames : dict
        Former name -> current name.
    where : str
        The function, named in the warning and the error.
    values, defaults : dict
        Current name -> the value received and the signature's default.

    Returns
    -------
    dict
        Current name -> value to use.

    Raises
    ------
    TypeError
        When a value is passed under both its former and its current name.

    Warns
    -----
    DeprecationWarning
        Once per former name used.
    """
    out = dict(values)
    for old, new in renames.items():
        if old not in options:
            continue
        if values[new] is not defaults[new] and values[new] != defaults[new]:
            raise TypeError(f"{where}: pass {new!r} only (not also its former name {old!r})")
        warnings.warn(f"{where}: {old!r} is now called {new!r}", DeprecationWarning,
                      stacklevel=3)
        out[new] = options.pop(old)
    return out


def check_int(name: str, value: Any, lo: int | None = None, hi: int | None = None, *,
              error: type[XbarError] = InputError, integral_float: bool = False) -> int:
    """Return ``value`` as an int, or raise ``error`` naming ``name``.

    Parameters
    ----------
    name : str
        Name of the parameter in the message.
    value : object
        Candidate; ``bool`` is refused (``True`` is not a count).
    lo, hi : int, optional
        Inclusive bounds.
    error : type
        The :class:`XbarError` subclass to raise.
    integral_float : bool
        Also accept finite floats with an integral value (``16.0``), as YAML files
        and JSON writers produce them.

    Returns
    -------
    int
    """
    range_text = (f"an integer in [{lo}, {hi}]" if lo is not None and hi is not None else
                  f"an integer >= {lo}" if lo is not None else
                  f"an integer <= {hi}" if hi is not None else "an integer")
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value.item()
    if isinstance(value, (bool, np.bool_)):
        raise error(f"{name} must be {range_text}, got the boolean {value!r}")
    if isinstance(value, numbers.Integral):
        out = int(value)
    elif (integral_float and isinstance(value, (float, np.floating)) and math.isfinite(value)
          and float(value).is_integer()):
        out = int(value)
    else:
        raise error(f"{name} must be {range_text}, got {short_repr(value)} "
                    f"(type {type(value).__name__})")
    if (lo is not None and out < lo) or (hi is not None and out > hi):
        raise error(f"{name} must be {range_text}, got {short_repr(out)}")
    return out


def check_real(name: str, value: Any, lo: float | None = None, hi: float | None = None, *,
               error: type[XbarError] = InputError, unit: str = "", lo_open: bool = False,
               hi_open: bool = False) -> float:
    """Return ``value`` as a finite float within bounds, or raise ``error`` naming ``name``.

    Booleans, strings, complex numbers and anything that is not a real number are
    refused (no silent ``float("0.2")`` or ``True -> 1.0``).

    Parameters
    ----------
    name : str
        Name of the parameter in the message.
    value : object
        Candidate: a Python or NumPy real number, or a 0-d real array.
    lo, hi : float, optional
        Bounds, inclusive unless ``lo_open`` / ``hi_open``.
    error : type
        The :class:`XbarError` subclass to raise.
    unit : str
        Unit named in the message (``"ohm"``, ``"S"``, ``"V"``...).
    lo_open, hi_open : bool
        Make the corresponding bound exclusive.

    Returns
    -------
    float
    """
    unit_text = f" {unit}" if unit else ""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value.item() if value.dtype.kind in "biuf" else value
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise error(f"{name} must be a real number{unit_text}, got {short_repr(value)} "
                    f"(type {type(value).__name__})")
    try:
        out = float(value)
    except OverflowError:
        raise error(f"{name} is too large for a float: {short_repr(value)}") from None
    if not math.isfinite(out):
        raise error(f"{name} must be finite, got {out!r}{unit_text}")
    if lo is not None and (out <= lo if lo_open else out < lo):
        raise error(f"{name} must be {'>' if lo_open else '>='} {lo:g}{unit_text}, "
                    f"got {out!r}{unit_text}")
    if hi is not None and (out >= hi if hi_open else out > hi):
        raise error(f"{name} must be {'<' if hi_open else '<='} {hi:g}{unit_text}, "
                    f"got {out!r}{unit_text}")
    return out


def check_choice(name: str, value: Any, choices: tuple[str, ...], *,
                 error: type[XbarError] = InputError) -> str:
    """Return ``value`` if it is one of the strings ``choices``, else raise ``error``."""
    if not isinstance(value, str) or value not in choices:
        raise error(f"{name} must be one of {', '.join(map(repr, choices))}, "
                    f"got {short_repr(value)}")
    return value


def _refuse_dtype(name: str, kind: str, error: type[XbarError], unit: str) -> None:
    kinds = {"b": "booleans", "c": "complex numbers", "U": "strings", "S": "bytes",
             "M": "dates", "m": "time differences", "V": "raw records"}
    if kind in kinds:
        raise error(f"{name} must be real numbers{' (' + unit + ')' if unit else ''}, "
                    f"got {kinds[kind]}")


def as_real_array(name: str, value: Any, *, error: type[XbarError] = InputError,
                  unit: str = "") -> np.ndarray:
    """A float64 copy of ``value``, refusing anything that is not an array of real numbers.

    Booleans, strings, complex numbers, ``None`` and other objects are refused, even
    mixed into lists of numbers (``[1e-4, True]``), as are ragged lists and integers
    too large for a float.

    Parameters
    ----------
    name : str
        Name of the parameter in the message.
    value : array_like
        Candidate.
    error : type
        The :class:`XbarError` subclass to raise.
    unit : str
        Unit named in the message.

    Returns
    -------
    ndarray of float64
        A new array (values are not checked for finiteness; see
        :func:`check_finite_array`).
    """
    if isinstance(value, (str, bytes, bytearray)):
        raise error(f"{name} must be an array of real numbers{' (' + unit + ')' if unit else ''}, "
                    f"got the string {short_repr(value)}")
    if isinstance(value, np.ndarray) and value.dtype.kind != "O":
        _refuse_dtype(name, value.dtype.kind, error, unit)
        return np.array(value, dtype=np.float64, copy=True)
    try:
        with np.errstate(over="raise"):
            raw = np.asarray(value)
    except (TypeError, ValueError, OverflowError, RecursionError, FloatingPointError):
        raw = None
    if raw is not None and raw.dtype.kind != "O":
        _refuse_dtype(name, raw.dtype.kind, error, unit)
        if raw.dtype.kind in "iuf" and not isinstance(value, (list, tuple)):
            return np.array(raw, dtype=np.float64, copy=True)
    # Lists (and object arrays) may mix bools or strings into numbers, which NumPy
    # would silently convert: look at every element's type.
    try:
        objects = np.array(value, dtype=object)
    except (TypeError, ValueError, RecursionError) as exc:
        raise error(f"{name} must be an array of real numbers: {short_repr(str(exc))}") from None
    flat = objects.reshape(-1)
    for item_type in set(map(type, flat)):
        if issubclass(item_type, (bool, np.bool_)) or not issubclass(item_type, numbers.Real):
            example = next(x for x in flat if type(x) is item_type)
            what = ("a nested list of another length (ragged)" if issubclass(
                item_type, (list, tuple)) else short_repr(example))
            raise error(f"{name} must be real numbers{' (' + unit + ')' if unit else ''}, "
                        f"found {what} (type {item_type.__name__})")
    try:
        return np.array(objects, dtype=np.float64)
    except OverflowError:
        raise error(f"{name} holds a number too large for a float") from None
    except (TypeError, ValueError) as exc:
        raise error(f"{name} must be an array of real numbers: {short_repr(str(exc))}") from None


def check_finite_array(name: str, array: np.ndarray, *, error: type[XbarError] = InputError,
                       lo: float | None = None, hi: float | None = None, magnitude: bool = False,
                       unit: str = "") -> None:
    """Raise ``error`` naming the first entry of ``array`` that is non-finite or out of bounds.

    Parameters
    ----------
    name : str
        Name of the array in the message (entries are shown as ``name[i, j]``).
    array : ndarray
        Float array to check.
    error : type
        The :class:`XbarError` subclass to raise.
    lo, hi : float, optional
        Inclusive bounds on the values (on ``|value|`` when ``magnitude``).
    magnitude : bool
        Apply ``hi`` to the absolute value.
    unit : str
        Unit named in the message.
    """
    unit_text = f" {unit}" if unit else ""
    bad = ~np.isfinite(array)
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        index = ", ".join(map(str, where))
        raise error(f"{name} must be finite; {name}[{index}] = {float(array[where])!r} "
                    f"({int(bad.sum())} non-finite value(s) in all)")
    values = np.abs(array) if magnitude else array
    for bound, test, word in ((lo, np.less, ">="), (hi, np.greater, "<=")):
        if bound is None:
            continue
        out = test(values, bound)
        if out.any():
            where = tuple(int(i) for i in np.argwhere(out)[0])
            index = ", ".join(map(str, where))
            subject = f"|{name}|" if magnitude and word == "<=" else name
            raise error(f"{subject} must be {word} {bound:g}{unit_text}; {name}[{index}] = "
                        f"{float(array[where])!r}{unit_text} ({int(out.sum())} value(s) "
                        "out of range in all)")


def _parse_int(text: str) -> int:
    digits = len(text.lstrip("-"))
    if digits > MAX_JSON_INT_DIGITS:
        raise _JsonIntError(f"an integer literal of {digits} digits (at most "
                            f"{MAX_JSON_INT_DIGITS} are accepted)")
    return int(text)


class _JsonIntError(ValueError):
    pass


def load_json(text: str | bytes | bytearray, what: str, *,
              error: type[XbarError] = InputError) -> Any:
    """Parse JSON text, turning every way it can fail into ``error`` naming ``what``.

    Integer literals longer than :data:`MAX_JSON_INT_DIGITS` digits, nesting deeper
    than Python's recursion limit, invalid UTF-8 and malformed text are all refused.

    Parameters
    ----------
    text : str or bytes
        JSON text.
    what : str
        What the text is (``"crossbar spec"``, ``"--v-in file x.json"``...).
    error : type
        The :class:`XbarError` subclass to raise.

    Returns
    -------
    object
        The decoded value.
    """
    if not isinstance(text, (str, bytes, bytearray)):
        raise error(f"{what} must be JSON text, got {type(text).__name__}")
    try:
        return json.loads(text, parse_int=_parse_int)
    except _JsonIntError as exc:
        raise error(f"{what} is not acceptable JSON: {exc}") from None
    except RecursionError:
        raise error(f"{what} is not acceptable JSON: nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError is a ValueError
        raise error(f"{what} is not valid JSON: {short_repr(str(exc))}") from None
