"""Build the demo city and play its week through the real pipeline, offline.

Offline (``--data DIR``) means: no server, but the same parts a server runs, wired the
same way: our parsers, the store-built asset enricher, the SQLite event store, the Sigma
engine with our pack, the network detectors over the decoded pcaps, YARA over file
events, the asset health tracker and unmanaged-device detector, the alert recorder
(soc.db), and the asset monitor ticked on the simulated clock. Ground truth rides
along as ``labels.demo_scenario`` on the attack's own events (through the record's
``labels.`` meta, as a shipper would add labels): no detector reads it, the checker does.
"""
from __future__ import annotations

import asyncio
import datetime as _dt
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from citysoc.demo.city import City, build_city
from citysoc.demo.normal import Line, normal_week
from citysoc.demo.pcaps import normal_flows, write_pcap
from citysoc.demo.scenarios import WEBSHELL, Scenario, build_scenarios
from core.gctune import tune_gc
from core.events import get_field, to_utc_iso
from core.protocols import Detection, RawRecord

__all__ = ["DemoWorld", "Hit", "DemoRun", "build_world", "run_offline", "demo_settings", "demo_config", "replay_world", "SLICE_S"]

SLICE_S = 300.0
"""The asset monitor ticks every this many seconds of simulated (event) time."""


@dataclass
class Hit:
    """One detection, when (event time) it could first fire, and which scenario it belongs to."""

    rule_id: str
    title: str
    level: str
    engine: str
    at: float
    scenarios: set[str]
    tags: list[str]


@dataclass
class DemoWorld:
    city: City
    start: float
    end: float
    scenarios: list[Scenario]
    records: list[tuple[float, RawRecord]]
    out_dir: Path
    ingest_dir: Path
    pcaps: list[Path]
    lines: int
    net_events: int


@dataclass
class DemoRun:
    world: DemoWorld
    hits: list[Hit] = field(default_factory=list)
    playbooks: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    """scenario id -> [(playbook, run status)]"""
    events: int = 0
    seconds: float = 0.0
    dead_letters: int = 0
    alerts: int = 0


class RecordingSink:
    """The alert sink the pipeline sees: records each detection (with its event time and
    the scenarios its events belong to), then hands it to the real recorder."""

    def __init__(self, inner: Any, silent: dict[str, str] | None = None) -> None:
        self.inner = inner
        self.silent = silent or {}
        """asset id -> scenario id, for the scenarios whose evidence is an absence of events."""
        self.hits: list[Hit] = []

    def emit(self, detections: Sequence[Detection]) -> None:
        from core.assets import event_epoch

        for d in detections:
            times = [t for t in (event_epoch(e.get("@timestamp")) for e in d.events) if t is not None]
            scen = {s for e in d.events if (s := get_field(e, "labels.demo_scenario"))}
            if d.rule_id == "asset:silent" and d.extra.get("asset_id") in self.silent:
                scen.add(self.silent[d.extra["asset_id"]])
            self.hits.append(Hit(d.rule_id, d.title, d.level, d.engine, max(times) if times else 0.0, scen,
                                 list(d.tags)))
        self.inner.emit(detections)


