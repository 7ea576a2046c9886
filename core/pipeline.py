"""The pipeline runtime: parse -> enrich -> store -> detect, joined by bounded queues.

Sources call :meth:`Pipeline.submit` with raw records. Each stage takes batches from a
queue whose capacity is counted in *events*; when it is full, ``submit`` waits, so a slow
store slows TCP and HTTP senders instead of dropping what they sent (backpressure).
``submit(..., wait=True)`` returns only after the records are committed by the store,
which is what lets the HTTP ingest and ``_bulk`` endpoints acknowledge a sender honestly.

Work that costs CPU or blocks (parsing, SQLite, rule matching) runs in worker threads
(``asyncio.to_thread``), keeping the event loop free for sockets and the API.

Anything that fails a stage is written to the dead-letter store with the stage, the
reason and the raw input, and counted; nothing is dropped silently.

Example::

    pipeline = Pipeline(store=store, deadletters=dl, parse=parse_record)
    await pipeline.start()
    result = await pipeline.submit([RawRecord(b'{"message": "hi"}', format="ndjson")], wait=True)
    await pipeline.stop()
"""
from __future__ import annotations

import asyncio
import logging
import time
import traceback
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from core.events import Event, drop_encoded, stamp, utc_now_iso
from core.metrics import StageCounters
from core.workers import ParseWorkers, ParsedChunk
from core.protocols import (
    AlertSink,
    BatchDetector,
    DeadLetter,
    DeadLetterStore,
    Detection,
    Detector,
    EventStore,
    ItemError,
    RawRecord,
)

__all__ = ["Pipeline", "SubmitResult", "EventQueue"]

log = logging.getLogger("citysoc.pipeline")

Enricher = Callable[[Event], None]
ParseFn = Callable[[RawRecord], Event]


@dataclass
class SubmitResult:
    """What happened to a submitted batch. With ``wait=False`` only ``accepted`` is known."""

    accepted: int
    stored: int = 0
    errors: list[ItemError] = field(default_factory=list)


@dataclass
class _Batch:
    records: list[RawRecord]
    events: list[Event] = field(default_factory=list)
    origin: list[int] = field(default_factory=list)  # events[i] came from records[origin[i]]
    errors: list[ItemError] = field(default_factory=list)
    stored: int = 0
    future: asyncio.Future[SubmitResult] | None = None
    enqueued: float = field(default_factory=time.monotonic)

    def size(self) -> int:
        return len(self.events) if self.events or not self.records else len(self.records)

    def resolve(self, exc: BaseException | None = None) -> None:
        if self.future is not None and not self.future.done():
            if exc is not None:
                self.future.set_exception(exc)
            else:
                self.future.set_result(
                    SubmitResult(accepted=len(self.records), stored=self.stored, errors=self.errors)
                )


class EventQueue:
    """An asyncio queue of batches bounded by the number of events they hold.

    A batch larger than the whole capacity is still admitted when the queue is empty,
    so one big ``_bulk`` request cannot deadlock.
    """

    def __init__(self, capacity: int, counters: StageCounters):
        self.capacity = capacity
        self._items: deque[_Batch] = deque()
        self._depth = 0
        self._cond = asyncio.Condition()
        self._counters = counters
        counters.queue_capacity = capacity

    @property
    def depth(self) -> int:
        return self._depth

    async def put(self, batch: _Batch) -> None:
        n = batch.size()
        async with self._cond:
            await self._cond.wait_for(lambda: self._depth == 0 or self._depth + n <= self.capacity)
            self._items.append(batch)
            self._depth += n
            self._sync()
            self._cond.notify_all()

    async def get_many(self, max_events: int, linger: float) -> list[_Batch]:
        """Wait for one batch, then gather more up to ``max_events`` for at most ``linger`` s."""
        out: list[_Batch] = []
        taken = 0
        async with self._cond:
            await self._cond.wait_for(lambda: bool(self._items))
            deadline = time.monotonic() + linger
            while True:
                while self._items and (not out or taken + self._items[0].size() <= max_events):
                    b = self._items.popleft()
                    out.append(b)
                    taken += b.size()
                    self._depth -= b.size()
                if taken >= max_events or linger <= 0:
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    await asyncio.wait_for(self._cond.wait_for(lambda: bool(self._items)), remaining)
                except TimeoutError:
                    break
                if self._items and taken + self._items[0].size() > max_events:
                    break
            self._sync()
            self._cond.notify_all()
        return out

    async def join(self) -> None:
        async with self._cond:
            await self._cond.wait_for(lambda: not self._items)

    def _sync(self) -> None:
        self._counters.queue_depth = self._depth
        self._counters.oldest_enqueued = self._items[0].enqueued if self._items else None


