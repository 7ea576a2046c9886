"""JSON loading for the JSON family (generic, MySQL audit, ETL jobs, scheduler jobs).

A JSON line that is not valid JSON (or not an object) raises ``ParseError``: it goes to
the dead-letter store with the reason, because guessing at half a document would store
fields that are not what the sender meant. Nesting deeper than :data:`MAX_DEPTH` is
kept but cut: deeper values are replaced by their JSON text and the event is tagged
``json_depth_truncated`` (stores index nested objects as columns and mappings; a
thousand levels would blow both).
"""
from __future__ import annotations

import datetime as _dt
from typing import Any, ClassVar

import orjson

from core.events import Event
from core.protocols import ParseError, RawRecord

from ._app import utcnow
from ._common import add_tag, base_event, decode

__all__ = ["MAX_DEPTH", "load_object", "JsonFamilyParser"]

MAX_DEPTH = 20


def load_object(text: str) -> dict[str, Any]:
    """Parse ``text`` as one JSON object or raise ``ParseError`` saying why not."""
    try:
        doc = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise ParseError(f"invalid JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise ParseError(f"JSON line is a {type(doc).__name__}, expected an object")
    return doc


def _cut(node: Any, depth: int) -> tuple[Any, bool]:
    if isinstance(node, dict):
        if depth >= MAX_DEPTH:
            return orjson.dumps(node).decode(), True
        cut = False
        out = {}
        for k, v in node.items():
            out[k], c = _cut(v, depth + 1)
            cut |= c
        return out, cut
    if isinstance(node, list):
        if depth >= MAX_DEPTH:
            return orjson.dumps(node).decode(), True
        cut = False
        items = []
        for v in node:
            nv, c = _cut(v, depth + 1)
            items.append(nv)
            cut |= c
        return items, cut
    return node, False


class JsonFamilyParser:
    """Base for JSON parsers: ``claims(doc)`` for sniffing, ``apply_doc`` for mapping.

    ``claims`` is asked (in ``order``, see :mod:`._registry`) about every JSON object line
    of ``format=auto`` and every JSON syslog body when the class declares
    ``json_claims = True``; the other declaration defaults mean "takes no part"."""

    name: ClassVar[str]
    dataset: ClassVar[str]
    module: ClassVar[str]
    order: ClassVar[int] = 1000
    programs: ClassVar[frozenset[str]] = frozenset()
    program_prefixes: ClassVar[tuple[str, ...]] = ()
    body_sniff: ClassVar[bool] = False
    line_sniff: ClassVar[bool] = False
    json_claims: ClassVar[bool] = False
    datasets: ClassVar[tuple[str, ...]] = ()
    log_paths: ClassVar[tuple[str, ...]] = ()

    def claims(self, doc: dict[str, Any]) -> bool:
        """True when ``doc`` is recognisably this format's."""
        return False

    def sniff_line(self, line: str) -> bool:
        """True when a bare non-JSON line is this format's (``line_sniff = True``)."""
        return False

    def apply_doc(self, ev: Event, doc: dict[str, Any], record: RawRecord, now: _dt.datetime) -> None:
        raise NotImplementedError

    def parse(self, record: RawRecord, *, now: _dt.datetime | None = None) -> Event:
        now = now or utcnow()
        text, valid = decode(record.data)
        doc = load_object(text)
        return self.parse_doc(record, doc, now, text if valid else None)

    def parse_doc(self, record: RawRecord, doc: dict[str, Any], now: _dt.datetime, text: str | None) -> Event:
        ev, _ = base_event(record, now, dataset=self.dataset, module=self.module, text=text)
        doc, cut = _cut(doc, 0)
        if cut:
            add_tag(ev, "json_depth_truncated")
        self.apply_doc(ev, doc, record, now)
        return ev
