"""SQLiteEventStore: the shared contract on a real file, plus what only SQLite has
(WAL, day partitions, readers in other processes, index use, a 100k-event load)."""
from __future__ import annotations

import datetime as dt
import importlib.util
import pathlib
import sqlite3
import subprocess
import sys
import textwrap
import threading

import pytest

from core.protocols import QueryError
from storage.query.parse import parse_query
from storage.query.sql import compile_query
from storage.sqlite import SQLiteEventStore, partition_name

_spec = importlib.util.spec_from_file_location("storage_contract", pathlib.Path(__file__).with_name("contract.py"))
contract = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(contract)

UTC = dt.timezone.utc
REPO = pathlib.Path(__file__).resolve().parents[2]


class TestSQLiteContract(contract.EventStoreContract):
    @pytest.fixture
    def store_factory(self, tmp_path):
        return lambda: SQLiteEventStore(tmp_path / "events.db")


class TestSQLiteTrigramContract(contract.EventStoreContract):
    """The same contract with the trigram tokenizer (the other FTS5 choice)."""

    @pytest.fixture
    def store_factory(self, tmp_path):
        return lambda: SQLiteEventStore(tmp_path / "events.db", tokenizer="trigram")


@pytest.fixture
def store(tmp_path):
    s = SQLiteEventStore(tmp_path / "events.db")
    yield s
    s.close()


