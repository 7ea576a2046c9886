"""Asset health benchmark: what in-stream health tracking costs per event, and the demo's rates.

Measured on the same pre-built events (enriched: ``citysoc.asset.id`` set, 2,000
assets, a week of timestamps in our canonical form):

* **baseline**: a loop that reads exactly what the tracker reads (``citysoc.asset.id``
  and ``@timestamp``) and does nothing with it;
* **tracker (event clock)**: ``HealthTracker.process`` dating events by ``@timestamp``
  (replays, the demo);
* **tracker (wall clock)**: dating by arrival (the live server);
* **unmanaged**: ``UnmanagedAssetDetector.process`` on camera-network flow events.

Then the periodic side: a silent check + status of 5,000 assets, and one health flush
of 5,000 rows to SQLite. Finally the demo: generation and offline replay rates of a
small city through the whole pipeline (parse, enrich, store, Sigma, network, YARA,
health). CPU time is reported beside wall time because this machine is shared.
"""
from __future__ import annotations

import datetime as _dt
import random
import tempfile
import time
from pathlib import Path
from typing import Any

from core.assets import Asset, AssetHealth, HealthTracker, health_status
from detections.assets import UnmanagedAssetDetector, silent_detections

T0 = _dt.datetime(2026, 11, 18, 8, 0, tzinfo=_dt.timezone.utc).timestamp()


def _iso(t: float) -> str:
    d = _dt.datetime.fromtimestamp(t, _dt.timezone.utc)
    return d.strftime("%Y-%m-%dT%H:%M:%S.") + f"{d.microsecond // 1000:03d}Z"


def _events(n: int, assets: int) -> list[dict[str, Any]]:
    rnd = random.Random(1)
    out = []
    t = T0
    step = 7 * 86400 / n
    for _ in range(n):
        t += step
        aid = f"cam-{rnd.randrange(assets):05d}"
        out.append({"@timestamp": _iso(t), "event": {"dataset": "hikvision.log", "category": ["host"]},
                    "host": {"name": aid.upper()}, "citysoc": {"asset": {"id": aid, "type": "camera"},
                                                               "center": "operations"}})
    return out


def _flows(n: int) -> list[dict[str, Any]]:
    rnd = random.Random(2)
    return [{"@timestamp": _iso(T0 + i), "event": {"category": ["network"], "dataset": "network.flow"},
             "source": {"ip": f"10.20.{rnd.randrange(1, 23)}.{rnd.randrange(11, 60)}"},
             "destination": {"ip": "10.20.0.2"}} for i in range(n)]


def _time(fn: Any, events: list[dict[str, Any]]) -> tuple[float, float]:
    w0, c0 = time.perf_counter(), time.process_time()
    fn(events)
    return time.perf_counter() - w0, time.process_time() - c0


def _baseline(events: list[dict[str, Any]]) -> None:
    for ev in events:
        c = ev.get("citysoc")
        a = c.get("asset") if c else None
        aid = a.get("id") if a else None
        ts = ev.get("@timestamp")
        if aid is None or ts is None:
            continue


def _tracked(tracker: HealthTracker) -> Any:
    def loop(events: list[dict[str, Any]]) -> None:
        process = tracker.process
        for ev in events:
            process(ev)
    return loop


def run(quick: bool = False) -> dict[str, Any]:
    n = 100_000 if quick else 500_000
    events = _events(n, 2000)
    figures: dict[str, Any] = {"events": n, "assets": 2000}
    best: dict[str, tuple[float, float]] = {}
    for name, make in (("baseline", lambda: _baseline),
                       ("tracker_event_clock", lambda: _tracked(HealthTracker(clock="event"))),
                       ("tracker_wall_clock", lambda: _tracked(HealthTracker(clock="wall")))):
        runs = [_time(make(), events) for _ in range(3)]
        best[name] = min(runs, key=lambda r: r[1])
    for name, (wall, cpu) in best.items():
        figures[f"{name}_events_per_s_cpu"] = round(n / cpu) if cpu else None
        figures[f"{name}_us_per_event_cpu"] = round(cpu / n * 1e6, 3)
        figures[f"{name}_wall_s"] = round(wall, 3)
    base = best["baseline"][1] / n
    for name in ("tracker_event_clock", "tracker_wall_clock"):
        figures[f"{name}_overhead_us_per_event"] = round((best[name][1] / n - base) * 1e6, 3)
    flows = _flows(n // 5)
    known = {f"10.20.{d}.{h}" for d in range(1, 23) for h in range(11, 55)}
    det = UnmanagedAssetDetector(["10.20.0.0/16"], known.__contains__)
    _w, c = _time(lambda evs: [det.process(e) for e in evs], flows)
    figures["unmanaged_us_per_event_cpu"] = round(c / len(flows) * 1e6, 3)
    figures["unmanaged_reported"] = len(det._reported)

    # the periodic side: 5,000 assets
    assets = [Asset(id=f"cam-{i:05d}", name=f"c{i}", type="camera", center="operations", ips=[f"10.{i // 65536}."
                    f"{i // 256 % 256}.{i % 256}"], log_interval_s=900) for i in range(5000)]
    now = T0 + 7 * 86400
    health = {a.id: AssetHealth(a.id, last_seen=now - (2000 if i % 50 == 0 else 60), hour=int(now // 3600),
                                hour_count=20, last_hour_count=25, baseline=24.0, hours=100, total=5000)
              for i, a in enumerate(assets)}
    c0 = time.process_time()
    dets = silent_detections(assets, health, now, set())
    statuses = [health_status(a, health[a.id], now) for a in assets]
    figures["silent_check_5000_assets_ms_cpu"] = round((time.process_time() - c0) * 1000, 2)
    figures["silent_found"] = len(dets)
    figures["statuses"] = {s: statuses.count(s) for s in set(statuses)}
    from storage.assets import SQLiteAssetStore

    with tempfile.TemporaryDirectory() as d:
        st = SQLiteAssetStore(Path(d) / "assets.db")
        w0 = time.perf_counter()
        st.save_health(list(health.values()))
        figures["health_flush_5000_rows_ms"] = round((time.perf_counter() - w0) * 1000, 1)
        st.close()

        # the demo: generation and the offline replay through the whole pipeline
        from citysoc.demo.run import build_world, demo_settings, replay_world
        import asyncio

        cams, days = (22, 3.0) if quick else (88, 3.0)
        w0, c0 = time.perf_counter(), time.process_time()
        world = build_world(Path(d) / "demo", cameras=cams, days=days, end=T0 + 7 * 86400)
        gen_wall, gen_cpu = time.perf_counter() - w0, time.process_time() - c0
        c0 = time.process_time()
        run_ = asyncio.run(replay_world(world, demo_settings(Path(d) / "demo", world.ingest_dir), None))
        rep_cpu = time.process_time() - c0
        figures["demo"] = {
            "cameras": cams, "days": days, "records": len(world.records),
            "generate_records_per_s_wall": round(len(world.records) / gen_wall),
            "generate_records_per_s_cpu": round(len(world.records) / gen_cpu),
            "replay_records_per_s_wall": round(run_.events / run_.seconds),
            "replay_records_per_s_cpu": round(run_.events / rep_cpu) if rep_cpu else None,
            "alerts": run_.alerts, "dead_letters": run_.dead_letters,
        }
    return figures


if __name__ == "__main__":  # pragma: no cover
    import json

    print(json.dumps(run(quick=True), indent=2))
