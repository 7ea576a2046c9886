"""SQLite event store: ingest rate against raw executemany, and search latency at scale.

What is measured, each against a baseline in the same run:

1. **Ingest**: synthetic ECS events (~435-byte documents) through
   ``SQLiteEventStore.ingest`` in batches of 10k, against a raw ``sqlite3.executemany``
   of the same, already prepared rows into the same schema (same tables, indexes, FTS
   table and pragmas). The ratio is what our per-event work (normalizing, promoting
   fields, JSON encoding, partition routing) costs on top of SQLite itself.
2. **FTS5 tokenizer**: ``unicode61`` against ``trigram``: ingest rate, file size and
   free-text latency on the same events (this is how the default was picked).
3. **Search latency** p50/p95 at 1M events (100k quick), and at 5M when not quick: a
   promoted-field query, a wildcard, free text, a terms aggregation, plus a JSON
   (non-promoted) field query as the slow-path baseline.

Run: ``.venv/bin/python -m bench.run store [--quick]``.
"""
from __future__ import annotations

import datetime as dt
import os
import random
import shutil
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any
from collections.abc import Callable

import orjson

from core.protocols import QueryError
from storage.sqlite import SQLiteEventStore, partition_name

__all__ = ["run", "make_events"]

UTC = dt.timezone.utc
BATCH = 10_000
START = dt.datetime(2026, 5, 1, tzinfo=UTC)
WORDS = (
    "camera stream started stopped motion detected login failed accepted password session closed opened disk "
    "health check ok error timeout connection refused reset firmware update applied rtsp onvif recording "
    "storage full warning tamper alarm night mode enabled disabled user admin operator ptz preset moved"
).split()
DATASETS = [f"{a}.{b}" for a in ("camera", "nvr", "linux", "warehouse", "forecast") for b in ("access", "system", "auth", "audit")]
CENTERS = ["security", "camera-ops", "data-warehouse", "forecasting"]
ACTIONS = ["login", "logout", "stream-start", "stream-stop", "config-change", "motion", "query", "job-run"]


def make_events(n: int, *, seed: int = 42, span_days: float = 5.0) -> list[dict[str, Any]]:
    """``n`` ECS events spread over ``span_days`` (so several day partitions exist)."""
    rnd = random.Random(seed)
    step_ms = span_days * 86_400_000 / max(n, 1)
    base_ms = int(START.timestamp() * 1000)
    out = []
    for i in range(n):
        ts = dt.datetime.fromtimestamp((base_ms + int(i * step_ms)) / 1000, UTC)
        cam = rnd.randrange(2000)
        words = " ".join(rnd.choice(WORDS) for _ in range(6))
        out.append(
            {
                "@timestamp": ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z",
                "event": {
                    "dataset": DATASETS[rnd.randrange(len(DATASETS))],
                    "category": ["network"] if cam % 3 else ["authentication"],
                    "action": ACTIONS[rnd.randrange(len(ACTIONS))],
                    "outcome": "failure" if rnd.random() < 0.1 else "success",
                },
                "host": {"name": f"cam-{cam:04d}", "ip": f"10.{cam // 250}.{cam % 250}.10"},
                "source": {"ip": f"172.16.{rnd.randrange(256)}.{rnd.randrange(256)}", "port": rnd.randrange(1024, 65535)},
                "destination": {"ip": f"10.{cam // 250}.{cam % 250}.10", "port": rnd.choice((22, 80, 443, 554, 8000))},
                "user": {"name": f"user{rnd.randrange(300):03d}"},
                "log": {"level": rnd.choice(("info", "info", "info", "warning", "error"))},
                "citysoc": {"center": CENTERS[cam % 4], "asset": {"id": f"asset-{cam:05d}"}},
                "message": f"{words} seq {i}",
            }
        )
    return out


