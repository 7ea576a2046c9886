"""Report labels in Vietnamese and English, and dates printed the way each reader expects.

Catalogs are JSON files in ``reports/catalogs/`` with identical keys (a test checks), so a
translator edits data, not code. Dates: ``dd/mm/yyyy`` for Vietnamese, ISO
``yyyy-mm-dd`` for English; both in the report's time zone.

Example::

    tr = Translator("vi", "Asia/Ho_Chi_Minh")
    tr("alerts_total")                         # "Số cảnh báo trong kỳ"
    tr.date("2026-11-16T17:00:00.000Z")        # "17/11/2026"
"""
from __future__ import annotations

import datetime as _dt
import json
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from core.reports import LANGS, ReportError

__all__ = ["Translator", "catalog", "zone"]

_DIR = Path(__file__).parent / "catalogs"
_DATE = {"vi": "%d/%m/%Y", "en": "%Y-%m-%d"}
_DATETIME = {"vi": "%H:%M %d/%m/%Y", "en": "%Y-%m-%d %H:%M"}


@cache
def catalog(lang: str) -> dict[str, str]:
    """The labels of ``lang``; :class:`ReportError` for a language we do not ship."""
    if lang not in LANGS:
        raise ReportError(f"unknown language {lang!r}; use one of {', '.join(LANGS)}")
    return json.loads((_DIR / f"{lang}.json").read_text(encoding="utf-8"))


def zone(name: str) -> _dt.tzinfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ReportError(f"unknown time zone {name!r}; use an IANA name such as Asia/Ho_Chi_Minh") from exc


def _parse(ts: str | _dt.datetime) -> _dt.datetime:
    if isinstance(ts, _dt.datetime):
        return ts
    t = _dt.datetime.fromisoformat(ts.replace("Z", "+00:00"))
    return t if t.tzinfo else t.replace(tzinfo=_dt.timezone.utc)


class Translator:
    """Labels and dates for one language and zone; ``tr(key)`` raises KeyError on a
    missing label so a forgotten translation fails the tests, not the printout."""

    def __init__(self, lang: str, tz: str = "Asia/Ho_Chi_Minh"):
        self.lang = lang
        self.labels = catalog(lang)
        self.tz = zone(tz)

    def __call__(self, key: str) -> str:
        return self.labels[key]

    def level(self, level: str) -> str:
        return self.labels.get(f"lvl_{level}", level)

    def status(self, status: str) -> str:
        return self.labels.get(f"st_{status}", status)

    def resolution(self, res: str | None) -> str:
        return self.labels.get(f"res_{res}", res or "")

    def center(self, center: str) -> str:
        """A known center's name in the reader's language; other ids as they are."""
        return self.labels.get(f"ctr_{center}", center)

    def run_status(self, status: str) -> str:
        return self.labels.get(f"run_{status}", status)

    def step_status(self, status: str) -> str:
        return self.labels.get(f"step_{status}", status)

    def trigger(self, trigger: str) -> str:
        return self.labels.get(f"trg_{trigger}", trigger)

    def local(self, ts: str | _dt.datetime) -> _dt.datetime:
        return _parse(ts).astimezone(self.tz)

    def date(self, ts: str | _dt.datetime) -> str:
        return self.local(ts).strftime(_DATE[self.lang])

    def datetime(self, ts: str | _dt.datetime | None) -> str:
        return self.local(ts).strftime(_DATETIME[self.lang]) if ts else ""

    def day(self, day_iso: str) -> str:
        """A ``yyyy-mm-dd`` local day (already in the report zone) in the reader's form."""
        return _dt.date.fromisoformat(day_iso).strftime(_DATE[self.lang])

    def number(self, n: int | float) -> str:
        """Thousands grouped as each reader writes them: 1.234.567 (vi), 1,234,567 (en)."""
        s = f"{n:,.0f}" if isinstance(n, int) or float(n).is_integer() else f"{n:,.1f}"
        return s.translate(str.maketrans(",.", ".,")) if self.lang == "vi" else s

    def duration(self, seconds: float | None) -> str:
        if seconds is None:
            return self.labels["not_available"]
        if seconds < 3600:
            return f"{self.number(round(seconds / 60, 1))} {self.labels['minutes']}"
        return f"{self.number(round(seconds / 3600, 1))} {self.labels['hours']}"
