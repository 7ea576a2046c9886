"""End to end through a real server: event in over HTTP -> real pipeline -> SQLite
store -> detector -> alert store -> API and SSE stream, within a second."""
from __future__ import annotations

import base64
import json
import queue
import threading
import time

import httpx
import orjson

from api.stream import AlertBroadcaster
from core.alerts import Alert, AlertChange, Entities


def _event(i: int = 0) -> bytes:
    return orjson.dumps({"@timestamp": f"2026-11-25T08:00:{i:02d}Z", "message": "login failed for admin",
                         "event": {"action": "failed-login"}, "host": {"name": "cam-01"},
                         "source": {"ip": "10.0.0.5"}, "user": {"name": "admin"}})


def _sse_reader(url: str, headers: dict, out: queue.Queue, stop: threading.Event) -> None:
    try:
        with httpx.Client(timeout=httpx.Timeout(10, read=30)) as c:
            with c.stream("GET", url, headers=headers) as r:
                out.put(("status", r.status_code, time.monotonic()))
                event, data = None, None
                for line in r.iter_lines():
                    if stop.is_set():
                        return
                    if line.startswith("event: "):
                        event = line[7:]
                    elif line.startswith("data: "):
                        data = json.loads(line[6:])
                    elif line == "" and event:
                        out.put((event, data, time.monotonic()))
                        event, data = None, None
    except httpx.HTTPError as exc:
        if not stop.is_set():  # the server closing the stream at teardown is expected
            out.put(("error", repr(exc), time.monotonic()))


def _next(q: queue.Queue, timeout: float = 5.0):
    return q.get(timeout=timeout)


def test_event_becomes_alert_on_api_and_sse_within_a_second(live, hdr):
    got: queue.Queue = queue.Queue()
    stop = threading.Event()
    t = threading.Thread(target=_sse_reader, args=(f"{live.url}/api/v1/alerts/stream", hdr("analyst"), got, stop),
                         daemon=True)
    t.start()
    assert _next(got)[1] == 200
    deadline = time.monotonic() + 5
    while live.stack.state.services.alert_stream.subscribers == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    with httpx.Client(base_url=live.url, headers=hdr("ingest"), timeout=10) as c:
        t0 = time.monotonic()
        r = c.post("/api/v1/ingest", content=_event(0))
        assert r.status_code == 200 and r.json()["stored"] == 1, r.text
        name, alert, t_seen = _next(got)
        assert name == "alert.created"
        assert t_seen - t0 < 1.0, f"alert reached the stream after {t_seen - t0:.3f} s"
        assert alert["rule_id"] == "test-brute-force" and alert["entities"]["host"] == "cam-01"
        assert alert["risk_score"] == 4 * 3 * 4

        # Nine more identical events: the same alert grows to count 10.
        for i in range(1, 10):
            assert c.post("/api/v1/ingest", content=_event(i)).json()["stored"] == 1
        updates = [_next(got) for _ in range(9)]
        assert [u[0] for u in updates] == ["alert.updated"] * 9
        assert updates[-1][1]["count"] == 10

    with httpx.Client(base_url=live.url, headers=hdr("viewer"), timeout=10) as c:
        page = c.get("/api/v1/alerts").json()
        assert page["total"] == 1
        assert page["items"][0]["count"] == 10
        detail = c.get(f"/api/v1/alerts/{page['items'][0]['id']}").json()
        assert len(detail["events"]) == 10
        assert detail["last_seen"] == "2026-11-25T08:00:09.000Z"
        # The alert's query finds its events in the event store.
        found = c.get("/api/v1/events/count", params={"q": detail["events_query"]}).json()
        assert found["count"] == 10
    stop.set()


def test_ten_events_in_one_bulk_request_with_basic_auth_make_one_alert(live, hdr):
    body = b"".join(b'{"index":{"_index":"logs-camera.auth-default"}}\n' + _event(i) + b"\n" for i in range(10))
    with httpx.Client(base_url=live.url, timeout=10) as c:
        # As rsyslog's omelasticsearch sends it: HTTP Basic, user "apikey", the key as password.
        key = hdr("ingest")["Authorization"].split(" ", 1)[1]
        basic = "Basic " + base64.b64encode(f"apikey:{key}".encode()).decode()
        r = c.post("/_bulk", content=body, headers={"Authorization": basic, "Content-Type": "application/x-ndjson"})
        assert r.status_code == 200 and r.json()["errors"] is False, r.text
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            page = c.get("/api/v1/alerts", headers=hdr("viewer")).json()
            if page["total"] and page["items"][0]["count"] == 10:
                break
            time.sleep(0.05)
        assert page["total"] == 1 and page["items"][0]["count"] == 10


def _change(i: int) -> AlertChange:
    a = Alert(id=i, rule_id="r", rule_title="t", level="high", tags=[], engine="sigma", description="",
              entities=Entities(), risk_score=48, status="new", resolution=None, assignee=None,
              first_seen="x", last_seen="x", count=1, dedupe_key="k", created_at="x", updated_at="x")
    return AlertChange(alert=a, created=True)


def test_slow_subscriber_loses_events_counted_and_publisher_never_blocks():
    import asyncio

    async def main():
        bc = AlertBroadcaster(queue_size=3)
        slow = bc.subscribe()  # never reads
        fast = bc.subscribe()
        received = threading.Event()
        publish_s: list[float] = []

        def worker():  # the pipeline's detect thread
            for i in range(10):
                t = time.perf_counter()
                bc.publish([_change(i)])
                publish_s.append(time.perf_counter() - t)
                assert received.wait(2), "fast subscriber did not get the event"
                received.clear()

        th = threading.Thread(target=worker)
        th.start()
        for _ in range(10):
            frame = await asyncio.wait_for(fast.queue.get(), 2)
            assert frame.startswith(b"id: ")
            received.set()
        await asyncio.to_thread(th.join)
        assert max(publish_s) < 0.05
        assert fast.dropped == 0
        assert slow.queue.qsize() == 3 and slow.dropped == 7 and bc.dropped == 7
        bc.unsubscribe(slow)
        bc.unsubscribe(fast)
        assert bc.subscribers == 0

    asyncio.run(main())


def test_stream_filter_by_minimum_risk_and_close_ends_streams():
    import asyncio

    async def main():
        bc = AlertBroadcaster()
        high_only = bc.subscribe(min_risk=50)
        everything = bc.subscribe()
        bc.publish([_change(1)])  # risk 48
        await asyncio.sleep(0.05)
        assert high_only.queue.qsize() == 0 and everything.queue.qsize() == 1
        bc.close()
        await asyncio.sleep(0.05)
        assert high_only.ended and everything.ended
        assert bc.subscribe().ended  # a stream opened during shutdown ends at once

    asyncio.run(main())
