"""Dead letters in SQLite: inputs a stage could not use, kept byte for byte with why.

A collector that cannot parse a line must neither drop it nor block on it; it files the
raw bytes here with the stage (``parse``, ``enrich``, ``store``...) and the reason, so an
operator can see what failed, fix the parser and replay. The raw bytes go into a BLOB,
so invalid UTF-8 or binary payloads come back exactly as received.

The table may live in the event store's file or in its own; it has its own connection
(WAL, a write lock, ``busy_timeout``) either way.

Bounded, because dead letters are attacker-shaped input: one entry keeps at most
``max_entry_bytes`` of its raw input (the rest is cut, ``meta["raw_bytes"]`` says how long
it was and ``meta["truncated"]`` is true), all entries together at most ``max_total_bytes``
(the oldest go first) and none older than ``retention_days`` (``deadletters:`` settings).

Example::

    dl = SQLiteDeadLetterStore("data/deadletters.db")
    dl.put([DeadLetter(stage="parse", reason="not RFC 5424", raw=b"\\xff<13>oops")])
    dl.count(stage="parse")   # -> 1
"""
from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import orjson

from core.sqlitedb import connect, transaction
from core.events import utc_now_iso
from core.protocols import DeadLetter

__all__ = ["SQLiteDeadLetterStore"]


class SQLiteDeadLetterStore:
    """:class:`core.protocols.DeadLetterStore` on a SQLite file (WAL mode)."""

    PRUNE_EVERY_S = 60.0

    def __init__(self, path: str | Path, *, durability: Literal["process", "power"] = "process",
                 max_entry_bytes: int = 256 * 1024, max_total_bytes: int = 1024 * 1024 * 1024,
                 retention_days: float = 14.0, clock: Any = time.time):
        self.path = str(path)
        self.max_entry_bytes = max_entry_bytes
        self.max_total_bytes = max_total_bytes
        self.retention_s = retention_days * 86400
        self._clock = clock
        self.truncated = 0
        """Entries whose raw input was cut to ``max_entry_bytes`` (since start)."""
        self.evicted = 0
        """Entries removed for the total cap or their age (since start)."""
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._conn = connect(self.path, synchronous="FULL" if durability == "power" else "NORMAL")
        with self._lock:
            self._conn.execute(
                "CREATE TABLE IF NOT EXISTS citysoc_dead_letters ("
                "id INTEGER PRIMARY KEY AUTOINCREMENT, stage TEXT NOT NULL, reason TEXT NOT NULL, "
                "raw BLOB NOT NULL, source TEXT NOT NULL, time TEXT NOT NULL, meta TEXT NOT NULL)"
            )
            self._conn.execute("CREATE INDEX IF NOT EXISTS citysoc_dead_letters_stage ON citysoc_dead_letters (stage, id)")
            cols = {r[1] for r in self._conn.execute("PRAGMA table_info(citysoc_dead_letters)")}
            if "size" not in cols:  # files from before the caps: sized now, aged from now
                self._conn.execute("ALTER TABLE citysoc_dead_letters ADD COLUMN size INTEGER NOT NULL DEFAULT 0")
                self._conn.execute("ALTER TABLE citysoc_dead_letters ADD COLUMN stored_s REAL NOT NULL DEFAULT 0")
                self._conn.execute("UPDATE citysoc_dead_letters SET size = length(raw) + length(reason) + length(meta), "
                                   "stored_s = ?", (self._clock(),))
            self._total = self._conn.execute("SELECT coalesce(sum(size), 0) FROM citysoc_dead_letters").fetchone()[0]
        self._last_prune = 0.0
        self.prune()

    def total_bytes(self) -> int:
        """Bytes the entries hold (raw + reason + meta), what ``max_total_bytes`` bounds."""
        with self._lock:
            return self._total

    def prune(self) -> int:
        """Drop entries past ``retention_days``, then the oldest while over ``max_total_bytes``."""
        now = self._clock()
        removed = 0
        with self._lock:
            self._last_prune = now
            cur = self._conn.execute("DELETE FROM citysoc_dead_letters WHERE stored_s < ? RETURNING size",
                                     (now - self.retention_s,))
            for (size,) in cur.fetchall():
                self._total -= size
                removed += 1
            while self._total > self.max_total_bytes:
                rows = self._conn.execute("DELETE FROM citysoc_dead_letters WHERE id IN (SELECT id FROM "
                                          "citysoc_dead_letters ORDER BY id LIMIT 256) RETURNING size").fetchall()
                if not rows:
                    self._total = 0
                    break
                for (size,) in rows:
                    self._total -= size
                    removed += 1
        self.evicted += removed
        return removed

    def put(self, letters: Sequence[DeadLetter]) -> None:
        """File ``letters``; returns after they are committed. Sets ``time`` when empty."""
        rows: list[tuple[Any, ...]] = []
        now = self._clock()
        added = 0
        for dl in letters:
            raw = dl.raw if isinstance(dl.raw, (bytes, bytearray, memoryview)) else str(dl.raw).encode("utf-8", "surrogateescape")
            meta_d = dict(dl.meta or {})
            if len(raw) > self.max_entry_bytes:
                meta_d.update({"truncated": True, "raw_bytes": len(raw)})
                raw = raw[:self.max_entry_bytes]
                self.truncated += 1
            reason = dl.reason[:4096]
            meta = orjson.dumps(meta_d, default=str, option=orjson.OPT_NON_STR_KEYS).decode()
            if len(meta) > 65536:  # metadata is ours, but carries sender-chosen values
                meta = orjson.dumps({"meta_truncated": True, "meta_bytes": len(meta)}).decode()
            size = len(raw) + len(reason) + len(meta)
            added += size
            rows.append((dl.stage, reason, bytes(raw), dl.source[:1024], dl.time or utc_now_iso(), meta, size, now))
        if not rows:
            return
        with self._lock:
            with transaction(self._conn, self._lock) as c:
                c.executemany(
                    "INSERT INTO citysoc_dead_letters (stage, reason, raw, source, time, meta, size, stored_s) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows
                )
            self._total += added
            due = self._total > self.max_total_bytes or now - self._last_prune > self.PRUNE_EVERY_S
        if due:
            self.prune()

    def list(self, *, limit: int = 100, offset: int = 0, stage: str | None = None) -> list[DeadLetter]:
        """Newest first; ``stage`` keeps only that stage's letters."""
        where, params = ("WHERE stage = ?", [stage]) if stage is not None else ("", [])
        sql = f"SELECT id, stage, reason, raw, source, time, meta FROM citysoc_dead_letters {where} ORDER BY id DESC LIMIT ? OFFSET ?"
        with self._lock:
            rows = self._conn.execute(sql, [*params, max(0, limit), max(0, offset)]).fetchall()
        return [
            DeadLetter(stage=s, reason=r, raw=bytes(raw), source=src, time=t, id=i, meta=orjson.loads(m))
            for i, s, r, raw, src, t, m in rows
        ]

    def count(self, *, stage: str | None = None) -> int:
        where, params = ("WHERE stage = ?", [stage]) if stage is not None else ("", [])
        with self._lock:
            return self._conn.execute(f"SELECT count(*) FROM citysoc_dead_letters {where}", params).fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._conn.close()
