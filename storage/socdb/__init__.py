"""The SOC's own records in SQLite (``<data>/soc.db``, WAL): alerts, cases, users,
API keys, sessions and the hash-chained audit log. Implements the ``core.alerts``,
``core.auth`` and ``core.audit`` protocols.

Example::

    soc = open_socdb("./data")
    soc.audit.append("user:alice", "alert.update", "alert:1", before={...}, after={...})
    soc.close()
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from storage.socdb._db import SocDatabase
from storage.socdb.alerts import SORTS, SQLiteAlertStore
from storage.socdb.audit import SQLiteAuditLog
from storage.socdb.cases import SQLiteCaseStore
from storage.socdb.incidents import INCIDENT_SORTS, SQLiteIncidentStore
from storage.socdb.users import SQLiteUserStore

__all__ = ["SocDB", "open_socdb", "SocDatabase", "SQLiteAlertStore", "SQLiteCaseStore", "SQLiteUserStore",
           "SQLiteAuditLog", "SQLiteIncidentStore", "SORTS", "INCIDENT_SORTS"]


@dataclass
class SocDB:
    db: SocDatabase
    alerts: SQLiteAlertStore
    cases: SQLiteCaseStore
    users: SQLiteUserStore
    audit: SQLiteAuditLog
    incidents: SQLiteIncidentStore

    def close(self) -> None:
        self.db.close()


def open_socdb(data_dir: str | Path) -> SocDB:
    """Open (creating when needed) ``<data_dir>/soc.db`` and the attachments folder beside it."""
    d = Path(data_dir)
    db = SocDatabase(d / "soc.db")
    return SocDB(db=db, alerts=SQLiteAlertStore(db), cases=SQLiteCaseStore(db, d / "attachments"),
                 users=SQLiteUserStore(db), audit=SQLiteAuditLog(db), incidents=SQLiteIncidentStore(db))
