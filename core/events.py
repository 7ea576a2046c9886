"""ECS event helpers.

An event is a plain nested ``dict`` laid out as the Elastic Common Schema lays it out
(``{"host": {"name": "cam-01"}}``), because that is what Elasticsearch stores, what Sigma
pipelines map to and what shippers send. Sources often hand us dotted keys
(``{"host.name": "cam-01"}``); :func:`expand_dots` turns those into the nested form once,
at the edge, so every later stage can rely on one layout.

The event path's invariants (what every stage may rely on, and so must not re-derive):

1. **Decoded once.** A record's bytes are decoded to text once, by the parser that reads
   them (``collectors.parsers``); no later stage sees the bytes again.
2. **Nested once, at the edge.** The parse stage hands on only nested events (dotted keys
   expanded by the parser or by ``format=ecs`` validation). Stores and detectors read
   them with plain ``dict.get`` and never call :func:`expand_dots` on a
   :class:`StampedEvent`.
3. **Time carried twice.** ``@timestamp`` stays ISO 8601 text (what the store keeps, what
   Sigma and Elasticsearch read) and its epoch in milliseconds rides beside it as the
   attribute :data:`TS_MS` (``event.ts_ms``) of a :class:`StampedEvent`, computed once by
   :func:`stamp` at the end of parsing. Consumers (store, asset health, network
   detectors, correlations, alerts) ask :func:`event_ms` / :func:`event_seconds`, which
   read the attribute and parse only for an event that did not come through the edge
   (tests, direct store callers). No consumer keeps its own timestamp cache.
4. **Batches between stages.** Stages take lists of events; a worker process returns a
   batch as each event's JSON text plus the list of epochs, so crossing a process boundary
   costs one ``loads`` per event, not a re-parse.
5. **Matched once.** Stateless rule matching (Sigma's base rules) runs where the event is
   parsed, in the worker process; the ids of the rules it matched ride beside the event as
   the attribute ``event.matched`` (:func:`matched_rules`) and the detect stage only
   applies them (emits, feeds correlations, honours rule toggles) instead of matching
   again. ``None`` (no attribute) means "not matched yet": the detector matches itself.
6. **Encoded once.** The worker that parsed an event also encodes it for the store: its
   JSON text and, with the embedded store, the store's row (indexed columns and full-text
   fields) ride beside it as the attribute ``event.encoded`` (:func:`encoded_form`). The
   store writes that form as it is instead of serializing the event again. It is valid only
   for the event as the worker left it: whoever changes an event before the store (an
   enricher in the server process) drops it with :func:`drop_encoded`.

Example::

    >>> ev = new_event("sshd[12]: Failed password", dataset="linux.auth")
    >>> set_field(ev, "source.ip", "10.0.0.5")
    >>> get_field(ev, "source.ip")
    '10.0.0.5'
"""
from __future__ import annotations

import datetime as _dt
import functools
import re
from collections.abc import Iterator, Mapping
from typing import Any

__all__ = [
    "Event",
    "get_field",
    "set_field",
    "path_parts",
    "has_field",
    "flatten",
    "expand_dots",
    "new_event",
    "utc_now_iso",
    "to_utc_iso",
    "parse_timestamp",
    "TimestampError",
    "StampedEvent",
    "matched_rules",
    "encoded_form",
    "drop_encoded",
    "TS_MS",
    "stamp",
    "event_ms",
    "event_seconds",
    "iso_ms",
    "ms_to_iso",
]

Event = dict[str, Any]

_MISSING = object()


def get_field(event: Mapping[str, Any], path: str, default: Any = None) -> Any:
    """Return the value at dotted ``path`` in a nested event, or ``default``.

    Also accepts documents that kept a dotted key literally (``{"host.name": ...}``) at
    any level, since shippers send both forms.
    """
    if path in event:
        return event[path]
    node: Any = event
    parts = path_parts(path)
    i = 0
    while i < len(parts):
        if node.__class__ is not dict and not isinstance(node, Mapping):  # the ABC check is slow: plain dicts skip it
            return default
        # Try the longest literal dotted key first, then descend one part.
        found = _MISSING
        for j in range(len(parts), i, -1):
            key = ".".join(parts[i:j])
            if key in node:
                found = node[key]
                i = j
                break
        if found is _MISSING:
            return default
        node = found
    return node


def has_field(event: Mapping[str, Any], path: str) -> bool:
    """True when ``path`` exists in ``event`` (even with a ``None`` value)."""
    return get_field(event, path, _MISSING) is not _MISSING


