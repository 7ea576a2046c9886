"""SQLite implementation of :class:`core.alerts.CaseStore`; attachments live as files.

Attachment bytes are written content-addressed under ``<data>/attachments/<sha256>``
(written to a temporary name, fsynced, then renamed, so a crash never leaves half a
file under a real hash); the row keeps the original name, size and hash.
"""
from __future__ import annotations

import hashlib
import os
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from core.sqlitedb import inserted_id
from core.alerts import CASE_STATUSES, Attachment, Case, CaseNote, NotFound, TimelineEntry
from core.events import utc_now_iso
from storage.socdb._db import SocDatabase

__all__ = ["SQLiteCaseStore"]


def _case(r: sqlite3.Row, alert_ids: list[int]) -> Case:
    return Case(id=r["id"], title=r["title"], description=r["description"], status=r["status"],
                severity=r["severity"], assignee=r["assignee"], created_by=r["created_by"],
                created_at=r["created_at"], updated_at=r["updated_at"], alert_ids=alert_ids)


def _attachment(r: sqlite3.Row, folder: Path) -> Attachment:
    # Stored relative to the attachments folder, so a moved data directory keeps working.
    return Attachment(id=r["id"], case_id=r["case_id"], filename=r["filename"], size=r["size"], sha256=r["sha256"],
                      content_type=r["content_type"], uploaded_by=r["uploaded_by"], time=r["time"],
                      path=str(folder / r["path"]), scan_status=r["scan_status"],
                      scan_findings=orjson.loads(r["scan_findings"]))


