"""The asset inventory and health counters in SQLite (``<data>/assets.db``, WAL).

Its own file rather than a table in soc.db: the health flush writes every minute and
must never queue behind an alert transaction, and ``citysoc assets import`` from a
second process only contends with the server's reads. ``version`` (a counter bumped
in each write's transaction) is how a running server notices that change.

Example::

    store = SQLiteAssetStore("./data/assets.db")
    store.put_many(load_inventory_text(text, fmt="yaml"))
    store.get("cam-q1-0001")
"""
from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path

import orjson

from core.sqlitedb import Database
from core.assets import Asset, AssetHealth, asset_from_record

__all__ = ["SQLiteAssetStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS assets(
  id TEXT PRIMARY KEY, type TEXT NOT NULL, center TEXT NOT NULL, doc TEXT NOT NULL, updated_at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS assets_center ON assets(center, type);
CREATE TABLE IF NOT EXISTS asset_health(
  asset_id TEXT PRIMARY KEY, last_seen REAL, hour INTEGER, hour_count INTEGER NOT NULL,
  last_hour_count INTEGER, baseline REAL, hours INTEGER NOT NULL, total INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO meta(key, value) VALUES ('version', 0);
"""


def _doc(a: Asset) -> bytes:
    return orjson.dumps(a.to_record())


def _asset(doc: str | bytes) -> Asset:
    return asset_from_record(orjson.loads(doc))


class SQLiteAssetStore:
    """:class:`core.assets.AssetStore` over one SQLite file (one writer lock, reader per thread)."""

    def __init__(self, path: str | Path):
        self._db = Database(path)
        self.path = self._db.path
        with self._db.lock:
            self._db.writer.executescript(_SCHEMA)
        self._r = self._db.reader
        self._tx = self._db.transaction

    # -- inventory -------------------------------------------------------------------
    def list(self, *, center: str | None = None, type: str | None = None) -> list[Asset]:
        sql, args = "SELECT doc FROM assets", []
        where = []
        if center:
            where.append("center = ?")
            args.append(center)
        if type:
            where.append("type = ?")
            args.append(type)
        if where:
            sql += " WHERE " + " AND ".join(where)
        return [_asset(r[0]) for r in self._r().execute(sql + " ORDER BY id", args)]

    def get(self, asset_id: str) -> Asset | None:
        row = self._r().execute("SELECT doc FROM assets WHERE id = ?", (asset_id,)).fetchone()
        return _asset(row[0]) if row else None

    def _put(self, c: sqlite3.Connection, a: Asset) -> Asset | None:
        row = c.execute("SELECT doc FROM assets WHERE id = ?", (a.id,)).fetchone()
        c.execute("INSERT OR REPLACE INTO assets(id, type, center, doc, updated_at) VALUES (?,?,?,?,julianday('now'))",
                  (a.id, a.type, a.center, _doc(a)))
        return _asset(row[0]) if row else None

    def put(self, asset: Asset) -> Asset | None:
        with self._tx() as c:
            before = self._put(c, asset)
            c.execute("UPDATE meta SET value = value + 1 WHERE key = 'version'")
        return before

    def put_many(self, assets: Sequence[Asset]) -> tuple[int, int]:
        created = updated = 0
        with self._tx() as c:
            for a in assets:
                if self._put(c, a) is None:
                    created += 1
                else:
                    updated += 1
            c.execute("UPDATE meta SET value = value + 1 WHERE key = 'version'")
        return created, updated

    def delete(self, asset_id: str) -> Asset | None:
        with self._tx() as c:
            row = c.execute("SELECT doc FROM assets WHERE id = ?", (asset_id,)).fetchone()
            if row is None:
                return None
            c.execute("DELETE FROM assets WHERE id = ?", (asset_id,))
            c.execute("DELETE FROM asset_health WHERE asset_id = ?", (asset_id,))
            c.execute("UPDATE meta SET value = value + 1 WHERE key = 'version'")
        return _asset(row[0])

    def version(self) -> int:
        return int(self._r().execute("SELECT value FROM meta WHERE key = 'version'").fetchone()[0])

    def count(self) -> int:
        return int(self._r().execute("SELECT count(*) FROM assets").fetchone()[0])

    # -- health ----------------------------------------------------------------------
    def save_health(self, rows: Sequence[AssetHealth]) -> None:
        with self._tx() as c:
            c.executemany(
                "INSERT OR REPLACE INTO asset_health(asset_id, last_seen, hour, hour_count, last_hour_count, baseline,"
                " hours, total) VALUES (?,?,?,?,?,?,?,?)",
                [(h.asset_id, h.last_seen, h.hour, h.hour_count, h.last_hour_count, h.baseline, h.hours, h.total)
                 for h in rows])

    def health(self) -> dict[str, AssetHealth]:
        out: dict[str, AssetHealth] = {}
        for r in self._r().execute("SELECT asset_id, last_seen, hour, hour_count, last_hour_count, baseline, hours,"
                                   " total FROM asset_health"):
            out[r[0]] = AssetHealth(asset_id=r[0], last_seen=r[1], hour=r[2], hour_count=r[3], last_hour_count=r[4],
                                    baseline=r[5], hours=r[6], total=r[7])
        return out

    def close(self) -> None:
        self._db.close()
