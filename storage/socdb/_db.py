"""The SQLite file behind alerts, cases, users and the audit log (``<data>/soc.db``).

One writer connection guarded by a lock (SQLite allows one writer; the lock keeps the
pipeline's alert thread and the API's threads from tripping over each other) plus one
reader connection per thread, which WAL lets run beside the writer. ``busy_timeout``
covers the other process that may write at the same time (the CLI beside the server).
"""
from __future__ import annotations

import sqlite3
from contextlib import AbstractContextManager
from pathlib import Path

from core.sqlitedb import Database

__all__ = ["SocDatabase", "SCHEMA_VERSION"]

SCHEMA_VERSION = 1

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);

CREATE TABLE IF NOT EXISTS alerts(
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  dedupe_key TEXT NOT NULL, rule_id TEXT NOT NULL, rule_title TEXT NOT NULL,
  level TEXT NOT NULL, level_num INTEGER NOT NULL, tags TEXT NOT NULL, engine TEXT NOT NULL,
  description TEXT NOT NULL,
  host TEXT, user_name TEXT, source_ip TEXT, destination_ip TEXT, asset_id TEXT, center TEXT,
  criticality INTEGER,
  risk_score INTEGER NOT NULL, status TEXT NOT NULL, resolution TEXT, assignee TEXT,
  first_seen TEXT NOT NULL, last_seen TEXT NOT NULL, count INTEGER NOT NULL,
  created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
  touched_at TEXT NOT NULL,  -- wall time of the last detection: the dedupe window runs on it
  events TEXT NOT NULL, events_query TEXT NOT NULL, case_id INTEGER,
  rules TEXT NOT NULL DEFAULT '[]', targets TEXT NOT NULL DEFAULT '[]', ports TEXT NOT NULL DEFAULT '[]',
  incident_id INTEGER
);
CREATE INDEX IF NOT EXISTS alerts_dedupe ON alerts(dedupe_key, touched_at) WHERE status != 'closed';
CREATE INDEX IF NOT EXISTS alerts_last_seen ON alerts(last_seen);
CREATE INDEX IF NOT EXISTS alerts_status ON alerts(status, last_seen);
CREATE INDEX IF NOT EXISTS alerts_rule ON alerts(rule_id, last_seen);
CREATE INDEX IF NOT EXISTS alerts_risk ON alerts(risk_score, last_seen);
CREATE INDEX IF NOT EXISTS alerts_level ON alerts(level, last_seen);
CREATE INDEX IF NOT EXISTS alerts_level_risk ON alerts(level, risk_score, last_seen);
CREATE INDEX IF NOT EXISTS alerts_assignee ON alerts(assignee, last_seen);
CREATE INDEX IF NOT EXISTS alerts_host ON alerts(host, last_seen);
CREATE INDEX IF NOT EXISTS alerts_case ON alerts(case_id);

CREATE TABLE IF NOT EXISTS incidents(
  id INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL,
  attacker_kind TEXT NOT NULL, attacker TEXT NOT NULL, center TEXT,
  title TEXT NOT NULL, level TEXT NOT NULL, level_num INTEGER NOT NULL, risk_score INTEGER NOT NULL,
  status TEXT NOT NULL, resolution TEXT, assignee TEXT,
  first_seen TEXT NOT NULL, last_seen TEXT NOT NULL,  -- event time of its alerts: the window runs on it
  alert_count INTEGER NOT NULL, detection_count INTEGER NOT NULL,
  rules TEXT NOT NULL, rule_titles TEXT NOT NULL, targets TEXT NOT NULL, target_count INTEGER NOT NULL,
  ports TEXT NOT NULL, port_count INTEGER NOT NULL, assets TEXT NOT NULL, tags TEXT NOT NULL,
  created_at TEXT NOT NULL, updated_at TEXT NOT NULL, case_id INTEGER);
CREATE INDEX IF NOT EXISTS incidents_key ON incidents(key, last_seen) WHERE status != 'closed';
CREATE INDEX IF NOT EXISTS incidents_last_seen ON incidents(last_seen);
CREATE INDEX IF NOT EXISTS incidents_status ON incidents(status, last_seen);
CREATE INDEX IF NOT EXISTS incidents_risk ON incidents(risk_score, last_seen);
CREATE TABLE IF NOT EXISTS case_incidents(case_id INTEGER NOT NULL, incident_id INTEGER NOT NULL,
  PRIMARY KEY(case_id, incident_id));

