"""The report period: what the auditor types, turned into a half-open UTC interval.

``--from 2026-11-16 --to 2026-11-22`` means the whole of both days in the report zone
(the city's, UTC+7): ``[2026-11-16 00:00 +07, 2026-11-23 00:00 +07)``. A full timestamp
is taken as given. Alerts belong to a period by ``last_seen`` (``start`` included,
``end`` excluded), exactly as ``GET /api/v1/alerts?from=&to=`` filters, so a report's
figures match the API's.
"""
from __future__ import annotations

import datetime as _dt
import re
from dataclasses import dataclass

from core.events import to_utc_iso
from core.reports import ReportError
from reports.i18n import zone

__all__ = ["Period", "parse_period", "schedule_period"]

_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass(frozen=True, slots=True)
class Period:
    start: _dt.datetime
    end: _dt.datetime
    tz: str

    @property
    def start_iso(self) -> str:
        return to_utc_iso(self.start)

    @property
    def end_iso(self) -> str:
        return to_utc_iso(self.end)

    def days(self) -> list[str]:
        """Every local day the period touches, as ``yyyy-mm-dd``."""
        tz = zone(self.tz)
        d = self.start.astimezone(tz).date()
        last = (self.end - _dt.timedelta(microseconds=1)).astimezone(tz).date()
        out = []
        while d <= last:
            out.append(d.isoformat())
            d += _dt.timedelta(days=1)
        return out


def _bound(text: str, tz: _dt.tzinfo, *, end: bool, what: str) -> _dt.datetime:
    text = (text or "").strip()
    if _DATE_ONLY.match(text):
        try:
            d = _dt.date.fromisoformat(text)
        except ValueError as exc:
            raise ReportError(f"{what}: {text!r} is not a date ({exc})") from exc
        if end:
            d += _dt.timedelta(days=1)  # a --to date includes that whole day
        return _dt.datetime.combine(d, _dt.time(), tz)
    try:
        t = _dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ReportError(f"{what}: {text!r} is neither a date (2026-11-16) nor an ISO time "
                          "(2026-11-16T08:00:00+07:00)") from exc
    return t if t.tzinfo else t.replace(tzinfo=tz)


def parse_period(start: str, end: str, tz: str = "Asia/Ho_Chi_Minh") -> Period:
    """:class:`Period` from the two bounds; :class:`ReportError` when reversed or empty."""
    z = zone(tz)
    s = _bound(start, z, end=False, what="--from")
    e = _bound(end, z, end=True, what="--to")
    if e <= s:
        raise ReportError(f"the period ends ({e.isoformat()}) before it starts ({s.isoformat()}): "
                          "swap --from and --to")
    if e - s > _dt.timedelta(days=400):
        raise ReportError("a report covers at most 400 days; split the period")
    return Period(s.astimezone(_dt.timezone.utc), e.astimezone(_dt.timezone.utc), tz)


def schedule_period(kind: str, now: _dt.datetime, tz: str) -> Period:
    """The last *completed* daily/weekly (Monday-Sunday)/monthly period before ``now``."""
    z = zone(tz)
    today = now.astimezone(z).date()
    if kind == "daily":
        s, e = today - _dt.timedelta(days=1), today
    elif kind == "weekly":
        e = today - _dt.timedelta(days=today.weekday())
        s = e - _dt.timedelta(days=7)
    elif kind == "monthly":
        e = today.replace(day=1)
        s = (e - _dt.timedelta(days=1)).replace(day=1)
    else:
        raise ReportError(f"unknown schedule {kind!r}; use daily, weekly or monthly")
    return Period(_dt.datetime.combine(s, _dt.time(), z).astimezone(_dt.timezone.utc),
                  _dt.datetime.combine(e, _dt.time(), z).astimezone(_dt.timezone.utc), tz)
