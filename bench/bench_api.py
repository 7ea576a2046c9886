"""API speed: the alert list under load, and event -> alert on the SSE stream.

* **Alert list at a fixed rate** (default 200 requests/s, open loop: requests are sent
  on schedule whether or not earlier ones finished) against a real uvicorn on loopback
  with 100k alerts stored in ``soc.db``; the load generator runs in its own process so
  it does not share the server's GIL. Reports p50/p95/p99 latency. Goal: p99 < 100 ms.
* **Baseline**: the same list query (count + first page) as raw ``sqlite3`` in the same
  run, so figures from noisy machines can be compared.
* **Event -> alert on SSE**: events go in through ``POST /api/v1/ingest`` (real
  pipeline, SQLite event store, a detector), each making a new alert; the time until
  its ``alert.created`` frame arrives on ``GET /api/v1/alerts/stream``. Goal: p95 < 1 s.
"""
from __future__ import annotations

import asyncio
import json
import multiprocessing as mp
import sqlite3
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

__all__ = ["run"]


def _pct(xs: list[float], p: float) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    k = min(len(xs) - 1, max(0, round(p / 100 * (len(xs) - 1))))
    return xs[k]


class _Detector:
    name = "bench-failed-login"

    def process(self, event):
        from core.events import get_field
        from core.protocols import Detection

        if get_field(event, "event.action") != "failed-login":
            return []
        return [Detection(rule_id="bench-brute-force", title="Failed login", level="high", events=[event])]


def _seed_alerts(soc: Any, n: int) -> float:
    from core.alerts import Alert, Entities, dedupe_key

    levels = ["low", "medium", "high", "critical"]
    statuses = ["new", "new", "acknowledged", "in_progress", "closed"]
    t0 = time.perf_counter()
    batch: list[Alert] = []
    for i in range(n):
        ent = Entities(host=f"cam-{i % 2000:04d}", source_ip=f"10.{i % 250}.{(i // 250) % 250}.{i % 7}",
                       center=["camera-ops", "warehouse", "forecast"][i % 3])
        ts = f"2026-11-{1 + (i * 24 // n):02d}T{(i // 60) % 24:02d}:{i % 60:02d}:00.000Z"
        rule = f"rule-{i % 150}"
        batch.append(Alert(id=0, rule_id=rule, rule_title=f"Rule {i % 150}", level=levels[i % 4], tags=["attack.t1110"],
                           engine="sigma", description="", entities=ent, risk_score=12 + (i % 89),
                           status=statuses[i % 5], resolution="benign" if i % 5 == 4 else None, assignee=None,
                           first_seen=ts, last_seen=ts, count=1, dedupe_key=dedupe_key(rule, ent, f"seed-{i}"),
                           created_at=ts, updated_at=ts, events=[{"host": {"name": ent.host}}]))
        if len(batch) == 5000:
            soc.alerts.record(batch, window_s=0)
            batch = []
    if batch:
        soc.alerts.record(batch, window_s=0)
    return time.perf_counter() - t0


QUERIES = [
    "/api/v1/alerts",
    "/api/v1/alerts?status=new&limit=50",
    "/api/v1/alerts?level=critical&sort=-risk_score",
    "/api/v1/alerts?host=cam-0042",
    "/api/v1/alerts?offset=500&limit=100",
]


