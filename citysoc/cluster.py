"""The roles of a citysoc node on the NATS JetStream bus (``bus.backend: nats``).

``citysoc serve`` builds the same parts on every node and lets ``bus.roles`` decide which
run (see ``ARCHITECTURE.md``, "Process model and scaling out"):

* **collector**: sources -> parse -> enrich -> :class:`BusPublisher`, which stands where
  the event store stands in a one-machine pipeline. ``ingest`` returns only when JetStream
  stored every record (R3: a quorum of replicas), so HTTP and RELP senders are
  acknowledged only then; when the bus cannot store, the batch fails like a failed store
  write (the sender gets an error, or the batch is dead-lettered with the reason).
* **writer**: member of the ``writer`` group; stores each batch in this node's event store
  and only then lets the bus acknowledge it. Idempotent by bus position: the last stored
  stream sequence per partition is kept in ``<data>/bus-writer.db``, and a redelivered
  record at or below it is not stored twice.
* **detector**: member of the ``detector`` group; runs every detector over its partitions'
  batches and publishes their detections to the alert stream before the bus acknowledges
  the batch. Each detection carries an idempotency key (rule, group, partition, bus
  positions: :func:`detection_items`) that JetStream de-duplicates, so a redelivered batch
  raises no second alert; the alert store's own folding (same rule and entities within
  ``alerts.dedupe_window_s``) absorbs a redelivery split into other batches.
* **api**: the console, and the alert store: it consumes the alert stream and records every
  node's detections (dedupe, folding, incidents, playbook triggers as on one machine). One
  ``api`` node holds the alert store of a deployment; the API, ``/healthz`` and ``/metrics``
  run on every node.

Partitioning: every event goes to the partition of its source address
(:func:`core.partitioning.home_partition`; events without one: the record id). That is the
state key of the network detectors and of the brute-force/scan correlations of our pack, so
one attacker's events meet in one detector whatever collector received them. Correlations
grouped by other fields only (a user name seen from many addresses) are exact only within a
partition: stated in ARCHITECTURE.md.

Hand-over: when a detector is given a partition (a node joined or died), it first replays
that partition's recent records (from the checkpoint ``replay_from`` up to the previous
owner's ack floor, at most ``bus.replay_window_s`` back) through its detectors with their
detections discarded: alerts for those events were recorded before the previous owner's
ack. Correlation windows that span the hand-over then still fire.
"""
from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import hashlib
import itertools
import logging
import socket
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from bus.spool import SegmentSpool, SpooledPublisher
from core.bus import Batch, BusRecord, BusSettings
from core.events import Event, utc_now_iso
from core.partitioning import home_partition
from core.protocols import DeadLetter, Detection, Detector, IngestReport, ItemError
from core.sqlitedb import connect

__all__ = ["BusPublisher", "WriterRole", "DetectorRole", "AlertRecording", "Cluster", "start_cluster", "node_name",
           "detection_items", "detection_from"]

log = logging.getLogger("citysoc.cluster")


def node_name(settings: BusSettings, port: int) -> str:
    """``bus.node`` or ``<host name>-<API port>``: unique per process on one machine too."""
    return settings.node or f"{socket.gethostname()}-{port}"


