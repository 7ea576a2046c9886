"""A detector that scans the files events point at (``file.path`` on file events).

The file-integrity and ingest collectors report "file created in the warehouse ingest
folder" or "firmware image staged"; this detector reads that file, bounded by the scan
limits, and turns YARA matches into detections carrying the triggering event. Only
paths under the configured prefixes are read (an event must not make the SOC read
``/etc/shadow``), after resolving symlinks and ``..``. Content already scanned is
recognised by its sha256 (an LRU), so a file rewritten a hundred times with the same
bytes is matched once, and a (content, path) pair already reported is not reported again.
"""
from __future__ import annotations

import hashlib
import os
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

from core.events import Event, get_field
from core.protocols import Detection
from detections.yara.results import ScanResult, to_detections
from detections.yara.scanner import YaraScanner

__all__ = ["FileEventScanner"]


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
        self.counters = {"events": 0, "scanned": 0, "cache_hits": 0, "refused": 0, "skipped": 0, "detections": 0}

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
