"""YARA scanning: our pack plus configured rule folders, with limits and archive handling.

Public surface:

* :func:`compile_rules` -> :class:`CompiledRules` (cached, every failing file reported)
* :class:`YaraScanner` (files, folders, bytes; :class:`ScanLimits`)
* :class:`FileEventScanner`: a ``core.protocols.Detector`` for events naming files
* :class:`YaraAttachmentScanner`: ``core.protocols.AttachmentScanner`` for case attachments
* :func:`scan_bytes`: detections for uploads held in memory
"""
from detections.yara.attachments import AttachmentScanError, YaraAttachmentScanner, default_scanner, scan_bytes
from detections.yara.compile import (
    EXTERNALS,
    PACK_DIR,
    CompiledRules,
    RuleError,
    YaraCompileError,
    compile_rules,
    discover_rule_files,
)
from detections.yara.file_events import FileEventScanner
from detections.yara.limits import MiB, ScanLimits
from detections.yara.results import RuleMatch, ScanResult, StringHit, to_detections
from detections.yara.scanner import YaraScanner, iter_files

__all__ = [
    "EXTERNALS",
    "PACK_DIR",
    "CompiledRules",
    "RuleError",
    "YaraCompileError",
    "compile_rules",
    "discover_rule_files",
    "FileEventScanner",
    "MiB",
    "ScanLimits",
    "RuleMatch",
    "ScanResult",
    "StringHit",
    "to_detections",
    "YaraScanner",
    "iter_files",
    "scan_bytes",
    "default_scanner",
    "YaraAttachmentScanner",
    "AttachmentScanError",
]
