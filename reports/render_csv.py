"""CSV: one row per alert of the period, written as the alerts stream past.

Headers are the reader's language (``col_*`` labels); values stay the stored ids
(``high``, ``closed``) so a spreadsheet filter or a script reads them the same in both
languages. Text cells that a spreadsheet would run as a formula (``=``, ``+``, ``-``,
``@``...) are neutralised by ``core.spreadsheet.safe_row``. UTF-8 with a byte-order mark
so spreadsheet programs show Vietnamese diacritics; times are ISO UTC, exact and sortable.
"""
from __future__ import annotations

import csv
from typing import IO

from core.alerts import Alert
from core.spreadsheet import safe_row
from reports.collect import AlertTimes
from reports.i18n import Translator

__all__ = ["COLUMNS", "AlertCsvWriter"]

COLUMNS: tuple[str, ...] = ("id", "rule_id", "rule_title", "level", "status", "resolution", "center", "asset_id",
                            "host", "user", "source_ip", "destination_ip", "risk_score", "count", "first_seen",
                            "last_seen", "acknowledged_at", "closed_at", "assignee", "case_id", "tags")


class AlertCsvWriter:
    """``write(alert, times)`` per alert; the header is written on construction."""

    def __init__(self, fh: IO[str], tr: Translator):
        fh.write("\ufeff")
        self._w = csv.writer(fh, lineterminator="\r\n")
        self._w.writerow([tr(f"col_{c}") for c in COLUMNS])
        self.rows = 0

    def write(self, a: Alert, t: AlertTimes | None) -> None:
        e = a.entities
        self._w.writerow(safe_row([a.id, a.rule_id, a.rule_title, a.level, a.status, a.resolution or "", e.center or "",
                          e.asset_id or "", e.host or "", e.user or "", e.source_ip or "", e.destination_ip or "",
                          a.risk_score, a.count, a.first_seen, a.last_seen, (t.acknowledged_at if t else None) or "",
                          (t.closed_at if t else None) or "", a.assignee or "", a.case_id or "", ";".join(a.tags)]))
        self.rows += 1
