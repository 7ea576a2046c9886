"""Time bounds as analysts type them: ISO timestamps or relative ``now-24h`` / ``24h``."""
from __future__ import annotations

import datetime as _dt
import re

from core.events import TimestampError, parse_timestamp

__all__ = ["parse_time_bound", "parse_since"]

_REL = re.compile(r"^(?:now-)?(\d+)\s*([smhdw])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_since(value: str) -> _dt.timedelta:
    """``15m``, ``24h``, ``7d`` -> a timedelta. Raises ValueError with the accepted forms."""
    m = _REL.match(value.strip())
    if not m:
        raise ValueError(f"cannot read duration {value!r}: use forms like 15m, 24h, 7d")
    try:
        return _dt.timedelta(seconds=int(m.group(1)) * _UNITS[m.group(2)])
    except OverflowError:
        raise ValueError(f"duration {value[:80]!r} is too long: at most 999999999 days") from None


def parse_time_bound(value: str | None, *, now: _dt.datetime | None = None) -> _dt.datetime | None:
    """``None``/empty -> None; ``now``; ``now-1h``; ISO 8601 or epoch -> aware UTC datetime."""
    if value is None or not value.strip():
        return None
    v = value.strip()
    now = now or _dt.datetime.now(_dt.timezone.utc)
    if v == "now":
        return now
    if v.startswith("now-"):
        try:
            return now - parse_since(v)
        except OverflowError:  # a valid duration that reaches before year 1
            raise ValueError(f"time {value[:80]!r} is too far back: the earliest is year 1") from None
    try:
        return parse_timestamp(v)
    except TimestampError as exc:
        raise ValueError(f"cannot read time {value!r}: use ISO 8601 (2026-11-25T08:00:00Z), epoch, or now-24h") from exc
