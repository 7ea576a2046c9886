"""Date-histogram intervals, named once: what ``EventStore.date_histogram`` accepts.

Fixed intervals are a whole number of seconds, minutes, hours, days or weeks (``30s``,
``5m``, ``1h``, ``1d``, ``2w``; weeks start on Monday); calendar intervals are one month,
quarter or year (``1M``, ``1q``, ``1y``), whose buckets start on the first day of the
month/quarter/year in UTC. Both stores and the API parse with :func:`parse_interval`,
so what one accepts the other does too (the store contract pins it).

Example::

    iv = parse_interval("6h")
    assert iv.fixed_ms == 6 * 3_600_000 and not iv.calendar
    assert calendar_start(parse_interval("1q"), 1_778_000_000_000) == 1_775_001_600_000  # 2026-04-01
"""
from __future__ import annotations

import datetime as _dt
import re
from dataclasses import dataclass

from core.protocols import QueryError

__all__ = ["Interval", "parse_interval", "calendar_start", "INTERVAL_PATTERN", "FIXED_UNIT_MS",
           "CALENDAR_UNITS", "WEEK_OFFSET_MS"]

DAY_MS = 86_400_000
FIXED_UNIT_MS: dict[str, int] = {"s": 1000, "m": 60_000, "h": 3_600_000, "d": DAY_MS, "w": 7 * DAY_MS}
CALENDAR_UNITS: dict[str, str] = {"M": "month", "q": "quarter", "y": "year"}
WEEK_OFFSET_MS = 4 * DAY_MS
"""1970-01-05 was a Monday: fixed week buckets are shifted by four days to start on it."""
INTERVAL_PATTERN = r"^(?:[1-9][0-9]{0,5}[smhdw]|1[Mqy])$"
"""The same rule as a regular expression, for API query validation."""
_RE = re.compile(INTERVAL_PATTERN)


@dataclass(frozen=True)
class Interval:
    """A parsed interval: ``n`` units of ``unit`` (``s m h d w M q y``)."""

    n: int
    unit: str

    @property
    def calendar(self) -> bool:
        """Month, quarter or year: buckets of unequal length."""
        return self.unit in CALENDAR_UNITS

    @property
    def fixed_ms(self) -> int:
        """Length in ms of a fixed interval (``ValueError`` for a calendar one)."""
        if self.calendar:
            raise ValueError(f"{self} is a calendar interval")
        return self.n * FIXED_UNIT_MS[self.unit]

    @property
    def offset_ms(self) -> int:
        """Where fixed buckets start relative to the epoch (weeks: on Monday)."""
        return WEEK_OFFSET_MS if self.unit == "w" else 0

    def __str__(self) -> str:
        return f"{self.n}{self.unit}"


def parse_interval(text: str | None) -> Interval:
    """The interval ``text`` names; :class:`core.protocols.QueryError` saying what is
    accepted when it names none."""
    if not text or not _RE.match(text):
        raise QueryError(f"interval {text!r} is not understood: use a number and s, m, h, d or w "
                         "(e.g. 30s, 5m, 1h, 1d, 1w), or 1M, 1q, 1y for calendar months, quarters, years")
    return Interval(int(text[:-1]), text[-1])


def calendar_start(interval: Interval, ms: int) -> int:
    """Epoch ms of the start (UTC) of the calendar bucket holding epoch ms ``ms``."""
    d = _dt.datetime.fromtimestamp(ms / 1000, _dt.timezone.utc)
    month = {"M": d.month, "q": d.month - (d.month - 1) % 3, "y": 1}[interval.unit]
    start = _dt.datetime(d.year, month, 1, tzinfo=_dt.timezone.utc)
    return int(start.timestamp()) * 1000