class SQLiteCaseStore:
    def __init__(self, db: SocDatabase, attachments_dir: str | Path):
        self.db = db
        self.attachments_dir = Path(attachments_dir)

    def _timeline(self, conn: sqlite3.Connection, case_id: int, actor: str, kind: str, summary: str,
                  data: dict[str, Any] | None = None, now: str | None = None) -> None:
        conn.execute("INSERT INTO case_timeline(case_id, time, actor, kind, summary, data) VALUES (?,?,?,?,?,?)",
                     (case_id, now or utc_now_iso(), actor, kind, summary, orjson.dumps(data or {}).decode()))

    def _alert_ids(self, conn: sqlite3.Connection, case_id: int) -> list[int]:
        return [r[0] for r in conn.execute("SELECT alert_id FROM case_alerts WHERE case_id = ? ORDER BY alert_id",
                                           (case_id,))]

    def _require_alerts(self, conn: sqlite3.Connection, alert_ids: Sequence[int]) -> None:
        for a in alert_ids:
            if conn.execute("SELECT 1 FROM alerts WHERE id = ?", (a,)).fetchone() is None:
                raise NotFound(f"alert {a} does not exist")

    def create_case(self, title: str, description: str, severity: str, created_by: str,
                    alert_ids: Sequence[int] = (), assignee: str | None = None) -> Case:
        now = utc_now_iso()
        with self.db.write() as conn:
            self._require_alerts(conn, alert_ids)
            cur = conn.execute(
                "INSERT INTO cases(title, description, status, severity, assignee, created_by, created_at, updated_at)"
                " VALUES (?,?,?,?,?,?,?,?)", (title, description, "open", severity, assignee, created_by, now, now))
            cid = inserted_id(cur)
            self._timeline(conn, cid, created_by, "created", f"case opened: {title}", now=now)
            for a in dict.fromkeys(alert_ids):
                conn.execute("INSERT OR IGNORE INTO case_alerts(case_id, alert_id) VALUES (?,?)", (cid, a))
                conn.execute("UPDATE alerts SET case_id = ? WHERE id = ?", (cid, a))
                self._timeline(conn, cid, created_by, "alert_added", f"alert {a} added", {"alert_id": a}, now)
            row = conn.execute("SELECT * FROM cases WHERE id = ?", (cid,)).fetchone()
            return _case(row, self._alert_ids(conn, cid))

    def get_case(self, case_id: int) -> Case:
        conn = self.db.reader()
        row = conn.execute("SELECT * FROM cases WHERE id = ?", (case_id,)).fetchone()
        if row is None:
            raise NotFound(f"case {case_id} does not exist")
        return _case(row, self._alert_ids(conn, case_id))

    def list_cases(self, *, status: str | None = None, limit: int = 50, offset: int = 0) -> tuple[int, list[Case]]:
        conn = self.db.reader()
        where, params = ("WHERE status = ?", [status]) if status else ("", [])
        total = conn.execute(f"SELECT count(*) FROM cases {where}", params).fetchone()[0]
        rows = conn.execute(f"SELECT * FROM cases {where} ORDER BY updated_at DESC, id DESC LIMIT ? OFFSET ?",
                            [*params, limit, offset]).fetchall()
        return total, [_case(r, self._alert_ids(conn, r["id"])) for r in rows]

    def update_case(self, case_id: int, actor: str, *, title: str | None = None, description: str | None = None,
                    status: str | None = None, severity: str | None = None,
                    assignee: str | None = None) -> tuple[Case, Case]:
        if status is not None and status not in CASE_STATUSES:
            raise ValueError(f"unknown case status {status!r}; use one of {', '.join(CASE_STATUSES)}")
        now = utc_now_iso()
        with self.db.write() as conn:
            row = conn.execute("SELECT * FROM cases WHERE id = ?", (case_id,)).fetchone()
            if row is None:
                raise NotFound(f"case {case_id} does not exist")
            ids = self._alert_ids(conn, case_id)
            before = _case(row, ids)
            after = _case(row, ids)
            changed: dict[str, Any] = {}
            for name, val in (("title", title), ("description", description), ("status", status),
                              ("severity", severity), ("assignee", assignee)):
                if val is not None and getattr(after, name) != val:
                    changed[name] = {"from": getattr(after, name), "to": val}
                    setattr(after, name, val)
            if changed:
                after.updated_at = now
                conn.execute("UPDATE cases SET title=?, description=?, status=?, severity=?, assignee=?, updated_at=?"
                             " WHERE id=?", (after.title, after.description, after.status, after.severity,
                                             after.assignee, now, case_id))
                self._timeline(conn, case_id, actor, "updated", "changed " + ", ".join(sorted(changed)), changed, now)
        return before, after

    def add_alerts(self, case_id: int, alert_ids: Sequence[int], actor: str) -> Case:
        now = utc_now_iso()
        with self.db.write() as conn:
            if conn.execute("SELECT 1 FROM cases WHERE id = ?", (case_id,)).fetchone() is None:
                raise NotFound(f"case {case_id} does not exist")
            self._require_alerts(conn, alert_ids)
            have = set(self._alert_ids(conn, case_id))
            for a in dict.fromkeys(alert_ids):
                if a in have:
                    continue
                conn.execute("INSERT INTO case_alerts(case_id, alert_id) VALUES (?,?)", (case_id, a))
                conn.execute("UPDATE alerts SET case_id = ? WHERE id = ?", (case_id, a))
                self._timeline(conn, case_id, actor, "alert_added", f"alert {a} added", {"alert_id": a}, now)
            conn.execute("UPDATE cases SET updated_at = ? WHERE id = ?", (now, case_id))
            row = conn.execute("SELECT * FROM cases WHERE id = ?", (case_id,)).fetchone()
            return _case(row, self._alert_ids(conn, case_id))

    def add_note(self, case_id: int, author: str, text: str) -> CaseNote:
        now = utc_now_iso()
        with self.db.write() as conn:
            if conn.execute("SELECT 1 FROM cases WHERE id = ?", (case_id,)).fetchone() is None:
                raise NotFound(f"case {case_id} does not exist")
            cur = conn.execute("INSERT INTO case_notes(case_id, author, time, text) VALUES (?,?,?,?)",
                               (case_id, author, now, text))
            nid = inserted_id(cur)
            self._timeline(conn, case_id, author, "note", text[:200], {"note_id": nid}, now)
            conn.execute("UPDATE cases SET updated_at = ? WHERE id = ?", (now, case_id))
        return CaseNote(id=nid, case_id=case_id, author=author, time=now, text=text)

    def notes(self, case_id: int) -> list[CaseNote]:
        self.get_case(case_id)
        rows = self.db.reader().execute("SELECT * FROM case_notes WHERE case_id = ? ORDER BY id", (case_id,)).fetchall()
        return [CaseNote(id=r["id"], case_id=r["case_id"], author=r["author"], time=r["time"], text=r["text"])
                for r in rows]

    def timeline(self, case_id: int) -> list[TimelineEntry]:
        self.get_case(case_id)
        rows = self.db.reader().execute("SELECT * FROM case_timeline WHERE case_id = ? ORDER BY id",
                                        (case_id,)).fetchall()
        return [TimelineEntry(id=r["id"], case_id=r["case_id"], time=r["time"], actor=r["actor"], kind=r["kind"],
                              summary=r["summary"], data=orjson.loads(r["data"])) for r in rows]

    def add_attachment(self, case_id: int, filename: str, content_type: str, data: bytes,
                       uploaded_by: str) -> Attachment:
        self.get_case(case_id)
        digest = hashlib.sha256(data).hexdigest()
        self.attachments_dir.mkdir(parents=True, exist_ok=True)
        path = self.attachments_dir / digest
        if not path.exists():
            tmp = path.with_suffix(f".tmp{os.getpid()}")
            with open(tmp, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        now = utc_now_iso()
        with self.db.write() as conn:
            cur = conn.execute(
                "INSERT INTO case_attachments(case_id, filename, size, sha256, content_type, uploaded_by, time, path,"
                " scan_status, scan_findings) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (case_id, filename, len(data), digest, content_type, uploaded_by, now, digest, "not_scanned", "[]"))
            aid = inserted_id(cur)
            self._timeline(conn, case_id, uploaded_by, "attachment", f"attached {filename} ({len(data)} bytes)",
                           {"attachment_id": aid, "sha256": digest}, now)
            conn.execute("UPDATE cases SET updated_at = ? WHERE id = ?", (now, case_id))
        return Attachment(id=aid, case_id=case_id, filename=filename, size=len(data), sha256=digest,
                          content_type=content_type, uploaded_by=uploaded_by, time=now, path=str(path))

    def attachments(self, case_id: int) -> list[Attachment]:
        self.get_case(case_id)
        rows = self.db.reader().execute("SELECT * FROM case_attachments WHERE case_id = ? ORDER BY id",
                                        (case_id,)).fetchall()
        return [_attachment(r, self.attachments_dir) for r in rows]

    def get_attachment(self, case_id: int, attachment_id: int) -> Attachment:
        row = self.db.reader().execute("SELECT * FROM case_attachments WHERE case_id = ? AND id = ?",
                                       (case_id, attachment_id)).fetchone()
        if row is None:
            raise NotFound(f"attachment {attachment_id} of case {case_id} does not exist")
        return _attachment(row, self.attachments_dir)

    def set_scan_result(self, attachment_id: int, status: str, findings: list[dict[str, Any]]) -> None:
        with self.db.write() as conn:
            row = conn.execute("SELECT case_id, filename FROM case_attachments WHERE id = ?", (attachment_id,)).fetchone()
            if row is None:
                raise NotFound(f"attachment {attachment_id} does not exist")
            conn.execute("UPDATE case_attachments SET scan_status = ?, scan_findings = ? WHERE id = ?",
                         (status, orjson.dumps(findings).decode(), attachment_id))
            self._timeline(conn, row["case_id"], "system:scanner", "scan",
                           f"scan of {row['filename']}: {status}", {"attachment_id": attachment_id,
                                                                     "findings": findings})