class BusPublisher:
    """The collector role's end of the pipeline: an ``EventStore.ingest`` that publishes.

    Called from the pipeline's store thread; the publish runs on the server's event loop
    (the NATS client lives there) and this thread waits for JetStream's acknowledgements.
    """

    def __init__(self, bus: Any, loop: asyncio.AbstractEventLoop, node: str, *, timeout_s: float,
                 spool: SpooledPublisher | None = None):
        self.bus = bus
        self.loop = loop
        self.node = node
        self.timeout_s = timeout_s
        self._ids = itertools.count(1)
        self._prefix = f"{node}-{time.time_ns():x}"  # ids stay unique across restarts of this node
        self.published = 0
        self.failed = 0
        self.spool = spool
        """``bus.spool`` on (a district collector): JetStream, or the spool while the link is down."""

    def ingest(self, events: Sequence[Event]) -> IngestReport:
        parts = self.bus.partitions
        records = []
        for ev in events:
            rid = f"{self._prefix}-{next(self._ids)}"
            records.append(BusRecord(id=rid, partition=home_partition(ev, parts, fallback=rid), event=ev,
                                     source=self.node))
        if self.spool is not None:  # a district collector: JetStream, or the spool while the link is down
            accepted = self.spool.publish(records)
            self.published += accepted
            self.failed += len(records) - accepted
            return IngestReport(stored=accepted, errors=[
                ItemError(i, f"bus spool full ({self.spool.spool.max_bytes} bytes): refused", 507)
                for i in range(accepted, len(records))])
        fut = asyncio.run_coroutine_threadsafe(self.bus.publish(records), self.loop)
        try:
            fut.result(self.timeout_s + 5)
        except BaseException:
            fut.cancel()
            self.failed += len(records)
            raise
        self.published += len(records)
        return IngestReport(stored=len(records))


class _Applied:
    """The writer's last stored stream sequence per partition (``<data>/bus-writer.db``)."""

    def __init__(self, path: Path):
        self._db = connect(path)
        self._db.execute("CREATE TABLE IF NOT EXISTS applied (stream TEXT, partition INTEGER, seq INTEGER,"
                         " PRIMARY KEY (stream, partition))")
        self._lock = threading.Lock()

    def get(self, stream: str, partition: int) -> int:
        with self._lock:
            row = self._db.execute("SELECT seq FROM applied WHERE stream = ? AND partition = ?",
                                   (stream, partition)).fetchone()
        return int(row[0]) if row else 0

    def set(self, stream: str, partition: int, seq: int) -> None:
        with self._lock:
            self._db.execute("INSERT INTO applied VALUES (?, ?, ?) ON CONFLICT (stream, partition) "
                             "DO UPDATE SET seq = max(seq, excluded.seq)", (stream, partition, seq))

    def close(self) -> None:
        with self._lock:
            self._db.close()


class WriterRole:
    """Stores the ``writer`` group's batches in this node's event store, once per position."""

    def __init__(self, bus: Any, store: Any, deadletters: Any, data_dir: Path):
        self.bus = bus
        self.store = store
        self.deadletters = deadletters
        self.applied = _Applied(Path(data_dir) / "bus-writer.db")
        self.stored = 0
        self.skipped = 0
        self.rejected = 0

    async def handle(self, batch: Batch) -> None:
        await asyncio.to_thread(self._write, batch)

    def _write(self, batch: Batch) -> None:
        stream = self.bus.stream
        upto = self.applied.get(stream, batch.partition)
        fresh = [r for r, pos in zip(batch.records, batch.positions) if pos > upto]
        self.skipped += len(batch.records) - len(fresh)
        if fresh:
            report = self.store.ingest([r.event for r in fresh])
            self.stored += report.stored
            if report.errors:
                self.rejected += len(report.errors)
                self.deadletters.put([
                    DeadLetter(stage="store", reason=e.reason, raw=orjson.dumps(fresh[e.index].event),
                               source=f"bus:{fresh[e.index].source}", time=utc_now_iso(),
                               meta={"format": "ecs", "bus_id": fresh[e.index].id})
                    for e in report.errors])
        if batch.positions:
            self.applied.set(stream, batch.partition, batch.positions[-1])

    def counters(self) -> dict[str, int]:
        return {"received": self.stored + self.skipped + self.rejected, "emitted": self.stored,
                "errors": self.rejected, "dropped": 0, "duplicates_skipped": self.skipped}


