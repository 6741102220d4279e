"""Exceptions of the lookup-table package."""

from __future__ import annotations

from ..errors import XbarError

__all__ = ["SweepError", "TableError"]


class TableError(XbarError, ValueError):
    """A lookup-table file is missing, corrupt, foreign, of an unknown version, or a query
    cannot be answered by the table."""


class SweepError(TableError):
    """A sweep description is invalid (unknown key, missing field or bad value)."""
