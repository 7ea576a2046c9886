"""Parse worker processes (core.workers) in the real pipeline with the real SQLite store:
the same events and per-item errors as parsing in-process, and a worker SIGKILLed in the
middle of a batch costs nothing: its batch is parsed again, every event is stored once and
detection (after the store) raises each alert once."""
import asyncio
import functools
import os
import signal
import time
from pathlib import Path

import pytest

from citysoc.wiring import make_parse
from core.pipeline import Pipeline
from core.protocols import Detection, RawRecord
from core.workers import ParseWorkers
from storage.deadletters import SQLiteDeadLetterStore
from storage.sqlite import SQLiteEventStore


def _lines(n: int, tag: str = "") -> list[RawRecord]:
    return [RawRecord(f"<38>Nov 25 10:00:01 gw sshd[77]: Invalid user u{i}{tag} from 10.0.{i % 250}.9 port 22".encode(),
                      source="test") for i in range(n)]


def _marking_parse(marker_dir: str):
    """A real parser that, in a record containing ``hold``, leaves a marker naming its
    process and waits, so the test can kill that worker while it holds the batch."""
    parse = make_parse()

    def go(rec: RawRecord):
        if b"hold" in rec.data:
            Path(marker_dir, f"{os.getpid()}.{time.monotonic_ns()}").write_text("")
            time.sleep(0.5)
        return parse(rec)

    return go


def _poisoned_parse():
    """A real parser whose worker dies (as in an OOM kill) on a record containing ``poison``."""
    parse = make_parse()

    def go(rec: RawRecord):
        if b"poison" in rec.data:
            os._exit(1)
        return parse(rec)

    return go


class _Counter:
    """A detector that raises one alert per event it sees."""

    name = "count"

    def __init__(self) -> None:
        self.seen: list[str] = []

    def process(self, ev):
        self.seen.append(ev["user"]["name"])
        return [Detection(rule_id="t", title="t", level="low", events=[ev])]


class _Sink:
    def __init__(self) -> None:
        self.found: list[Detection] = []

    def emit(self, found):
        self.found.extend(found)


@pytest.fixture
def parts(tmp_path):
    store = SQLiteEventStore(tmp_path / "events.db")
    dls = SQLiteDeadLetterStore(tmp_path / "dl.db")
    yield store, dls
    store.close()


def test_workers_store_what_in_process_parsing_stores(tmp_path, parts):
    store, dls = parts
    recs = _lines(1200) + [RawRecord(b"{not json", format="json")] + _lines(5, "b")

    async def go(workers):
        p = Pipeline(store=store, deadletters=dls, parse=make_parse(), flush_ms=5,
                     workers=ParseWorkers(make_parse, 2) if workers else None)
        await p.start()
        try:
            return await p.submit(recs, wait=True)
        finally:
            await p.stop()

    inproc = asyncio.run(go(False))
    pooled = asyncio.run(go(True))
    assert (pooled.accepted, pooled.stored) == (inproc.accepted, inproc.stored) == (1206, 1205)
    assert [(e.index, e.status) for e in pooled.errors] == [(e.index, e.status) for e in inproc.errors] == [(1200, 400)]
    # Same documents, apart from the ingest time.
    a = store.search("user.name:u3b", limit=10).hits
    assert len(a) == 2
    for h in a:
        h["event"].pop("ingested")
        h.pop("@timestamp")
        h.pop("_id", None)
    assert a[0] == a[1]


def test_a_worker_killed_mid_batch_is_redone_without_loss_or_duplicate_alert(tmp_path, parts):
    store, dls = parts
    markers = tmp_path / "markers"
    markers.mkdir()
    det, sink = _Counter(), _Sink()
    recs = _lines(300) + [RawRecord(b"<38>Nov 25 10:00:01 gw sshd[77]: Invalid user hold from 10.9.9.9 port 22")] \
        + _lines(300, "x")
    killed: list[int] = []

    async def go():
        pool = ParseWorkers(functools.partial(_marking_parse, str(markers)), 2)
        p = Pipeline(store=store, deadletters=dls, parse=make_parse(), flush_ms=5, detectors=[det], alert_sink=sink,
                     workers=pool)
        await p.start()
        try:
            sub = asyncio.create_task(p.submit(recs, wait=True))
            deadline = time.monotonic() + 60
            while not any(markers.iterdir()):
                assert time.monotonic() < deadline, "the worker never reached the held record"
                await asyncio.sleep(0.01)
            pid = int(next(markers.iterdir()).name.split(".")[0])
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
            res = await sub
            await p.drain()
            return res, pool
        finally:
            await p.stop()

    res, pool = asyncio.run(go())
    assert killed and pool.restarts >= 1 and pool.redone >= 1
    assert (res.accepted, res.stored, res.errors) == (601, 601, [])
    assert store.count("*") == 601  # each event once
    assert sorted(det.seen) == sorted({*det.seen})  # no event detected twice
    assert len(det.seen) == 601 and len(sink.found) == 601
    # The held batch really ran twice: once in the killed worker, once in a new one.
    pids = {int(m.name.split(".")[0]) for m in markers.iterdir()}
    assert len(pids) >= 2 and killed[0] in pids


