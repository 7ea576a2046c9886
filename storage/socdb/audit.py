"""SQLite implementation of :class:`core.audit.AuditLog`: append-only, hash-chained.

``append`` reads the head and inserts the next entry inside one ``BEGIN IMMEDIATE``
transaction, so the server and a CLI writing at the same moment still form one chain.
"""
from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import Any

import orjson

from core.sqlitedb import connect
from core.audit import GENESIS, AuditEntry, VerifyResult, canonical, entry_hash, verify_chain
from core.events import utc_now_iso
from storage.socdb._db import SocDatabase

__all__ = ["SQLiteAuditLog"]


def _loads(v: str | None) -> Any:
    return None if v is None else orjson.loads(v)


def _entry(r: sqlite3.Row) -> AuditEntry:
    return AuditEntry(seq=r["seq"], time=r["time"], actor=r["actor"], action=r["action"], target=r["target"],
                      source_ip=r["source_ip"], before=_loads(r["before"]), after=_loads(r["after"]),
                      details=_loads(r["details"]) or {}, prev_hash=r["prev_hash"], hash=r["hash"])


def _plain(v: Any) -> Any:
    """JSON round trip: what is hashed is exactly what is stored and read back."""
    return None if v is None else orjson.loads(canonical(v))


class SQLiteAuditLog:
    def __init__(self, db: SocDatabase):
        self.db = db

    def append(self, actor: str, action: str, target: str = "", *, source_ip: str = "",
               before: Any = None, after: Any = None, details: dict[str, Any] | None = None) -> AuditEntry:
        entry = AuditEntry(seq=0, time=utc_now_iso(), actor=actor, action=action, target=target,
                           source_ip=source_ip or "", before=_plain(before), after=_plain(after),
                           details=_plain(details) or {})
        with self.db.write() as conn:
            head = conn.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
            entry.seq = (head["seq"] + 1) if head else 1
            entry.prev_hash = head["hash"] if head else GENESIS
            entry.hash = entry_hash(entry.prev_hash, entry)
            conn.execute(
                "INSERT INTO audit(seq, time, actor, action, target, source_ip, before, after, details, prev_hash, hash)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (entry.seq, entry.time, entry.actor, entry.action, entry.target, entry.source_ip,
                 None if entry.before is None else canonical(entry.before).decode(),
                 None if entry.after is None else canonical(entry.after).decode(),
                 canonical(entry.details).decode(), entry.prev_hash, entry.hash))
        return entry

    def list(self, *, limit: int = 100, offset: int = 0, actor: str | None = None,
             action: str | None = None, target: str | None = None) -> tuple[int, list[AuditEntry]]:
        where, params = [], []
        for col, val in (("actor", actor), ("action", action), ("target", target)):
            if val is not None:
                where.append(f"{col} = ?")
                params.append(val)
        clause = (" WHERE " + " AND ".join(where)) if where else ""
        conn = self.db.reader()
        total = conn.execute(f"SELECT count(*) FROM audit{clause}", params).fetchone()[0]
        rows = conn.execute(f"SELECT * FROM audit{clause} ORDER BY seq DESC LIMIT ? OFFSET ?",
                            [*params, limit, offset]).fetchall()
        return total, [_entry(r) for r in rows]

    def iter_all(self) -> Iterator[AuditEntry]:
        # Own connection: a long verify or export must not hold a thread's shared reader.
        conn = connect(self.db.path, writer=False, row_factory=sqlite3.Row)
        try:
            for r in conn.execute("SELECT * FROM audit ORDER BY seq"):
                yield _entry(r)
        finally:
            conn.close()

    def verify(self) -> VerifyResult:
        return verify_chain(self.iter_all())