def _load(url: str, key: str, rate: float, seconds: float, out: Any) -> None:
    """Child process: open-loop load at ``rate`` req/s; sends latencies (s) and errors back."""
    import httpx

    async def main() -> None:
        lat: list[tuple[int, float]] = []
        errors = 0
        kinds: dict[str, int] = {}  # what the errors were, so a figure never hides a failure
        # A small pool: beyond a few connections httpx itself becomes the bottleneck; a
        # request waiting for a free connection still counts from its scheduled time.
        limits = httpx.Limits(max_connections=16, max_keepalive_connections=16)
        async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"ApiKey {key}"}, limits=limits,
                                     timeout=10) as c:
            await c.get(QUERIES[0])  # warm up the connection and the server's caches
            n = int(rate * seconds)
            start = time.perf_counter()
            tasks = []

            gate = asyncio.Semaphore(16)

            async def one(i: int) -> None:
                nonlocal errors
                q = i % len(QUERIES)
                t = start + i / rate  # latency counts from the scheduled send time
                try:
                    # At most 16 in flight: a queue inside httpx's pool grows costly, and a
                    # collapsing load generator would measure itself, not the server.
                    async with gate:
                        r = await c.get(QUERIES[q])
                    if r.status_code != 200:
                        errors += 1
                        kinds[f"http {r.status_code}"] = kinds.get(f"http {r.status_code}", 0) + 1
                except httpx.HTTPError as exc:
                    errors += 1
                    kinds[type(exc).__name__] = kinds.get(type(exc).__name__, 0) + 1
                lat.append((q, time.perf_counter() - t))

            for i in range(n):
                delay = start + i / rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(one(i)))
            await asyncio.gather(*tasks)
            elapsed = time.perf_counter() - start
            import resource

            ru = resource.getrusage(resource.RUSAGE_SELF)
            cpu_s = ru.ru_utime + ru.ru_stime

            # Closed loop: one request at a time (latency without queueing), then 8 at a
            # time for a few seconds (what this machine can serve at most right now).
            seq: list[float] = []
            for i in range(200):
                t = time.perf_counter()
                await c.get(QUERIES[i % len(QUERIES)])
                seq.append(time.perf_counter() - t)
            done = 0
            cap_lat: list[float] = []
            t_end = time.perf_counter() + 5

            async def worker(w: int) -> None:
                nonlocal done
                i = w
                while time.perf_counter() < t_end:
                    t = time.perf_counter()
                    await c.get(QUERIES[i % len(QUERIES)])
                    cap_lat.append(time.perf_counter() - t)
                    done += 1
                    i += 8

            t0 = time.perf_counter()
            await asyncio.gather(*(worker(w) for w in range(8)))
            cap_rps = done / (time.perf_counter() - t0)
        out.put({"lat": lat, "errors": errors, "error_kinds": kinds, "elapsed": elapsed, "sent": n, "cpu_s": cpu_s,
                 "sequential": seq, "capacity_rps": cap_rps, "capacity_lat": cap_lat,
                 "total_requests": n + len(seq) + done})

    asyncio.run(main())


def _baseline(db: Path, runs: int) -> dict[str, float]:
    """The default list query (count + first page, newest first) as raw sqlite3."""
    conn = sqlite3.connect(db)
    cols = ("id, dedupe_key, rule_id, rule_title, level, tags, engine, description, host, user_name, source_ip, "
            "destination_ip, asset_id, center, criticality, risk_score, status, resolution, assignee, first_seen, "
            "last_seen, count, created_at, updated_at, events_query, case_id")
    xs = []
    for _ in range(runs):
        t = time.perf_counter()
        conn.execute("SELECT count(*) FROM (SELECT 1 FROM alerts LIMIT 10001)").fetchone()  # as the store counts
        conn.execute(f"SELECT {cols} FROM alerts ORDER BY last_seen DESC, id DESC LIMIT 50 OFFSET 0").fetchall()
        xs.append(time.perf_counter() - t)
    conn.close()
    return {"p50_ms": round(_pct(xs, 50) * 1000, 3), "p99_ms": round(_pct(xs, 99) * 1000, 3)}


class _Server:
    def __init__(self, app: Any, pipeline: Any):
        import uvicorn

        self.app, self.pipeline = app, pipeline
        self.server: Any = None
        self._uvicorn = uvicorn
        self.thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    async def _main(self) -> None:
        await self.pipeline.start()
        import os

        cfg = self._uvicorn.Config(self.app, host="127.0.0.1", port=0, log_level="warning", lifespan="off",
                                   http=os.environ.get("CITYSOC_BENCH_HTTP", "auto"),
                                   access_log=False, timeout_graceful_shutdown=1)
        self.server = self._uvicorn.Server(cfg)
        try:
            await self.server.serve()
        finally:
            await self.pipeline.stop()

    def start(self) -> str:
        self.thread.start()
        while not (self.server and self.server.started):
            time.sleep(0.01)
        return f"http://127.0.0.1:{self.server.servers[0].sockets[0].getsockname()[1]}"

    def stop(self) -> None:
        self.app.state.citysoc.services.alert_stream.close()
        self.server.should_exit = True
        self.thread.join(10)


def _sse_latency(url: str, ingest_key: str, read_key: str, events: int, rate: float) -> dict[str, Any]:
    import httpx

    seen: dict[str, float] = {}
    ready = threading.Event()
    stop = threading.Event()

    def reader() -> None:
        try:
            with httpx.Client(timeout=httpx.Timeout(10, read=60)) as c:
                with c.stream("GET", f"{url}/api/v1/alerts/stream",
                              headers={"Authorization": f"ApiKey {read_key}"}) as r:
                    ready.set()
                    name = None
                    for line in r.iter_lines():
                        if stop.is_set():
                            return
                        if line.startswith("event: "):
                            name = line[7:]
                        elif line.startswith("data: ") and name == "alert.created":
                            host = json.loads(line[6:])["entities"]["host"]
                            seen.setdefault(host, time.perf_counter())
        except httpx.HTTPError:
            pass

    th = threading.Thread(target=reader, daemon=True)
    th.start()
    ready.wait(10)
    time.sleep(0.2)
    sent: dict[str, float] = {}
    with httpx.Client(base_url=url, headers={"Authorization": f"ApiKey {ingest_key}"}, timeout=10) as c:
        for i in range(events):
            host = f"bench-sse-{i:05d}"
            body = json.dumps({"@timestamp": "2026-11-25T08:00:00Z", "event": {"action": "failed-login"},
                               "host": {"name": host}, "message": "login failed"}).encode()
            sent[host] = time.perf_counter()
            c.post("/api/v1/ingest", content=body)
            time.sleep(1 / rate)
    deadline = time.perf_counter() + 5
    while len(seen) < events and time.perf_counter() < deadline:
        time.sleep(0.05)
    stop.set()
    lat = [seen[h] - t for h, t in sent.items() if h in seen]
    return {"events": events, "received": len(lat), "p50_ms": round(_pct(lat, 50) * 1000, 1),
            "p95_ms": round(_pct(lat, 95) * 1000, 1), "max_ms": round(max(lat) * 1000, 1) if lat else None,
            "goal_p95_ms": 1000}