def set_field(event: Event, path: str, value: Any) -> None:
    """Set ``path`` to ``value``, creating nested objects as needed."""
    if "." not in path:
        event[path] = value
        return
    *parents, last = path_parts(path)
    node = event
    for part in parents:
        nxt = node.get(part)
        if nxt.__class__ is not dict and not isinstance(nxt, dict):
            nxt = {}
            node[part] = nxt
        node = nxt
    node[last] = value


@functools.lru_cache(maxsize=4096)
def path_parts(path: str) -> tuple[str, ...]:
    """A dotted path's parts. Cached because parsers set the same few hundred paths on
    every event (``split`` was most of :func:`set_field`); bounded, since a path may come
    from a shipper's key."""
    return tuple(path.split("."))


def flatten(event: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Flatten nested objects to dotted keys; lists are kept as values."""
    out: dict[str, Any] = {}
    for key, value in _walk(event, prefix):
        out[key] = value
    return out


def _walk(node: Mapping[str, Any], prefix: str) -> Iterator[tuple[str, Any]]:
    for k, v in node.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping) and v:
            yield from _walk(v, key + ".")
        else:
            yield key, v


def expand_dots(doc: Mapping[str, Any]) -> Event:
    """Turn dotted keys into nested objects, recursively; the nested form is canonical."""
    out: Event = {}
    for k, v in doc.items():
        if isinstance(v, Mapping):
            v = expand_dots(v)
        if "." in k and not k.startswith(".") and not k.endswith("."):
            parts = k.split(".")
            node = out
            for part in parts[:-1]:
                nxt = node.get(part)
                if not isinstance(nxt, dict):
                    nxt = {}
                    node[part] = nxt
                node = nxt
            _merge(node, parts[-1], v)
        else:
            _merge(out, k, v)
    return out


def _merge(node: dict[str, Any], key: str, value: Any) -> None:
    if key in node and isinstance(node[key], dict) and isinstance(value, dict):
        for k2, v2 in value.items():
            _merge(node[key], k2, v2)
    else:
        node[key] = value


def utc_now_iso() -> str:
    """The current time as an ECS timestamp (UTC, millisecond precision, ``Z``)."""
    return to_utc_iso(_dt.datetime.now(_dt.timezone.utc))


def to_utc_iso(ts: _dt.datetime) -> str:
    """Format a datetime as ``YYYY-MM-DDTHH:MM:SS.mmmZ``; naive datetimes are taken as UTC."""
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=_dt.timezone.utc)
    ts = ts.astimezone(_dt.timezone.utc)
    return ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


class TimestampError(ValueError):
    """A timestamp that cannot be understood."""


_EPOCH_RE = re.compile(r"^\d{9,13}(\.\d+)?$")


def parse_timestamp(value: Any) -> _dt.datetime:
    """Parse the timestamp forms senders use into an aware UTC datetime.

    Accepts ISO 8601 (with ``Z``, offsets or none: none means UTC), epoch seconds or
    milliseconds (number or string). Raises :class:`TimestampError` otherwise.
    """
    if isinstance(value, _dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=_dt.timezone.utc)
    if isinstance(value, bool):
        raise TimestampError(f"not a timestamp: {value!r}")
    if isinstance(value, (int, float)):
        return _from_epoch(float(value))
    if not isinstance(value, str) or not value.strip():
        raise TimestampError(f"not a timestamp: {value!r}")
    s = value.strip()
    if _EPOCH_RE.match(s):
        return _from_epoch(float(s))
    iso = s.replace(" ", "T", 1) if len(s) > 10 and s[10] == " " else s
    if iso.endswith(("Z", "z")):
        iso = iso[:-1] + "+00:00"
    # Python < 3.11 rejected >6 fractional digits; trim to microseconds for any version.
    m = re.match(r"^(.*T\d\d:\d\d:\d\d)\.(\d+)(.*)$", iso)
    if m:
        iso = f"{m.group(1)}.{m.group(2)[:6].ljust(6, '0')}{m.group(3)}"
    try:
        ts = _dt.datetime.fromisoformat(iso)
    except ValueError as exc:
        raise TimestampError(f"unparseable timestamp {value!r}") from exc
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=_dt.timezone.utc)
    return ts.astimezone(_dt.timezone.utc)


def _from_epoch(x: float) -> _dt.datetime:
    if x > 1e11:  # milliseconds
        x /= 1000.0
    try:
        return _dt.datetime.fromtimestamp(x, tz=_dt.timezone.utc)
    except (OverflowError, OSError, ValueError) as exc:
        raise TimestampError(f"epoch out of range: {x!r}") from exc


def new_event(
    original: str | None = None,
    *,
    dataset: str | None = None,
    module: str | None = None,
    timestamp: str | None = None,
) -> Event:
    """A fresh ECS event with ``@timestamp``, ``event.ingested`` and ``event.original`` set."""
    now = utc_now_iso()
    ev: Event = {"@timestamp": timestamp or now, "event": {"ingested": now}}
    if original is not None:
        ev["event"]["original"] = original
    if dataset:
        ev["event"]["dataset"] = dataset
        ev["event"]["module"] = module or dataset.split(".", 1)[0]
    elif module:
        ev["event"]["module"] = module
    return ev


TS_MS = "ts_ms"
"""The name of the one attribute that carries ``@timestamp`` as epoch milliseconds."""


class StampedEvent(dict):
    """An event that has passed the edge: nested, with ``@timestamp`` set and its epoch
    milliseconds in :attr:`ts_ms`. It *is* a ``dict`` (orjson, Sigma and the API see a
    plain mapping); the attribute does not serialize, so a batch that crosses a process
    boundary carries the epochs beside the documents (see :func:`stamp`)."""

    __slots__ = ("ts_ms", "matched", "encoded")
    ts_ms: int
    matched: tuple[str, ...]
    """Ids of the Sigma base rules a worker process found this event to match (invariant 5);
    unset when the event was not matched there. Read it with :func:`matched_rules`."""
    encoded: tuple[str, Any]
    """``(JSON text, store row or None)`` as the worker encoded this event (invariant 6);
    unset when it was not. Read it with :func:`encoded_form`."""


def encoded_form(event: Mapping[str, Any]) -> tuple[str, Any] | None:
    """The ``(JSON text, store row)`` a worker encoded ``event`` to (invariant 6), or None."""
    return getattr(event, "encoded", None)


def drop_encoded(event: Mapping[str, Any]) -> None:
    """Forget the worker's encoding of ``event``: call it before changing the event."""
    if getattr(event, "encoded", None) is not None:
        del event.encoded  # type: ignore[attr-defined]


def matched_rules(event: Mapping[str, Any]) -> tuple[str, ...] | None:
    """The rule ids a worker matched this event against (invariant 5), or None: match it here."""
    return getattr(event, "matched", None)


def iso_ms(value: Any) -> int:
    """Epoch ms of a timestamp value; the canonical ISO form skips the general parser.

    Raises :class:`TimestampError` for a value :func:`parse_timestamp` rejects."""
    if value.__class__ is str and len(value) >= 19 and value[4] == "-" and value[10] == "T":
        try:
            ts = _dt.datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            if ts.tzinfo is None:
                ts = ts.replace(tzinfo=_dt.timezone.utc)
            return _to_ms(ts)
    return _to_ms(parse_timestamp(value))


_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)
_ONE_MS = _dt.timedelta(milliseconds=1)


