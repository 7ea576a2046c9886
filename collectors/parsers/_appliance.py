"""The base of the firewall/appliance parsers whose payload sits behind a loose syslog envelope.

Appliances prefix their payload with whatever envelope their syslog client writes:
``<166>Aug 18 2026 18:24:29 asa-fw-01 : %ASA-6-...``, ``2026-04-03T00:31:09+00:00
192.168.2.1 date=...``, ``Nov 30 16:44:36 PA-220 1,2018/11/30 ...``. The strict syslog
parser rightly refuses some of these; an :class:`ApplianceParser` finds its payload with
``payload_re`` first, reads what envelope there is in front of it, and hands the payload
to ``apply`` (the same method the syslog router calls for a body), so both paths agree.
"""
from __future__ import annotations

import datetime as _dt
import re
from typing import ClassVar

from core.events import Event
from core.protocols import RawRecord

from ._app import AppParser, utcnow
from ._common import add_tag, base_event, record_zone
from ._netfields import split_envelope
from ._syslog import apply_header, split_header

__all__ = ["ApplianceParser"]


class ApplianceParser(AppParser):
    """An app parser that can find its payload anywhere in the first bytes of a line."""

    payload_re: ClassVar[re.Pattern[str]]
    """Matches at the payload's start (``search`` within :attr:`max_prefix` characters)."""
    max_prefix: ClassVar[int] = 160
    body_sniff = True
    line_sniff = True

    def find_payload(self, text: str) -> int:
        """Offset of the payload in ``text``, -1 when there is none."""
        m = self.payload_re.search(text, 0, min(len(text), self.max_prefix + 64))
        if m is None or m.start() > self.max_prefix:
            return -1
        return m.start()

    def sniff(self, message: str) -> bool:
        return self.find_payload(message) == 0

    def sniff_line(self, line: str) -> bool:
        """True when a whole bare line (no ``<PRI>``) is this appliance's: for ``format=auto``."""
        start = self.find_payload(line)
        return start >= 0 and self.sniff(line[start:])

    def parse(self, record: RawRecord, *, now: _dt.datetime | None = None) -> Event:
        """Payload found: envelope in front of it, then ``apply``; else the plain syslog path.

        A line this parser cannot read is kept (``message``) and tagged ``<name>_unparsed``.
        """
        now = now or utcnow()
        ev, text = base_event(record, now, dataset=self.dataset, module=self.module)
        start = self.find_payload(text)
        if start >= 0:
            payload = text[start:]
            if start:
                split_envelope(ev, text[:start], payload, now, record_zone(record))
            else:
                ev["message"] = payload
        else:
            hdr = split_header(text, now, record_zone(record))
            if hdr is not None:
                apply_header(ev, hdr, now)
                payload = hdr.message
            else:
                ev["message"] = payload = text
        self.claim(ev, record)
        if not self.apply(ev, payload, None, record, now):
            add_tag(ev, f"{self.name}_unparsed")
        return ev
