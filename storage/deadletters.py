"""Dead letters in SQLite: inputs a stage could not use, kept byte for byte with why.

A collector that cannot parse a line must neither drop it nor block on it; it files the
raw bytes here with the stage (``parse``, ``enrich``, ``store``...) and the reason, so an
operator can see what failed, fix the parser and replay. The raw bytes go into a BLOB,
so invalid UTF-8 or binary payloads come back exactly as received.

The table may live in the event store's file or in its own; it has its own connection
(WAL, a write lock, ``busy_timeout``) either way.

Example::

    dl = SQLiteDeadLetterStore("data/deadletters.db")
    dl.put([DeadLetter(stage="parse", reason="not RFC 5424", raw=b"\\xff<13>oops")])
    dl.count(stage="parse")   # -> 1
"""
from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import orjson

from core.events import utc_now_iso
from core.protocols import DeadLetter

__all__ = ["SQLiteDeadLetterStore"]


class SQLiteDeadLetterStore:
    """:class:`core.protocols.DeadLetterStore` on a SQLite file (WAL mode)."""

    def __init__(self, path: str | Path, *, durability: Literal["process", "power"] = "process"):
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30.0)
        self._conn.execute("PRAGMA busy_timeout = 30000")
        self._conn.execute("PRAGMA journal_mode = WAL")
        self._conn.execute(f"PRAGMA synchronous = {'FULL' if durability == 'power' else 'NORMAL'}")
        with self._lock:
            self._conn.execute(
                "CREATE TABLE IF NOT EXISTS citysoc_dead_letters ("
                "id INTEGER PRIMARY KEY AUTOINCREMENT, stage TEXT NOT NULL, reason TEXT NOT NULL, "
                "raw BLOB NOT NULL, source TEXT NOT NULL, time TEXT NOT NULL, meta TEXT NOT NULL)"
            )
            self._conn.execute("CREATE INDEX IF NOT EXISTS citysoc_dead_letters_stage ON citysoc_dead_letters (stage, id)")

    def put(self, letters: Sequence[DeadLetter]) -> None:
        """File ``letters``; returns after they are committed. Sets ``time`` when empty."""
        rows: list[tuple[Any, ...]] = []
        for dl in letters:
            raw = dl.raw if isinstance(dl.raw, (bytes, bytearray, memoryview)) else str(dl.raw).encode("utf-8", "surrogateescape")
            meta = orjson.dumps(dl.meta or {}, default=str, option=orjson.OPT_NON_STR_KEYS).decode()
            rows.append((dl.stage, dl.reason, bytes(raw), dl.source, dl.time or utc_now_iso(), meta))
        if not rows:
            return
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._conn.executemany(
                    "INSERT INTO citysoc_dead_letters (stage, reason, raw, source, time, meta) VALUES (?, ?, ?, ?, ?, ?)", rows
                )
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

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
