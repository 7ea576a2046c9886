"""A district collector's spool: bounded, fsynced, in-order storage for link outages.

A collector in a district publishes straight to JetStream while its link to the core is
up. When the link fails (not connected, or JetStream did not confirm a batch in
``bus.publish_timeout_s``) it writes batches to ``<data>/spool`` instead and acknowledges
the sender once the batch is **fsynced** there; :class:`SpooledPublisher` forwards the
spool to JetStream in the order it was written when the link returns, and new batches go
behind the spooled ones until the spool is empty (so the order per source holds), then
straight to JetStream again.

On disk: append-only segment files ``seg-<n>.log`` of frames ``<u32 length><u32 crc32>
<orjson {"id","p","src","ev"}>`` and a ``cursor`` file ``<segment> <offset>`` (written to a
temporary file, fsynced, renamed) naming the first frame not yet forwarded. A segment
entirely before the cursor is deleted. A torn frame at the end of the last segment (a
crash mid-write, never acknowledged) is cut off when the spool opens.

Bound: the spool's files never exceed ``max_bytes`` (``bus.spool_max_bytes``). When a batch
does not fit, the spool takes the records that fit and **refuses the newest** (drop-newest):
what was acknowledged stays acknowledged (drop-oldest would delete events the sender was
already told were stored), HTTP and RELP senders learn which records were refused, and the
head of every source's sequence reaches the core unbroken. Each refused record is counted
(``dropped``); the first refusal of an *episode* (which ends when the spool drains empty)
calls ``on_full`` once, which the collector turns into the ``bus:spool_full`` alert.

Duplicates: records keep their bus id in the spool, and JetStream drops a re-publish of an
id it stored within the stream's duplicate window. The only records that can be published
twice are those of the one batch in flight when the link failed (JetStream may have stored
part of it without the confirmation reaching the collector), and only if the outage
outlasts the duplicate window.

Example::

    spool = SegmentSpool(data / "spool", max_bytes=1 << 30)
    accepted = spool.append(records)        # fsynced when it returns
    records, mark = spool.peek(500)
    ...publish records...
    spool.commit(mark)                      # forwarded: the cursor moves, old segments go
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import struct
import threading
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from core.bus import BusRecord, BusUnavailable

__all__ = ["SegmentSpool", "SpoolMark", "SpooledPublisher"]

log = logging.getLogger("citysoc.bus.spool")

_HEAD = struct.Struct("<II")
_MAX_FRAME = 64 << 20  # a frame longer than this is corruption, not an event


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass(frozen=True, slots=True)
class SpoolMark:
    """Where a :meth:`SegmentSpool.peek` ended: pass it to :meth:`SegmentSpool.commit`."""

    segment: int
    offset: int
    count: int


class SegmentSpool:
    """Append-only segment files under ``folder``, at most ``max_bytes`` on disk.

    Thread-safe: the collector's store thread appends while the forwarder peeks and commits.
    """

    def __init__(self, folder: Path, max_bytes: int, *, segment_bytes: int | None = None):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.max_bytes = int(max_bytes)
        # A consumed head segment is freed only as a whole: keep segments small beside the bound.
        self.segment_bytes = segment_bytes or max(4096, min(16 << 20, self.max_bytes // 8))
        self._lock = threading.Lock()
        self.dropped = 0
        self.appended = 0
        self.forwarded = 0
        self._cursor = (0, 0)
        self._sizes: dict[int, int] = {}
        self._events = 0
        self._out: Any = None
        self._open()

    # -- opening -----------------------------------------------------------------------
    def _seg_path(self, n: int) -> Path:
        return self.folder / f"seg-{n:012d}.log"

    def _open(self) -> None:
        segs = sorted(int(p.name[4:16]) for p in self.folder.glob("seg-*.log"))
        cur = self.folder / "cursor"
        if cur.exists():
            a, b = cur.read_text(encoding="ascii").split()
            self._cursor = (int(a), int(b))
        elif segs:
            self._cursor = (segs[0], 0)
        for n in segs:
            if n < self._cursor[0]:
                self._seg_path(n).unlink()
                continue
            path = self._seg_path(n)
            start = self._cursor[1] if n == self._cursor[0] else 0
            good, count = self._scan(path, start)
            if good < path.stat().st_size:  # a torn write at the end: never acknowledged
                log.warning("spool %s: cutting a torn frame at offset %d", path.name, good)
                with open(path, "r+b") as f:
                    f.truncate(good)
                    os.fsync(f.fileno())
            self._sizes[n] = good
            self._events += count
        if not self._sizes:  # never behind the cursor on disk: a lower segment would be deleted on open
            self._cursor = (max(self._cursor[0], max(segs, default=0) + 1), 0)
        if self._events:
            log.info("spool %s holds %d events (%d bytes) from before the restart: forwarding them first",
                     self.folder, self._events, self.bytes)

    @staticmethod
    def _scan(path: Path, start: int) -> tuple[int, int]:
        """(end of the last whole frame, frames from ``start``)."""
        count, pos = 0, start
        with open(path, "rb") as f:
            f.seek(start)
            while True:
                head = f.read(_HEAD.size)
                if len(head) < _HEAD.size:
                    return pos, count
                size, crc = _HEAD.unpack(head)
                if size > _MAX_FRAME:
                    return pos, count
                body = f.read(size)
                if len(body) < size or zlib.crc32(body) != crc:
                    return pos, count
                pos += _HEAD.size + size
                count += 1

    # -- figures -----------------------------------------------------------------------
    @property
    def bytes(self) -> int:
        """Bytes of the spool's segment files on disk (what ``max_bytes`` bounds)."""
        return sum(self._sizes.values())

    @property
    def events(self) -> int:
        """Events written and not yet forwarded."""
        return self._events

    # -- writing -----------------------------------------------------------------------
    def append(self, records: Sequence[BusRecord]) -> int:
        """Write the records that fit, in order, and fsync; returns how many (the rest are refused)."""
        frames = []
        for r in records:
            body = orjson.dumps({"id": r.id, "p": r.partition, "src": r.source, "ev": r.event})
            frames.append(_HEAD.pack(len(body), zlib.crc32(body)) + body)
        with self._lock:
            room = self.max_bytes - self.bytes
            accepted = 0
            for fr in frames:
                if len(fr) > room:
                    break
                room -= len(fr)
                accepted += 1
            if accepted:
                self._write(frames[:accepted])
            self._events += accepted
            self.appended += accepted
            self.dropped += len(frames) - accepted
            return accepted

    def _write(self, frames: list[bytes]) -> None:
        i = 0
        while i < len(frames):
            seg = max(self._sizes) if self._sizes else self._cursor[0]
            if seg not in self._sizes or self._sizes[seg] >= self.segment_bytes:
                if seg in self._sizes:
                    seg += 1
                self._close_out()
                self._sizes[seg] = 0
                new = True
            else:
                new = False
            if self._out is None or self._out[0] != seg:
                self._close_out()
                self._out = (seg, open(self._seg_path(seg), "ab"))
                if new:
                    _fsync_dir(self.folder)
            chunk = []
            size = self._sizes[seg]
            while i < len(frames) and (not chunk or size + len(frames[i]) <= self.segment_bytes):
                chunk.append(frames[i])
                size += len(frames[i])
                i += 1
            f = self._out[1]
            f.write(b"".join(chunk))
            f.flush()
            os.fsync(f.fileno())
            self._sizes[seg] = size

    def _close_out(self) -> None:
        if self._out is not None:
            self._out[1].close()
            self._out = None

    # -- forwarding --------------------------------------------------------------------
    def peek(self, max_records: int) -> tuple[list[BusRecord], SpoolMark]:
        """Up to ``max_records`` records from the cursor on, in write order, and where they end."""
        out: list[BusRecord] = []
        with self._lock:
            seg, off = self._cursor
            segs = sorted(s for s in self._sizes if s >= seg)
        for s in segs:
            if len(out) >= max_records:
                break
            start = off if s == seg else 0
            with self._lock:
                end = self._sizes.get(s, 0)
            pos = start
            with open(self._seg_path(s), "rb", buffering=1 << 20) as f:  # frame by frame: no whole-segment read
                f.seek(start)
                while pos < end and len(out) < max_records:
                    size, _crc = _HEAD.unpack(f.read(_HEAD.size))
                    d = orjson.loads(f.read(size))
                    out.append(BusRecord(id=d["id"], partition=d["p"], event=d["ev"], source=d.get("src", "")))
                    pos += _HEAD.size + size
            seg, off = s, pos
        return out, SpoolMark(seg, off, len(out))

    def commit(self, mark: SpoolMark) -> None:
        """The records up to ``mark`` reached the core: move the cursor, delete finished segments."""
        with self._lock:
            last = max(self._sizes) if self._sizes else mark.segment
            if mark.segment == last and mark.offset >= self._sizes.get(last, 0):
                # Everything forwarded: start afresh in the next segment, so no file is kept.
                self._close_out()
                done = sorted(self._sizes)
                self._cursor = (last + 1, 0)
                self._sizes.clear()
            else:
                done = sorted(s for s in self._sizes if s < mark.segment)
                for s in done:
                    del self._sizes[s]
                self._cursor = (mark.segment, mark.offset)
            self._write_cursor()
            for s in done:
                with contextlib.suppress(FileNotFoundError):
                    self._seg_path(s).unlink()
            self._events -= mark.count
            self.forwarded += mark.count

    def _write_cursor(self) -> None:
        tmp = self.folder / "cursor.tmp"
        with open(tmp, "w", encoding="ascii") as f:
            f.write(f"{self._cursor[0]} {self._cursor[1]}\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.folder / "cursor")
        _fsync_dir(self.folder)

    def close(self) -> None:
        with self._lock:
            self._close_out()


class SpooledPublisher:
    """Publish from the collector's store thread: straight to the bus, or through the spool.

    ``publish(records)`` returns how many records are durable (stored by JetStream, or
    fsynced in the spool); the rest were refused by a full spool. ``run()`` (a task on the
    event loop that owns the NATS client) forwards the spool whenever it holds records and
    the link is up, then hands back to the direct path.

    ``connected`` says whether the client has a connection now (a visibly dead link goes to
    the spool at once instead of waiting out ``timeout_s``); ``on_full(episode_started)`` is
    called once per full-spool episode, from the store thread.
    """

    def __init__(self, bus: Any, loop: asyncio.AbstractEventLoop, spool: SegmentSpool, *, timeout_s: float,
                 connected: Callable[[], bool], on_full: Callable[[float], None] | None = None,
                 batch: int = 500, retry_s: float = 1.0):
        self.bus = bus
        self.loop = loop
        self.spool = spool
        self.timeout_s = timeout_s
        self.connected = connected
        self.on_full = on_full
        self.batch = batch
        self.retry_s = retry_s
        self._lock = threading.Lock()
        self._spooling = spool.events > 0  # what a restart found goes first
        self._wake = asyncio.Event()
        self._episode: float | None = None
        self._probe = False
        self.after_drain: list[Callable[[], Any]] = []
        """Coroutine functions the forwarder awaits once the spool drained (alerts queued for the core)."""
        self.direct = 0
        self.spooled = 0
        self.outages = 0
        self.drains = 0
        self.last_drain_rate = 0.0

    @property
    def spooling(self) -> bool:
        return self._spooling

    def publish(self, records: Sequence[BusRecord]) -> int:
        """Durably store ``records`` (called from a worker thread, never from the loop)."""
        if not records:
            return 0
        with self._lock:
            direct = not self._spooling and self.connected()
        if direct:
            fut = asyncio.run_coroutine_threadsafe(self.bus.publish(records), self.loop)
            try:
                fut.result(self.timeout_s + 5)
                self.direct += len(records)
                return len(records)
            except (BusUnavailable, TimeoutError) as exc:
                fut.cancel()
                log.warning("core unreachable (%s): spooling to %s", exc, self.spool.folder)
        with self._lock:  # decide and append under one lock: the forwarder cannot hand back in between
            if not self._spooling:
                self._spooling = True
                self.outages += 1
            accepted = self.spool.append(records)
            first_drop = accepted < len(records) and self._episode is None
            if first_drop:
                self._episode = time.time()
        self.spooled += accepted
        self.loop.call_soon_threadsafe(self._wake.set)
        if first_drop and self.on_full is not None:
            log.error("spool %s full (%d bytes): refusing the newest events", self.spool.folder, self.spool.bytes)
            self.on_full(self._episode or time.time())
        return accepted

    async def run(self) -> None:
        """Forward the spool whenever it holds records; forever (cancel to stop)."""
        while True:
            if not self._spooling and not self.after_drain:
                self._wake.clear()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), 5.0)
                continue
            if not self.connected():
                await asyncio.sleep(min(self.retry_s, 0.25))
                continue
            try:
                if self._spooling:
                    await self._drain()
                while self.after_drain:  # removed only once it succeeded
                    await self.after_drain[0]()
                    self.after_drain.pop(0)
            except BusUnavailable as exc:
                # Until one record gets through, retry with one: a link that drops packets
                # silently leaves every attempt in the client's buffer until it times out.
                self._probe = True
                log.info("spool forward paused: %s", exc)
                await asyncio.sleep(self.retry_s)
            except Exception:
                log.exception("spool forward failed; retrying")
                await asyncio.sleep(self.retry_s)

    async def _drain(self) -> None:
        t0, n = time.monotonic(), 0
        while True:
            records, mark = await asyncio.to_thread(self.spool.peek, 1 if self._probe else self.batch)
            if records:
                await self.bus.publish(records)
                self._probe = False
                await asyncio.to_thread(self.spool.commit, mark)
                n += len(records)
                continue
            with self._lock:
                if self.spool.events == 0:  # nothing arrived meanwhile: new batches go direct again
                    self._spooling = False
                    self._episode = None
                    break
        dt = time.monotonic() - t0
        self.drains += 1
        self.last_drain_rate = n / dt if dt > 0 else 0.0
        log.info("spool drained: %d events forwarded in %.1f s (%.0f events/s)", n, dt, self.last_drain_rate)

    def counters(self) -> dict[str, float]:
        """What ``/metrics`` shows as ``citysoc_bus_spool_*``."""
        s = self.spool
        return {"spool_bytes": s.bytes, "spool_events": s.events, "spool_dropped_total": s.dropped,
                "spool_appended_total": s.appended, "spool_forwarded_total": s.forwarded,
                "spool_outages_total": self.outages, "spool_active": int(self._spooling),
                "spool_max_bytes": s.max_bytes, "spool_last_drain_events_per_s": round(self.last_drain_rate, 1)}
