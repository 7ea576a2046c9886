"""The NATS JetStream bus: :class:`core.bus.EventBus` over a replicated stream.

Layout (all names derive from ``stream``, default ``CITYSOC_EVENTS``):

* **Stream** ``CITYSOC_EVENTS``, subjects ``citysoc.events.<partition>``, file storage,
  ``replicas`` copies (R3 in tests and production). A record is one message: JSON
  ``{"id", "src", "ev"}`` with header ``Nats-Msg-Id: <id>``, so a collector's retry of a
  batch inside the duplicate window is stored once.
* **Consumers**: one durable pull consumer per (group, partition), ``<group>-p<N>``,
  filtered on that partition's subject, ``AckPolicy.ALL``: the owner acknowledges the last
  message of a batch once its handler returned (acks wait for the server's confirmation).
* **Alert stream** ``<stream>_ALERTS``, subject ``citysoc.alerts.<stream>``: detectors
  publish each detection with header ``Nats-Msg-Id: <idempotency key>`` (rule, partition,
  bus positions), so a redelivered batch's detections are stored once; the node holding
  the alert store consumes them through one durable consumer ``alert-recorder``.
* **KV bucket** ``<stream>_leases`` (TTL = ``lease_s``): ``m.<group>.<member>`` is a
  member's heartbeat (with its owned partitions and lag, for ``citysoc cluster status``);
  ``l.<group>.<partition>`` is the partition's lock, holding the owner's name.
* **KV bucket** ``<stream>_checkpoints`` (no TTL): ``<group>.<partition>`` -> the group's
  checkpoint blob for that partition.

Ownership protocol (every member runs it every ``lease_s / 4``):

1. Refresh its heartbeat key. Live members of the group are the heartbeat keys present
   (a dead member's key expires after ``lease_s``).
2. Desired partitions: those whose rendezvous hash (CRC-32 of member name and partition)
   is highest for this member among the live members. Every member computes the same
   answer, and a join or a death moves only the partitions that must move.
3. Refresh each held lock with a compare-and-set on its revision; a lock lost that way
   (this member was presumed dead) is dropped at once.
4. Release held partitions that are no longer desired: stop after the batch in hand,
   then delete the lock.
5. Acquire desired partitions whose lock is free (``create`` succeeds only on an absent
   key: a live owner's lock or a dead one's not yet expired lock blocks it). Before
   consuming, the new owner re-creates the partition's consumer to start at the old
   consumer's ack floor + 1, so what the previous owner had in hand but did not acknowledge
   is delivered again, in order, and it calls ``on_ownership`` so the member rebuilds the
   partition's state first.

At most one member consumes a partition at a time (the lock); the only overlap is a
member that stalls longer than a lease while holding a batch: its ack then lands on a
re-created consumer and is ignored, the batch is redelivered, and the consumers'
idempotency (event ids, alert idempotency keys) absorbs it.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import zlib
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import nats
import nats.errors
import nats.js.errors
import orjson
from nats.js import api

from core.bus import Batch, BatchHandler, BusRecord, BusStats, BusUnavailable, OwnershipHandler

__all__ = ["NatsBus", "NatsMembership", "AlertConsumer", "owner_of"]

log = logging.getLogger("citysoc.bus.nats")


def owner_of(partition: int, members: Sequence[str]) -> str | None:
    """Rendezvous (highest random weight) owner of ``partition`` among ``members``."""
    best: tuple[int, str] | None = None
    for m in members:
        w = zlib.crc32(f"{m}\x1f{partition}".encode())
        if best is None or (w, m) > best:
            best = (w, m)
    return best[1] if best else None


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)[:100] or "_"


def encode(record: BusRecord) -> bytes:
    return orjson.dumps({"id": record.id, "src": record.source, "ev": record.event})


def decode(data: bytes, partition: int) -> BusRecord:
    d = orjson.loads(data)
    return BusRecord(id=d["id"], partition=partition, event=d["ev"], source=d.get("src", ""))


class NatsBus:
    """:class:`core.bus.EventBus` over NATS JetStream; build it with :meth:`connect`."""

    def __init__(self, nc: Any, js: Any, *, partitions: int, replicas: int, stream: str, lease_s: float,
                 publish_timeout_s: float, fetch_batch: int, subject_prefix: str = "citysoc.events"):
        self.nc = nc
        self.js = js
        self._partitions = partitions
        self.replicas = replicas
        self.stream = stream
        self.lease_s = lease_s
        self.publish_timeout_s = publish_timeout_s
        self.fetch_batch = fetch_batch
        self.prefix = subject_prefix
        self.alert_stream = f"{stream}_ALERTS"
        self.alert_subject = f"citysoc.alerts.{stream}"
        self.alerts_published = 0
        self.leases: Any = None
        self.checkpoints: Any = None
        self.published = 0
        self.publish_failures = 0
        self._members: list[NatsMembership] = []

    @classmethod
    async def connect(cls, servers: Sequence[str], *, partitions: int = 16, replicas: int = 3,
                      stream: str = "CITYSOC_EVENTS", lease_s: float = 10.0, publish_timeout_s: float = 10.0,
                      fetch_batch: int = 500, setup_timeout_s: float = 60.0, name: str | None = None,
                      max_bytes: int = -1, max_age_s: float = 7 * 86400,
                      subject_prefix: str = "citysoc.events") -> NatsBus:
        """Connect and make sure the stream and KV buckets exist (waits for JetStream to be ready)."""
        nc = await nats.connect(servers=list(servers), name=name, connect_timeout=2, reconnect_time_wait=0.5,
                                max_reconnect_attempts=-1, allow_reconnect=True)
        js = nc.jetstream(timeout=5)
        bus = cls(nc, js, partitions=partitions, replicas=replicas, stream=stream, lease_s=lease_s,
                  publish_timeout_s=publish_timeout_s, fetch_batch=fetch_batch, subject_prefix=subject_prefix)
        deadline = time.monotonic() + setup_timeout_s
        while True:
            try:
                await bus._setup(max_bytes=max_bytes, max_age_s=max_age_s)
                return bus
            except nats.js.errors.BadRequestError as exc:
                if not _placement_pending(exc):  # a config the cluster refuses: no retry helps
                    await nc.close()
                    raise BusUnavailable(f"JetStream refused stream {stream!r}: {exc.description}") from exc
                # Peers still joining (nodes started together): wait for them like for a meta leader.
                if time.monotonic() > deadline:
                    await nc.close()
                    raise BusUnavailable(f"JetStream refused stream {stream!r}: {exc.description} "
                                         f"(waited {setup_timeout_s:.0f} s for {replicas} peers)") from exc
                await asyncio.sleep(0.5)
            except Exception as exc:  # JetStream not ready yet (no meta leader), or a transient error
                if time.monotonic() > deadline:
                    await nc.close()
                    raise BusUnavailable(f"JetStream not ready at {list(servers)}: {exc!r}") from exc
                await asyncio.sleep(0.5)

    async def _setup(self, *, max_bytes: int, max_age_s: float) -> None:
        cfg = api.StreamConfig(name=self.stream, subjects=[f"{self.prefix}.*"], storage=api.StorageType.FILE,
                               num_replicas=self.replicas, duplicate_window=120.0, max_bytes=max_bytes,
                               max_age=max_age_s, retention=api.RetentionPolicy.LIMITS)
        try:
            await self.js.stream_info(self.stream)
        except nats.js.errors.NotFoundError:
            await self.js.add_stream(cfg)
        acfg = api.StreamConfig(name=self.alert_stream, subjects=[self.alert_subject], storage=api.StorageType.FILE,
                                num_replicas=self.replicas, duplicate_window=600.0, max_age=max_age_s,
                                retention=api.RetentionPolicy.LIMITS)
        try:
            await self.js.stream_info(self.alert_stream)
        except nats.js.errors.NotFoundError:
            await self.js.add_stream(acfg)
        self.leases = await self._kv(f"{self.stream}_leases", ttl=self.lease_s)
        self.checkpoints = await self._kv(f"{self.stream}_checkpoints", ttl=None)

    async def _kv(self, bucket: str, ttl: float | None) -> Any:
        try:
            return await self.js.key_value(bucket)
        except (nats.js.errors.BucketNotFoundError, nats.js.errors.NotFoundError):
            return await self.js.create_key_value(bucket=bucket, history=1, ttl=ttl, replicas=self.replicas,
                                                  storage=api.StorageType.FILE)

    # -- EventBus ----------------------------------------------------------------------
    @property
    def partitions(self) -> int:
        return self._partitions

    async def publish(self, records: Sequence[BusRecord]) -> None:
        if not records:
            return
        futures = []
        try:
            for r in records:
                if not 0 <= r.partition < self._partitions:
                    raise ValueError(f"partition {r.partition} outside 0..{self._partitions - 1}")
                futures.append(await self.js.publish_async(f"{self.prefix}.{r.partition}", encode(r),
                                                           wait_stall=self.publish_timeout_s,
                                                           headers={"Nats-Msg-Id": r.id}))
            await asyncio.wait_for(asyncio.gather(*futures), self.publish_timeout_s)
        except ValueError:
            raise
        except Exception as exc:
            for f in futures:
                if not f.done():
                    f.cancel()
            self.publish_failures += len(records)
            raise BusUnavailable(f"JetStream did not store the batch: {exc!r}") from exc
        self.published += len(records)

    async def publish_alerts(self, items: Sequence[tuple[str, bytes]]) -> None:
        """Store detections durably: ``(idempotency key, payload)`` each; raise :class:`BusUnavailable` if not.

        JetStream drops a payload whose key it stored within the duplicate window (600 s), so
        a detector that handles a redelivered batch again cannot raise its alerts twice."""
        if not items:
            return
        futures = []
        try:
            for key, payload in items:
                futures.append(await self.js.publish_async(self.alert_subject, payload,
                                                           wait_stall=self.publish_timeout_s,
                                                           headers={"Nats-Msg-Id": key}))
            await asyncio.wait_for(asyncio.gather(*futures), self.publish_timeout_s)
        except Exception as exc:
            for f in futures:
                if not f.done():
                    f.cancel()
            raise BusUnavailable(f"JetStream did not store the detections: {exc!r}") from exc
        self.alerts_published += len(items)

    async def consume_alerts(self, handler: Callable[[list[bytes]], Awaitable[None]]) -> AlertConsumer:
        """Hand stored detections to ``handler`` in order, acknowledging each batch after it returned."""
        c = AlertConsumer(self, handler)
        await c.start()
        return c

    async def join(self, group: str, member: str, handler: BatchHandler,
                   on_ownership: OwnershipHandler | None = None) -> NatsMembership:
        m = NatsMembership(self, group, member, handler, on_ownership)
        await m.start()
        self._members.append(m)
        return m

    async def load_checkpoint(self, group: str, partition: int) -> bytes | None:
        try:
            e = await self.checkpoints.get(f"{_safe(group)}.{partition}")
        except nats.js.errors.KeyNotFoundError:
            return None
        return bytes(e.value) if e.value is not None else None

    async def save_checkpoint(self, group: str, partition: int, data: bytes) -> None:
        await self.checkpoints.put(f"{_safe(group)}.{partition}", data)

    async def close(self) -> None:
        for m in list(self._members):
            await m.leave()
        with contextlib.suppress(Exception):
            await self.nc.drain()

    # -- operations --------------------------------------------------------------------
    async def live_members(self, group: str) -> dict[str, dict[str, Any]]:
        """Heartbeats of ``group``'s live members: member -> what it last reported."""
        prefix = f"m.{_safe(group)}."
        out: dict[str, dict[str, Any]] = {}
        try:
            keys = await self.leases.keys()
        except nats.js.errors.NoKeysError:
            return out
        for k in keys:
            if not k.startswith(prefix):
                continue
            try:
                e = await self.leases.get(k)
            except nats.js.errors.KeyNotFoundError:
                continue
            if e.value:
                info = orjson.loads(e.value)
                out[info.get("member", k[len(prefix):])] = info
        return out

    async def partition_owners(self, group: str) -> dict[int, str]:
        out: dict[int, str] = {}
        for p in range(self._partitions):
            try:
                e = await self.leases.get(f"l.{_safe(group)}.{p}")
            except nats.js.errors.KeyNotFoundError:
                continue
            if e.value:
                out[p] = bytes(e.value).decode()
        return out

    async def consumer_lag(self, group: str) -> dict[int, dict[str, int]]:
        """Per partition: messages not yet delivered, delivered but unacknowledged, redelivered."""
        out: dict[int, dict[str, int]] = {}
        for p in range(self._partitions):
            try:
                ci = await self.js.consumer_info(self.stream, f"{_safe(group)}-p{p}")
            except nats.js.errors.NotFoundError:
                continue
            out[p] = {"pending": int(ci.num_pending or 0), "ack_pending": int(ci.num_ack_pending or 0),
                      "redelivered": int(ci.num_redelivered or 0),
                      "acked_seq": int(ci.ack_floor.stream_seq if ci.ack_floor else 0)}
        return out

    async def stream_state(self) -> dict[str, Any]:
        si = await self.js.stream_info(self.stream)
        cl = si.cluster
        return {"messages": si.state.messages, "bytes": si.state.bytes, "first_seq": si.state.first_seq,
                "last_seq": si.state.last_seq, "leader": cl.leader if cl else None,
                "replicas": [{"name": r.name, "current": r.current, "lag": r.lag} for r in (cl.replicas or [])]
                if cl else []}

    async def fetch_partition(self, partition: int, start_seq: int, end_seq: int) -> list[tuple[int, BusRecord]]:
        """Records of ``partition`` with stream sequence in [start_seq, end_seq], in order (for rebuilds)."""
        if end_seq < start_seq:
            return []
        cfg = api.ConsumerConfig(deliver_policy=api.DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=max(1, start_seq),
                                 ack_policy=api.AckPolicy.NONE, filter_subject=f"{self.prefix}.{partition}",
                                 inactive_threshold=30.0, mem_storage=True, num_replicas=1)
        sub = await self.js.pull_subscribe(f"{self.prefix}.{partition}", stream=self.stream, config=cfg)
        out: list[tuple[int, BusRecord]] = []
        try:
            while True:
                try:
                    msgs = await sub.fetch(self.fetch_batch, timeout=1.0)
                except TimeoutError:  # nats-py raises its own subclass or a bare asyncio one
                    break
                done = False
                for m in msgs:
                    seq = m.metadata.sequence.stream
                    if seq > end_seq:
                        done = True
                        break
                    out.append((seq, decode(m.data, partition)))
                if done or (msgs and msgs[-1].metadata.num_pending == 0):
                    break
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
        return out


