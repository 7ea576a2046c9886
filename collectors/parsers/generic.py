"""The parser of last resort: the line becomes ``message``, nothing is lost."""
from __future__ import annotations

import datetime as _dt

from core.events import Event
from core.protocols import RawRecord

from ._app import utcnow
from ._common import base_event

__all__ = ["GenericParser", "PARSER"]


class GenericParser:
    name = "generic"
    dataset = "generic.log"
    module = "generic"

    def parse(self, record: RawRecord, *, now: _dt.datetime | None = None) -> Event:
        now = now or utcnow()
        ev, text = base_event(record, now, dataset=self.dataset, module=self.module)
        ev["message"] = text
        return ev


PARSER = GenericParser()
