"""What every network detector needs: fast field reads, event time, bounded maps.

Events reach the detectors as nested ECS dicts (the collectors' JSON, decoded once);
reading ``event["source"]["ip"]`` directly is several times cheaper than a general
dotted-path lookup, and the detectors read a handful of fields from every flow. Dotted
keys (``{"source.ip": ...}``, as test files and some shippers write them) still work.
"""
from __future__ import annotations

import datetime as _dt
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar

from core.detectors import IdleSweep
from core.events import TimestampError, event_seconds, expand_dots, parse_timestamp

__all__ = ["field", "nested", "EMPTY", "event_time", "categories", "BoundedMap"]

EMPTY: Mapping[str, Any] = {}
"""A shared empty mapping for ``(event.get("source") or EMPTY).get("ip")`` chains."""
K = TypeVar("K")
V = TypeVar("V")


def field(event: Mapping[str, Any], top: str, *rest: str) -> Any:
    """``event[top][rest...]``, else the literal dotted key ``"top.rest"``, else None."""
    node: Any = event.get(top)
    for part in rest:
        if type(node) is not dict:
            node = None
            break
        node = node.get(part)
        if node is None:
            break
    if node is None and rest:
        return event.get(".".join((top, *rest)))
    return node


def nested(event: Mapping[str, Any]) -> Mapping[str, Any]:
    """``event`` itself when it is already nested (the collectors' form), else its
    :func:`core.events.expand_dots` form; detectors then read it with plain ``.get``."""
    for key in event:
        if "." in key:
            return expand_dots(event)
    return event


def categories(event: Mapping[str, Any]) -> tuple[str, ...]:
    """``event.category`` as a tuple (ECS allows a string or a list)."""
    c = field(event, "event", "category")
    if c is None:
        return ()
    if isinstance(c, str):
        return (c,)
    return tuple(c)


def _parse(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value) / 1000.0 if value > 1e11 else float(value)
    if isinstance(value, str):
        try:
            ts = _dt.datetime.fromisoformat(value)
            if ts.tzinfo is None:
                ts = ts.replace(tzinfo=_dt.timezone.utc)
            return ts.timestamp()
        except ValueError:
            try:
                return parse_timestamp(value).timestamp()
            except (TimestampError, ValueError, OverflowError):
                return None
    return None


def event_time(event: Mapping[str, Any], *, start: bool = False) -> float:
    """Epoch seconds of the event: its own time, so a replayed capture is judged as it
    happened. ``start=True`` prefers ``event.start`` (when a flow began), else
    ``@timestamp`` (the epoch the edge carries, :func:`core.events.event_seconds`); the
    wall clock only when the event carries no usable time."""
    t = None
    if start:
        t = _parse(field(event, "event", "start"))
    if t is None:
        t = event_seconds(event)
    if t is None:
        t = time.time()
    return t


class BoundedMap(OrderedDict, Generic[K, V]):  # type: ignore[type-arg]
    """A dict that keeps at most ``max_keys`` entries, evicting the least recently
    touched first (``touch`` on use). ``evicted`` counts how many were dropped: a
    detector under a flood of new keys forgets the oldest instead of growing."""

    def __init__(self, max_keys: int) -> None:
        super().__init__()
        if max_keys < 1:
            raise ValueError(f"max_keys must be at least 1, got {max_keys}")
        self.max_keys = max_keys
        self.evicted = 0
        self._sweep = IdleSweep()

    @property
    def expired(self) -> int:
        """Entries dropped by :meth:`expire_idle` (idle, not pushed out)."""
        return self._sweep.expired

    def expire_idle(self, now: float, idle_s: float, last: Callable[[V], float]) -> int:
        """Drop the entries idle for more than ``idle_s`` seconds of event time (``last``:
        an entry's newest event time): :class:`core.detectors.IdleSweep`."""
        return self._sweep(self, now, idle_s, last)


    def touch(self, key: K, factory: Any) -> V:
        """The value under ``key`` (created with ``factory()`` if absent), marked as used."""
        v = self.get(key)
        if v is None:
            v = factory()
            self[key] = v
            if len(self) > self.max_keys:
                self.popitem(last=False)
                self.evicted += 1
        else:
            self.move_to_end(key)
        return v

    def put(self, key: K, value: V) -> None:
        """Set ``key`` to ``value`` as the most recently used entry (evicting if full)."""
        self[key] = value
        self.move_to_end(key)
        if len(self) > self.max_keys:
            self.popitem(last=False)
            self.evicted += 1


def idle_after(default: Any, zones: Mapping[str, Any]) -> float:
    """Two of the longest ``window_s`` of any zone: a key idle that long can neither fire
    nor suppress a firing any more (what the brute-force and port-scan detectors expire)."""
    return 2 * max([default.window_s, *(t.window_s for t in zones.values())])
