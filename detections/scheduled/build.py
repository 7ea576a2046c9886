"""Build the scheduled-rule runner from ``detection.scheduled`` settings.

Rules are chosen by configuration only (nothing is scheduled by default): an entry names
a rule file or folder (``path``: all its rules, at the entry's or the default interval)
or one rule ``id`` found in ``search_paths`` (our pack and the configured rule folders).
An id that is not found, and every rule that does not convert or that the store refuses,
is a reported failure.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from core.protocols import AlertSink, EventStore
from detections.scheduled.convert import ConversionFailure, ScheduledQuery, convert_files
from detections.scheduled.runner import ScheduledRule, ScheduledRunner
from detections.scheduled.settings import ScheduledSettings, load_scheduled_settings, parse_duration
from detections.scheduled.state import RunState

__all__ = ["build_scheduled", "state_path"]


def state_path(data_dir: str | Path) -> Path:
    """Where the run state lives: ``<data>/scheduled.db``."""
    return Path(data_dir) / "scheduled.db"


def build_scheduled(
    raw: dict[str, Any] | ScheduledSettings | None,
    store: EventStore,
    sink: AlertSink,
    data_dir: str | Path,
    *,
    search_paths: Sequence[str | Path] = (),
    validate: bool = True,
) -> ScheduledRunner:
    """A runner over the configured rules; ``runner.failures`` lists what is not scheduled."""
    cfg = raw if isinstance(raw, ScheduledSettings) else load_scheduled_settings(raw)
    failures: list[ConversionFailure] = []
    chosen: dict[str, ScheduledRule] = {}
    by_id: dict[str, ScheduledQuery] | None = None
    for entry in cfg.rules:
        interval = parse_duration(entry.interval or cfg.interval)
        lookback = parse_duration(entry.lookback or cfg.lookback)
        if entry.path is not None:
            try:
                rules, fails = convert_files([entry.path])
            except ValueError as exc:  # RuleLoadError: the path does not exist
                failures.append(ConversionFailure(str(entry.path), str(exc)))
                continue
            failures.extend(fails)
            for q in rules:
                chosen[q.id] = ScheduledRule(q, interval, lookback)
            continue
        if by_id is None:
            by_id = {}
            pack_rules, _ = convert_files([p for p in search_paths if Path(p).exists()])
            for q in pack_rules:
                by_id.setdefault(q.id, q)
        q = by_id.get(str(entry.id))
        if q is None:
            failures.append(ConversionFailure(
                "", f"rule id {entry.id} not found (or not convertible) in {', '.join(map(str, search_paths))}",
                str(entry.id)))
            continue
        chosen[q.id] = ScheduledRule(q, interval, lookback)
    runner = ScheduledRunner(
        list(chosen.values()), store, sink, RunState(state_path(data_dir)),
        ingest_delay_ms=parse_duration(cfg.ingest_delay), max_catchup_chunks=cfg.max_catchup_chunks,
        max_hits=cfg.max_hits,
    )
    runner.failures.extend(failures)
    if validate:
        runner.validate()
    return runner
