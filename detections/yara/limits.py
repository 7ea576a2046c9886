"""Scan limits: what keeps one hostile file from stalling or exhausting the scanner.

Uploads and firmware images come from outside; a 10 GB image, a regex-heavy rule over a
huge blob, or a 42 KB zip that inflates to petabytes must each cost a bounded amount of
time and memory, and must leave a recorded reason instead of silence.
"""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ScanLimits", "MiB"]

MiB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class ScanLimits:
    max_file_size: int = 64 * MiB
    """Files (and archive members) larger than this are skipped with a reason."""
    timeout: int = 10
    """Seconds yara may spend on one file or member (yara's ``timeout=``)."""
    max_depth: int = 3
    """Archive nesting scanned: 1 scans members of a top-level archive but not archives inside it."""
    max_extracted: int = 256 * MiB
    """Total bytes decompressed from one top-level file across all its members (zip bombs)."""
    max_members: int = 10_000
    """Members looked at in one top-level file across all nesting levels."""
    deadline: float = 60.0
    """Wall-clock seconds for one top-level file: decompression and every yara match in it."""
    max_strings: int = 32
    """Matched string identifiers reported per rule."""
    max_instances: int = 8
    """Offsets reported per matched string."""
    snippet_bytes: int = 48
    """Bytes of each matched string shown (escaped)."""

    def __post_init__(self) -> None:
        for name in ("max_file_size", "timeout", "max_extracted", "max_members", "max_strings",
                     "max_instances", "snippet_bytes", "deadline"):
            if getattr(self, name) <= 0:
                raise ValueError(f"scan limit {name} must be positive, got {getattr(self, name)}")
        if self.max_depth < 0:
            raise ValueError(f"scan limit max_depth must be 0 or more, got {self.max_depth}")