def _percentiles(samples: list[float]) -> dict[str, float]:
    s = sorted(samples)
    p95 = s[min(len(s) - 1, round(0.95 * (len(s) - 1)))]
    return {"p50_ms": round(statistics.median(s) * 1000, 2), "p95_ms": round(p95 * 1000, 2)}


def _timed(fn: Callable[[], Any], repeat: int) -> tuple[dict[str, float], Any]:
    fn()  # warm the page cache and statement cache
    samples, result = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        samples.append(time.perf_counter() - t0)
    return _percentiles(samples), result


def _ingest(store: SQLiteEventStore, events: list[dict[str, Any]]) -> float:
    t0 = time.perf_counter()
    for k in range(0, len(events), BATCH):
        report = store.ingest(events[k : k + BATCH])
        assert report.stored == len(events[k : k + BATCH]), report.errors[:3]
    return time.perf_counter() - t0


def _raw_baseline(path: Path, events: list[dict[str, Any]], tokenizer: str) -> float:
    """executemany of prepared rows into the store's own schema (created by the store)."""
    store = SQLiteEventStore(path, tokenizer=tokenizer)
    prepared: dict[int, list[tuple[tuple[Any, ...], tuple[str, str]]]] = {}
    batches = []
    for k in range(0, len(events), BATCH):
        by_day: dict[int, list] = {}
        for ev in events[k : k + BATCH]:
            day, row, text = store._prepare(ev, 0)  # preparation is not timed
            by_day.setdefault(day, []).append((row, text))
        batches.append(by_day)
    with store._write() as c:  # the same tables, indexes and FTS table as the store
        for by_day in batches:
            for day in by_day:
                if day not in prepared:
                    store._ensure_partition(c, day)
                    prepared[day] = []
    store.close()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA cache_size = -65536")
    next_id: dict[int, int] = {}
    width = None
    t0 = time.perf_counter()
    for by_day in batches:
        conn.execute("BEGIN IMMEDIATE")
        for day, items in by_day.items():
            first = next_id.get(day, 1)
            rows = [(first + j, *row) for j, (row, _) in enumerate(items)]
            width = width or ", ".join("?" * len(rows[0]))
            conn.executemany(f"INSERT INTO {partition_name(day)} VALUES ({width})", rows)
            conn.executemany(
                f"INSERT INTO {partition_name(day, 'fts')} (rowid, message, original) VALUES (?, ?, ?)",
                [(first + j, *text) for j, (_, text) in enumerate(items)],
            )
            next_id[day] = first + len(items)
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - t0
    conn.close()
    return elapsed


def _size_mb(path: Path) -> float:
    total = sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))
    return round(total / 1e6, 1)


