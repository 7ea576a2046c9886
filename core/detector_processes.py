"""Detector processes: stateful detection partitioned by its state key over N processes.

Why: after the parse workers took parsing, asset attribution and Sigma's base rules off
the server process (``core.workers``), the stateful detectors (Sigma correlations, the
network detectors keyed by source) were still fed one event at a time in the server's
detect thread, under the same GIL as the store writer and the API. With
``pipeline.detector_processes: N`` they run in N processes of their own, each keeping the
state of the keys that hash to it (``core.partitioning.partition_of_key``: the one hash
the NATS bus uses too), so N processes give exactly the detections one would.

How an event travels:

* The server's detect thread asks ``keys(event)`` for the state keys the event feeds (the
  group keys of the correlations its matched rules feed, ``(source.ip,)`` when a network
  detector keyed by source would take it) and sends the event to each partition one of
  its keys hashes to, in the order events were stored, as ``(JSON text, epoch ms, matched
  rule ids)``: the JSON text is the worker's encoding when the event has one
  (``core.events`` invariant 6), so nothing is encoded twice.
* A detector process loads the text once, stamps it (invariant 4) and hands it to its
  stage with ``owns(key)``: a key that hashes elsewhere is skipped there, so an event sent
  to two partitions (its user group in one, its source in another) feeds each state once.
* Every partition of a batch is sent before any answer is read, so the N processes work
  on one batch at the same time; the detections come back pickled and the server emits
  them with the rest of the batch's.
* Toggles: the server's disabled set travels with the next batch whenever it changed.

Failure: a detector process that dies (SIGKILL, OOM, a crash) is started again and its
state rebuilt by replaying, with their detections discarded, the recent items it was sent
(a log per partition, bounded by ``replay_events`` and by ``replay_window_s`` of event
time before the newest item); then the batch it died on is sent again. Its detections
were never returned, so the batch raises no duplicate alert, and windows that span the
crash still complete. Exactness after a crash holds while the window a detector needs is
inside the log (the bounds are settings); a batch that kills its process
:data:`core.workers.MAX_ATTEMPTS` times is failed (counted as a detect error, logged), not
retried forever. As the parse workers do, a detector process exits when the server dies.
"""
from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

import orjson

from core.events import Event, StampedEvent, encoded_form, event_ms, matched_rules
from core.gctune import tune_gc
from core.partitioning import partition_of_key
from core.protocols import Detection
from core.workers import MAX_ATTEMPTS, watch_server

__all__ = ["DetectorPartitions", "PartitionStage", "Owns", "StageFactory"]

log = logging.getLogger("citysoc.detector_processes")

Owns = Callable[[tuple[Any, ...]], bool]
"""Whether this process keeps the state of a key (a tuple of field values)."""
Item = tuple["str | bytes", "int | None", "tuple[str, ...] | None"]
"""One event on the wire: its JSON text, its epoch ms, the Sigma rule ids it matched."""


@dataclass
class PartitionStage:
    """What one detector process runs, built inside it by a picklable factory (e.g.
    ``citysoc.wiring.partition_stage``), so ``core`` never imports a detector."""

    process: Callable[[StampedEvent, Owns], list[Detection]]
    """The detections one event completes in the state this process owns."""
    set_disabled: Callable[[frozenset[str]], None]
    """Take the server's disabled rule ids (every engine's)."""


StageFactory = Callable[[], PartitionStage]

_READY_TIMEOUT_S = 300.0  # a process loads every rule plan from the cache before it answers


def _child(factory: StageFactory, conn: Connection, index: int, partitions: int, server_pid: int) -> None:
    """A detector process: read batches, answer with their detections, until told to stop."""
    watch_server(server_pid)
    _name_process(f"citysoc-det{index}")
    stage = factory()
    tune_gc()  # the rules stay; the state and each batch's events are many small containers

    def owns(key: tuple[Any, ...]) -> bool:
        return partition_of_key(key, partitions) == index

    loads = orjson.loads
    conn.send(("ready", os.getpid()))
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):  # the server closed its end: nothing more will come
            return
        if msg[0] == "stop":
            return
        _, disabled, items, discard = msg
        if disabled is not None:
            stage.set_disabled(disabled)
        cpu0 = time.process_time()
        out: list[Detection] = []
        errors = 0
        for text, ts, matched in items:
            ev = StampedEvent(loads(text))
            if ts is not None:
                ev.ts_ms = ts
            if matched is not None:
                ev.matched = matched
            try:
                out.extend(stage.process(ev, owns))
            except Exception:  # a detector bug on one event: counted, the rest go on
                errors += 1
                log.warning("a detector failed on an event in detector process %d", index, exc_info=True)
        conn.send(("done", [] if discard else out, errors, time.process_time() - cpu0))