def test_workers_attribute_and_match_with_the_servers_inventory_and_rules(tmp_path: Path) -> None:
    """``citysoc.wiring.worker_stage`` in real worker processes: events come back attributed
    from assets.db and with the Sigma rules they match (our pack's SSH root login rule); an
    asset added to the store is used from the first batch sent with the next version."""
    from citysoc.wiring import worker_stage
    from core.assets import Asset
    from detections.packs import SIGMA_PACK
    from detections.sigma import load_rules
    from storage.assets import SQLiteAssetStore

    cache = tmp_path / "plans"
    load_rules([SIGMA_PACK], cache_dir=cache)  # the server fills the plan cache before workers start
    db = tmp_path / "assets.db"
    store = SQLiteAssetStore(db)
    store.put_many([Asset(id="srv-a", name="A", type="server", center="warehouse", ips=["10.0.0.1"])])
    version = [1]
    pool = ParseWorkers(functools.partial(worker_stage, [str(SIGMA_PACK)], str(cache), str(db)), 1,
                        context=lambda: version[0])

    def line(ip: str) -> RawRecord:
        return RawRecord(f"<38>Nov 25 10:00:01 gw sshd[77]: Accepted password for root from {ip} port 22 ssh2".encode(),
                         source="test")

    async def go() -> tuple:
        first = await pool.parse([line("10.0.0.1"), line("10.0.0.2")])
        store.put_many([Asset(id="srv-b", name="B", type="server", center="forecasting", ips=["10.0.0.2"])])
        same = await pool.parse([line("10.0.0.2")])  # version unchanged: the worker keeps its index
        version[0] += 1
        after = await pool.parse([line("10.0.0.2")])
        return first, same, after

    pool.start()
    try:
        first, same, after = asyncio.run(go())
    finally:
        pool.stop()
        store.close()
    assert first.enriched and first.matched is not None
    a, b = first.events()
    assert a["citysoc"]["asset"]["id"] == "srv-a" and "asset" not in b.get("citysoc", {})
    assert "asset" not in same.events()[0].get("citysoc", {})
    assert after.events()[0]["citysoc"]["asset"]["id"] == "srv-b"
    root_login = next(r.id for r in load_rules([SIGMA_PACK], cache_dir=cache).rules if "root" in r.title.lower()
                      and "ssh" in r.title.lower())
    assert root_login in a.matched and root_login in after.events()[0].matched


def test_small_submissions_are_coalesced_and_keep_their_own_results(tmp_path, parts):
    """Many small submissions queued at once go to the workers in few calls; each keeps its
    own per-item errors and counts, and a record that kills its worker every time fails only
    its own submission, not the ones coalesced with it."""
    store, dls = parts

    async def go():
        pool = ParseWorkers(_poisoned_parse, 2)
        p = Pipeline(store=store, deadletters=dls, parse=make_parse(), flush_ms=5, workers=pool)
        await p.start()
        try:
            subs = []
            for k in range(40):
                recs = _lines(20, f"s{k}")
                if k % 10 == 3:
                    recs[5] = RawRecord(b"{not json", format="json")
                if k == 17:
                    recs[7] = RawRecord(b"<38>Nov 25 10:00:01 gw sshd[77]: poison", source="test")
                subs.append(asyncio.create_task(p.submit(recs, wait=True)))
            results = await asyncio.gather(*subs)
            await p.drain()
            return results, pool
        finally:
            await p.stop()

    results, pool = asyncio.run(go())
    for k, res in enumerate(results):
        if k == 17:
            assert res.stored == 0 and len(res.errors) == 20 and {e.status for e in res.errors} == {503}
        elif k % 10 == 3:
            assert (res.stored, [(e.index, e.status) for e in res.errors]) == (19, [(5, 400)])
        else:
            assert (res.stored, res.errors) == (20, [])
    assert store.count("*") == 39 * 20 - 4  # k = 3, 13, 23, 33 each lost one bad record
    assert pool.restarts >= 3


