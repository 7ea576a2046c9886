"""Fuzz targets: what must never crash on attacker-shaped bytes.

A target takes bytes and returns normally, or raises one of its *expected* errors (the
clear refusals: ``ParseError`` for a record to dead-letter, ``QueryError`` for a query to
answer 400). Anything else is a crash: atheris records the input, and
``tests/collectors/test_fuzz_cases.py`` replays every kept input in ``make test``.
"""
from __future__ import annotations

import datetime as _dt

from core.protocols import ParseError, QueryError, RawRecord

__all__ = ["TARGETS", "parsers_target", "query_target", "baseline_target"]

_NOW = _dt.datetime(2026, 12, 2, 12, 0, tzinfo=_dt.timezone.utc)


def _formats() -> list[str]:
    from collectors.parsers import PARSERS

    return sorted(PARSERS)


_FORMATS: list[str] = []


def parsers_target(data: bytes) -> None:
    """First byte picks the format id (or ``auto``), the rest is the record."""
    from collectors.parsers import parse_record

    if not _FORMATS:
        _FORMATS.extend(["auto", *_formats()])
    if not data:
        return
    fmt = _FORMATS[data[0] % len(_FORMATS)]
    try:
        parse_record(RawRecord(data[1:], format=fmt, source="fuzz"), now=_NOW)
    except ParseError:
        pass


def query_target(data: bytes) -> None:
    """The search box: Lucene text -> AST -> SQL and ES DSL."""
    from storage.query.es import to_es_query
    from storage.query.parse import parse_query
    from storage.query.sql import compile_query

    text = data.decode("utf-8", "replace")
    try:
        node = parse_query(text)
        compile_query(node, now=_NOW)
        to_es_query(node)
    except QueryError:
        pass


def baseline_target(data: bytes) -> None:
    """The same-run baseline: the fuzzer's own cost per input, with no work in the target."""
    len(data)


TARGETS = {"parsers": parsers_target, "query": query_target, "baseline": baseline_target}
