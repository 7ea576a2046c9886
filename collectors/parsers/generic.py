"""The parser of last resort: the line becomes ``message``, nothing is lost.

Application logs of the forecasting and warehouse servers often start with an ISO
timestamp and a level (``2026-11-25 10:00:00,123 INFO [main] ...``, the Python and
Java logging defaults); those two are picked up (``@timestamp``, ``log.level``) and the
whole line stays the message.
"""
from __future__ import annotations

import datetime as _dt
import re

from core.events import Event
from core.protocols import RawRecord

from ._app import utcnow
from ._common import base_event, record_zone, set_timestamp

__all__ = ["GenericParser", "PARSER"]

_LEAD_RE = re.compile(
    r"\[?(\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d)(?:[.,](\d{1,9}))?(Z|[+-]\d\d:?\d\d)?\]?"
    r"(?:\s+\[?(TRACE|DEBUG|INFO|NOTICE|WARN|WARNING|ERROR|ERR|FATAL|CRITICAL|CRIT|SEVERE)\]?\b)?")


class GenericParser:
    name = "generic"
    dataset = "generic.log"
    module = "generic"

    def parse(self, record: RawRecord, *, now: _dt.datetime | None = None) -> Event:
        now = now or utcnow()
        ev, text = base_event(record, now, dataset=self.dataset, module=self.module)
        ev["message"] = text
        m = _LEAD_RE.match(text)
        if m:
            stamp, frac, zone, level = m.groups()
            iso = stamp.replace(" ", "T") + (f".{frac}" if frac else "")
            if zone:
                set_timestamp(ev, iso + zone, now, original=m.group(0))
            else:
                try:
                    local = _dt.datetime.fromisoformat(iso[:26]).replace(tzinfo=record_zone(record))
                    set_timestamp(ev, local, now, original=m.group(0))
                except ValueError:
                    set_timestamp(ev, iso, now, original=m.group(0))
            if level:
                ev.setdefault("log", {})["level"] = level.lower()
        return ev


PARSER = GenericParser()