def test_events_encoded_in_the_worker_are_stored_as_the_store_would_encode_them(tmp_path: Path) -> None:
    """Invariant 6 (``core.events``): with ``store_rows`` the worker sends each event's JSON
    text and SQLite row; the store writes that, and the stored documents, indexed columns
    and full-text hits are those of the same records parsed and encoded in this process.
    A server-side enricher changes the event after the worker encoded it: its change is
    what gets stored (the stale encoding is dropped)."""
    import sqlite3

    from citysoc.wiring import worker_stage
    from core.events import encoded_form, stamp
    from storage.sqlite import encode_row

    recs = [RawRecord(f"<38>Nov 25 10:00:0{i % 10} gw{i % 3} sshd[77]: Failed password for invalid user "
                      f"u{i} from 10.0.{i}.9 port {2000 + i} ssh2".encode(), source="test") for i in range(40)]
    pool = ParseWorkers(functools.partial(worker_stage, None, None, None, True), 1)
    pool.start()
    try:
        chunk = asyncio.run(pool.parse(recs))
    finally:
        pool.stop()
    assert chunk.rows is not None and len(chunk.rows) == len(recs) == len(chunk.docs)
    events = chunk.events()
    parse = make_parse()
    for ev, rec in zip(events, recs):
        text, row = encoded_form(ev)
        here = stamp(parse(rec), ts_ms=ev.ts_ms)
        here["event"]["ingested"] = ev["event"]["ingested"]  # the one field that is the time of parsing
        assert dict(ev) == dict(here)
        assert (text, row) == encode_row(stamp(dict(ev), ts_ms=ev.ts_ms))

    def stored(db: Path) -> list[tuple]:
        con = sqlite3.connect(db)
        tables = [n for (n,) in con.execute("SELECT name FROM sqlite_master WHERE type='table' AND name GLOB 'ev_[0-9]*' "
                                            "AND name NOT LIKE '%fts%' ORDER BY name")]
        rows = [r for t in tables for r in con.execute(f"SELECT * FROM {t} ORDER BY id")]
        con.close()
        return rows

    a, b = SQLiteEventStore(tmp_path / "a.db"), SQLiteEventStore(tmp_path / "b.db")
    try:
        assert a.ingest(events).stored == len(recs)
        assert b.ingest([dict(e) for e in events]).stored == len(recs)  # plain dicts: encoded by the store
        assert stored(tmp_path / "a.db") and stored(tmp_path / "a.db") == stored(tmp_path / "b.db")
        assert a.search("u17", limit=5).total == b.search("u17", limit=5).total == 1
    finally:
        a.close()
        b.close()

    def tag(ev: dict) -> None:
        ev.setdefault("labels", {})["zone"] = "district-1"

    async def through_pipeline() -> list[dict]:
        store = SQLiteEventStore(tmp_path / "c.db")
        dls = SQLiteDeadLetterStore(tmp_path / "dl.db")
        workers = ParseWorkers(functools.partial(worker_stage, None, None, None, True), 1)
        p = Pipeline(store=store, deadletters=dls, parse=make_parse(), enrichers=[tag], workers=workers)
        await p.start()
        try:
            await p.submit(recs[:3], wait=True)
        finally:
            await p.stop()
        hits = store.search("*", limit=10).hits
        store.close()
        dls.close()
        return hits

    hits = asyncio.run(through_pipeline())
    assert len(hits) == 3 and all(h["labels"]["zone"] == "district-1" for h in hits)


def _gc_reporting_stage():
    """A real parser whose ``match`` reports the worker's collector settings as rule ids."""
    import gc

    from core.workers import WorkerStage

    return WorkerStage(make_parse(), match=lambda ev: (f"young={gc.get_threshold()[0]}", f"frozen={gc.get_freeze_count()}"))


def test_workers_collect_garbage_as_core_gctune_sets_it() -> None:
    """Each batch allocates thousands of containers: a worker runs with the young-collection
    threshold of ``core.gctune`` and what its stage built frozen (not CPython's 700)."""
    from core.gctune import YOUNG_THRESHOLD

    pool = ParseWorkers(_gc_reporting_stage, 1)
    pool.start()
    try:
        chunk = asyncio.run(pool.parse(_lines(3)))
    finally:
        pool.stop()
    assert chunk.matched is not None and len(chunk.matched) == 3
    young, frozen = chunk.matched[0]
    assert young == f"young={YOUNG_THRESHOLD}"
    assert int(frozen.split("=")[1]) > 1000  # the parsers' modules and tables
