"""The base of every parser that reads an application's message (sshd, sudo, nginx, ...).

An app parser is reached two ways: directly, by ``format=<name>`` on a record (a file
tail of ``/var/log/auth.log`` configured as ``sshd``), or through the syslog parser,
which reads the envelope and hands the body to the app whose program name or content
matches. Both paths end in :meth:`AppParser.apply`, so a line means the same thing
whichever way it came.
"""
from __future__ import annotations

import datetime as _dt
from typing import ClassVar

from core.events import Event
from core.protocols import RawRecord

from ._common import base_event, record_zone
from ._syslog import adopt_bare_tag, apply_header, split_header

__all__ = ["AppParser", "utcnow"]


def utcnow() -> _dt.datetime:
    return _dt.datetime.now(_dt.timezone.utc)


class AppParser:
    """One application's messages to ECS. Subclasses set the class attributes and ``apply``.

    The routing declaration (``name``, ``order``, ``programs``, ``body_sniff``,
    ``line_sniff``, ``datasets``, ``log_paths``...) is read by :mod:`._registry`; the
    defaults here mean "takes no part". ``parse_native``: an optional hook for the app's
    own line layout (an nginx access line, a Postgres log line) tried before the syslog
    envelope.
    """

    name: ClassVar[str]
    dataset: ClassVar[str]
    module: ClassVar[str]
    order: ClassVar[int] = 1000
    programs: ClassVar[frozenset[str]] = frozenset()
    program_prefixes: ClassVar[tuple[str, ...]] = ()
    body_sniff: ClassVar[bool] = False
    line_sniff: ClassVar[bool] = False
    json_claims: ClassVar[bool] = False
    datasets: ClassVar[tuple[str, ...]] = ()
    log_paths: ClassVar[tuple[str, ...]] = ()

    def sniff(self, message: str) -> bool:
        """True when ``message`` (a syslog body) is recognisably this app's, whatever the program.

        Asked by the syslog router only when the class declares ``body_sniff = True``."""
        return False

    def sniff_line(self, line: str) -> bool:
        """True when a bare line (no ``<PRI>``, not JSON) is this app's, for ``format=auto``.

        Asked only when the class declares ``line_sniff = True``."""
        return False

    def apply(self, ev: Event, message: str, program: str | None, record: RawRecord, now: _dt.datetime) -> bool:
        """Add this app's fields for ``message`` to ``ev``; False if the message was not understood."""
        raise NotImplementedError

    def parse_native(self, ev: Event, text: str, record: RawRecord, now: _dt.datetime) -> bool:
        """Parse a whole line in the app's own layout; False when it is not one."""
        return False

    def claim(self, ev: Event, record: RawRecord, dataset: str | None = None) -> None:
        """Mark ``ev`` as this app's (dataset/module), unless the record named a dataset."""
        e = ev["event"]
        e["module"] = self.module
        if not record.dataset:
            e["dataset"] = dataset or self.dataset

    def parse(self, record: RawRecord, *, now: _dt.datetime | None = None) -> Event:
        now = now or utcnow()
        ev, text = base_event(record, now, dataset=self.dataset, module=self.module)
        if self.parse_native(ev, text, record, now):
            return ev
        hdr = split_header(text, now, record_zone(record))
        if hdr is not None:
            adopt_bare_tag(hdr, self.programs)
            apply_header(ev, hdr, now)
            message, program = hdr.message, hdr.appname
        else:
            ev["message"] = text
            message, program = text, None
        self.claim(ev, record)
        self.apply(ev, message, program, record, now)
        return ev