def _searches(store: SQLiteEventStore, repeat: int) -> dict[str, Any]:
    last_day = START + dt.timedelta(days=4)
    cases: dict[str, Callable[[], Any]] = {
        "field: host.name:cam-0042 (search, 100 hits + total)": lambda: store.search("host.name:cam-0042", limit=100),
        "field: event.outcome:failure (search, 100 newest of ~10%)": lambda: store.search("event.outcome:failure", limit=100),
        "field: two promoted fields AND (count)": lambda: store.count("event.outcome:failure AND event.dataset:camera.auth"),
        "field: user.name last day (search)": lambda: store.search("user.name:user007", start=last_day, limit=100),
        "wildcard: host.name:cam-004* (search)": lambda: store.search("host.name:cam-004*", limit=100),
        "wildcard: user.name:*07 (count, full scan)": lambda: store.count("user.name:*07"),
        "free text: tamper alarm (search)": lambda: store.search("tamper AND alarm", limit=100),
        "free text: phrase + field (count)": lambda: store.count('"firmware update" AND event.outcome:failure'),
        "terms: host.name top 10, all events": lambda: store.terms("host.name", size=10),
        "terms: event.dataset where outcome:failure": lambda: store.terms("event.dataset", "event.outcome:failure"),
        "date_histogram 1h, all events": lambda: store.date_histogram(interval="1h"),
        "baseline json field: source.port:4444 (count, full scan)": lambda: store.count("source.port:4444"),
    }
    out: dict[str, Any] = {}
    for name, fn in cases.items():
        # full scans are slow by design; fewer repeats keep the run bounded
        reps = max(3, repeat // 4) if "full scan" in name else repeat
        try:
            stats, result = _timed(fn, reps)
        except QueryError as exc:  # e.g. the store's query timeout on a full scan
            out[name] = {"error": str(exc), "query_timeout_s": store.query_timeout}
            print(f"   {name}: {exc}", flush=True)
            continue
        size = result.total if hasattr(result, "total") else result if isinstance(result, int) else len(result)
        out[name] = {**stats, "result": size, "repeat": reps}
        print(f"   {name}: p50 {stats['p50_ms']} ms, p95 {stats['p95_ms']} ms (result {size})", flush=True)
    return out


def run(quick: bool) -> dict[str, Any]:
    n = 100_000 if quick else 1_000_000
    tok_n = 50_000 if quick else 200_000
    repeat = 10 if quick else 20
    tmp = Path(tempfile.mkdtemp(prefix="bench_store_", dir=os.environ.get("CITYSOC_BENCH_TMP")))
    figures: dict[str, Any] = {"events": n, "batch": BATCH}
    try:
        t0 = time.perf_counter()
        events = make_events(n)
        avg = sum(len(orjson.dumps(e)) for e in events[:2000]) / 2000
        figures["doc_bytes_avg"] = round(avg)
        print(f"   generated {n} events ({avg:.0f} bytes avg) in {time.perf_counter() - t0:.1f}s", flush=True)

        # 1. ingest vs raw executemany, same rows, same schema
        raw_s = _raw_baseline(tmp / "raw.db", events, "unicode61")
        # a long timeout: the JSON full scans at 5M are measured, not cut off
        store = SQLiteEventStore(tmp / "store.db", query_timeout=300.0)
        store_s = _ingest(store, events)
        figures["ingest"] = {
            "store_events_per_s": round(n / store_s),
            "raw_executemany_events_per_s": round(n / raw_s),
            "ratio_store_to_raw": round(raw_s / store_s, 3),
            "store_db_mb": _size_mb(tmp / "store.db"),
        }
        print(f"   ingest: {figures['ingest']}", flush=True)
        (tmp / "raw.db").unlink()

        # 2. tokenizer choice
        tok: dict[str, Any] = {}
        for name in ("unicode61", "trigram"):
            path = tmp / f"tok_{name}.db"
            s = SQLiteEventStore(path, tokenizer=name)
            secs = _ingest(s, events[:tok_n])
            ft, res = _timed(lambda s=s: s.count("tamper AND alarm"), repeat)
            ph, _ = _timed(lambda s=s: s.count('"firmware update"'), repeat)
            tok[name] = {
                "ingest_events_per_s": round(tok_n / secs),
                "db_mb": _size_mb(path),
                "free_text_count": {**ft, "result": res},
                "phrase_count": ph,
            }
            s.close()
        figures["tokenizer"] = {"events": tok_n, **tok}
        print(f"   tokenizer: {figures['tokenizer']}", flush=True)

        # 3. search latency
        figures[f"search_at_{n}"] = _searches(store, repeat)
        if not quick:
            more = 4_000_000
            t0 = time.perf_counter()
            for k in range(0, more, 1_000_000):
                chunk = make_events(1_000_000, seed=1000 + k, span_days=5.0)
                _ingest(store, chunk)
                del chunk
            secs = time.perf_counter() - t0
            figures["ingest_to_5m_events_per_s"] = round(more / secs)
            figures["store_db_mb_at_5m"] = _size_mb(tmp / "store.db")
            print(f"   filled to 5M at {figures['ingest_to_5m_events_per_s']} events/s", flush=True)
            figures["search_at_5000000"] = _searches(store, repeat)
        store.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return figures
