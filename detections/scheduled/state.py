"""Persistent run state of scheduled rules: one small SQLite file (``<data>/scheduled.db``).

Why a file of its own: a scheduled rule must remember, across restarts, how far it has
looked (``covered_end``), which events it already alerted on (so the lookback overlap and
a restart never alert twice), and what it missed while the server was down (gaps). The
event store is the wrong place (it may be Elasticsearch, and retention drops it), and
apscheduler's job store knows run times, not covered data.

Tables:

* ``rule_state``: per rule, the end of the time range covered without a hole.
* ``runs``: the run log (kind ``run`` or ``catchup``, window, hits, new alerts, status).
* ``gaps``: uncovered intervals, how far catch-up has come, and when they closed.
* ``seen``: per rule, keys of events already alerted, with the event time; pruned to the
  lookback horizon, so the set stays bounded and lives on disk, not in memory.

All times are epoch milliseconds (UTC).
"""
from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from core.sqlitedb import connect, transaction

__all__ = ["RunRecord", "GapRecord", "RunState"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS rule_state (rule_id TEXT PRIMARY KEY, covered_end INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY, rule_id TEXT NOT NULL, kind TEXT NOT NULL, started INTEGER NOT NULL,
    finished INTEGER, window_start INTEGER NOT NULL, window_end INTEGER NOT NULL,
    hits INTEGER NOT NULL DEFAULT 0, alerts INTEGER NOT NULL DEFAULT 0, status TEXT NOT NULL,
    error TEXT NOT NULL DEFAULT '', gap_id INTEGER);
CREATE INDEX IF NOT EXISTS runs_rule ON runs (rule_id, id);
CREATE TABLE IF NOT EXISTS gaps (
    id INTEGER PRIMARY KEY, rule_id TEXT NOT NULL, gap_start INTEGER NOT NULL, gap_end INTEGER NOT NULL,
    detected INTEGER NOT NULL, covered_until INTEGER NOT NULL, closed INTEGER);
CREATE INDEX IF NOT EXISTS gaps_open ON gaps (rule_id, closed);
CREATE TABLE IF NOT EXISTS seen (rule_id TEXT NOT NULL, key TEXT NOT NULL, ts INTEGER NOT NULL,
    PRIMARY KEY (rule_id, key)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS seen_ts ON seen (rule_id, ts);
"""


@dataclass(slots=True)
class RunRecord:
    """One scheduled run, as the run log keeps it."""

    id: int
    rule_id: str
    kind: str
    started: int
    finished: int | None
    window_start: int
    window_end: int
    hits: int
    alerts: int
    status: str
    error: str = ""
    gap_id: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(slots=True)
class GapRecord:
    """An interval no run covered in time (server down, runs late); caught up in chunks."""

    id: int
    rule_id: str
    gap_start: int
    gap_end: int
    detected: int
    covered_until: int
    closed: int | None

    @property
    def open(self) -> bool:
        return self.closed is None

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "open": self.open}


class RunState:
    """The state file. Thread-safe (one connection behind a lock; calls are short)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = connect(self.path)
        self._conn.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # -- coverage ---------------------------------------------------------------------
    def covered_end(self, rule_id: str) -> int | None:
        with self._lock:
            row = self._conn.execute("SELECT covered_end FROM rule_state WHERE rule_id = ?", (rule_id,)).fetchone()
        return None if row is None else int(row[0])

    def set_covered_end(self, rule_id: str, end_ms: int) -> None:
        with self._lock:
            self._conn.execute(
                "INSERT INTO rule_state (rule_id, covered_end) VALUES (?, ?) "
                "ON CONFLICT (rule_id) DO UPDATE SET covered_end = excluded.covered_end",
                (rule_id, end_ms),
            )

    # -- runs -------------------------------------------------------------------------
    def start_run(self, rule_id: str, kind: str, started: int, window: tuple[int, int], gap_id: int | None = None) -> int:
        with self._lock:
            cur = self._conn.execute(
                "INSERT INTO runs (rule_id, kind, started, window_start, window_end, status, gap_id) "
                "VALUES (?, ?, ?, ?, ?, 'running', ?)",
                (rule_id, kind, started, window[0], window[1], gap_id),
            )
            return int(cur.lastrowid or 0)

    def finish_run(self, run_id: int, finished: int, *, hits: int, alerts: int, status: str, error: str = "") -> None:
        with self._lock:
            self._conn.execute(
                "UPDATE runs SET finished = ?, hits = ?, alerts = ?, status = ?, error = ? WHERE id = ?",
                (finished, hits, alerts, status, error, run_id),
            )

    def list_runs(self, rule_id: str | None = None, *, limit: int = 100) -> list[RunRecord]:
        sql = "SELECT id, rule_id, kind, started, finished, window_start, window_end, hits, alerts, status, error, gap_id FROM runs"
        args: list[Any] = []
        if rule_id is not None:
            sql += " WHERE rule_id = ?"
            args.append(rule_id)
        sql += " ORDER BY id DESC LIMIT ?"
        args.append(limit)
        with self._lock:
            rows = self._conn.execute(sql, args).fetchall()
        return [RunRecord(*r) for r in rows]

    # -- gaps -------------------------------------------------------------------------
    def add_gap(self, rule_id: str, start: int, end: int, detected: int) -> int:
        with self._lock:
            cur = self._conn.execute(
                "INSERT INTO gaps (rule_id, gap_start, gap_end, detected, covered_until) VALUES (?, ?, ?, ?, ?)",
                (rule_id, start, end, detected, start),
            )
            return int(cur.lastrowid or 0)

    def advance_gap(self, gap_id: int, covered_until: int, now: int) -> None:
        with self._lock:
            self._conn.execute(
                "UPDATE gaps SET covered_until = ?, closed = CASE WHEN ? >= gap_end THEN ? ELSE NULL END WHERE id = ?",
                (covered_until, covered_until, now, gap_id),
            )

    def open_gaps(self, rule_id: str) -> list[GapRecord]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT id, rule_id, gap_start, gap_end, detected, covered_until, closed FROM gaps "
                "WHERE rule_id = ? AND closed IS NULL ORDER BY gap_start",
                (rule_id,),
            ).fetchall()
        return [GapRecord(*r) for r in rows]

    def list_gaps(self, rule_id: str | None = None, *, open_only: bool = False, limit: int = 100) -> list[GapRecord]:
        sql = "SELECT id, rule_id, gap_start, gap_end, detected, covered_until, closed FROM gaps"
        conds, args = [], []
        if rule_id is not None:
            conds.append("rule_id = ?")
            args.append(rule_id)
        if open_only:
            conds.append("closed IS NULL")
        if conds:
            sql += " WHERE " + " AND ".join(conds)
        sql += " ORDER BY id DESC LIMIT ?"
        args.append(limit)
        with self._lock:
            rows = self._conn.execute(sql, args).fetchall()
        return [GapRecord(*r) for r in rows]

    # -- dedupe -----------------------------------------------------------------------
    def unseen(self, rule_id: str, keys: Iterable[tuple[str, int]]) -> list[tuple[str, int]]:
        """The (key, ts) pairs not yet recorded for ``rule_id``; records them (one transaction)."""
        fresh: list[tuple[str, int]] = []
        with transaction(self._conn, self._lock) as c:
            for key, ts in keys:
                cur = c.execute("INSERT OR IGNORE INTO seen (rule_id, key, ts) VALUES (?, ?, ?)", (rule_id, key, ts))
                if cur.rowcount:
                    fresh.append((key, ts))
        return fresh

    def forget(self, rule_id: str, keys: Iterable[str]) -> None:
        """Un-record keys whose alerts could not be delivered, so the next run retries them."""
        with self._lock:
            self._conn.executemany("DELETE FROM seen WHERE rule_id = ? AND key = ?", [(rule_id, k) for k in keys])

    def prune_seen(self, rule_id: str, before_ms: int) -> int:
        """Drop keys of events older than any window this rule can still query."""
        with self._lock:
            return self._conn.execute("DELETE FROM seen WHERE rule_id = ? AND ts < ?", (rule_id, before_ms)).rowcount

    def seen_count(self, rule_id: str | None = None) -> int:
        with self._lock:
            if rule_id is None:
                return int(self._conn.execute("SELECT count(*) FROM seen").fetchone()[0])
            return int(self._conn.execute("SELECT count(*) FROM seen WHERE rule_id = ?", (rule_id,)).fetchone()[0])
