"""Scheduled Sigma query rules: converted to the store's Lucene dialect, run on an
interval with lookback, deduplicated, with gaps recorded and caught up.

See ``README.md`` in this folder for the design and its limits."""
from detections.scheduled.build import build_scheduled, state_path
from detections.scheduled.convert import Branch, ConversionFailure, ScheduledQuery, convert_file, convert_files
from detections.scheduled.runner import (
    ENGINE,
    RunOutcome,
    ScheduledRule,
    ScheduledRunner,
    event_key,
    list_gaps,
    list_runs,
    validate_queries,
)
from detections.scheduled.settings import ScheduledSettings, load_scheduled_settings, parse_duration
from detections.scheduled.state import GapRecord, RunRecord, RunState

__all__ = [
    "build_scheduled",
    "state_path",
    "Branch",
    "ConversionFailure",
    "ScheduledQuery",
    "convert_file",
    "convert_files",
    "ENGINE",
    "RunOutcome",
    "ScheduledRule",
    "ScheduledRunner",
    "event_key",
    "list_gaps",
    "list_runs",
    "validate_queries",
    "ScheduledSettings",
    "load_scheduled_settings",
    "parse_duration",
    "GapRecord",
    "RunRecord",
    "RunState",
]
