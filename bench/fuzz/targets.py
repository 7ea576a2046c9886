"""Fuzz targets: what must never crash on attacker-shaped bytes.

A target takes bytes and returns normally, or raises one of its *expected* errors (the
clear refusals: ``ParseError`` for a record to dead-letter, ``QueryError`` for a query to
answer 400). Anything else is a crash: atheris records the input, and
``tests/collectors/test_fuzz_cases.py`` replays every kept input in ``make test``.
"""
from __future__ import annotations

import datetime as _dt

from core.protocols import ParseError, QueryError, RawRecord

__all__ = ["TARGETS", "parsers_target", "query_target", "bodies_target", "baseline_target"]

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


def bodies_target(data: bytes) -> None:
    """Ingest bodies as they arrive: ``/api/v1/ingest`` (JSON array or NDJSON) and ``_bulk``.

    Their only answers are 400/413 (``HTTPException`` with that status, ``BulkError``,
    ``TooManyItems``): anything else would be a 500. Every element a JSON array is cut
    into must be bytes of the body itself (never re-serialised).
    """
    from fastapi import HTTPException

    from api.bodies import TooManyItems
    from api.routers.ingest import BulkError, parse_bulk_body, split_ingest_body

    try:
        items = split_ingest_body(data, max_items=64)
    except HTTPException as exc:
        if exc.status_code not in (400, 413):
            raise
    else:
        for it in items:
            assert it in data, "an ingest item is not a slice of its body"
    try:
        parse_bulk_body(data, "fuzz", max_items=64)
    except (BulkError, TooManyItems):
        pass


def baseline_target(data: bytes) -> None:
    """The same-run baseline: the fuzzer's own cost per input, with no work in the target."""
    len(data)


TARGETS = {"parsers": parsers_target, "query": query_target, "bodies": bodies_target, "baseline": baseline_target}
