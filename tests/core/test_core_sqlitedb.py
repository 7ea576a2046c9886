"""core.sqlitedb: every store's connection set-up and write transactions, on real files."""
from __future__ import annotations

import sqlite3
import threading

import pytest

from core.sqlitedb import BUSY_TIMEOUT_S, Database, connect, transaction


def test_connect_sets_wal_one_busy_timeout_and_readers_are_read_only(tmp_path):
    w = connect(tmp_path / "a.db", synchronous="FULL")
    assert w.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert w.execute("PRAGMA busy_timeout").fetchone()[0] == int(BUSY_TIMEOUT_S * 1000)
    assert w.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    w.execute("CREATE TABLE t(x)")
    r = connect(tmp_path / "a.db", writer=False)
    assert r.execute("PRAGMA busy_timeout").fetchone()[0] == int(BUSY_TIMEOUT_S * 1000)
    with pytest.raises(sqlite3.OperationalError, match="readonly|read-only|query_only"):
        r.execute("INSERT INTO t VALUES (1)")
    with pytest.raises(RuntimeError, match="cannot open"):
        connect(tmp_path / "missing" / "dir" / "b.db")


def test_transaction_commits_or_rolls_back_and_takes_the_write_lock_up_front(tmp_path):
    db = Database(tmp_path / "t.db")
    db.writer.execute("CREATE TABLE t(x INTEGER)")
    with db.transaction() as c:
        c.execute("INSERT INTO t VALUES (1)")
    with pytest.raises(ZeroDivisionError):
        with db.transaction() as c:
            c.execute("INSERT INTO t VALUES (2)")
            raise ZeroDivisionError("a failure inside the transaction")
    assert [r[0] for r in db.reader().execute("SELECT x FROM t")] == [1]
    # BEGIN IMMEDIATE: a second connection cannot start writing while the first one is in a transaction
    other = sqlite3.connect(tmp_path / "t.db", timeout=0.05, isolation_level=None)
    with db.transaction():
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            other.execute("BEGIN IMMEDIATE")
    other.execute("BEGIN IMMEDIATE")
    other.execute("ROLLBACK")
    other.close()
    db.close()


def test_one_reader_per_thread(tmp_path):
    db = Database(tmp_path / "r.db", row_factory=sqlite3.Row)
    mine = db.reader()
    assert db.reader() is mine
    seen: list[sqlite3.Connection] = []
    t = threading.Thread(target=lambda: seen.append(db.reader()))
    t.start()
    t.join()
    assert seen[0] is not mine and mine.row_factory is sqlite3.Row
    db.close()


def test_transaction_on_a_plain_connection_and_lock(tmp_path):
    conn = connect(tmp_path / "p.db")
    conn.execute("CREATE TABLE t(x)")
    lock = threading.Lock()
    with transaction(conn, lock) as c:
        assert lock.locked() and c.in_transaction
        c.execute("INSERT INTO t VALUES (1)")
    assert not lock.locked() and conn.execute("SELECT count(*) FROM t").fetchone()[0] == 1
