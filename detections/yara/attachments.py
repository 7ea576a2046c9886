"""``scan_bytes(data, name)``: the attachment-scanner callable for case attachments and uploads.

Uses our own pack with default limits, compiled on first use. Wiring that wants other
rule folders builds ``YaraScanner(compile_rules(folders).rules).scan_bytes`` instead;
both have the same signature.
"""
from __future__ import annotations

import threading

from core.protocols import Detection
from detections.yara.compile import compile_rules
from detections.yara.scanner import YaraScanner

__all__ = ["scan_bytes", "default_scanner"]

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
