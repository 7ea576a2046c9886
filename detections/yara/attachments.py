"""Scanning case attachments and uploads.

* :class:`YaraAttachmentScanner` implements ``core.protocols.AttachmentScanner``
  (``scan_file(path) -> list[ScanFinding]``) for the case store's API: findings from the
  file and its archive members; a file the limits made us skip (too large, timeout)
  raises :class:`AttachmentScanError` with the reason, so the attachment's scan shows
  ``error`` instead of a silent "clean"; a scan that could not see every member (skipped,
  too deep, encrypted, over the byte/member budget or the deadline) raises
  ``core.protocols.IncompleteScan`` with what it found, so the attachment is ``flagged``
  or ``incomplete``, never ``clean``.
* :func:`scan_bytes` ``(data, name) -> list[Detection]`` for uploads held in memory.

Both default to our own pack with default limits, compiled on first use; wiring that
wants other rule folders passes its own :class:`YaraScanner`.
"""
from __future__ import annotations

import threading
from pathlib import Path

from core.protocols import Detection, IncompleteScan, ScanFinding
from detections.yara.compile import compile_rules
from detections.yara.scanner import YaraScanner

__all__ = ["scan_bytes", "default_scanner", "YaraAttachmentScanner", "AttachmentScanError"]

_lock = threading.Lock()
_default: YaraScanner | None = None


def default_scanner() -> YaraScanner:
    """The scanner over our pack, built once per process."""
    global _default
    with _lock:
        if _default is None:
            _default = YaraScanner(compile_rules().rules)
        return _default


def scan_bytes(data: bytes, name: str) -> list[Detection]:
    """YARA detections for ``data`` (and its archive members) named ``name``."""
    return default_scanner().scan_bytes(data, name)


class AttachmentScanError(RuntimeError):
    """The attachment could not be scanned completely (the message says why)."""


class YaraAttachmentScanner:
    """``core.protocols.AttachmentScanner`` over a :class:`YaraScanner`."""

    def __init__(self, scanner: YaraScanner | None = None):
        self.scanner = scanner

    def scan_file(self, path: str) -> list[ScanFinding]:
        scanner = self.scanner or default_scanner()
        results = scanner.scan_file(Path(path))
        top = results[0]
        if top.skipped:
            raise AttachmentScanError(f"{path}: not scanned: {top.skipped}")
        findings: list[ScanFinding] = []
        for r in results:
            for m in r.matches:
                meta = dict(m.meta)
                if r is not top:
                    meta["matched_in"] = r.path
                findings.append(ScanFinding(rule=m.rule, namespace=m.namespace, tags=list(m.tags), meta=meta))
        if top.incomplete:
            raise IncompleteScan(top.incomplete, findings)
        return findings