def _master(path) -> set[str]:
    with sqlite3.connect(path) as c:
        return {r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def test_wal_mode_is_on(store, tmp_path):
    with sqlite3.connect(tmp_path / "events.db") as c:
        assert c.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_one_table_per_utc_day_and_retention_drops_them(store, tmp_path):
    store.ingest(contract.make_events())
    assert store.partitions() == ["ev_20260501", "ev_20260502", "ev_20260503"]
    tables = _master(tmp_path / "events.db")
    assert {"ev_20260501", "fts_20260501", "ev_20260503", "fts_20260503"} <= tables
    assert store.delete_before(dt.datetime(2026, 5, 3, tzinfo=UTC)) == 32
    tables = _master(tmp_path / "events.db")
    assert "ev_20260501" not in tables and "fts_20260501" not in tables and "ev_20260502" not in tables
    assert store.partitions() == ["ev_20260503"]
    assert store.count() == 16


def test_partition_names():
    assert partition_name(0) == "ev_19700101"
    assert partition_name(-1, "fts") == "fts_19691231"
    assert partition_name(20574) == "ev_20260501"


def test_committed_batch_is_visible_to_another_connection(store, tmp_path):
    store.ingest([{"@timestamp": "2026-05-01T00:00:00Z", "seq": 1}])
    with sqlite3.connect(tmp_path / "events.db") as c:
        assert c.execute("SELECT count(*) FROM ev_20260501").fetchone()[0] == 1


def test_data_survives_reopen_and_tokenizer_is_fixed(tmp_path):
    path = tmp_path / "events.db"
    with SQLiteEventStore(path, tokenizer="trigram") as s:
        s.ingest(contract.make_events())
    with SQLiteEventStore(path) as s:
        assert s.tokenizer == "trigram"
        assert s.count("rtsp") == 16
    with pytest.raises(ValueError, match="trigram"):
        SQLiteEventStore(path, tokenizer="unicode61")


def test_event_ids_are_not_reused_after_row_deletes(store):
    """Full-text entries of deleted rows must never point at a new event."""
    store.ingest([{"@timestamp": "2026-05-01T10:00:00Z", "message": "secretword"}])
    store.ingest([{"@timestamp": "2026-05-01T01:00:00Z", "message": "other"}])
    assert store.delete_before(dt.datetime(2026, 5, 1, 11, tzinfo=UTC)) == 2
    store.ingest([{"@timestamp": "2026-05-01T12:00:00Z", "message": "fresh"}])
    assert store.count("secretword") == 0
    assert store.count("fresh") == 1


def test_promoted_field_queries_use_their_index(store, tmp_path):
    store.ingest(contract.make_events())
    frag = compile_query(parse_query("host.name:cam-01"))
    sql = f"SELECT doc FROM ev_20260501 WHERE {frag.bind('fts_20260501')} ORDER BY ts DESC LIMIT 10"
    with sqlite3.connect(tmp_path / "events.db") as c:
        plan = " ".join(r[-1] for r in c.execute("EXPLAIN QUERY PLAN " + sql, frag.params))
    assert "ev_20260501_host_name" in plan, plan
    # without array values in the column the index also gives time order: no sort step
    # (host.name is matched in two spellings, cam-01 and CAM-01, so it takes a sort; a
    # single-value term on another promoted column shows the ordered range scan)
    frag = compile_query(parse_query("host.name:cam-01"), multi_columns=frozenset())
    sql = f"SELECT doc FROM ev_20260501 WHERE {frag.bind('fts_20260501')} ORDER BY ts DESC LIMIT 10"
    with sqlite3.connect(tmp_path / "events.db") as c:
        plan = " ".join(r[-1] for r in c.execute("EXPLAIN QUERY PLAN " + sql, frag.params))
    assert "ev_20260501_host_name" in plan, plan
    frag = compile_query(parse_query("event.dataset:linux.auth"), multi_columns=frozenset())
    sql = f"SELECT doc FROM ev_20260501 WHERE {frag.bind('fts_20260501')} ORDER BY ts DESC LIMIT 10"
    with sqlite3.connect(tmp_path / "events.db") as c:
        plan = " ".join(r[-1] for r in c.execute("EXPLAIN QUERY PLAN " + sql, frag.params))
    assert "ev_20260501_event_dataset" in plan and "TEMP B-TREE" not in plan, plan


def test_multi_valued_promoted_field(store):
    store.ingest(
        [
            {"@timestamp": "2026-05-01T00:00:00Z", "host": {"ip": ["10.0.0.1", "10.0.0.2"]}},
            {"@timestamp": "2026-05-01T00:00:01Z", "host": {"ip": ["10.0.0.2"]}},
            {"@timestamp": "2026-05-01T00:00:02Z", "host": {"ip": "10.0.0.3"}},
        ]
    )
    assert store.count("host.ip:10.0.0.2") == 2
    assert store.count("host.ip:10.0.0.1") == 1
    assert store.count("host.ip:10.0.0.*") == 3
    assert store.count("NOT host.ip:10.0.0.2") == 1
    assert store.count("host.ip:[10.0.0.1 TO 10.0.0.2]") == 2
    assert dict(store.terms("host.ip")) == {"10.0.0.1": 1, "10.0.0.2": 2, "10.0.0.3": 1}


def test_query_errors_are_query_errors_not_sqlite_errors(store):
    store.ingest(contract.make_events())
    with pytest.raises(QueryError):
        store.count("@timestamp:[yesterday TO now]")
    with pytest.raises(QueryError):
        store.count("@timestamp:cam-*")
    with pytest.raises(QueryError):
        store.search(sort="sideways")


def test_long_queries_stop_at_the_timeout_and_the_store_stays_usable(store):
    store.ingest([{"@timestamp": "2026-05-01T00:00:00Z", "seq": i, "k": f"v{i}"} for i in range(5000)])
    store.query_timeout = 0.0
    with pytest.raises(QueryError, match="query timeout"):
        store.count("k:*9*")
    store.query_timeout = 30.0
    assert store.count("k:*9*") == sum(1 for i in range(5000) if "9" in str(i))
    assert store.count() == 5000


def test_hostile_documents_are_item_errors_not_exceptions(store):
    deep: dict = {}
    node = deep
    for _ in range(3000):
        node["a"] = {}
        node = node["a"]
    bad = [
        {"@timestamp": "2026-05-01T00:00:00Z", "message": "lone \ud800 surrogate"},
        {"@timestamp": "2026-05-01T00:00:00Z", "n": 10**30},
        {"@timestamp": "2026-05-01T00:00:00Z", "deep": deep},
        {"@timestamp": "2026-05-01T00:00:00Z", "destination": {"port": 10**30}},
        {"@timestamp": "2026-05-01T00:00:00Z", "destination": {"port": 2**64 + 1}},
        {"@timestamp": 10**30},
        {"@timestamp": ["2026-05-01T00:00:00Z"]},
        None,
    ]
    good = {"@timestamp": "2026-05-01T00:00:00Z", 5: "int key", "x": {7: "nested int key"}}
    big_port = {"@timestamp": "2026-05-01T00:00:01Z", "destination": {"port": 2**63 + 5}}  # JSON can, SQLite cannot
    report = store.ingest([*bad, good, big_port])
    assert report.stored == 2
    assert store.count(f"destination.port:{2**63 + 5}") == 1  # compared as a float beyond 64 bits
    assert [e.index for e in report.errors] == list(range(len(bad)))
    assert all(e.status == 400 and e.reason for e in report.errors)
    assert store.search("_exists_:x").hits == [{"@timestamp": "2026-05-01T00:00:00Z", "5": "int key", "x": {"7": "nested int key"}}]
    assert store.search("_exists_:destination.port").hits == [big_port]


def test_memory_databases_are_refused():
    with pytest.raises(ValueError, match="file path"):
        SQLiteEventStore(":memory:")


def test_closed_store_refuses_work(tmp_path):
    s = SQLiteEventStore(tmp_path / "e.db")
    s.close()
    with pytest.raises(RuntimeError, match="closed"):
        s.count()
    with pytest.raises(RuntimeError, match="closed"):
        s.ingest([{"a": 1}])


def test_threads_read_while_one_writes(store):
    batches, size = 20, 250
    errors: list[BaseException] = []
    done = threading.Event()
    seen: list[int] = []

    def read() -> None:
        try:
            while not done.is_set():
                n = store.count("event.dataset:t")
                assert n % size == 0, n  # a snapshot never shows half a batch
                seen.append(n)
                store.search("event.dataset:t", limit=5)
        except BaseException as exc:
            errors.append(exc)

    readers = [threading.Thread(target=read) for _ in range(3)]
    for t in readers:
        t.start()
    for b in range(batches):
        store.ingest([{"@timestamp": "2026-05-01T00:00:00Z", "event": {"dataset": "t"}, "seq": b * size + k} for k in range(size)])
    done.set()
    for t in readers:
        t.join()
    assert errors == []
    assert store.count("event.dataset:t") == batches * size
    assert seen


def test_another_process_reads_while_this_one_writes(store, tmp_path):
    """A second process (e.g. ``citysoc search``) sees only whole batches, never errors."""
    batch = 500
    script = textwrap.dedent(
        f"""
        import sys, time
        sys.path.insert(0, {str(REPO)!r})
        from storage.sqlite import SQLiteEventStore
        s = SQLiteEventStore({str(tmp_path / "events.db")!r})
        last, reads = -1, 0
        print("ready", flush=True)
        deadline = time.time() + 60
        while time.time() < deadline:
            n = s.count("event.dataset:p")
            assert n % {batch} == 0, n
            assert n >= last, (n, last)
            last = n
            reads += 1
            if n == {batch * 10}:
                break
        print(reads, last)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    for _b in range(10):
        store.ingest([{"@timestamp": "2026-05-02T00:00:00Z", "event": {"dataset": "p"}, "seq": k} for k in range(batch)])
    out, err = proc.communicate(timeout=90)
    assert proc.returncode == 0, err
    reads, last = map(int, out.split())
    assert last == batch * 10 and reads >= 1


def _big_events(n: int):
    base = dt.datetime(2026, 4, 28, tzinfo=UTC)
    words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf"]
    for i in range(n):
        yield {
            "@timestamp": (base + dt.timedelta(seconds=3 * i)).isoformat(),
            "event": {"dataset": f"ds{i % 10}", "outcome": "failure" if i % 4 == 0 else "success"},
            "host": {"name": f"cam-{i % 500:04d}"},
            "source": {"ip": f"10.{i % 7}.{i % 11}.{i % 13}"},
            "destination": {"port": i % 1000},
            "message": f"event {words[i % 7]} number {i}",
        }


def test_100k_events_exact_counts(tmp_path):
    n = 100_000
    with SQLiteEventStore(tmp_path / "big.db") as s:
        evs = list(_big_events(n))
        for k in range(0, n, 10_000):
            assert s.ingest(evs[k : k + 10_000]).stored == 10_000
        assert len(s.partitions()) == 4  # 100k * 3 s = 3.5 days from midnight
        assert s.count() == n
        assert s.count("event.dataset:ds3") == n // 10
        assert s.count("destination.port:[100 TO 199]") == n // 10
        assert s.count("host.name:cam-00*") == sum(1 for i in range(n) if i % 500 < 100)
        assert s.count("event.outcome:failure AND event.dataset:ds2") == sum(1 for i in range(n) if i % 4 == 0 and i % 10 == 2)
        base = dt.datetime(2026, 4, 28, tzinfo=UTC)  # a window cutting two days in half
        w0, w1 = base + dt.timedelta(days=1.5), base + dt.timedelta(days=2.25)
        assert s.count("event.outcome:failure AND event.dataset:ds2", start=w0, end=w1) == sum(
            1 for i in range(43_200, 64_800) if i % 4 == 0 and i % 10 == 2
        )
        q3 = "event.outcome:failure AND event.dataset:ds4 AND destination.port:4"
        assert s.terms("host.name", q3) == [("cam-0004", 100)]
        assert s.count(q3) == sum(1 for i in range(n) if i % 4 == 0 and i % 10 == 4 and i % 1000 == 4) == 100
        assert s.count("echo") == sum(1 for i in range(n) if i % 7 == 4)
        assert s.count("echo OR golf") == sum(1 for i in range(n) if i % 7 in (4, 6))
        assert s.count("NOT event.outcome:failure") == n - n // 4
        assert s.search("host.name:cam-0042", sort="asc", limit=2).hits[1]["message"] == "event delta number 542"
        assert dict(s.terms("event.outcome")) == {"success": 75_000, "failure": 25_000}


def test_date_histogram_weeks_start_on_monday_and_minutes_align(store):
    store.ingest(
        [
            {"@timestamp": "2026-05-13T10:00:00Z"},  # Wednesday
            {"@timestamp": "2026-05-17T23:59:59Z"},  # Sunday, same week
            {"@timestamp": "2026-05-18T00:00:00Z"},  # Monday
            {"@timestamp": "1969-12-31T23:59:30Z"},  # before the epoch: floor, not truncate
        ]
    )
    assert store.date_histogram(interval="1w") == [
        ("1969-12-29T00:00:00.000Z", 1),
        ("2026-05-11T00:00:00.000Z", 2),
        ("2026-05-18T00:00:00.000Z", 1),
    ]
    assert store.date_histogram("@timestamp:<1970-01-02", interval="5m") == [("1969-12-31T23:55:00.000Z", 1)]


def test_page_cache_follows_storage_sqlite_cache_mib(tmp_path) -> None:
    """The writer's page cache is the setting, each reader's a quarter of it (at least
    1 MiB): what the RSS of a fresh serve rises by as a day's indexes fill it."""
    from citysoc.wiring import open_store
    from core.settings import Settings

    store = open_store(Settings(data=str(tmp_path), storage={"sqlite_cache_mib": 16}))
    try:
        assert store._writer.execute("PRAGMA cache_size").fetchone()[0] == -16 * 1024
        with store._reader() as conn:
            assert conn.execute("PRAGMA cache_size").fetchone()[0] == -4 * 1024
    finally:
        store.close()
    with pytest.raises(ValueError, match="cache_mib"):
        SQLiteEventStore(tmp_path / "x.db", cache_mib=0)
