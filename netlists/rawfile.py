"""Read SPICE rawfiles (as written by ``ngspice -b -r out.raw deck.cir``) with NumPy.

The binary rawfile stores every value as a float64, so it keeps full double
precision, unlike the 7-significant-digit ``.op`` table ngspice prints on stdout.

Layout of one plot (ngspice 39)::

    Title: <deck title>
    Date: Mon Nov 23 04:24:05  2026
    Plotname: Operating Point
    Flags: real
    No. Variables: 5
    No. Points: 1
    Variables:
    \t0\tv(in)\tvoltage
    ...
    Binary:
    <No. Points x No. Variables float64 values, point-major; complex values are
     two float64, real then imaginary>

An ASCII rawfile has ``Values:`` instead of ``Binary:``, followed by text numbers.
Several plots may follow each other in one file. Lines before the first ``Title:``
(e.g. ngspice's "Note: No compatibility mode selected!") and unknown header keys
are ignored.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np

from xbar_circuit.errors import NgspiceError

__all__ = ["RawPlot", "normalize_name", "op_values", "parse_rawfile", "read_rawfile"]


@dataclasses.dataclass
class RawPlot:
    """One plot (analysis result) of a rawfile.

    Attributes
    ----------
    title : str
        The deck's title line.
    plotname : str
        Analysis name, e.g. ``"Operating Point"``.
    flags : str
        ``"real"`` or ``"complex"`` (possibly with more words, e.g. ``"padded"``).
    names : list of str
        Variable names as written (ngspice 39: ``v(node)``, ``i(vsource)``).
    types : list of str
        Variable types (``voltage``, ``current``, ``time``...).
    data : ndarray, shape (n_points, n_variables)
        Values in SI units (volts, amperes); float64, or complex128 for complex plots.
    header : dict
        Every ``key: value`` header line, keys lower-cased.
    """

    title: str
    plotname: str
    flags: str
    names: list[str]
    types: list[str]
    data: np.ndarray
    header: dict[str, str]

    @property
    def is_complex(self) -> bool:
        """Whether the plot holds complex values."""
        return "complex" in self.flags.lower().split()


def normalize_name(name: str, vtype: str = "") -> str:
    """Return a variable name in ngspice 39's rawfile form, lower-cased.

    ``v(node)`` and ``i(vsource)`` are kept; a bare node name of type ``voltage``
    becomes ``v(node)``; ``vsource#branch`` becomes ``i(vsource)``.

    Examples
    --------
    >>> normalize_name("Vtia_0#branch")
    'i(vtia_0)'
    >>> normalize_name("r_0_0", "voltage")
    'v(r_0_0)'
    """
    name = name.strip().lower()
    if name.endswith("#branch"):
        return f"i({name[: -len('#branch')]})"
    if "(" in name:
        return name
    if vtype.lower() == "voltage":
        return f"v({name})"
    return name


def _error(message: str, path: str | None) -> NgspiceError:
    return NgspiceError(f"cannot read rawfile {path or '<bytes>'}: {message}", deck_path=None)


def _read_line(content: bytes, pos: int) -> tuple[str, int]:
    end = content.find(b"\n", pos)
    if end < 0:
        end = len(content)
    return content[pos:end].decode("latin-1").rstrip("\r"), end + 1


def parse_rawfile(content: bytes, path: str | None = None) -> list[RawPlot]:
    """Parse the bytes of a rawfile into its plots.

    Parameters
    ----------
    content : bytes
        The file's content.
    path : str, optional
        File name used in error messages.

    Returns
    -------
    list of RawPlot
        The plots, in file order.

    Raises
    ------
    NgspiceError
        If the content is not a rawfile, is truncated, or has no plot.
    """
    plots: list[RawPlot] = []
    pos = 0
    size = len(content)
    while pos < size:
        # Skip anything before the next "Title:" (notes, blank lines).
        line, next_pos = _read_line(content, pos)
        if not line.startswith("Title:"):
            pos = next_pos
            continue
        header: dict[str, str] = {}
        names: list[str] = []
        types: list[str] = []
        data_kind = None
        while pos < size:
            line, pos = _read_line(content, pos)
            key, sep, value = line.partition(":")
            key_l = key.strip().lower()
            if key_l == "variables" and sep:
                n_vars = int(header.get("no. variables", "0"))
                for _ in range(n_vars):
                    var_line, pos = _read_line(content, pos)
                    fields = var_line.split()
                    if len(fields) < 2:
                        raise _error(f"bad variable line {var_line!r}", path)
                    names.append(fields[1])
                    types.append(fields[2] if len(fields) > 2 else "")
                continue
            if key_l in ("binary", "values") and sep:
                data_kind = key_l
                break
            if sep:
                header[key_l] = value.strip()
        if data_kind is None:
            raise _error("no 'Binary:' or 'Values:' section", path)
        try:
            n_vars = int(header["no. variables"])
            n_points = int(header["no. points"])
        except (KeyError, ValueError):
            raise _error("missing or bad 'No. Variables'/'No. Points' header", path) from None
        if len(names) != n_vars:
            raise _error(f"expected {n_vars} variables, found {len(names)}", path)
        flags = header.get("flags", "real")
        is_complex = "complex" in flags.lower().split()
        width = 2 if is_complex else 1
        count = n_points * n_vars * width
        if data_kind == "binary":
            n_bytes = count * 8
            if pos + n_bytes > size:
                raise _error(
                    f"truncated binary data: need {n_bytes} bytes, have {size - pos}", path
                )
            values = np.frombuffer(content, dtype="<f8", count=count, offset=pos).astype(
                np.float64
            )
            pos += n_bytes
        else:
            numbers: list[float] = []
            while len(numbers) < count and pos < size:
                line, pos = _read_line(content, pos)
                fields = line.replace(",", " ").split()
                if not fields:
                    continue
                # The first field of a point's first line is the point index.
                if len(numbers) % (n_vars * width) == 0 and len(fields) > width:
                    fields = fields[1:]
                numbers.extend(float(f) for f in fields)
            if len(numbers) < count:
                raise _error(f"truncated ASCII data: need {count} numbers", path)
            values = np.array(numbers[:count], dtype=np.float64)
        if is_complex:
            values = values[0::2] + 1j * values[1::2]
        plots.append(
            RawPlot(
                title=header.get("title", ""),
                plotname=header.get("plotname", ""),
                flags=flags,
                names=names,
                types=types,
                data=values.reshape(n_points, n_vars),
                header=header,
            )
        )
    if not plots:
        raise _error("no 'Title:' line: not a SPICE rawfile", path)
    return plots


def read_rawfile(path: str | os.PathLike[str]) -> list[RawPlot]:
    """Read a rawfile from disk; see :func:`parse_rawfile`."""
    path = os.fspath(path)
    with open(path, "rb") as handle:
        content = handle.read()
    return parse_rawfile(content, path)


def op_values(plot: RawPlot) -> dict[str, float]:
    """Return an operating-point plot as ``{name: value}`` (names normalized, lower-case).

    Parameters
    ----------
    plot : RawPlot
        A plot with exactly one point (an ``.op`` result).

    Returns
    -------
    dict of str to float
        ``v(node)`` in volts and ``i(vsource)`` in amperes.

    Raises
    ------
    NgspiceError
        If the plot does not hold exactly one real point.
    """
    if plot.data.shape[0] != 1:
        raise NgspiceError(
            f"expected one operating point in plot {plot.plotname!r}, found "
            f"{plot.data.shape[0]} points"
        )
    if plot.is_complex:
        raise NgspiceError(f"plot {plot.plotname!r} is complex; an operating point is real")
    row = plot.data[0]
    return {
        normalize_name(name, vtype): float(value)
        for name, vtype, value in zip(plot.names, plot.types, row, strict=True)
    }
