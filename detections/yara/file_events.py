"""A detector that scans the files events point at (``file.path`` on file events).

The file-integrity and ingest collectors report "file created in the warehouse ingest
folder" or "firmware image staged"; this detector reads that file, bounded by the scan
limits, and turns YARA matches into detections carrying the triggering event. Only
paths under the configured prefixes are read (an event must not make the SOC read
``/etc/shadow``), after resolving symlinks and ``..``. Content already scanned is
recognised by its sha256 (an LRU), so a file rewritten a hundred times with the same
bytes is matched once, and a (content, path) pair already reported is not reported again.

Scanning one file may take the scan deadline (60 s for a hostile archive), and a detector
runs on the pipeline's detection thread: every other rule would wait behind it. So a
server calls :meth:`FileEventScanner.start` with the alert sink's ``emit``: from then on
:meth:`~FileEventScanner.process` only checks the event (category, allowed folder) and
queues the file for one worker thread, which scans and emits the detections itself. The
queue is bounded (``queue_size``): past it a file is not scanned and ``dropped`` counts
it, so a flood of file events costs a fixed amount of memory and never stalls detection.
Without :meth:`start` (the CLI, tests) scans run inline and ``process`` returns them.
"""
from __future__ import annotations

import hashlib
import logging
import os
import queue
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path

from core.events import Event, get_field
from core.protocols import Detection
from detections.yara.results import ScanResult, to_detections
from detections.yara.scanner import YaraScanner

__all__ = ["FileEventScanner"]

log = logging.getLogger(__name__)
_STOP = object()


class _LRU(OrderedDict):
    def __init__(self, size: int):
        super().__init__()
        self.size = size

    def put(self, key, value) -> None:
        self[key] = value
        self.move_to_end(key)
        while len(self) > self.size:
            self.popitem(last=False)


class FileEventScanner:
    """``core.protocols.Detector`` scanning files referenced by ``event.category: file`` events."""

    name = "yara-file"

    def __init__(self, scanner: YaraScanner, allowed_prefixes: Sequence[str | Path], *, cache_size: int = 4096):
        if not allowed_prefixes:
            raise ValueError("FileEventScanner needs at least one allowed path prefix (e.g. the ingest folder)")
        self.scanner = scanner
        self.prefixes = [os.path.realpath(p).rstrip("/") + "/" for p in allowed_prefixes]
        self._by_hash: _LRU = _LRU(cache_size)
        self._reported: _LRU = _LRU(cache_size)
        # "events"/"refused"/"queued"/"dropped" are written by the detection thread, the
        # others by whoever scans (the worker once started): one writer per key
        self.counters = {"events": 0, "scanned": 0, "cache_hits": 0, "refused": 0, "skipped": 0, "detections": 0,
                         "queued": 0, "dropped": 0, "errors": 0}
        self._queue: queue.Queue[object] | None = None
        self._worker: threading.Thread | None = None
        self._emit: Callable[[list[Detection]], None] | None = None

    # -- background scanning ---------------------------------------------------------------
    def start(self, emit: Callable[[list[Detection]], None], *, queue_size: int = 256) -> None:
        """Scan on one worker thread from now on, handing detections to ``emit`` (the alert
        sink's, which is thread-safe); at most ``queue_size`` files wait."""
        if self._worker is not None:
            raise RuntimeError("FileEventScanner already started")
        if queue_size < 1:
            raise ValueError(f"queue_size must be at least 1, got {queue_size}")
        self._emit = emit
        self._queue = queue.Queue(maxsize=queue_size)
        self._worker = threading.Thread(target=self._work, name="yara-file-scans", daemon=True)
        self._worker.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the worker: the scan in progress finishes (within ``timeout``), queued files
        are left (the events are stored; their files can be rescanned with ``citysoc scan``)."""
        q, w = self._queue, self._worker
        if q is None or w is None:
            return
        while True:  # make room for the stop mark: what is still queued is not scanned
            try:
                q.get_nowait()
            except queue.Empty:
                break
        try:
            q.put(_STOP, timeout=timeout)
        except queue.Full:  # refilled meanwhile: the worker is a daemon and ends with the process
            pass
        w.join(timeout)
        self._queue = self._worker = None

    def metrics(self) -> dict[str, int]:
        """The component counters (received, emitted, errors, dropped) for ``/metrics``."""
        c = self.counters
        return {"received": c["events"], "emitted": c["detections"], "errors": c["errors"],
                "dropped": c["dropped"], "queue_depth": self.pending, **c}

    @property
    def pending(self) -> int:
        """Files queued and not yet scanned."""
        return self._queue.qsize() if self._queue is not None else 0

    def _work(self) -> None:
        assert self._queue is not None and self._emit is not None
        q, emit = self._queue, self._emit
        while True:
            item = q.get()
            if item is _STOP:
                return
            path, real, event = item  # type: ignore[misc]
            try:
                dets = self._scan(path, real, event)
                if dets:
                    emit(dets)
            except Exception:  # one bad file must not end the worker
                self.counters["errors"] += 1
                log.exception("yara scan of %s failed", path)

    def _allowed(self, path: str) -> str | None:
        real = os.path.realpath(path)
        return real if any(real.startswith(p) for p in self.prefixes) else None

    def process(self, event: Event) -> list[Detection]:
        cat = get_field(event, "event.category")
        if not (cat == "file" or (isinstance(cat, list) and "file" in cat)):
            return []
        path = get_field(event, "file.path")
        if not isinstance(path, str) or not path:
            return []
        if get_field(event, "event.type") == "deletion" or get_field(event, "event.action") in ("deleted", "deletion"):
            return []
        self.counters["events"] += 1
        real = self._allowed(path)
        if real is None:
            self.counters["refused"] += 1
            return []
        if self._queue is not None:
            try:
                self._queue.put_nowait((path, real, event))
                self.counters["queued"] += 1
            except queue.Full:
                self.counters["dropped"] += 1
            return []
        return self._scan(path, real, event)

    def _scan(self, path: str, real: str, event: Event) -> list[Detection]:
        """Read, hash and scan one allowed file; the detections it completes."""
        lim = self.scanner.limits
        try:
            size = os.path.getsize(real)
            if size > lim.max_file_size:
                self.counters["skipped"] += 1
                return []
            with open(real, "rb") as f:
                data = f.read(lim.max_file_size + 1)
        except OSError:
            self.counters["skipped"] += 1  # gone already, or unreadable: nothing to scan
            return []
        if len(data) > lim.max_file_size:
            self.counters["skipped"] += 1
            return []
        sha = hashlib.sha256(data).hexdigest()
        if (sha, real) in self._reported:
            self._reported.move_to_end((sha, real))
            return []
        results: list[ScanResult] | None = self._by_hash.get(sha)
        if results is None:
            results = self.scanner.scan_data(data, path)
            self._by_hash.put(sha, results)
            self.counters["scanned"] += 1
        else:
            self._by_hash.move_to_end(sha)
            self.counters["cache_hits"] += 1
        self._reported.put((sha, real), True)
        dets: list[Detection] = []
        for r in results:
            # Cached results carry the path first seen; report this event's path.
            shown = ScanResult(path + r.path[len(results[0].path):], r.sha256, r.size, list(r.matches),
                               r.skipped, list(r.notes), r.depth)
            dets.extend(to_detections(shown, events=[event]))
        self.counters["detections"] += len(dets)
        return dets
