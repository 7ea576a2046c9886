"""README.md lists every source with its format id (issue 13, Done when).

The format ids are read from the ``format id`` column of README's tables and compared
with the parser registry both ways: a new parser without a README row fails, and so
does a row naming an id that no longer exists.
"""
from __future__ import annotations

import re
from pathlib import Path

from collectors.parsers import PARSERS

README = Path(__file__).resolve().parents[2] / "README.md"


def _readme_format_ids() -> set[str]:
    ids: set[str] = set()
    column: int | None = None
    for line in README.read_text(encoding="utf-8").splitlines():
        if not line.startswith("|"):
            column = None
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if column is None:
            column = cells.index("format id") if "format id" in cells else -1
            continue
        if column < 0 or column >= len(cells) or set(cells[column]) <= set("-: "):
            continue
        ids.update(re.findall(r"`([^`]+)`", cells[column]))
    return ids


def test_every_registered_format_is_in_the_readme() -> None:
    missing = sorted(set(PARSERS) - _readme_format_ids())
    assert not missing, f"format ids without a README row: {missing}"


def test_readme_names_no_unknown_format() -> None:
    stale = sorted(_readme_format_ids() - set(PARSERS) - {"auto"})
    assert not stale, f"README names format ids the registry does not have: {stale}"


def test_the_table_reader_reads_tables() -> None:
    assert {"sshd", "fortigate", "zeek", "auto"} <= _readme_format_ids()
