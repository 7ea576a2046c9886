"""Playbook runs, steps and approvals in SQLite (``<data>/playbooks.db``, WAL).

Implements :class:`core.playbooks.RunStore`. A file of its own beside ``soc.db``: runs
are written at every step, and keeping them apart keeps that churn off the alert and
audit writer. Two guarantees the runner leans on:

* **idempotency**: a unique index on ``(playbook, idempotency_key)`` for real runs, so
  the same alert re-triggering a playbook finds the first run instead of acting twice,
  even across processes;
* **compare-and-set status**: ``set_status(id, expected, new)`` updates only when the
  run is still in ``expected``, so the CLI and the server cannot both resume one run;
  and only along :data:`core.playbooks.RUN_TRANSITIONS` (anything else raises);
* **rate limits**: ``create_run(run, limits=...)`` counts earlier automatic runs in the
  same write transaction and stores the run ``refused`` (with why) when a limit is full.
"""
from __future__ import annotations

import pickle
import sqlite3
import threading
from collections.abc import Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import orjson
from apscheduler.job import Job
from apscheduler.jobstores.base import BaseJobStore, ConflictingIdError, JobLookupError
from apscheduler.util import datetime_to_utc_timestamp, utc_timestamp_to_datetime

from core.sqlitedb import connect, inserted_id, transaction
from core.events import utc_now_iso
from core.messages import from_json, message_json
from core.playbooks import Approval, Run, RunLimit, RunNotFound, StepState, check_run_transition

