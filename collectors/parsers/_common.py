"""What every parser shares: decoding, the base event, timestamps, tags, transport meta.

Kept in one place so every format treats the hard cases the same way:

* **Invalid UTF-8** is never a reason to lose a line: the text is decoded with
  replacement characters, the event is tagged ``invalid_utf8`` and the exact bytes are
  kept base64-encoded in ``citysoc.original_base64`` (``event.original`` holds the
  replaced text, which is what analysts search).
* **Timestamps** come from the log when it has one. A missing one means ingest time; an
  unparseable one means ingest time plus tag ``timestamp_invalid``; one more than
  :data:`FUTURE_TOLERANCE` ahead of ingest time means ingest time plus tag
  ``timestamp_future``. In both bad cases the log's own value is kept in
  ``citysoc.timestamp_original``.
* **Transport facts** from ``RawRecord.meta`` are copied verbatim when their key is an
  ECS dotted name under ``log.``, ``network.``, ``agent.``, ``labels.`` or ``tls.``
  (sources use ``log.source.address``, ``log.file.path``, ``log.offset``,
  ``network.transport``). ``meta["truncated"]`` (set by a source that cut an oversized
  message) becomes tag ``truncated``; ``meta["timezone"]`` (an IANA name or a UTC offset) is the zone
  assumed for timestamps written without one (RFC 3164, nginx error log, Postgres
  without ``%Z``).
"""
from __future__ import annotations

import base64
import datetime as _dt
import functools
import ipaddress
import re
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from core.events import Event, TimestampError, parse_timestamp, set_field, to_utc_iso
from core.protocols import RawRecord

__all__ = [
    "FUTURE_TOLERANCE",
    "META_PREFIXES",
    "decode",
    "base_event",
    "set_timestamp",
    "add_tag",
    "set_outcome",
    "record_zone",
    "to_int",
    "categorize",
]

FUTURE_TOLERANCE = _dt.timedelta(hours=1)
"""How far ahead of ingest time a log's timestamp may be before we distrust it.

An hour absorbs clock drift on cameras; a device sending local time (UTC+7 in Ho Chi
Minh City) as if it were UTC lands seven hours ahead and is caught, which is what we
want: the ingest time is then closer to the truth than the device's clock."""

META_PREFIXES = ("log.", "network.", "agent.", "labels.", "tls.")


