"""``format=ecs``: the record already is an ECS document (EVTX import, the pcap decoder).

Our own producers hand the pipeline finished events as JSON; they are taken as they
are (dotted keys expanded), with ``@timestamp`` and ``event.ingested`` filled in when
missing. Unlike ``json``, nothing is moved under ``json.*`` and no field is guessed:
the producer is trusted to speak ECS. Never sniffed (``auto`` reads JSON as ``json``).
"""
from __future__ import annotations

import datetime as _dt

import orjson

from core.events import Event, TimestampError, expand_dots, get_field, parse_timestamp, set_field, to_utc_iso
from core.protocols import ParseError, RawRecord

from ._app import utcnow

__all__ = ["EcsParser", "PARSER"]


class EcsParser:
    """Passes an ECS JSON object through; ``ParseError`` when it is not one."""

    name = "ecs"

    def parse(self, record: RawRecord, *, now: _dt.datetime | None = None) -> Event:
        try:
            doc = orjson.loads(record.data)
        except orjson.JSONDecodeError as exc:
            raise ParseError(f"invalid JSON in an ECS record: {exc}") from exc
        if not isinstance(doc, dict):
            raise ParseError("an ECS record must be a JSON object")
        ev = expand_dots(doc)
        stamp = to_utc_iso(now or utcnow())
        if "@timestamp" not in ev:
            ev["@timestamp"] = stamp
        else:
            _check_timestamp(ev, stamp)
        if get_field(ev, "event.ingested") is None:
            set_field(ev, "event.ingested", stamp)
        return ev


def _check_timestamp(ev: Event, stamp: str) -> None:
    """A ``@timestamp`` that is not a time is kept aside and replaced by ingest time, tagged
    ``timestamp_invalid`` as every parser does: stamping would refuse the whole event."""
    raw = ev["@timestamp"]
    try:
        parse_timestamp(raw)
        return
    except (TimestampError, ValueError, OverflowError):
        pass
    ev["@timestamp"] = stamp
    set_field(ev, "citysoc.timestamp_original", str(raw))
    tags = ev.get("tags")
    tags = tags if isinstance(tags, list) else ([] if tags is None else [tags])
    if "timestamp_invalid" not in tags:
        tags.append("timestamp_invalid")
    ev["tags"] = tags


PARSER = EcsParser()