def detection_items(found: Sequence[Detection], batch: Batch) -> list[tuple[str, bytes]]:
    """``(idempotency key, payload)`` for each detection of one batch.

    The key is the rule, its group, the partition, the batch's bus positions and the
    detection's rank among that rule's detections in the batch: handling the same batch
    again (a redelivery) gives the same keys, which the alert stream stores once."""
    first, last = (batch.positions[0], batch.positions[-1]) if batch.positions else (0, 0)
    rank: dict[tuple[str, str], int] = collections.Counter()
    out = []
    for det in found:
        k = (det.rule_id, det.group_key or "")
        rank[k] += 1
        raw = f"{det.rule_id}\x1f{det.group_key or ''}\x1f{batch.partition}\x1f{first}-{last}\x1f{rank[k]}"
        key = hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()[:32]
        out.append((key, orjson.dumps(dataclasses.asdict(det), default=str)))
    return out


def detection_from(payload: bytes) -> Detection:
    """The :class:`Detection` a detector node published (:func:`detection_items`)."""
    d = orjson.loads(payload)
    return Detection(**{f.name: d[f.name] for f in dataclasses.fields(Detection) if f.name in d})


class AlertRecording:
    """The ``api`` role's end of the alert stream: records detections in this node's alert store."""

    def __init__(self, alert_sink: Any):
        self.alert_sink = alert_sink
        self.recorded = 0

    async def handle(self, payloads: list[bytes]) -> None:
        dets = [detection_from(p) for p in payloads]
        await asyncio.to_thread(self.alert_sink.emit, dets)  # dedupe/folding/incidents as on one machine
        self.recorded += len(dets)


@dataclass
class _Marks:
    """Per owned partition: (wall time, first stream sequence) of each handled batch."""

    batches: collections.deque[tuple[float, int]] = field(default_factory=lambda: collections.deque(maxlen=100_000))


class DetectorRole:
    """Runs the detectors over the ``detector`` group's partitions; alerts before the ack."""

    def __init__(self, bus: Any, detectors: Sequence[Detector], settings: BusSettings):
        self.bus = bus
        self.detectors = list(detectors)
        self.settings = settings
        self._lock = threading.Lock()  # detectors keep state: one batch at a time through them
        self._marks: dict[int, _Marks] = {}
        self.events = 0
        self.detections = 0
        self.replayed = 0
        self.errors = 0
        self.handovers = 0

    def _run(self, events: Sequence[Event]) -> list[Detection]:
        found: list[Detection] = []
        with self._lock:
            for ev in events:
                for det in self.detectors:
                    try:
                        found.extend(det.process(ev))
                    except Exception:
                        self.errors += 1
                        log.exception("detector %s failed on a bus event", getattr(det, "name", det))
        return found

    async def handle(self, batch: Batch) -> None:
        found = await asyncio.to_thread(self._run, [r.event for r in batch.records])
        self.events += len(batch.records)
        if found:  # stored on the alert stream before the bus acks the batch
            await self.bus.publish_alerts(detection_items(found, batch))
            self.detections += len(found)
        if batch.positions:
            self._marks.setdefault(batch.partition, _Marks()).batches.append((time.time(), batch.positions[0]))

    def replay_from(self, partition: int, now: float | None = None) -> int | None:
        """The first stream sequence of this partition inside the replay window, if any."""
        marks = self._marks.get(partition)
        if marks is None:
            return None
        horizon = (now or time.time()) - self.settings.replay_window_s
        while marks.batches and marks.batches[0][0] < horizon:
            marks.batches.popleft()
        return marks.batches[0][1] if marks.batches else None

    async def save_checkpoints(self, owned: frozenset[int]) -> None:
        for p in owned:
            seq = self.replay_from(p)
            if seq is not None:
                await self.bus.save_checkpoint("detector", p, orjson.dumps({"replay_from": seq, "time": time.time()}))

    async def on_ownership(self, assigned: frozenset[int], revoked: frozenset[int]) -> None:
        for p in revoked:
            self._marks.pop(p, None)
        if not assigned:
            return
        lag = await self.bus.consumer_lag("detector")
        for p in sorted(assigned):
            self.handovers += 1
            blob = await self.bus.load_checkpoint("detector", p)
            acked = lag.get(p, {}).get("acked_seq", 0)
            if not blob or not acked:
                continue
            cp = orjson.loads(blob)
            if time.time() - float(cp.get("time", 0)) > self.settings.replay_window_s:
                continue
            records = await self.bus.fetch_partition(p, int(cp["replay_from"]), acked)
            if records:
                await asyncio.to_thread(self._run, [r.event for _, r in records])  # state only: alerts exist
                self.replayed += len(records)
                self._marks.setdefault(p, _Marks()).batches.append((float(cp["time"]), records[0][0]))
            log.info("detector took partition %d: replayed %d records (seq %s..%d) to rebuild its state",
                     p, len(records), cp["replay_from"], acked)

    def counters(self) -> dict[str, int]:
        return {"received": self.events, "emitted": self.detections, "errors": self.errors, "dropped": 0,
                "replayed": self.replayed, "handovers": self.handovers}