class SimClock:
    """A detector that moves the simulated clock with event time and, every ``step``
    seconds of it, ticks the asset monitor (health flush, silent check) right there in
    the detect stage: the tracker has seen exactly the events before that moment, which
    is what the server's periodic task sees live, without draining the pipeline."""

    name = "demo-clock"

    def __init__(self, monitor: Any, now_ref: list[float], start: float, step: float = SLICE_S):
        self.monitor = monitor
        self.now_ref = now_ref
        self.step = step
        self.next = start + step

    def process(self, event: dict[str, Any]) -> list[Detection]:
        from core.assets import event_epoch

        t = event_epoch(event.get("@timestamp"))
        if t is None or t < self.next:
            return []
        self.now_ref[0] = t
        self.next = (t // self.step + 1) * self.step
        return self.monitor.tick()


def _ts_iso(ts: float) -> str:
    return to_utc_iso(_dt.datetime.fromtimestamp(ts, _dt.timezone.utc))


def build_world(out_dir: Path, *, cameras: int = 240, days: float = 7.0, seed: int = 7,
                end: float | None = None) -> DemoWorld:
    """The inventory, a week of normal lines, the attacks, the pcaps and the dropped file:
    every record the pipeline will read, in time order."""
    from collectors.network.pcapfile import pcap_events

    from core.assets import dump_yaml

    out_dir.mkdir(parents=True, exist_ok=True)
    city = build_city(cameras, seed=seed)
    (out_dir / "inventory.yml").write_text(dump_yaml(city.assets), encoding="utf-8")
    end = end if end is not None else float(int(time.time()) // 60 * 60)
    start = end - days * 86400
    ingest = out_dir / "warehouse-ingest"
    ingest.mkdir(parents=True, exist_ok=True)
    scenarios = build_scenarios(city, start, end, str(ingest.resolve()))
    silent = {s.silent_host: s.start for s in scenarios if s.silent_host}
    lines: list[Line] = normal_week(city, start, end, seed=seed, silent=silent)
    for s in scenarios:
        lines.extend(s.lines)
    records: list[tuple[float, RawRecord]] = []
    for ln in lines:
        meta: dict[str, Any] = {}
        if ln.addr:
            meta["log.source.address"] = ln.addr
        if ln.scenario:
            meta["labels.demo_scenario"] = ln.scenario
        records.append((ln.ts, RawRecord(ln.text.encode(), format="onvif" if ln.via == "onvif" else "auto",
                                         source=f"demo-{ln.via}", meta=meta)))
    pcaps: list[Path] = []
    pdir = out_dir / "pcap"
    p = pdir / "camera-network-normal.pcap"
    write_pcap(p, normal_flows(city, start, end), seed=seed)
    pcaps.append(p)
    net_events = 0
    for path, label in [(p, None)] + [(pdir / f"{s.id}.pcap", s.id) for s in scenarios if s.flows]:
        if label is not None:
            write_pcap(path, next(s.flows for s in scenarios if s.id == label), seed=seed)
            pcaps.append(path)
        for ev in pcap_events(path):
            if label is not None:
                ev.setdefault("labels", {})["demo_scenario"] = label
            ts = _epoch(ev.get("@timestamp"))
            records.append((ts, RawRecord(orjson.dumps(ev), format="ecs", source="demo-pcap")))
            net_events += 1
    for s in scenarios:
        if s.file_event is None:
            continue
        fe = s.file_event
        Path(fe["path"]).write_bytes(WEBSHELL)
        etl = city.by_id[s.asset_id or "etl-01"]
        ev = {"@timestamp": _ts_iso(fe["time"]), "event": {"kind": fe["kind"], "category": fe["category"],
                                                           "type": fe["type"], "action": fe["action"],
                                                           "dataset": "file_integrity", "module": "file_integrity"},
              "file": {"path": fe["path"], "name": Path(fe["path"]).name, "extension": "php"},
              "host": {"name": etl.hostnames[0]}, "user": {"name": "partner_sftp"},
              "labels": {"demo_scenario": s.id}}
        records.append((fe["time"], RawRecord(orjson.dumps(ev), format="ecs", source="demo-fim")))
    records.sort(key=lambda r: r[0])
    return DemoWorld(city=city, start=start, end=end, scenarios=scenarios, records=records, out_dir=out_dir,
                     ingest_dir=ingest, pcaps=pcaps, lines=len(lines), net_events=net_events)


def _epoch(ts: Any) -> float:
    from core.events import parse_timestamp

    return parse_timestamp(ts).timestamp()


async def replay_world(world: DemoWorld, settings: Any, progress: Callable[[int, int], None] | None) -> DemoRun:
    from citysoc.wiring import AssetRuntime, build_alerting, make_parse, open_soc
    from core.pipeline import Pipeline
    from storage.assets import SQLiteAssetStore
    from storage.deadletters import SQLiteDeadLetterStore
    from storage.sqlite import SQLiteEventStore

    data = Path(settings.data)
    soc = open_soc(settings)
    recorder, _services = build_alerting(soc, settings)
    sink = RecordingSink(recorder, {s.silent_host: s.id for s in world.scenarios if s.silent_host})
    asset_store = SQLiteAssetStore(data / "assets.db")
    asset_store.put_many(world.city.assets)
    sim_now = [world.start]
    # alert_sink=None: the monitor's silent detections go back through the pipeline (SimClock)
    rt = AssetRuntime(settings, asset_store, None, clock="event", now=lambda: sim_now[0])
    clock = SimClock(rt.monitor, sim_now, world.start)
    from citysoc.detection import build_detection

    detection = build_detection(settings, start_feeds=False)  # the engines `citysoc serve` runs
    if detection.failures:
        raise RuntimeError("detection engines failed to load: " + "; ".join(detection.failures))
    detectors = list(detection.detectors)
    tune_gc()  # core/gctune.py: loaded engines stay, each event is many small containers
    store = SQLiteEventStore(data / "events.db")
    dls = SQLiteDeadLetterStore(data / "deadletters.db")
    pipeline = Pipeline(store=store, deadletters=dls, parse=make_parse(), enrichers=[rt.enrich],
                        detectors=[*detectors, rt.tracker, rt.unmanaged, clock], alert_sink=sink,
                        queue_size=20_000, batch_size=2_000, flush_ms=50)
    run = DemoRun(world=world)
    t0 = time.perf_counter()
    await pipeline.start()
    try:
        recs = world.records
        n = len(recs)
        for i in range(0, n, 2000):
            await pipeline.submit([r for _t, r in recs[i:i + 2000]])
            if progress is not None:
                progress(min(i + 2000, n), n)
        await pipeline.drain()
    finally:
        await pipeline.stop()
    sim_now[0] = world.end
    final = rt.monitor.tick()
    if final:
        sink.emit(final)
    run.seconds = time.perf_counter() - t0
    run.events = len(world.records)
    run.hits = sink.hits
    run.dead_letters = dls.count()
    run.alerts = recorder.created
    detection.close()
    run.playbooks = await _playbooks(settings, soc, world, sink.hits)
    store.close()
    asset_store.close()
    soc.close()
    return run


async def _playbooks(settings: Any, soc: Any, world: DemoWorld, hits: list[Hit]) -> dict[str, list[tuple[str, str]]]:
    """For each scenario's first alert: the playbooks whose trigger matches it, started as
    dry runs (the demo must not touch this machine's firewall or mail), with their outcome."""
    from citysoc.wiring import build_playbooks
    from core.alerts import AlertFilter

    out: dict[str, list[tuple[str, str]]] = {}
    try:
        runner, _errors = build_playbooks(settings, soc)
    except Exception as exc:  # the playbook engine is optional for the check
        return {s.id: [("(runner failed to load)", str(exc)[:80])] for s in world.scenarios}
    _n, alerts = soc.alerts.list(AlertFilter(limit=10_000, sort="id", count_up_to=0))
    for s in world.scenarios:
        rules = {h.rule_id for h in hits if s.id in h.scenarios}
        mine = [a for a in alerts if a.rule_id in rules and s.matches_rule(a.rule_id)]
        runs: list[tuple[str, str]] = []
        seen: set[str] = set()
        for a in mine:
            full = soc.alerts.get(a.id)
            for pb in runner.matching(full):
                if pb.name in seen:
                    continue
                seen.add(pb.name)
                try:
                    r = await runner.start(pb.name, actor="system:demo", alert=full, trigger="alert", dry_run=True,
                                           wait=True)
                    runs.append((pb.name, r.status))
                except Exception as exc:
                    runs.append((pb.name, f"refused: {exc}"[:120]))
        out[s.id] = runs
    await runner.stop()
    return out


def demo_config(out_dir: Path, ingest_dir: Path) -> dict[str, Any]:
    """Settings of the demo city (also written to ``<data>/citysoc-demo.yml`` so ``citysoc
    serve --config`` runs the same): its network zones (cameras in the district subnets,
    the VMS and NVRs in 10.20.0.0/24), YARA watching the warehouse ingest folder, and
    playbook targets (mailbox, quarantine root, warehouse database, forecasting webhook)
    so dry runs walk every step, none of them a real machine; and ``demo``: served, its
    firewall actions act in a namespace of its own and its devices keep logging."""
    ingest = str(ingest_dir.resolve())
    return {
        "data": str(out_dir),
        "assets": {"camera_cidrs": ["10.20.0.0/16"]},
        "detection": {
            "network": {
                "zones": {"10.20.0.0/24": "camera-core", "10.20.0.0/16": "camera-lan", "10.30.0.0/24": "warehouse-db",
                          "10.40.0.0/24": "warehouse-dmz", "10.50.0.0/24": "forecasting", "10.10.0.0/24": "soc"},
                "camera_egress": {"camera_cidrs": [f"10.20.{d}.0/24" for d in range(1, 255)],
                                  "allow_default": ["10.20.0.0/24", "10.10.0.0/24"]},
            },
            "yara": {"watch_prefixes": [ingest]},
        },
        # served: the nft actions act in a namespace serve creates (or every run is a dry
        # run), and the city keeps logging (citysoc/demo/sandbox.py, citysoc/demo/live.py)
        "demo": {"enabled": True},
        "playbooks": {
            # reserved names (RFC 2606/6761) that never resolve: a real run of these steps
            # fails here instead of mailing through this machine's MTA or reaching a network
            "smtp": {"host": "smtp.demo.invalid", "default_to": ["soc-duty@security.hcmc.example"]},
            "quarantine_roots": [ingest],
            "nft": {"soc_addresses": ["10.10.0.0/24"], "allow_block": ["0.0.0.0/0", "::/0", "10.20.0.0/16"]},
            "databases": {"warehouse": {"dsn": "host=warehouse-db.demo.invalid dbname=warehouse user=citysoc"}},
            "webhooks": {"forecasting-center": {"url": "https://forecasting.hcmc.example/soc-hook",
                                                "secret": "demo-signing-key"}},
        },
    }


def demo_settings(out_dir: Path, ingest_dir: Path) -> Any:
    """:func:`demo_config` as :class:`core.settings.Settings`, and written beside the data."""
    import yaml

    from core.settings import Settings

    cfg = demo_config(out_dir, ingest_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "citysoc-demo.yml").write_text(
        "# Written by `citysoc demo`: serve the demo city with\n"
        f"#   citysoc serve --config {out_dir / 'citysoc-demo.yml'}\n"
        + yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
    return Settings.model_validate(cfg)


def run_offline(out_dir: Path, *, cameras: int = 240, days: float = 7.0, seed: int = 7,
                progress: Callable[[int, int], None] | None = None, end: float | None = None) -> DemoRun:
    """Generate the city into ``out_dir`` and replay it through the pipeline there."""
    world = build_world(out_dir, cameras=cameras, days=days, seed=seed, end=end)
    settings = demo_settings(out_dir, world.ingest_dir)
    return asyncio.run(replay_world(world, settings, progress))