class NatsMembership:
    """One member of a consumer group: heartbeat, locks, one consuming task per owned partition."""

    def __init__(self, bus: NatsBus, group: str, member: str, handler: BatchHandler,
                 on_ownership: OwnershipHandler | None):
        self.bus = bus
        self.group = _safe(group)
        self.member = _safe(member)
        self.handler = handler
        self.on_ownership = on_ownership
        self._locks: dict[int, int] = {}  # partition -> lock revision
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._stopping: dict[int, asyncio.Event] = {}
        self._lag: dict[int, int] = {}
        self._redeliver_upto: dict[int, int] = {}
        self._loop_task: asyncio.Task[None] | None = None
        self._closed = False
        self.delivered = 0
        self.redelivered = 0
        self.acked = 0
        self.handler_errors = 0
        self.moves = 0

    @property
    def owned(self) -> frozenset[int]:
        return frozenset(self._tasks)

    def stats(self) -> BusStats:
        return BusStats(group=self.group, member=self.member, owned=self.owned,
                        lag={p: self._lag.get(p, 0) for p in self._tasks}, delivered=self.delivered,
                        redelivered=self.redelivered, acked=self.acked)

    async def start(self) -> None:
        await self._tick()
        self._loop_task = asyncio.create_task(self._run(), name=f"bus-{self.group}-{self.member}")

    async def _run(self) -> None:
        while not self._closed:
            await asyncio.sleep(self.bus.lease_s / 4)
            try:
                await self._tick()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("ownership round failed for %s/%s; retrying", self.group, self.member)

    def _heartbeat(self) -> bytes:
        return orjson.dumps({"member": self.member, "group": self.group, "owned": sorted(self._tasks),
                             "lag": {str(p): v for p, v in self._lag.items() if p in self._tasks},
                             "delivered": self.delivered, "redelivered": self.redelivered, "acked": self.acked,
                             "time": time.time()})

    async def _tick(self) -> None:
        kv = self.bus.leases
        await kv.put(f"m.{self.group}.{self.member}", self._heartbeat())
        members = sorted(await self.bus.live_members(self.group)) or [self.member]
        if self.member not in members:
            members.append(self.member)
        desired = {p for p in range(self.bus.partitions) if owner_of(p, members) == self.member}
        lost: set[int] = set()
        for p, rev in list(self._locks.items()):
            try:
                self._locks[p] = await kv.update(f"l.{self.group}.{p}", self.member.encode(), last=rev)
            except nats.js.errors.KeyWrongLastSequenceError:
                lost.add(p)
        release = (set(self._locks) - desired) | lost
        if release:
            await self._stop_partitions(release, keep_lock=lost)
        assigned: set[int] = set()
        for p in sorted(desired - set(self._locks)):
            try:
                self._locks[p] = await kv.create(f"l.{self.group}.{p}", self.member.encode())
                assigned.add(p)
            except nats.js.errors.KeyWrongLastSequenceError:
                continue  # still held by its previous owner (alive, or dead and not yet expired)
        if release and self.on_ownership is not None:
            await self.on_ownership(frozenset(), frozenset(release))
        if assigned:
            if self.on_ownership is not None:
                try:
                    await self.on_ownership(frozenset(assigned), frozenset())
                except Exception:
                    # Not ready to own them (e.g. the replay fetch failed under load): give
                    # the locks back so a later round, here or on another member, takes them
                    # again. Keeping a lock without a consumer would leave them unread.
                    for p in assigned:
                        rev = self._locks.pop(p, None)
                        if rev is not None:
                            with contextlib.suppress(Exception):
                                await kv.delete(f"l.{self.group}.{p}", last=rev)
                    raise
            self.moves += len(assigned)
            for p in sorted(assigned):
                self._stopping[p] = asyncio.Event()
                self._tasks[p] = asyncio.create_task(self._consume(p), name=f"bus-{self.group}-p{p}")
            log.info("%s/%s took partitions %s", self.group, self.member, sorted(assigned))
        if assigned or release:
            await kv.put(f"m.{self.group}.{self.member}", self._heartbeat())

    async def _stop_partitions(self, parts: set[int], *, keep_lock: set[int] = frozenset()) -> None:  # type: ignore[assignment]
        for p in parts:
            ev = self._stopping.get(p)
            if ev is not None:
                ev.set()
        for p in parts:
            t = self._tasks.pop(p, None)
            if t is not None:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await asyncio.wait_for(t, 30.0)
            self._stopping.pop(p, None)
            rev = self._locks.pop(p, None)
            if rev is not None and p not in keep_lock:
                with contextlib.suppress(Exception):
                    await self.bus.leases.delete(f"l.{self.group}.{p}", last=rev)
        if parts:
            log.info("%s/%s released partitions %s", self.group, self.member, sorted(parts))

    async def _reset_consumer(self, p: int) -> Any:
        """Re-create ``<group>-p<N>`` to start right after its ack floor (see the module docstring)."""
        js, stream = self.bus.js, self.bus.stream
        name = f"{self.group}-p{p}"
        start = 1
        try:
            ci = await js.consumer_info(stream, name)
            start = int(ci.ack_floor.stream_seq or 0) + 1 if ci.ack_floor else 1
            if start == 1 and ci.config.opt_start_seq:
                start = int(ci.config.opt_start_seq)
            # Whatever the old consumer delivered past its ack floor comes again: flag it.
            self._redeliver_upto[p] = max(self._redeliver_upto.get(p, 0), int(ci.delivered.stream_seq or 0)
                                          if ci.delivered else 0)
            await js.delete_consumer(stream, name)
        except nats.js.errors.NotFoundError:
            pass
        cfg = api.ConsumerConfig(durable_name=name, ack_policy=api.AckPolicy.ALL, ack_wait=max(30.0, self.bus.lease_s * 3),
                                 max_ack_pending=-1, filter_subject=f"{self.bus.prefix}.{p}",
                                 deliver_policy=api.DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=start,
                                 num_replicas=self.bus.replicas)
        await js.add_consumer(stream, cfg)
        return await js.pull_subscribe_bind(durable=name, stream=stream)

    async def _consume(self, p: int) -> None:
        stop = self._stopping[p]
        sub = None
        while not stop.is_set():
            try:
                if sub is None:
                    sub = await self._reset_consumer(p)
                try:
                    msgs = await sub.fetch(self.bus.fetch_batch, timeout=0.5)
                except TimeoutError:  # nats-py raises its own subclass or a bare asyncio one
                    self._lag[p] = 0
                    continue
                if not msgs:
                    continue
                records = [decode(m.data, p) for m in msgs]
                positions = [m.metadata.sequence.stream for m in msgs]
                upto = self._redeliver_upto.get(p, 0)
                again = sum(1 for m, seq in zip(msgs, positions) if seq <= upto or (m.metadata.num_delivered or 1) > 1)
                batch = Batch(group=self.group, partition=p, records=records, redelivered=again > 0,
                              positions=positions)
                self.delivered += len(msgs)
                self.redelivered += again
                await self.handler(batch)
                await msgs[-1].ack_sync(timeout=10)
                self.acked += len(msgs)
                self._lag[p] = int(msgs[-1].metadata.num_pending or 0)
            except asyncio.CancelledError:
                raise
            except Exception:
                # The handler failed or the server went away: start again from the ack floor,
                # so the batch is redelivered in order.
                self.handler_errors += 1
                log.exception("%s partition %d: batch not acknowledged; redelivering", self.group, p)
                if sub is not None:
                    with contextlib.suppress(Exception):
                        await sub.unsubscribe()
                sub = None
                await asyncio.sleep(0.5)
        if sub is not None:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    async def leave(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._loop_task
        parts = set(self._tasks)
        with contextlib.suppress(Exception):
            await self._stop_partitions(parts)
        with contextlib.suppress(Exception):
            await self.bus.leases.delete(f"m.{self.group}.{self.member}")
        if parts and self.on_ownership is not None:
            with contextlib.suppress(Exception):
                await self.on_ownership(frozenset(), frozenset(parts))
        if self in self.bus._members:
            self.bus._members.remove(self)


class AlertConsumer:
    """The alert store's side of the alert stream: one durable consumer, ack after recording."""

    NAME = "alert-recorder"

    def __init__(self, bus: NatsBus, handler: Callable[[list[bytes]], Awaitable[None]]):
        self.bus = bus
        self.handler = handler
        self.received = 0
        self.errors = 0
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        cfg = api.ConsumerConfig(durable_name=self.NAME, ack_policy=api.AckPolicy.ALL, ack_wait=60.0,
                                 max_ack_pending=-1, filter_subject=self.bus.alert_subject,
                                 deliver_policy=api.DeliverPolicy.ALL, num_replicas=self.bus.replicas)
        try:
            await self.bus.js.consumer_info(self.bus.alert_stream, self.NAME)
        except nats.js.errors.NotFoundError:
            await self.bus.js.add_consumer(self.bus.alert_stream, cfg)
        self._task = asyncio.create_task(self._run(), name="bus-alert-recorder")

    async def _run(self) -> None:
        sub = None
        while True:
            msgs: list[Any] = []
            try:
                if sub is None:
                    sub = await self.bus.js.pull_subscribe_bind(durable=self.NAME, stream=self.bus.alert_stream)
                try:
                    msgs = await sub.fetch(self.bus.fetch_batch, timeout=0.5)
                except TimeoutError:  # nats-py raises its own subclass or a bare asyncio one
                    continue
                if not msgs:
                    continue
                await self.handler([bytes(m.data) for m in msgs])
                await msgs[-1].ack_sync(timeout=10)
                self.received += len(msgs)
            except asyncio.CancelledError:
                raise
            except Exception:
                self.errors += 1
                log.exception("alert stream: batch not recorded; it comes again")
                for m in msgs:
                    with contextlib.suppress(Exception):
                        await m.nak()
                if sub is not None:
                    with contextlib.suppress(Exception):
                        await sub.unsubscribe()
                sub = None
                await asyncio.sleep(0.5)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task


def _placement_pending(exc: Any) -> bool:
    """JetStream's "no suitable peers for placement" (a replica peer not online yet): seen in
    CI when a node started while its three-server cluster was still forming. Transient,
    unlike the other bad requests (a stream config the cluster refuses)."""
    text = str(getattr(exc, "description", "") or "").lower()
    return "no suitable peers" in text or "peer offline" in text
