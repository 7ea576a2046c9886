"""Parse workers: the parse stage in separate processes, so parsing uses every core.

Why processes: every stage used to be a thread under one GIL, so one core did all the
work while the other idled (issue 14's profile). A worker process gets a batch of raw
records (bytes + format + transport meta, pickled) and hands back the parsed batch as
**one JSON text per event plus the list of epochs** (``core.events`` invariant 4); the main
process loads it once and stamps each event with the epoch the worker computed, so
nothing is parsed twice. With an ``encode`` (the embedded store's row builder) each event
also comes back encoded for the store (invariant 6): the server's store thread then only
inserts.

The parse function is built *inside* each worker by a picklable factory (a top-level
function or ``functools.partial`` of one, e.g. ``citysoc.wiring.make_parse`` or
``citysoc.wiring.worker_stage``), so ``core`` never imports the parsers. A factory may
return a :class:`WorkerStage` instead of a bare parse function: its ``match`` (Sigma's
base rules, stateless) then runs here too, on each parsed event, and the matched rule ids
travel back beside the epochs (``core.events`` invariant 5), so the server's detect stage
only applies them. Stateful detection (correlations, network detectors, asset health)
stays in the server process, fed in submission order, so its alerts are exactly those of
one process. Workers start with the ``forkserver`` method (no
copy of the server's threads, sockets or SQLite handles; ``spawn`` where it is missing).

Shutdown: :meth:`ParseWorkers.stop` ends the workers. If the server process dies without
calling it (SIGKILL, OOM, a crash), each worker notices through a ``pidfd`` on the server
process and exits at once: orphaned workers would otherwise wait forever on their task
queue, keep the forkserver alive and hold the server's stdout/stderr open.

Failure: a worker that dies mid-batch (SIGKILL, OOM) breaks the pool; :class:`ParseWorkers`
starts a new pool and the batch is parsed again, so it is redone, not lost. Nothing was
stored for it yet (the store runs after parsing, in the main process), so redoing it
cannot duplicate an event or an alert. A batch that kills workers
:data:`MAX_ATTEMPTS` times in a row is failed (dead-lettered by the pipeline with the
reason) rather than retried forever.
"""
from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import select
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

import orjson

from core.events import Event, StampedEvent, stamp
from core.gctune import tune_gc
from core.protocols import RawRecord

__all__ = ["ParseWorkers", "ParsedChunk", "WorkerStage", "parse_chunk", "MAX_ATTEMPTS", "default_workers",
           "watch_server"]

log = logging.getLogger("citysoc.workers")

MAX_ATTEMPTS = 3
"""How often one batch may take a worker down before it is failed instead of retried."""

@dataclass
class WorkerStage:
    """What a worker runs on each record: ``parse`` (bytes to a nested event) and, when
    set, ``match`` (the ids of the stateless rules the parsed event matches)."""

    parse: Callable[[RawRecord], Event]
    match: Callable[[Event], tuple[str, ...]] | None = None
    enrich: Callable[[Event], None] | None = None
    """Asset attribution on each parsed event, before ``match``; the chunk then says
    ``enriched`` and the server does not enrich it again."""
    refresh: Callable[[Any], None] | None = None
    """Called with the server's context value (:class:`ParseWorkers` ``context``) before
    each batch: e.g. the asset inventory's version, so ``enrich`` rebuilds its index when
    the inventory changed."""
    encode: Callable[[StampedEvent], tuple[str, Any]] | None = None
    """The store's encoding of each finished event, ``(JSON text, row)`` (e.g.
    ``storage.sqlite.encode_row``; ``core.events`` invariant 6). Without it each event is
    sent back as its JSON text alone."""


ParseFactory = Callable[[], "Callable[[RawRecord], Event] | WorkerStage"]
RecordTuple = tuple[bytes, str, str, "str | None", dict[str, Any]]

_stage: WorkerStage | None = None