def decode(data: bytes) -> tuple[str, bool]:
    """Bytes to text; ``(text, was_valid_utf8)``. Strips a leading UTF-8 BOM."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8"), True
    except UnicodeDecodeError:
        return data.decode("utf-8", errors="replace"), False


def base_event(
    record: RawRecord,
    now: _dt.datetime,
    *,
    dataset: str,
    module: str,
    text: str | None = None,
) -> tuple[Event, str]:
    """A fresh event for ``record``: ``(event, text)``.

    Sets ``@timestamp`` (ingest time until a parser finds better), ``event.ingested``,
    ``event.original``, ``event.kind``, ``event.dataset``/``module`` (``record.dataset``
    wins over the parser's dataset, so a tail configured as ``nginx.api_gateway`` keeps
    that name), the transport meta and the ``invalid_utf8``/``truncated`` tags.
    """
    valid = True
    if text is None:
        text, valid = decode(record.data)
    text = text.rstrip("\r\n")
    now_iso = to_utc_iso(now)
    ev: Event = {
        "@timestamp": now_iso,
        "event": {
            "ingested": now_iso,
            "original": text,
            "kind": "event",
            "dataset": record.dataset or dataset,
            "module": module,
        },
    }
    if not valid:
        add_tag(ev, "invalid_utf8")
        set_field(ev, "citysoc.original_base64", base64.b64encode(record.data).decode("ascii"))
    if record.source and record.source != "unknown":
        set_field(ev, "citysoc.source", record.source)
    meta = record.meta
    if meta:
        for key, value in meta.items():
            if key.startswith(META_PREFIXES):
                set_field(ev, key, value)
        if meta.get("truncated"):
            add_tag(ev, "truncated")
    return ev, text


_OFFSET = re.compile(r"^(?:UTC|GMT)?([+-])(\d{2}):?(\d{2})?$")


def record_zone(record: RawRecord, default: _dt.tzinfo = _dt.timezone.utc) -> _dt.tzinfo:
    """The zone to assume for zone-less timestamps of this record (``meta['timezone']``): an
    IANA name, or a UTC offset such as ``+07:00`` (what Filebeat's ``add_locale`` writes
    into ``event.timezone`` and Elastic's pipelines read the syslog date in)."""
    name = record.meta.get("timezone") if record.meta else None
    if not name:
        return default
    text = str(name).strip()
    try:
        return ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        pass
    m = _OFFSET.match(text)
    if m is None:
        return default
    minutes = int(m.group(2)) * 60 + int(m.group(3) or 0)
    if minutes > 18 * 60:
        return default
    return _dt.timezone(_dt.timedelta(minutes=-minutes if m.group(1) == "-" else minutes))


def set_timestamp(ev: Event, value: Any, now: _dt.datetime, *, original: str | None = None) -> None:
    """Set ``@timestamp`` from the log's ``value`` (str, number or datetime) with the rules above.

    ``value`` of ``None`` leaves ingest time without a tag (the log had no timestamp).
    """
    if value is None:
        return
    try:
        ts = parse_timestamp(value)
    except (TimestampError, ValueError, OverflowError):
        add_tag(ev, "timestamp_invalid")
        set_field(ev, "citysoc.timestamp_original", original if original is not None else str(value))
        return
    if ts.year < 1970:  # no log line predates the epoch (and the year would not print in 4 digits)
        add_tag(ev, "timestamp_invalid")
        set_field(ev, "citysoc.timestamp_original", original if original is not None else str(value))
        return
    if ts - now > FUTURE_TOLERANCE:
        add_tag(ev, "timestamp_future")
        set_field(ev, "citysoc.timestamp_original", original if original is not None else str(value))
        return
    ev["@timestamp"] = to_utc_iso(ts)
    # A later, better timestamp (an access line inside a syslog envelope) clears the doubt.
    tags = ev.get("tags")
    if tags and ("timestamp_future" in tags or "timestamp_invalid" in tags):
        tags[:] = [t for t in tags if t not in ("timestamp_future", "timestamp_invalid")]
        if not tags:
            del ev["tags"]
        citysoc = ev.get("citysoc")
        if isinstance(citysoc, dict):
            citysoc.pop("timestamp_original", None)
            if not citysoc:
                del ev["citysoc"]


def add_tag(ev: Event, tag: str) -> None:
    """Append ``tag`` to the event's ``tags`` once."""
    tags = ev.setdefault("tags", [])
    if tag not in tags:
        tags.append(tag)


def set_outcome(ev: Event, ok: bool | None) -> None:
    """``event.outcome``: success / failure / unknown (``None``)."""
    ev["event"]["outcome"] = "unknown" if ok is None else ("success" if ok else "failure")


def categorize(ev: Event, category: str | list[str], type_: str | list[str], action: str) -> None:
    """Set ``event.category``, ``event.type`` (always lists, as ECS says) and ``event.action``."""
    e = ev["event"]
    e["category"] = [category] if isinstance(category, str) else list(category)
    e["type"] = [type_] if isinstance(type_, str) else list(type_)
    e["action"] = action


_INT64 = 2**63


def to_int(value: Any) -> int | None:
    """``int(value)`` or ``None`` for anything that is not a plain integer, or one past the
    signed 64-bit range (no store can keep it: a ``long`` in Elasticsearch, an INTEGER in SQLite)."""
    try:
        n = int(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return n if -_INT64 <= n < _INT64 else None


def parse_ip(value: Any) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """An address object for ``value`` (IPv6 zone ids dropped), ``None`` if it is not one."""
    if not isinstance(value, str) or not value or not (value[0].isdigit() or ":" in value or value[0] in "abcdefABCDEF"):
        return None
    return _address(value)


@functools.lru_cache(maxsize=65_536)
def _address(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """Cached: a city's devices repeat the same few thousand addresses, and
    ``ipaddress.ip_address`` was the costliest step of parsing an sshd line. Bounded (LRU),
    so an attacker spraying addresses costs at most 65,536 entries; address objects are
    immutable, so sharing them is safe."""
    if len(value) > 64:  # no address is longer (IPv6 with a zone id included)
        return None
    try:
        return ipaddress.ip_address(value.split("%", 1)[0])
    except ValueError:
        return None
