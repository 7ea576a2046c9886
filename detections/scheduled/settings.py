"""``detection.scheduled`` settings, validated here (``core`` keeps them as a plain dict,
because ``core`` does not import ``detections``).

Example ``citysoc.yml``::

    detection:
      scheduled:
        interval: 5m          # default for every entry below
        lookback: 10m         # how late an event may arrive and still be found
        ingest_delay: 30s     # a window ends this long before now (events in flight)
        rules:
          - path: /etc/citysoc/scheduled/          # every rule in a folder, default interval
          - id: dc6f987d-bbb1-4b10-97fb-cead3bec1e91   # one rule of our pack (or of detection rules folders)
            interval: 1m
            lookback: 15m
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

__all__ = ["ScheduledRuleEntry", "ScheduledSettings", "parse_duration", "load_scheduled_settings"]

_DURATION_RE = re.compile(r"^(\d+)(ms|s|m|h|d)$")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


def parse_duration(text: str) -> int:
    """``"5m"`` -> 300000 (milliseconds). Units: ms s m h d."""
    m = _DURATION_RE.match(str(text).strip())
    if not m:
        raise ValueError(f"{text!r} is not a duration: write e.g. 30s, 5m, 1h, 1d")
    return int(m.group(1)) * _UNIT_MS[m.group(2)]


def _check_duration(value: str | None) -> str | None:
    if value is not None:
        parse_duration(value)
    return value


class ScheduledRuleEntry(BaseModel):
    """Which rules run on a schedule: a file or folder (``path``) or a rule ``id``."""

    model_config = ConfigDict(extra="forbid")
    path: Path | None = None
    id: str | None = None
    interval: str | None = None
    """How often the rule runs (default: the section's ``interval``)."""
    lookback: str | None = None
    """How far before the last covered end each run looks again, for late events."""

    _v = field_validator("interval", "lookback")(_check_duration)

    @model_validator(mode="after")
    def _one_of(self) -> ScheduledRuleEntry:
        if (self.path is None) == (self.id is None):
            raise ValueError("give exactly one of 'path' (a rule file or folder) or 'id' (a rule id)")
        return self


class ScheduledSettings(BaseModel):
    """Scheduled Sigma query rules (see detections/scheduled/README.md)."""

    model_config = ConfigDict(extra="forbid")
    enabled: bool = True
    rules: list[ScheduledRuleEntry] = Field(default_factory=list)
    interval: str = "5m"
    lookback: str = "10m"
    ingest_delay: str = "30s"
    max_catchup_chunks: int = Field(12, ge=1)
    """At most this many intervals of an open gap are caught up per run of a rule."""
    max_hits: int = Field(1000, ge=1)
    """At most this many events are fetched per rule and window (more: run status ``truncated``)."""

    _v = field_validator("interval", "lookback", "ingest_delay")(_check_duration)


def load_scheduled_settings(raw: dict[str, Any] | None) -> ScheduledSettings:
    """Validate the ``detection.scheduled`` dict; errors name the key."""
    try:
        return ScheduledSettings.model_validate(raw or {})
    except ValidationError as exc:
        msgs = [f"detection.scheduled.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        raise ValueError("; ".join(msgs)) from None
