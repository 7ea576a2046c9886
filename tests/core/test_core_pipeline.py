"""The pipeline runtime against the real SQLite store: ack after commit, dead letters,
backpressure, detection after storage, and the counters /metrics shows."""
import asyncio
import threading
import time

import orjson
import pytest

from collectors.parsers.ecs import PARSER as ECS_PARSER
from core.metrics import render_prometheus
from core.pipeline import Pipeline
from core.protocols import Detection, RawRecord
from storage.deadletters import SQLiteDeadLetterStore
from storage.sqlite import SQLiteEventStore


def rec(doc: dict | bytes, source: str = "test") -> RawRecord:
    data = doc if isinstance(doc, bytes) else orjson.dumps(doc)
    return RawRecord(data=data, format="ecs", source=source)


@pytest.fixture
def parts(tmp_path):
    store = SQLiteEventStore(tmp_path / "events.db")
    dls = SQLiteDeadLetterStore(tmp_path / "dl.db")
    yield store, dls
    store.close()


def run(coro):
    return asyncio.run(coro)


def test_submit_wait_returns_after_commit_and_events_are_searchable(parts):
    store, dls = parts

    async def go():
        p = Pipeline(store=store, deadletters=dls, parse=ECS_PARSER.parse, flush_ms=5)
        await p.start()
        res = await p.submit([rec({"@timestamp": "2026-11-25T01:00:00Z", "host": {"name": f"cam-{i}"}}) for i in range(50)],
                             wait=True)
        # Acknowledged means committed: a fresh reader sees all of them at once.
        seen = store.count("host.name:cam-*")
        await p.stop()
        return res, seen

    res, seen = run(go())
    assert (res.accepted, res.stored, res.errors) == (50, 50, [])
    assert seen == 50


def test_bad_records_go_to_dead_letters_byte_for_byte_and_neighbours_survive(parts):
    store, dls = parts
    bad = b'{"message": "half a line'
    binary = b"\xff\xfe\x00garbage"

    async def go():
        p = Pipeline(store=store, deadletters=dls, parse=ECS_PARSER.parse, flush_ms=5)
        await p.start()
        res = await p.submit([rec({"message": "ok-1"}), rec(bad), rec({"message": "ok-2"}), rec(binary), rec(b"[1,2]")],
                             wait=True)
        await p.stop()
        return res, p

    res, p = run(go())
    assert res.stored == 2
    assert sorted(e.index for e in res.errors) == [1, 3, 4]
    assert store.count('message:"ok-1" OR message:"ok-2"') == 2
    letters = dls.list(limit=10)
    assert {bytes(d.raw) for d in letters} == {bad, binary, b"[1,2]"}
    assert all(d.stage == "parse" and d.reason for d in letters)
    assert p.counters["parse"].errors == 3 and p.counters["store"].emitted == 2


class SlowStore(SQLiteEventStore):
    """The real store, with a pause per batch: lets the test see backpressure happen."""

    delay = 0.05

    def ingest(self, events):
        time.sleep(self.delay)
        return super().ingest(events)


def test_full_queues_slow_the_sender_and_lose_nothing(tmp_path):
    store = SlowStore(tmp_path / "events.db")
    dls = SQLiteDeadLetterStore(tmp_path / "dl.db")
    max_depth = 0

    async def go():
        nonlocal max_depth
        p = Pipeline(store=store, deadletters=dls, parse=ECS_PARSER.parse, queue_size=100, batch_size=50, flush_ms=1)
        await p.start()
        t0 = time.perf_counter()
        for b in range(40):
            await p.submit([rec({"message": f"m{b}-{i}"}) for i in range(25)])
            max_depth = max(max_depth, p.counters["parse"].queue_depth, p.counters["store"].queue_depth)
        submit_time = time.perf_counter() - t0
        await p.drain()
        await p.stop()
        return submit_time

    submit_time = run(go())
    # 1,000 events through a store that takes 50 ms per <=50-event batch: the sender
    # must have been held back (>= 10 batches' worth of waiting), and queues never
    # exceeded their capacity.
    assert submit_time > 0.3
    assert max_depth <= 100
    assert store.count("*") == 1000
    assert dls.count() == 0
    store.close()


class EvilDetector:
    name = "evil"

    def __init__(self, store):
        self.store = store
        self.stored_when_seen: list[int] = []

    def process(self, event):
        if "evil" in str(event.get("message", "")):
            # Detection runs after commit: the event is already searchable.
            self.stored_when_seen.append(self.store.count('message:evil'))
            return [Detection(rule_id="r1", title="evil seen", level="high", events=[event])]
        return []


class ListSink:
    def __init__(self):
        self.items: list[Detection] = []
        self.threads: set[str] = set()

    def emit(self, detections):
        self.threads.add(threading.current_thread().name)
        self.items.extend(detections)


def test_detection_runs_after_store_and_reaches_the_alert_sink(parts):
    store, dls = parts
    det = EvilDetector(store)
    sink = ListSink()

    async def go():
        p = Pipeline(store=store, deadletters=dls, parse=ECS_PARSER.parse, detectors=[det], alert_sink=sink, flush_ms=5)
        await p.start()
        await p.submit([rec({"message": "fine"}), rec({"message": "evil thing"}), rec({"message": "fine"})])
        await p.drain()
        await p.stop()
        return p

    p = run(go())
    assert [d.rule_id for d in sink.items] == ["r1"]
    assert det.stored_when_seen == [1]
    assert p.counters["detect"].received == 3 and p.counters["detect"].emitted == 1
    assert p.detections_total == 1


class BrokenDetector:
    name = "broken"

    def process(self, event):
        raise RuntimeError("bug in a rule")


def test_a_failing_detector_is_counted_not_fatal(parts):
    store, dls = parts

    async def go():
        p = Pipeline(store=store, deadletters=dls, parse=ECS_PARSER.parse, detectors=[BrokenDetector()], flush_ms=5)
        await p.start()
        await p.submit([rec({"message": "a"}), rec({"message": "b"})], wait=True)
        await p.drain()
        await p.stop()
        return p

    p = run(go())
    assert p.counters["detect"].errors == 2
    assert store.count("*") == 2


def test_metrics_render_every_stage_and_source(parts):
    store, dls = parts
    p = Pipeline(store=store, deadletters=dls, parse=ECS_PARSER.parse)
    p.sources["syslog-udp"] = lambda: {"received": 5, "emitted": 4, "errors": 0, "dropped": 1}
    text = render_prometheus(p.all_counters(), {"detections_total": 0})
    assert 'citysoc_component_dropped_total{component="syslog-udp",kind="source"} 1' in text
    for stage in ("parse", "store", "detect"):
        assert f'citysoc_component_queue_depth{{component="{stage}",kind="stage"}} 0' in text
    assert "# TYPE citysoc_component_lag_seconds gauge" in text


def test_submit_before_start_is_a_clear_error(parts):
    store, dls = parts
    p = Pipeline(store=store, deadletters=dls, parse=ECS_PARSER.parse)
    with pytest.raises(RuntimeError, match="not started"):
        run(p.submit([rec({"message": "x"})]))
