"""Splice generated sections into Markdown reports written by several commands.

``docs/benchmarks.md`` is written by ``make bench``, but its sweep-throughput section
comes from ``make calibration``; each command replaces only its own marked block::

    <!-- BEGIN sweeps -->
    ...
    <!-- END sweeps -->
"""

from __future__ import annotations

import re
from pathlib import Path

__all__ = ["splice_section", "demote_headings"]


def demote_headings(text: str) -> str:
    """Turn every Markdown heading one level deeper (``#`` -> ``##``)."""
    return re.sub(r"^(#+) ", r"#\1 ", text, flags=re.M)


def splice_section(path: Path, name: str, text: str) -> None:
    """Replace the block named ``name`` in ``path`` by ``text``, or append it.

    Parameters
    ----------
    path : Path
        The Markdown file (created if missing).
    name : str
        Block name used in the ``BEGIN``/``END`` markers.
    text : str
        New content of the block.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "r.md"
    >>> splice_section(p, "a", "one"); splice_section(p, "a", "two")
    >>> p.read_text().count("two"), p.read_text().count("one")
    (1, 0)
    """
    begin, end = f"<!-- BEGIN {name} -->", f"<!-- END {name} -->"
    block = f"{begin}\n{text.strip()}\n{end}\n"
    current = path.read_text(encoding="utf-8") if path.exists() else ""
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end) + r"\n?", re.S)
    if pattern.search(current):
        updated = pattern.sub(lambda _: block, current)
    else:
        updated = current.rstrip("\n") + ("\n\n" if current else "") + block
    path.write_text(updated, encoding="utf-8")