def default_workers() -> int:
    """The number of cores this process may use (the ``pipeline.workers`` default)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


@dataclass
class ParsedChunk:
    """A parsed batch as it crosses back: each event as JSON text, their epochs, which
    record each came from, and per-record errors ``(index, reason)``."""

    docs: list[str]
    ts_ms: list[int]
    origin: list[int]
    errors: list[tuple[int, str]]
    pid: int
    cpu_seconds: float = 0.0
    """CPU the worker spent on this chunk (parse + match + encode)."""
    matched: list[tuple[str, ...]] | None = None
    """Per event, the rule ids the worker's ``match`` found (None: the stage has no matcher)."""
    match_cpu_seconds: float = 0.0
    """The part of ``cpu_seconds`` spent matching (the detect stage's work, done here)."""
    enriched: bool = False
    """The worker attributed these events to assets (the stage's ``enrich``)."""
    rows: list[Any] | None = None
    """Per event, the store row the stage's ``encode`` made (None: the stage has no encoder)."""

    def events(self) -> list[StampedEvent]:
        """The events, stamped with their epochs and carrying what the worker knew of them
        (matched rule ids, their encoding for the store: invariants 5 and 6)."""
        loads = orjson.loads
        matched = self.matched
        rows = self.rows
        out: list[StampedEvent] = []
        for k, (text, ts) in enumerate(zip(self.docs, self.ts_ms)):
            ev = StampedEvent(loads(text))
            ev.ts_ms = ts
            ev.encoded = (text, rows[k] if rows is not None else None)
            if matched is not None:
                ev.matched = matched[k]
            out.append(ev)
        return out


def _init(factory: ParseFactory, server_pid: int) -> None:
    global _stage
    watch_server(server_pid)
    made = factory()
    _stage = made if isinstance(made, WorkerStage) else WorkerStage(made)
    tune_gc()  # the stage's rules and indexes stay; each batch allocates thousands of containers


def watch_server(server_pid: int) -> None:
    """Exit this worker as soon as the server process ends (see the module docs).

    A pidfd becomes readable when the process exits, also while it is a zombie nobody has
    reaped yet (which ``os.kill(pid, 0)`` would still call alive). Without pidfds (not
    Linux >= 5.3) the parent's pid is polled once a second instead.
    """
    try:
        fd = os.pidfd_open(server_pid)
    except ProcessLookupError:  # the server is already gone
        os._exit(0)
    except (AttributeError, OSError):
        fd = None
        if os.getppid() != server_pid:  # forkserver in between: nothing cheap to poll
            return

    def _wait() -> None:
        if fd is not None:
            select.select([fd], [], [])
        else:
            while os.getppid() == server_pid:
                time.sleep(1.0)
        os._exit(0)  # nothing of ours to flush: results go back only through the pool

    threading.Thread(target=_wait, name="citysoc-worker-watch", daemon=True).start()


def parse_chunk(records: Sequence[RecordTuple], context: Any = None) -> ParsedChunk:
    """Runs in a worker: parse, stamp, enrich and match each record; failures are reported by index."""
    stage = _stage
    assert stage is not None, "worker not initialised"
    if stage.refresh is not None:
        stage.refresh(context)
    parse, match, enrich = stage.parse, stage.match, stage.enrich
    cpu0 = time.process_time()
    now_ms = int(time.time() * 1000)
    events: list[StampedEvent] = []
    ts: list[int] = []
    origin: list[int] = []
    errors: list[tuple[int, str]] = []
    for i, (data, fmt, source, dataset, meta) in enumerate(records):
        try:
            ev = stamp(parse(RawRecord(data, format=fmt, source=source, dataset=dataset, meta=meta)), now_ms=now_ms)
            if enrich is not None:
                enrich(ev)
        except Exception as exc:  # ParseError or a parser bug: reported, never lost
            errors.append((i, f"{type(exc).__name__}: {exc}"))
            continue
        events.append(ev)
        ts.append(ev.ts_ms)
        origin.append(i)
    matched: list[tuple[str, ...]] | None = None
    match_cpu = 0.0
    if match is not None:
        m0 = time.process_time()
        matched = []
        for parsed in events:
            try:
                matched.append(match(parsed))
            except Exception:  # a rule bug: the detect stage matches this event itself
                log.warning("worker rule matching failed on an event; the detect stage matches it", exc_info=True)
                matched = None
                break
        match_cpu = time.process_time() - m0
    encode = stage.encode
    docs: list[str] = []
    rows: list[Any] | None = [] if encode is not None else None
    keep: list[int] = []
    for k, one in enumerate(events):
        try:
            if encode is not None:
                text, row = encode(one)
                rows.append(row)  # type: ignore[union-attr]
            else:
                text = orjson.dumps(one, option=orjson.OPT_NON_STR_KEYS).decode()
        except (TypeError, ValueError, RecursionError, OverflowError) as exc:  # one event the store could not keep either
            errors.append((origin[k], f"{type(exc).__name__}: {exc}"))
            continue
        docs.append(text)
        keep.append(k)
    if len(keep) < len(events):
        ts = [ts[k] for k in keep]
        origin = [origin[k] for k in keep]
        if matched is not None:
            matched = [matched[k] for k in keep]
        errors.sort()
    return ParsedChunk(docs, ts, origin, errors, os.getpid(), time.process_time() - cpu0, matched, match_cpu,
                       enrich is not None, rows)