__all__ = ["SQLiteRunStore", "SQLiteJobStore"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs(
  id INTEGER PRIMARY KEY AUTOINCREMENT, playbook TEXT NOT NULL, status TEXT NOT NULL, trigger TEXT NOT NULL,
  actor TEXT NOT NULL, inputs TEXT NOT NULL, alert_id INTEGER, dry_run INTEGER NOT NULL,
  idempotency_key TEXT, reason TEXT NOT NULL, created_at TEXT NOT NULL, started_at TEXT NOT NULL,
  ended_at TEXT NOT NULL, parent_run_id INTEGER, current_step TEXT, approval_expires_at TEXT);
CREATE UNIQUE INDEX IF NOT EXISTS runs_idem ON runs(playbook, idempotency_key)
  WHERE idempotency_key IS NOT NULL AND dry_run = 0;
CREATE INDEX IF NOT EXISTS runs_status ON runs(status, id);
CREATE INDEX IF NOT EXISTS runs_playbook ON runs(playbook, id);
CREATE INDEX IF NOT EXISTS runs_alert ON runs(alert_id);
CREATE TABLE IF NOT EXISTS steps(
  run_id INTEGER NOT NULL REFERENCES runs(id), idx INTEGER NOT NULL, name TEXT NOT NULL, action TEXT NOT NULL,
  status TEXT NOT NULL, inputs TEXT NOT NULL, output TEXT, error TEXT NOT NULL, would TEXT NOT NULL,
  attempts INTEGER NOT NULL, started_at TEXT NOT NULL, ended_at TEXT NOT NULL, duration_ms REAL NOT NULL,
  destructive INTEGER NOT NULL, approval_role TEXT, approved_by TEXT, approved_at TEXT,
  PRIMARY KEY(run_id, idx));
CREATE TABLE IF NOT EXISTS approvals(
  id INTEGER PRIMARY KEY AUTOINCREMENT, run_id INTEGER NOT NULL REFERENCES runs(id), step TEXT NOT NULL,
  decision TEXT NOT NULL, actor TEXT NOT NULL, role TEXT NOT NULL, time TEXT NOT NULL, comment TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS approvals_run ON approvals(run_id);
"""

MIGRATIONS = (
    # (column, DDL): added to files written before the column existed
    ("rule_id", "ALTER TABLE runs ADD COLUMN rule_id TEXT"),
    ("reason_msg", "ALTER TABLE runs ADD COLUMN reason_msg TEXT"),
)
STEP_MIGRATIONS = (
    ("would_msg", "ALTER TABLE steps ADD COLUMN would_msg TEXT"),
    ("error_msg", "ALTER TABLE steps ADD COLUMN error_msg TEXT"),
)
"""Catalog key + parameters of ``runs.reason`` / ``steps.would`` / ``steps.error`` (core.messages), beside the English text."""


def _msg(value: Any) -> str | None:
    m = message_json(value)
    return _dumps(m) if m is not None else None


def _dumps(v: Any) -> str:
    return orjson.dumps(v, default=str).decode()


class SQLiteRunStore:
    """Example::

        store = SQLiteRunStore("./data/playbooks.db")
        run, created = store.create_run(Run(id=0, playbook="x", status="queued", trigger="manual", actor="cli:me"))
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._conn = connect(self.path, row_factory=sqlite3.Row)
        with self._lock:
            self._conn.executescript(SCHEMA)
            cols = {r[1] for r in self._conn.execute("PRAGMA table_info(runs)")}
            for col, ddl in MIGRATIONS:
                if col not in cols:
                    self._conn.execute(ddl)
            step_cols = {r[1] for r in self._conn.execute("PRAGMA table_info(steps)")}
            for col, ddl in STEP_MIGRATIONS:
                if col not in step_cols:
                    self._conn.execute(ddl)
            self._conn.execute("CREATE INDEX IF NOT EXISTS runs_limit ON runs(playbook, trigger, created_at)")

    def _tx(self) -> AbstractContextManager[sqlite3.Connection]:
        return transaction(self._conn, self._lock)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # --- runs ---------------------------------------------------------------------------

    def create_run(self, run: Run, *, limits: Sequence[RunLimit] = ()) -> tuple[Run, bool]:
        with self._tx() as c:
            if run.idempotency_key is not None and not run.dry_run:
                row = c.execute("SELECT id FROM runs WHERE playbook=? AND idempotency_key=? AND dry_run=0",
                                (run.playbook, run.idempotency_key)).fetchone()
                if row is not None:
                    existing = self._get(c, row["id"])
                    existing.duplicate = True
                    return existing, False
            status, reason, ended = run.status, run.reason, run.ended_at
            if not run.dry_run:
                for lim in limits:  # counted inside this write transaction: two processes cannot both pass
                    counted = c.execute(
                        "SELECT count(*) FROM runs WHERE playbook=? AND trigger=? AND created_at>=? AND dry_run=0"
                        " AND status != 'refused'" + (" AND rule_id=?" if lim.rule_id is not None else ""),
                        (lim.playbook, lim.trigger, lim.since, *((lim.rule_id,) if lim.rule_id is not None else ()))
                    ).fetchone()[0]
                    if counted >= lim.max_runs:
                        status, reason, ended = "refused", lim.reason(counted), utc_now_iso()
                        break
            cur = c.execute(
                "INSERT INTO runs(playbook, status, trigger, actor, inputs, alert_id, dry_run, idempotency_key, reason,"
                " created_at, started_at, ended_at, parent_run_id, current_step, approval_expires_at, rule_id)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (run.playbook, status, run.trigger, run.actor, _dumps(run.inputs), run.alert_id, int(run.dry_run),
                 # a refused run keeps no idempotency key: the same alert may start it once the limit frees up
                 run.idempotency_key if status != "refused" else None, reason, run.created_at or utc_now_iso(),
                 run.started_at, ended, run.parent_run_id, run.current_step, run.approval_expires_at, run.rule_id))
            run_id = inserted_id(cur)
            for st in run.steps:
                self._save_step(c, run_id, st)
            return self._get(c, run_id), True

    def _get(self, c: sqlite3.Connection, run_id: int) -> Run:
        r = c.execute("SELECT * FROM runs WHERE id=?", (run_id,)).fetchone()
        if r is None:
            raise RunNotFound(f"no playbook run {run_id}")
        run = Run(id=r["id"], playbook=r["playbook"], status=r["status"], trigger=r["trigger"], actor=r["actor"],
                  inputs=orjson.loads(r["inputs"]), alert_id=r["alert_id"], dry_run=bool(r["dry_run"]),
                  idempotency_key=r["idempotency_key"], reason=from_json(r["reason"], r["reason_msg"]),
                  created_at=r["created_at"],
                  started_at=r["started_at"], ended_at=r["ended_at"], parent_run_id=r["parent_run_id"],
                  current_step=r["current_step"], approval_expires_at=r["approval_expires_at"], rule_id=r["rule_id"])
        for s in c.execute("SELECT * FROM steps WHERE run_id=? ORDER BY idx", (run_id,)):
            run.steps.append(StepState(
                index=s["idx"], name=s["name"], action=s["action"], status=s["status"], inputs=orjson.loads(s["inputs"]),
                output=orjson.loads(s["output"]) if s["output"] is not None else None,
                error=from_json(s["error"], s["error_msg"]),
                would=from_json(s["would"], s["would_msg"]), attempts=s["attempts"], started_at=s["started_at"], ended_at=s["ended_at"],
                duration_ms=s["duration_ms"], destructive=bool(s["destructive"]), approval_role=s["approval_role"],
                approved_by=s["approved_by"], approved_at=s["approved_at"]))
        for a in c.execute("SELECT * FROM approvals WHERE run_id=? ORDER BY id", (run_id,)):
            run.approvals.append(Approval(step=a["step"], decision=a["decision"], actor=a["actor"], role=a["role"],
                                          time=a["time"], comment=a["comment"]))
        return run

    def get_run(self, run_id: int) -> Run:
        with self._lock:
            return self._get(self._conn, run_id)

    def list_runs(self, *, playbook: str | None = None, status: str | None = None, alert_id: int | None = None,
                  limit: int = 50, offset: int = 0) -> tuple[int, list[Run]]:
        where, args = [], []
        for col, val in (("playbook", playbook), ("status", status), ("alert_id", alert_id)):
            if val is not None:
                where.append(f"{col} = ?")
                args.append(val)
        sql_where = (" WHERE " + " AND ".join(where)) if where else ""
        with self._lock:
            total = self._conn.execute(f"SELECT count(*) FROM runs{sql_where}", args).fetchone()[0]
            ids = [r[0] for r in self._conn.execute(f"SELECT id FROM runs{sql_where} ORDER BY id DESC LIMIT ? OFFSET ?",
                                                    [*args, limit, offset])]
            return total, [self._get(self._conn, i) for i in ids]

    def set_status(self, run_id: int, expected: str, new: str, *, reason: str | None = None,
                   current_step: str | None = None, approval_expires_at: str | None = None,
                   started_at: str | None = None, ended_at: str | None = None) -> bool:
        sets: list[str] = ["status = ?"]
        args: list[str | None] = [new]
        if reason is not None:
            sets.append("reason_msg = ?")
            args.append(_msg(reason))
        for col, val in (("reason", reason), ("current_step", current_step), ("started_at", started_at),
                         ("ended_at", ended_at)):
            if val is not None:
                sets.append(f"{col} = ?")
                args.append(val)
        sets.append("approval_expires_at = ?")
        args.append(approval_expires_at)
        check_run_transition(expected, new)  # RUN_TRANSITIONS is the law, not a comment
        with self._tx() as c:
            cur = c.execute(f"UPDATE runs SET {', '.join(sets)} WHERE id = ? AND status = ?", [*args, run_id, expected])
            if cur.rowcount == 0:
                if c.execute("SELECT 1 FROM runs WHERE id=?", (run_id,)).fetchone() is None:
                    raise RunNotFound(f"no playbook run {run_id}")
                return False
            return True

    # --- steps and approvals ------------------------------------------------------------

    def _save_step(self, c: sqlite3.Connection, run_id: int, s: StepState) -> None:
        c.execute(
            "INSERT OR REPLACE INTO steps(run_id, idx, name, action, status, inputs, output, error, would, attempts,"
            " started_at, ended_at, duration_ms, destructive, approval_role, approved_by, approved_at, would_msg,"
            " error_msg) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (run_id, s.index, s.name, s.action, s.status, _dumps(s.inputs),
             _dumps(s.output) if s.output is not None else None, s.error, s.would, s.attempts, s.started_at,
             s.ended_at, s.duration_ms, int(s.destructive), s.approval_role, s.approved_by, s.approved_at,
             _msg(s.would), _msg(s.error)))

    def save_step(self, run_id: int, step: StepState) -> None:
        with self._tx() as c:
            self._save_step(c, run_id, step)

    def add_approval(self, run_id: int, approval: Approval) -> None:
        with self._tx() as c:
            c.execute("INSERT INTO approvals(run_id, step, decision, actor, role, time, comment) VALUES (?,?,?,?,?,?,?)",
                      (run_id, approval.step, approval.decision, approval.actor, approval.role, approval.time,
                       approval.comment))

    def expired_approvals(self, now: str) -> list[int]:
        with self._lock:
            return [r[0] for r in self._conn.execute(
                "SELECT id FROM runs WHERE status='awaiting_approval' AND approval_expires_at IS NOT NULL"
                " AND approval_expires_at < ?", (now,))]

    def running_runs(self) -> list[int]:
        with self._lock:
            return [r[0] for r in self._conn.execute("SELECT id FROM runs WHERE status IN ('running', 'queued')")]


