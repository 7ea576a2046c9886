"""Two processes writing one events.db at once (`citysoc ingest` while `citysoc serve`
runs): SQLite's write lock serializes them; no event is lost or overwritten."""
import multiprocessing as mp
import sqlite3

from storage.sqlite import SQLiteEventStore


def _writer(path: str, tag: str, n: int, start) -> None:
    store = SQLiteEventStore(path)
    start.wait()
    for b in range(0, n, 250):
        store.ingest([{"@timestamp": "2026-11-25T03:00:00Z", "message": f"{tag} {i}", "labels": {"w": tag}}
                      for i in range(b, min(n, b + 250))])
    store.close()


def test_two_processes_ingesting_together_lose_nothing(tmp_path):
    path = str(tmp_path / "events.db")
    SQLiteEventStore(path).close()
    ctx = mp.get_context("spawn")
    start = ctx.Event()
    procs = [ctx.Process(target=_writer, args=(path, tag, 5000, start)) for tag in ("alpha", "beta")]
    for p in procs:
        p.start()
    start.set()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    store = SQLiteEventStore(path)
    try:
        assert store.count("*") == 10_000
        assert store.count("message:alpha") == 5000 and store.count("message:beta") == 5000
    finally:
        store.close()
    with sqlite3.connect(path) as c:
        (table,) = c.execute("SELECT name FROM sqlite_master WHERE name LIKE 'ev_%' AND type='table'").fetchone()
        ids = c.execute(f"SELECT COUNT(*), COUNT(DISTINCT id) FROM {table}").fetchone()
    assert ids == (10_000, 10_000)