@dataclass
class Cluster:
    """This node's part of the cluster: the bus, its roles and their memberships."""

    bus: Any
    node: str
    roles: frozenset[str]
    publisher: BusPublisher | None = None
    writer: WriterRole | None = None
    detector: DetectorRole | None = None
    recording: AlertRecording | None = None
    alert_consumer: Any = None
    memberships: list[Any] = field(default_factory=list)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def counters(self) -> dict[str, int]:
        """One flat view for ``/metrics`` (a source entry named ``bus``)."""
        out: dict[str, int] = {"received": 0, "emitted": 0, "errors": 0, "dropped": 0}
        if self.publisher is not None:
            out["published"] = self.publisher.published
            out["publish_failures"] = self.publisher.failed
            if self.publisher.spool is not None:
                out.update(self.publisher.spool.counters())
        for m in self.memberships:
            st = m.stats()
            out[f"{st.group}_owned_partitions"] = len(st.owned)
            out[f"{st.group}_lag"] = sum(st.lag.values())
            out[f"{st.group}_delivered"] = st.delivered
            out[f"{st.group}_redelivered"] = st.redelivered
            out[f"{st.group}_acked"] = st.acked
        if self.writer is not None:
            w = self.writer.counters()
            out["writer_stored"], out["writer_duplicates_skipped"] = w["emitted"], w["duplicates_skipped"]
        if self.detector is not None:
            d = self.detector.counters()
            out["detector_detections"], out["detector_replayed"] = d["emitted"], d["replayed"]
            out["detector_handovers"] = d["handovers"]
            out["alerts_published"] = self.bus.alerts_published
        if self.recording is not None:
            out["alerts_recorded"] = self.recording.recorded
        out["received"] = out.get("writer_delivered", 0) + out.get("detector_delivered", 0)
        out["emitted"] = out.get("published", 0)
        out["errors"] = out.get("publish_failures", 0)
        return out

    async def _checkpoint_loop(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            if self.detector is None:
                continue
            for m in self.memberships:
                if m.stats().group == "detector":
                    try:
                        await self.detector.save_checkpoints(m.owned)
                    except Exception:
                        log.exception("detector checkpoint failed; will retry")

    async def close(self) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        if self.detector is not None:
            for m in self.memberships:
                if m.stats().group == "detector":
                    with contextlib.suppress(Exception):
                        await self.detector.save_checkpoints(m.owned)
        if self.alert_consumer is not None:
            await self.alert_consumer.stop()
        await self.bus.close()  # leaves every group: the others take the partitions at once
        if self.writer is not None:
            self.writer.applied.close()
        if self.publisher is not None and self.publisher.spool is not None:
            self.publisher.spool.spool.close()


def spool_full_detection(node: str, started: float, spool: SegmentSpool) -> Detection:
    """``bus:spool_full``: a district collector's spool refused events (once per episode)."""
    ev: Event = {"@timestamp": utc_now_iso(), "message": f"bus spool of {node} full: refusing the newest events",
                 "event": {"kind": "alert", "category": ["host"], "dataset": "citysoc.bus", "module": "citysoc"},
                 "host": {"name": node},
                 "citysoc": {"spool": {"node": node, "max_bytes": spool.max_bytes, "bytes": spool.bytes,
                                       "events": spool.events, "dropped": spool.dropped}}}
    return Detection(
        rule_id="bus:spool_full", title=f"District collector spool full: {node}", level="high", events=[ev],
        tags=["citysoc.bus-health"], engine="bus", group_key=f"spool_full:{node}:{int(started * 1000)}",
        description=(f"{node} cannot reach the core and its spool ({spool.max_bytes} bytes) is full: it refuses "
                     "new events (counted in citysoc_bus_spool_dropped_total) until the link returns. Restore "
                     "the district link, or raise bus.spool_max_bytes if outages this long are expected."))


def _district_spool(bus: Any, settings: Any, node: str, alert_sink: Any, *, local_alert: bool) -> SpooledPublisher:
    bs: BusSettings = settings.bus
    spool = SegmentSpool(Path(settings.data) / "spool", bs.spool_max_bytes)
    sp: SpooledPublisher

    def on_full(started: float) -> None:
        det = spool_full_detection(node, started, spool)
        if local_alert:  # this node's own console sees it during the outage
            alert_sink.emit([det])
        items = detection_items([det], Batch(group="collector", partition=0, records=[]))
        sp.after_drain.append(lambda: bus.publish_alerts(items))  # the core's, once the link is back

    sp = SpooledPublisher(bus, asyncio.get_running_loop(), spool, timeout_s=bs.publish_timeout_s,
                          connected=lambda: bool(bus.nc.is_connected), on_full=on_full)
    return sp


async def start_cluster(settings: Any, *, store: Any, deadletters: Any, detectors: Sequence[Detector],
                        alert_sink: Any) -> Cluster:
    """Connect to NATS and start this node's roles (``settings.bus``)."""
    from bus.nats import NatsBus

    bs: BusSettings = settings.bus
    node = node_name(bs, settings.server.port)
    prefix = "citysoc.events" if bs.stream == "CITYSOC_EVENTS" else f"citysoc.{bs.stream}.events"
    bus = await NatsBus.connect(bs.servers, partitions=bs.partitions, replicas=bs.replicas, stream=bs.stream,
                                lease_s=bs.lease_s, publish_timeout_s=bs.publish_timeout_s, name=node,
                                subject_prefix=prefix)
    roles = frozenset(bs.roles)
    c = Cluster(bus=bus, node=node, roles=roles)
    try:
        if "collector" in roles:
            spool = (_district_spool(bus, settings, node, alert_sink, local_alert="api" not in roles)
                     if bs.spool else None)
            c.publisher = BusPublisher(bus, asyncio.get_running_loop(), node, timeout_s=bs.publish_timeout_s,
                                       spool=spool)
            if spool is not None:
                c._tasks.append(asyncio.create_task(spool.run(), name="bus-spool-forward"))
        if "writer" in roles:
            c.writer = WriterRole(bus, store, deadletters, settings.data)
            c.memberships.append(await bus.join("writer", node, c.writer.handle))
        if "detector" in roles:
            c.detector = DetectorRole(bus, detectors, bs)
            c.memberships.append(await bus.join("detector", node, c.detector.handle, c.detector.on_ownership))
            c._tasks.append(asyncio.create_task(c._checkpoint_loop(bs.checkpoint_interval_s), name="bus-checkpoints"))
        if "api" in roles:  # this node holds the alert store: it records every node's detections
            c.recording = AlertRecording(alert_sink)
            c.alert_consumer = await bus.consume_alerts(c.recording.handle)
    except BaseException:
        await c.close()
        raise
    log.info("cluster node %s: roles %s on %s (%d partitions)", node, ",".join(sorted(roles)), bs.servers,
             bs.partitions)
    return c