class Pipeline:
    """Runs the stages of one process. ``citysoc/`` builds it with concrete parts."""

    def __init__(
        self,
        *,
        store: EventStore,
        deadletters: DeadLetterStore,
        parse: ParseFn,
        enrichers: Sequence[Enricher] = (),
        detectors: Sequence[Detector | BatchDetector] = (),
        alert_sink: AlertSink | None = None,
        queue_size: int = 10_000,
        batch_size: int = 1_000,
        flush_ms: int = 200,
        workers: ParseWorkers | None = None,
    ):
        self.store = store
        self.deadletters = deadletters
        self._parse = parse
        self.enrichers = list(enrichers)
        self.detectors = [d for d in detectors if not isinstance(d, BatchDetector)]
        self._batch_detectors = [d for d in detectors if isinstance(d, BatchDetector)]
        """Detectors that take a stage's whole batch (``process_batch``) and have processes
        to start and stop: the detector processes (``core.detector_processes``)."""
        self.alert_sink = alert_sink
        self.batch_size = batch_size
        self.workers = workers
        """Parse worker processes (``pipeline.workers``); None parses in a thread of this process."""
        self.flush_s = flush_ms / 1000.0
        self.counters = {
            "parse": StageCounters("parse"),
            "store": StageCounters("store"),
            "detect": StageCounters("detect"),
        }
        self.sources: dict[str, Callable[[], dict[str, int]]] = {}
        """Sources register a ``counters()`` callable here so /metrics shows them beside the stages."""
        self.detections_total = 0
        self._queue_size = queue_size
        self._tasks: list[asyncio.Task[None]] = []
        self._started = False
        self._inflight = 0
        self._idle: asyncio.Event | None = None

    # -- lifecycle -------------------------------------------------------------------
    async def start(self) -> None:
        if self._started:
            return
        self._parse_q = EventQueue(self._queue_size, self.counters["parse"])
        self._store_q = EventQueue(self._queue_size, self.counters["store"])
        self._detect_q = EventQueue(self._queue_size, self.counters["detect"])
        self._idle = asyncio.Event()
        self._idle.set()
        if self.workers is not None:
            await asyncio.to_thread(self.workers.start)
        for det in self._batch_detectors:
            await asyncio.to_thread(det.start)
        self._tasks = [
            asyncio.create_task(self._run_parse() if self.workers is None else self._run_parse_workers(),
                                name="citysoc-parse"),
            asyncio.create_task(self._run_store(), name="citysoc-store"),
            asyncio.create_task(self._run_detect(), name="citysoc-detect"),
        ]
        self._started = True

    async def drain(self) -> None:
        """Wait until every submitted record has gone through every stage."""
        assert self._idle is not None
        await self._idle.wait()

    async def stop(self) -> None:
        """Finish what was accepted, then stop the stage tasks."""
        if not self._started:
            return
        await self.drain()
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.workers is not None:
            await asyncio.to_thread(self.workers.stop)
        for det in self._batch_detectors:
            await asyncio.to_thread(det.stop)
        self._started = False

    # -- entry point -----------------------------------------------------------------
    async def submit(self, records: Sequence[RawRecord], *, wait: bool = False) -> SubmitResult:
        """Hand records to the pipeline; blocks while queues are full.

        With ``wait=True`` returns after the store committed them, with per-item errors
        (parse failures, store rejections) indexed like ``records``.
        """
        if not self._started:
            raise RuntimeError("pipeline is not started: call await pipeline.start() first")
        batch = _Batch(records=list(records))
        if not batch.records:
            return SubmitResult(accepted=0)
        if wait:
            batch.future = asyncio.get_running_loop().create_future()
        self._track(+len(batch.records))
        self.counters["parse"].add(received=len(batch.records))
        await self._parse_q.put(batch)
        if batch.future is not None:
            return await batch.future
        return SubmitResult(accepted=len(batch.records))

    def _track(self, delta: int) -> None:
        self._inflight += delta
        assert self._idle is not None
        if self._inflight == 0:
            self._idle.set()
        else:
            self._idle.clear()

    # -- stages ----------------------------------------------------------------------
    async def _run_parse(self) -> None:
        while True:
            batches = await self._parse_q.get_many(self.batch_size, 0)
            for batch in batches:
                try:
                    await asyncio.to_thread(self._parse_batch, batch)
                except Exception as exc:  # the stage must survive anything a batch does
                    log.exception("parse stage failed on a batch")
                    self._fail_batch(batch, "parse", exc)
                    continue
                await self._store_q.put(batch)

    async def _run_parse_workers(self) -> None:
        """Batches go to the worker processes concurrently (a big one split across all of
        them) and reach the store in the order they were submitted.

        Whatever is queued when a worker call is made goes in that one call: small
        submissions (a UDP datagram burst of 20, a paced TCP read, one RELP frame) are
        coalesced, so the round trip to a worker is paid per up-to-``batch_size`` records
        rather than per submission (at 2,000 datagrams/s the per-call cost had the parse
        stage 3 s behind after a 3 s burst)."""
        assert self.workers is not None
        inflight: asyncio.Queue[tuple[list[_Batch], asyncio.Task[list[ParsedChunk]]]] = asyncio.Queue(
            maxsize=2 * self.workers.workers)
        forward = asyncio.create_task(self._forward_parsed(inflight), name="citysoc-parse-forward")
        try:
            while True:
                batches = await self._parse_q.get_many(self.batch_size, 0)
                await inflight.put((batches, asyncio.create_task(self._parse_remote(batches))))
        finally:
            forward.cancel()

    async def _parse_remote(self, batches: list[_Batch]) -> list[ParsedChunk]:
        assert self.workers is not None
        records = [r for b in batches for r in b.records]
        n = len(records)
        step = max(250, -(-n // self.workers.workers))
        return list(await asyncio.gather(*(self.workers.parse(records[i:i + step]) for i in range(0, n, step))))

    async def _forward_parsed(self, inflight: asyncio.Queue[tuple[list[_Batch], asyncio.Task[list[ParsedChunk]]]]) -> None:
        while True:
            batches, task = await inflight.get()
            await self._take_or_fail(batches, task)

    async def _take_or_fail(self, batches: list[_Batch], task: Awaitable[list[ParsedChunk]]) -> None:
        """Hand the parsed batches on to the store, or fail them, losing nothing: workers
        that died MAX_ATTEMPTS times (or a bug) fail the batch with the reason. Coalesced
        submissions are parsed again one by one first, so one submission's records never
        fail its neighbours'."""
        try:
            chunks = await task
            await asyncio.to_thread(self._take_parsed, batches, chunks)
        except Exception as exc:
            if len(batches) > 1:
                log.warning("parse failed on %d coalesced batches; parsing each alone", len(batches))
                for b in batches:
                    await self._take_or_fail([b], self._parse_remote([b]))
                return
            log.exception("parse stage failed on a batch")
            self._fail_batch(batches[0], "parse", exc)
            return
        for b in batches:
            await self._store_q.put(b)

    def _take_parsed(self, batches: list[_Batch], chunks: list[ParsedChunk]) -> None:
        """Back in this process: load each chunk once, enrich, record per-item errors, and
        hand each event to the batch its record came from (chunks cover the batches'
        records in order)."""
        cpu0 = time.thread_time()
        letters: list[DeadLetter] = []
        owner: list[tuple[_Batch, int]] = [(b, j) for b in batches for j in range(len(b.records))]
        offset = 0
        emitted = 0
        for chunk in chunks:
            for i, reason in chunk.errors:
                b, j = owner[offset + i]
                letters.append(_letter("parse", reason, b.records[j]))
                b.errors.append(ItemError(j, reason, 400))
            events = chunk.events()
            enrichers = () if chunk.enriched else self.enrichers
            for ev, i in zip(events, chunk.origin):
                b, j = owner[offset + i]
                try:
                    if enrichers:
                        drop_encoded(ev)  # changed here: the worker's encoding no longer holds
                    for enrich in enrichers:
                        enrich(ev)
                except Exception as exc:
                    reason = f"{type(exc).__name__}: {exc}"
                    letters.append(_letter("parse", reason, b.records[j]))
                    b.errors.append(ItemError(j, reason, 400))
                    continue
                b.events.append(ev)
                b.origin.append(j)
                emitted += 1
            offset += len(chunk.origin) + len(chunk.errors)
        for b in batches:
            b.errors.sort(key=lambda e: e.index)
        matching = sum(c.match_cpu_seconds for c in chunks)  # the detect stage's work, done in the worker
        cpu = time.thread_time() - cpu0 + sum(c.cpu_seconds for c in chunks) - matching
        self.counters["parse"].add(emitted=emitted, errors=len(letters), cpu_seconds=cpu)
        if matching:
            self.counters["detect"].add(cpu_seconds=matching)
        if letters:
            self.deadletters.put(letters)

    def _parse_batch(self, batch: _Batch) -> None:
        cpu0 = time.thread_time()
        letters: list[DeadLetter] = []
        now_ms = int(time.time() * 1000)
        for i, rec in enumerate(batch.records):
            try:
                ev = stamp(self._parse(rec), now_ms=now_ms)
                for enrich in self.enrichers:
                    enrich(ev)
            except Exception as exc:  # ParseError or a parser bug: both lose nothing
                reason = f"{type(exc).__name__}: {exc}"
                letters.append(_letter("parse", reason, rec))
                batch.errors.append(ItemError(i, reason, 400))
                continue
            batch.events.append(ev)
            batch.origin.append(i)
        self.counters["parse"].add(emitted=len(batch.events), errors=len(letters),
                                   cpu_seconds=time.thread_time() - cpu0)
        if letters:
            self.deadletters.put(letters)

    async def _run_store(self) -> None:
        while True:
            batches = await self._store_q.get_many(self.batch_size, self.flush_s)
            # Records that failed parsing are done now.
            for b in batches:
                failed = len(b.records) - len(b.events)
                if failed:
                    self._track(-failed)
            before = sum(len(b.events) for b in batches)
            try:
                await asyncio.to_thread(self._store_batches, batches)
            except Exception as exc:
                log.exception("store stage failed")
                for b in batches:
                    self._fail_batch(b, "store", exc, parsed=True)
                continue
            rejected = before - sum(len(b.events) for b in batches)
            if rejected:
                self._track(-rejected)
            for b in batches:
                b.resolve()
            stored_batches = [b for b in batches if b.events]
            if self.detectors and stored_batches:
                for b in stored_batches:
                    await self._detect_q.put(b)
            else:
                for b in stored_batches:
                    self._track(-len(b.events))

    def _store_batches(self, batches: list[_Batch]) -> None:
        events: list[Event] = []
        owners: list[tuple[_Batch, int]] = []
        for b in batches:
            for j, ev in enumerate(b.events):
                events.append(ev)
                owners.append((b, j))
        c = self.counters["store"]
        c.add(received=len(events))
        if not events:
            return
        cpu0 = time.thread_time()
        report = self.store.ingest(events)
        failed_idx = {e.index for e in report.errors}
        letters: list[DeadLetter] = []
        rejected: dict[int, set[int]] = {}  # id(batch) -> event positions the store refused
        for err in report.errors:
            b, j = owners[err.index]
            b.errors.append(ItemError(b.origin[j], err.reason, err.status))
            letters.append(_letter("store", err.reason, b.records[b.origin[j]]))
            rejected.setdefault(id(b), set()).add(j)
        for b in batches:
            bad = rejected.get(id(b), set())
            b.stored = len(b.events) - len(bad)
            if bad:
                b.events = [ev for j, ev in enumerate(b.events) if j not in bad]
        if letters:
            self.deadletters.put(letters)
        c.add(emitted=len(events) - len(failed_idx), errors=len(failed_idx), cpu_seconds=time.thread_time() - cpu0)

    async def _run_detect(self) -> None:
        while True:
            batches = await self._detect_q.get_many(self.batch_size, 0)
            n = sum(len(b.events) for b in batches)
            try:
                await asyncio.to_thread(self._detect_batches, batches)
            except Exception:
                log.exception("detect stage failed")
                self.counters["detect"].add(errors=n)
            finally:
                self._track(-n)

    def _detect_batches(self, batches: list[_Batch]) -> None:
        c = self.counters["detect"]
        cpu0 = time.thread_time()
        found: list[Detection] = []
        errors = 0
        n = 0
        for b in batches:
            for ev in b.events:
                n += 1
                for det in self.detectors:
                    try:
                        found.extend(det.process(ev))
                    except Exception:
                        errors += 1
                        log.warning("detector %s failed: %s", det.name, traceback.format_exc(limit=3))
        if self._batch_detectors:
            flat = [ev for b in batches for ev in b.events]
            for bd in self._batch_detectors:
                try:
                    found.extend(bd.process_batch(flat))
                except Exception:
                    errors += 1
                    log.warning("detector %s failed: %s", bd.name, traceback.format_exc(limit=3))
        self.detections_total += len(found)
        if found and self.alert_sink is not None:
            self.alert_sink.emit(found)
        c.add(received=n, emitted=len(found), errors=errors, cpu_seconds=time.thread_time() - cpu0)

    # -- failure -------------------------------------------------------------------
    def _fail_batch(self, batch: _Batch, stage: str, exc: BaseException, parsed: bool = False) -> None:
        reason = f"{type(exc).__name__}: {exc}"
        letters = [_letter(stage, reason, r) for r in batch.records]
        try:
            self.deadletters.put(letters)
        except Exception:
            log.exception("dead-letter store failed too; %d records only in the log", len(letters))
            for r in batch.records:
                log.error("lost record from %s: %r", r.source, r.data[:200])
        self.counters[stage].add(errors=len(batch.records))
        batch.errors = [ItemError(i, reason, 503) for i in range(len(batch.records))]
        batch.stored = 0
        batch.resolve()
        self._track(-(len(batch.events) if parsed else len(batch.records)))

    def all_counters(self) -> list[StageCounters]:
        rows: list[StageCounters] = []
        for name, fn in self.sources.items():
            snap = fn()
            rows.append(StageCounters(name=name, kind="source", received=snap.get("received", 0),
                                      emitted=snap.get("emitted", 0), errors=snap.get("errors", 0),
                                      dropped=snap.get("dropped", 0)))
        return rows + list(self.counters.values())


def _letter(stage: str, reason: str, rec: RawRecord) -> DeadLetter:
    meta = dict(rec.meta)
    if rec.dataset:
        meta["dataset"] = rec.dataset
    meta["format"] = rec.format
    return DeadLetter(stage=stage, reason=reason, raw=rec.data, source=rec.source, time=utc_now_iso(), meta=meta)