CREATE TABLE IF NOT EXISTS alert_comments(
  id INTEGER PRIMARY KEY AUTOINCREMENT, alert_id INTEGER NOT NULL REFERENCES alerts(id),
  author TEXT NOT NULL, time TEXT NOT NULL, text TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS alert_comments_alert ON alert_comments(alert_id);

CREATE TABLE IF NOT EXISTS suppressions(
  id INTEGER PRIMARY KEY AUTOINCREMENT, rule_id TEXT NOT NULL, field TEXT NOT NULL, value TEXT NOT NULL,
  owner TEXT NOT NULL, reason TEXT NOT NULL, created_at TEXT NOT NULL, expires_at TEXT NOT NULL,
  hits INTEGER NOT NULL DEFAULT 0, deleted INTEGER NOT NULL DEFAULT 0);

CREATE TABLE IF NOT EXISTS cases(
  id INTEGER PRIMARY KEY AUTOINCREMENT, title TEXT NOT NULL, description TEXT NOT NULL,
  status TEXT NOT NULL, severity TEXT NOT NULL, assignee TEXT, created_by TEXT NOT NULL,
  created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS cases_status ON cases(status, updated_at);
CREATE TABLE IF NOT EXISTS case_alerts(case_id INTEGER NOT NULL, alert_id INTEGER NOT NULL,
  PRIMARY KEY(case_id, alert_id));
CREATE TABLE IF NOT EXISTS case_notes(
  id INTEGER PRIMARY KEY AUTOINCREMENT, case_id INTEGER NOT NULL, author TEXT NOT NULL,
  time TEXT NOT NULL, text TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS case_timeline(
  id INTEGER PRIMARY KEY AUTOINCREMENT, case_id INTEGER NOT NULL, time TEXT NOT NULL,
  actor TEXT NOT NULL, kind TEXT NOT NULL, summary TEXT NOT NULL, data TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS case_timeline_case ON case_timeline(case_id, id);
CREATE TABLE IF NOT EXISTS case_attachments(
  id INTEGER PRIMARY KEY AUTOINCREMENT, case_id INTEGER NOT NULL, filename TEXT NOT NULL,
  size INTEGER NOT NULL, sha256 TEXT NOT NULL, content_type TEXT NOT NULL, uploaded_by TEXT NOT NULL,
  time TEXT NOT NULL, path TEXT NOT NULL, scan_status TEXT NOT NULL, scan_findings TEXT NOT NULL);

CREATE TABLE IF NOT EXISTS users(
  id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL UNIQUE COLLATE NOCASE, role TEXT NOT NULL,
  password_hash TEXT NOT NULL, disabled INTEGER NOT NULL DEFAULT 0, created_at TEXT NOT NULL,
  last_login TEXT);
CREATE TABLE IF NOT EXISTS api_keys(
  id TEXT PRIMARY KEY, name TEXT NOT NULL, role TEXT NOT NULL, secret_hash TEXT NOT NULL,
  created_by TEXT NOT NULL, created_at TEXT NOT NULL, last_used TEXT, revoked INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS sessions(
  token_hash TEXT PRIMARY KEY, user_id INTEGER NOT NULL, csrf TEXT NOT NULL, created_at REAL NOT NULL,
  expires_at REAL NOT NULL, ip TEXT NOT NULL);

CREATE TABLE IF NOT EXISTS audit(
  seq INTEGER PRIMARY KEY, time TEXT NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,
  target TEXT NOT NULL, source_ip TEXT NOT NULL, before TEXT, after TEXT, details TEXT NOT NULL,
  prev_hash TEXT NOT NULL, hash TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS audit_actor ON audit(actor);
CREATE INDEX IF NOT EXISTS audit_action ON audit(action);
CREATE INDEX IF NOT EXISTS audit_target ON audit(target);
-- Append-only at the database level too; someone with the file can drop these, which
-- is what the hash chain is for.
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
  BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
  BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
"""


class SocDatabase(Database):
    """Owns ``soc.db``: schema, the writer connection and per-thread readers
    (:class:`core.sqlitedb.Database`; ``write()`` is its ``transaction()``)."""

    def __init__(self, path: str | Path):
        super().__init__(path, pragmas=("foreign_keys = ON",), row_factory=sqlite3.Row)
        with self.lock:
            self.writer.executescript(SCHEMA)
            self._migrate()
            self.writer.execute("INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', ?)",
                                (str(SCHEMA_VERSION),))
            self.writer.commit()

    def _migrate(self) -> None:
        """Columns added after a soc.db was first made (folding and incidents): added in
        place, empty, so an existing installation keeps its alerts."""
        have = {r[1] for r in self.writer.execute("PRAGMA table_info(alerts)")}
        for col, decl in (("rules", "TEXT NOT NULL DEFAULT '[]'"), ("targets", "TEXT NOT NULL DEFAULT '[]'"),
                          ("ports", "TEXT NOT NULL DEFAULT '[]'"), ("incident_id", "INTEGER")):
            if col not in have:
                self.writer.execute(f"ALTER TABLE alerts ADD COLUMN {col} {decl}")
        self.writer.execute("CREATE INDEX IF NOT EXISTS alerts_incident ON alerts(incident_id)")

    def write(self) -> AbstractContextManager[sqlite3.Connection]:
        """A write transaction (``BEGIN IMMEDIATE``: takes the file's write lock up front,
        so read-then-write sequences such as the audit chain cannot interleave)."""
        return self.transaction()