def _name_process(name: str) -> None:
    """Show ``name`` as this process's command name (``ps -o comm``, ``top``), so an
    operator (and a test) tells a detector process from a parse worker. Linux only."""
    try:
        import ctypes

        ctypes.CDLL(None).prctl(15, name.encode()[:15], 0, 0, 0)  # PR_SET_NAME
    except (OSError, AttributeError):
        pass


class _Partition:
    """The server's end of one detector process: its pipe and its replay log."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.proc: Any = None
        self.conn: Connection | None = None
        self.pid = 0
        self.log: deque[tuple[int, list[Item]]] = deque()  # (newest epoch ms, items)
        self.logged = 0
        self.sent_disabled: frozenset[str] | None = None


class DetectorPartitions:
    """``core.protocols.Detector`` over N detector processes (see the module docs).

    ``keys(event)``: the state keys ``event`` feeds (none: no process needs it).
    ``disabled()``: the server's disabled rule ids now. ``lock``: held while routing and
    reading toggles (the rule catalog's lock: a toggle never lands mid-routing).
    ``on_detections``: told of each batch's detections (the server counts their hits).
    """

    name = "detector-processes"

    def __init__(self, factory: StageFactory, partitions: int, *,
                 keys: Callable[[Event], Iterable[tuple[Any, ...]]],
                 disabled: Callable[[], frozenset[str]] = frozenset,
                 lock: threading.Lock | None = None,
                 on_detections: Callable[[list[Detection]], None] | None = None,
                 replay_events: int = 50_000, replay_window_s: float = 3600.0,
                 method: str | None = None) -> None:
        if partitions < 1:
            raise ValueError(f"partitions must be >= 1, got {partitions}")
        self.factory = factory
        self.partitions = partitions
        self.keys = keys
        self.disabled = disabled
        self.lock = lock or threading.Lock()
        self.on_detections = on_detections
        self.replay_events = replay_events
        self.replay_window_ms = int(replay_window_s * 1000)
        methods = multiprocessing.get_all_start_methods()
        self._ctx: Any = multiprocessing.get_context(method or ("forkserver" if "forkserver" in methods else "spawn"))
        self._parts = [_Partition(i) for i in range(partitions)]
        self._newest_ms = 0
        self._disabled_now: frozenset[str] = frozenset()
        self.restarts = 0
        self.redone = 0
        self.failed_batches = 0
        self.routed = 0
        self.detections = 0
        self.errors = 0
        self.cpu_seconds = 0.0

    # -- processes ------------------------------------------------------------------
    def start(self) -> None:
        """Start every process and wait until each has built its stage."""
        for part in self._parts:
            if part.proc is None:
                self._spawn(part)
        for part in self._parts:
            self._wait_ready(part)

    def _spawn(self, part: _Partition) -> None:
        mine, theirs = self._ctx.Pipe(duplex=True)
        proc = self._ctx.Process(target=_child, name=f"citysoc-detector-{part.index}", daemon=True,
                                 args=(self.factory, theirs, part.index, self.partitions, os.getpid()))
        proc.start()
        theirs.close()  # the child holds its own copy: its death must read as EOF here
        part.proc, part.conn, part.pid, part.sent_disabled = proc, mine, 0, None

    def _wait_ready(self, part: _Partition) -> None:
        conn = part.conn
        assert conn is not None
        if part.pid:
            return
        if not conn.poll(_READY_TIMEOUT_S):
            raise RuntimeError(f"detector process {part.index} did not start within {_READY_TIMEOUT_S:.0f} s")
        try:
            _kind, pid = conn.recv()
        except (EOFError, OSError) as exc:
            raise RuntimeError(f"detector process {part.index} died while it built its detectors "
                               "(its log says why)") from exc
        part.pid = pid

    def pids(self) -> list[int]:
        """The live detector processes' pids, by partition (tests kill one)."""
        return [p.proc.pid for p in self._parts if p.proc is not None and p.proc.is_alive()]

    def stop(self) -> None:
        for part in self._parts:
            if part.conn is not None:
                try:
                    part.conn.send(("stop",))
                except OSError:
                    pass
        for part in self._parts:
            if part.proc is not None:
                part.proc.join(5)
                if part.proc.is_alive():
                    part.proc.kill()
                    part.proc.join(5)
            if part.conn is not None:
                part.conn.close()
            part.proc = part.conn = None
            part.pid = 0

    def _restart(self, part: _Partition) -> None:
        """Start the process of ``part`` again and rebuild its state from the replay log."""
        if part.conn is not None:
            part.conn.close()
        if part.proc is not None:
            part.proc.join(1)
            if part.proc.is_alive():
                part.proc.kill()
                part.proc.join(5)
        self.restarts += 1
        self._spawn(part)
        self._wait_ready(part)
        conn = part.conn
        assert conn is not None
        replay = [it for _, items in part.log for it in items]
        for i in range(0, max(len(replay), 1), 5_000):
            conn.send(("batch", self._disabled_for(part), replay[i:i + 5_000], True))
            conn.recv()

    # -- detecting ------------------------------------------------------------------
    def _disabled_for(self, part: _Partition) -> frozenset[str] | None:
        now = self._disabled_now
        if part.sent_disabled == now:
            return None
        part.sent_disabled = now
        return now

    def process(self, event: Event) -> list[Detection]:
        return self.process_batch([event])

    def process_batch(self, events: Sequence[Event]) -> list[Detection]:
        """The detections ``events`` complete in every partition, in partition order."""
        n = self.partitions
        per: list[list[Item]] = [[] for _ in range(n)]
        newest = self._newest_ms
        with self.lock:
            self._disabled_now = frozenset(self.disabled())
            for ev in events:
                parts = {partition_of_key(k, n) for k in self.keys(ev)}
                if not parts:
                    continue
                enc = encoded_form(ev)
                text: str | bytes = enc[0] if enc is not None else orjson.dumps(ev, option=orjson.OPT_NON_STR_KEYS)
                ts = event_ms(ev)
                if ts is not None and ts > newest:
                    newest = ts
                item: Item = (text, ts, matched_rules(ev))
                for p in parts:
                    per[p].append(item)
        self._newest_ms = newest
        busy = [part for part in self._parts if per[part.index]]
        for part in busy:
            self.routed += len(per[part.index])
            try:
                self._send(part, per[part.index])
            except OSError:
                pass  # a dead process: found when its answer is read, and redone there
        out: list[Detection] = []
        for part in busy:
            out.extend(self._answer(part, per[part.index]))
            self._log(part, per[part.index])
        self.detections += len(out)
        if out and self.on_detections is not None:
            self.on_detections(out)
        return out

    def _send(self, part: _Partition, items: list[Item]) -> None:
        if part.conn is None:
            raise OSError("no detector process")
        part.conn.send(("batch", self._disabled_for(part), items, False))

    def _answer(self, part: _Partition, items: list[Item]) -> list[Detection]:
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                assert part.conn is not None
                _, found, errors, cpu = part.conn.recv()
                self.errors += errors
                self.cpu_seconds += cpu
                return list(found)
            except (EOFError, OSError, AssertionError):
                log.warning("detector process %d died (attempt %d of %d for a batch of %d); restarting it",
                            part.index, attempt, MAX_ATTEMPTS, len(items))
                self.redone += 1
                try:
                    self._restart(part)
                    self._send(part, items)
                except (EOFError, OSError, RuntimeError):
                    log.warning("detector process %d died again while its state was rebuilt", part.index)
        self.failed_batches += 1
        self.errors += len(items)
        log.error("detector process %d died %d times on one batch of %d events: their stateful "
                  "detection is skipped", part.index, MAX_ATTEMPTS, len(items))
        return []

    def _log(self, part: _Partition, items: list[Item]) -> None:
        """Keep ``items`` for a replay; forget what is older than the window or the count."""
        newest = max((ts for _, ts, _ in items if ts is not None), default=self._newest_ms)
        part.log.append((newest, items))
        part.logged += len(items)
        horizon = self._newest_ms - self.replay_window_ms
        while part.log and (part.logged > self.replay_events or part.log[0][0] < horizon):
            _, old = part.log.popleft()
            part.logged -= len(old)

    def counters(self) -> dict[str, int]:
        """For ``/metrics`` beside the stages: events sent to the processes, their
        detections, errors (events a detector failed on or a failed batch held)."""
        return {"received": self.routed, "emitted": self.detections, "errors": self.errors,
                "dropped": 0, "restarts": self.restarts, "redone": self.redone,
                "replay_log_events": sum(p.logged for p in self._parts)}