class SQLiteJobStore(BaseJobStore):
    """An APScheduler 3 job store in SQLite (stdlib only), for scheduled playbooks.

    Jobs survive restarts: a playbook scheduled hourly keeps its next run time, and a run
    missed while the server was down fires once at start (within the misfire grace time).
    Job state is pickled exactly as APScheduler's own SQLAlchemy store does; the file is
    the SOC's own data directory, as trusted as the rest of it.
    """

    def __init__(self, path: str | Path, table: str = "scheduled_jobs") -> None:
        super().__init__()
        if not table.isidentifier():
            raise ValueError(f"table name {table!r} is not an identifier")
        self.table = table
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._conn = connect(self.path)
        self._conn.execute(f"CREATE TABLE IF NOT EXISTS {self.table}(id TEXT PRIMARY KEY, next_run_time REAL, "
                           "job_state BLOB NOT NULL)")
        self._conn.execute(f"CREATE INDEX IF NOT EXISTS {self.table}_next ON {self.table}(next_run_time)")

    def _job(self, state: bytes) -> Any:
        st = pickle.loads(state)
        st["jobstore"] = self
        job = Job.__new__(Job)
        job.__setstate__(st)
        job._scheduler = self._scheduler
        job._jobstore_alias = self._alias
        return job

    def _jobs(self, where: str = "", args: tuple = ()) -> list[Any]:
        out, bad = [], []
        with self._lock:
            rows = self._conn.execute(f"SELECT id, job_state FROM {self.table} {where} "
                                      "ORDER BY next_run_time IS NULL, next_run_time", args).fetchall()
        for jid, state in rows:
            try:
                out.append(self._job(state))
            except Exception:
                self._logger.exception("scheduled job %s cannot be restored; removing it", jid)
                bad.append(jid)
        with self._lock:
            for jid in bad:
                self._conn.execute(f"DELETE FROM {self.table} WHERE id=?", (jid,))
        return out

    def lookup_job(self, job_id: str) -> Any:
        with self._lock:
            row = self._conn.execute(f"SELECT job_state FROM {self.table} WHERE id=?", (job_id,)).fetchone()
        return self._job(row[0]) if row else None

    def get_due_jobs(self, now: Any) -> list[Any]:
        return self._jobs("WHERE next_run_time <= ?", (datetime_to_utc_timestamp(now),))

    def get_next_run_time(self) -> Any:
        with self._lock:
            row = self._conn.execute(f"SELECT min(next_run_time) FROM {self.table} "
                                     "WHERE next_run_time IS NOT NULL").fetchone()
        return utc_timestamp_to_datetime(row[0]) if row and row[0] is not None else None

    def get_all_jobs(self) -> list[Any]:
        return self._jobs()

    def add_job(self, job: Any) -> None:
        with self._lock:
            try:
                self._conn.execute(f"INSERT INTO {self.table}(id, next_run_time, job_state) VALUES (?,?,?)",
                                   (job.id, datetime_to_utc_timestamp(job.next_run_time),
                                    pickle.dumps(job.__getstate__(), pickle.HIGHEST_PROTOCOL)))
            except sqlite3.IntegrityError:
                raise ConflictingIdError(job.id) from None

    def update_job(self, job: Any) -> None:
        with self._lock:
            cur = self._conn.execute(f"UPDATE {self.table} SET next_run_time=?, job_state=? WHERE id=?",
                                     (datetime_to_utc_timestamp(job.next_run_time),
                                      pickle.dumps(job.__getstate__(), pickle.HIGHEST_PROTOCOL), job.id))
        if cur.rowcount == 0:
            raise JobLookupError(job.id)

    def remove_job(self, job_id: str) -> None:
        with self._lock:
            cur = self._conn.execute(f"DELETE FROM {self.table} WHERE id=?", (job_id,))
        if cur.rowcount == 0:
            raise JobLookupError(job_id)

    def remove_all_jobs(self) -> None:
        with self._lock:
            self._conn.execute(f"DELETE FROM {self.table}")

    def shutdown(self) -> None:
        with self._lock:
            self._conn.close()
