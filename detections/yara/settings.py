"""Typed settings for YARA scanning, and the builders that turn them into parts.

Kept beside the engine so the settings owner can embed :class:`YaraSettings` under a
``yara:`` key of ``citysoc.yml`` and ``citysoc/`` can call :func:`build_scanner` and
:func:`build_file_event_scanner`. Unknown keys are errors, as everywhere in citysoc.

Example ``citysoc.yml``::

    yara:
      rules: [../shared/corpora/yara, ../shared/corpora/yara-iot]
      watch_prefixes: [/srv/warehouse/ingest, /srv/cameras/firmware]
      max_file_size_mb: 128
"""
from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from detections.yara.compile import CompiledRules, compile_rules
from detections.yara.file_events import FileEventScanner
from detections.yara.limits import MiB, ScanLimits
from detections.yara.scanner import YaraScanner

__all__ = ["YaraSettings", "build_scanner", "build_file_event_scanner"]


class YaraSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    rules: list[Path] = Field(default_factory=list)
    """Extra rule folders or files compiled beside our pack (a folder with index.yar compiles through it)."""
    include_pack: bool = True
    """Compile citysoc's own pack (detections/rules/yara)."""
    skip_bad_rules: bool = False
    """Start with the rule files that compile, reporting the others, instead of refusing to start."""
    max_file_size_mb: float = Field(64, gt=0)
    timeout_s: int = Field(10, ge=1)
    max_depth: int = Field(3, ge=0)
    max_extracted_mb: float = Field(256, gt=0)
    watch_prefixes: list[Path] = Field(default_factory=list)
    """Folders whose files are scanned when file events name them (ingest, firmware staging)."""
    watch_queue_size: int = Field(256, ge=1)
    """Files named by events waiting for the scan worker (a server scans off the detection
    thread); past it a file is not scanned and counted as ``dropped``."""
    dedupe_cache_size: int = Field(4096, ge=1)
    """Contents (by sha256) remembered so the same bytes are scanned once."""

    def limits(self) -> ScanLimits:
        return ScanLimits(max_file_size=int(self.max_file_size_mb * MiB), timeout=self.timeout_s,
                          max_depth=self.max_depth, max_extracted=int(self.max_extracted_mb * MiB))


def build_scanner(settings: YaraSettings, cache_dir: Path | None = None) -> tuple[YaraScanner, CompiledRules]:
    """Compile (or load from ``cache_dir``) the configured rules; raises YaraCompileError
    naming every failing file unless ``skip_bad_rules``."""
    compiled = compile_rules(settings.rules, include_pack=settings.include_pack, cache_dir=cache_dir,
                             strict=not settings.skip_bad_rules)
    return YaraScanner(compiled.rules, settings.limits()), compiled


def build_file_event_scanner(settings: YaraSettings, scanner: YaraScanner) -> FileEventScanner | None:
    """The file-event detector, or None when no folder is configured to watch."""
    if not settings.enabled or not settings.watch_prefixes:
        return None
    return FileEventScanner(scanner, settings.watch_prefixes, cache_size=settings.dedupe_cache_size)