class ParseWorkers:
    """A pool of parse worker processes behind one async call, :meth:`parse`.

    ``workers`` processes are started by :meth:`start`; a dead worker is replaced by a
    new pool (see the module docs). ``pids()`` lists the live workers (tests kill one).
    """

    def __init__(self, factory: ParseFactory, workers: int, *, method: str | None = None,
                 context: Callable[[], Any] | None = None) -> None:
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.factory = factory
        self.context = context
        """Read in this process for each batch and handed to the stage's ``refresh`` in the
        worker (picklable; e.g. the asset inventory's version)."""
        self.workers = workers
        methods = multiprocessing.get_all_start_methods()
        self._ctx = multiprocessing.get_context(method or ("forkserver" if "forkserver" in methods else "spawn"))
        self._pool: ProcessPoolExecutor | None = None
        self._start_lock = threading.Lock()  # chunks of one batch may ask for a new pool at once
        self.restarts = 0
        self.redone = 0

    def start(self) -> None:
        with self._start_lock:
            if self._pool is not None:
                return
            pool = ProcessPoolExecutor(self.workers, mp_context=self._ctx, initializer=_init,
                                       initargs=(self.factory, os.getpid()))
            # Start every worker now (not on first use), so the first batch does not pay
            # for imports and pids() is complete.
            for f in [pool.submit(_warm) for _ in range(self.workers * 2)]:
                f.result()
            self._pool = pool

    def pids(self) -> list[int]:
        pool = self._pool
        procs = getattr(pool, "_processes", None) or {}
        return [p.pid for p in procs.values() if p.is_alive()]

    def stop(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    async def parse(self, records: Sequence[RawRecord]) -> ParsedChunk:
        """Parse ``records`` in a worker; redone in a new pool if the worker dies."""
        tuples = [(r.data, r.format, r.source, r.dataset, r.meta) for r in records]
        loop = asyncio.get_running_loop()
        for attempt in range(1, MAX_ATTEMPTS + 1):
            pool = self._pool
            if pool is None:
                await asyncio.to_thread(self.start)
                pool = self._pool
            assert pool is not None
            context = self.context() if self.context is not None else None
            try:
                return await loop.run_in_executor(pool, parse_chunk, tuples, context)
            except BrokenProcessPool:
                log.warning("a parse worker died (attempt %d of %d for a batch of %d); restarting the pool",
                            attempt, MAX_ATTEMPTS, len(tuples))
                self.redone += 1
                if self._pool is pool:  # one restart for all batches the dead pool held
                    self._pool = None
                    self.restarts += 1
                    await asyncio.to_thread(pool.shutdown, wait=False, cancel_futures=True)
        raise RuntimeError(f"parse workers died {MAX_ATTEMPTS} times on this batch")


def _warm() -> int:
    return os.getpid()