def run(quick: bool) -> dict[str, Any]:
    from api.app import create_app
    from api.deps import AppState
    from citysoc.wiring import build_alerting, build_pipeline, open_soc
    from core.settings import Settings
    from storage.deadletters import SQLiteDeadLetterStore
    from storage.sqlite import SQLiteEventStore

    n_alerts = 20_000 if quick else 100_000
    seconds = 5 if quick else 20
    rate = 200.0
    with tempfile.TemporaryDirectory(prefix="citysoc-bench-api-") as tmp:
        data = Path(tmp)
        settings = Settings(data=data)
        store = SQLiteEventStore(data / "events.db")
        dls = SQLiteDeadLetterStore(data / "deadletters.db")
        soc = open_soc(settings)
        seed_s = _seed_alerts(soc, n_alerts)
        sink, services = build_alerting(soc)
        pipeline = build_pipeline(settings, store, dls, detectors=[_Detector()], alert_sink=sink)
        app = create_app(AppState(settings=settings, store=store, deadletters=dls, pipeline=pipeline,
                                  services=services, ready=True))
        viewer = soc.users.create_api_key("bench-viewer", "viewer", "bench")[1]
        ingest = soc.users.create_api_key("bench-ingest", "ingest", "bench")[1]
        srv = _Server(app, pipeline)
        url = srv.start()
        try:
            ctx = mp.get_context("spawn")
            q = ctx.Queue()
            import os
            import resource

            p = ctx.Process(target=_load, args=(url, viewer, rate, seconds, q))
            ru0 = resource.getrusage(resource.RUSAGE_SELF)
            p.start()
            res = q.get(timeout=seconds + 120)
            ru1 = resource.getrusage(resource.RUSAGE_SELF)
            p.join(30)
            server_cpu = (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)
            lat_all = [x for _, x in res["lat"]]
            lat_default = [x for qi, x in res["lat"] if qi == 0]
            per_query = {QUERIES[i]: round(_pct([x for qi, x in res["lat"] if qi == i], 99) * 1000, 1)
                         for i in range(len(QUERIES))}
            list_fig = {
                "alerts_stored": n_alerts,
                "target_rps": rate,
                "achieved_rps": round(res["sent"] / res["elapsed"], 1),
                "requests": res["sent"],
                "errors": res["errors"],
                "error_kinds": res.get("error_kinds", {}),
                "p50_ms": round(_pct(lat_all, 50) * 1000, 1),
                "p95_ms": round(_pct(lat_all, 95) * 1000, 1),
                "p99_ms": round(_pct(lat_all, 99) * 1000, 1),
                "mean_ms": round(statistics.fmean(lat_all) * 1000, 1),
                "default_query_p99_ms": round(_pct(lat_default, 99) * 1000, 1),
                "p99_ms_by_query": per_query,
                "goal_p99_ms": 100,
                "server_cpu_ms_per_request": round(server_cpu / res["total_requests"] * 1000, 2),
                "loadgen_cpu_ms_per_request": round(res["cpu_s"] / res["sent"] * 1000, 2),
                "load_average_1m_at_end": round(os.getloadavg()[0], 2),
                "sequential_p50_ms": round(_pct(res["sequential"], 50) * 1000, 1),
                "sequential_p99_ms": round(_pct(res["sequential"], 99) * 1000, 1),
                "closed_loop_8_conns_rps": round(res["capacity_rps"], 1),
                "closed_loop_8_conns_p99_ms": round(_pct(res["capacity_lat"], 99) * 1000, 1),
            }
            sse = _sse_latency(url, ingest, viewer, events=50 if quick else 200, rate=20)
        finally:
            srv.stop()
            soc.close()
            store.close()
        return {
            "seed_alerts_s": round(seed_s, 2),
            "alert_list": list_fig,
            "baseline_raw_sqlite_default_list": _baseline(data / "soc.db", 500),
            "event_to_sse_alert": sse,
        }