def _to_ms(ts: _dt.datetime) -> int:
    """Integer milliseconds (no float rounding), as the store's ``epoch_ms``."""
    return (ts - _EPOCH) // _ONE_MS


def stamp(event: Mapping[str, Any], ts_ms: int | None = None, now_ms: int | None = None) -> StampedEvent:
    """The edge's last step: the event as a :class:`StampedEvent` with its epoch.

    ``ts_ms`` is given when it is already known (a batch back from a worker process).
    An event without ``@timestamp`` gets the ingest time; one whose ``@timestamp`` cannot
    be understood raises :class:`TimestampError` (the caller dead-letters it)."""
    ev = event if event.__class__ is StampedEvent else StampedEvent(event)
    if ts_ms is None:
        raw = ev.get("@timestamp")
        if raw is None or raw == "":
            ts_ms = now_ms if now_ms is not None else int(_dt.datetime.now(_dt.timezone.utc).timestamp() * 1000)
            ev["@timestamp"] = to_utc_iso(_dt.datetime.fromtimestamp(ts_ms / 1000, _dt.timezone.utc))
        else:
            ts_ms = iso_ms(raw)
    ev.ts_ms = ts_ms
    return ev


def event_ms(event: Mapping[str, Any]) -> int | None:
    """Epoch ms of an event's ``@timestamp``: the carried attribute, else parsed (None if
    absent or not a timestamp)."""
    ms = getattr(event, "ts_ms", None)
    if ms is not None:
        return ms
    raw = event.get("@timestamp")
    if raw is None or raw == "":
        return None
    try:
        return iso_ms(raw)
    except (TimestampError, ValueError, OverflowError):
        return None


def event_seconds(event: Mapping[str, Any]) -> float | None:
    """:func:`event_ms` in seconds (the unit the detectors' windows use)."""
    ms = event_ms(event)
    return None if ms is None else ms / 1000.0


def ms_to_iso(ms: int) -> str:
    """Epoch ms back to the canonical ECS text (exact: integer arithmetic, no float)."""
    return to_utc_iso(_EPOCH + _dt.timedelta(milliseconds=ms))
