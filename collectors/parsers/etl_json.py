"""ETL job logs in JSON (the shared data warehouse's loaders: Airflow-style or home-grown).

Accepted shape, one object per line; every key is optional except a pipeline name::

    {"ts": "2026-11-25T03:00:05Z", "level": "INFO", "pipeline": "traffic_daily",
     "run_id": "r-20261125", "task": "load_stage", "event": "task_finished",
     "status": "success", "rows_read": 120000, "rows_written": 119870,
     "duration_ms": 5321, "source": "s3://raw/traffic/", "target": "warehouse.traffic_daily",
     "user": "etl_svc", "host": "etl-01"}

Airflow's names (``dag_id``, ``task_id``, ``try_number``) are read too. Job facts go to
``citysoc.etl.*``; the outcome follows ``status``; a run that wrote rows is also a
``database`` ``change`` event (who changed the warehouse, and when, is what an analyst
asks after a data incident).
"""
from __future__ import annotations

import datetime as _dt
from typing import Any

from core.events import Event, set_field
from core.protocols import RawRecord

from ._common import categorize, set_outcome, set_timestamp, to_int
from ._json import JsonFamilyParser
from ._pick import pick, pick_str

__all__ = ["EtlJsonParser", "PARSER", "status_outcome"]

_OK = {"success", "succeeded", "ok", "completed", "complete", "done", "finished", "passed"}
_FAIL = {"failed", "failure", "error", "errored", "aborted", "killed", "timeout", "timed_out", "upstream_failed"}


def status_outcome(status: str | None) -> bool | None:
    """True/False/None for a job status word."""
    if not status:
        return None
    s = status.lower()
    return True if s in _OK else False if s in _FAIL else None


def _phase(word: str) -> str:
    w = word.lower()
    if any(k in w for k in ("start", "begin", "running")):
        return "start"
    if any(k in w for k in ("finish", "end", "complete", "success", "fail", "error", "done", "abort")):
        return "end"
    return "info"


class EtlJsonParser(JsonFamilyParser):
    name = "etl_json"
    dataset = "etl.job"
    module = "etl"
    order = 82
    json_claims = True

    def claims(self, doc: dict[str, Any]) -> bool:
        return ("pipeline" in doc or "dag_id" in doc or "etl_job" in doc) and any(
            k in doc for k in ("task", "task_id", "step", "stage", "event", "status", "rows_read", "rows_written"))

    def apply_doc(self, ev: Event, doc: dict[str, Any], record: RawRecord, now: _dt.datetime) -> None:
        set_timestamp(ev, pick(doc, "@timestamp", "ts", "timestamp", "time"), now)
        etl: dict[str, Any] = {}
        for out, keys in (("pipeline", ("pipeline", "dag_id", "etl_job")), ("task", ("task", "task_id", "step", "stage")),
                          ("run_id", ("run_id", "job_id", "execution_id")), ("source", ("source", "input")),
                          ("target", ("target", "output", "table")), ("status", ("status", "state"))):
            value = pick_str(doc, *keys)
            if value is not None:
                etl[out] = value
        for key in ("rows_read", "rows_written", "rows_rejected", "bytes_read", "bytes_written", "try_number"):
            n = to_int(doc.get(key))
            if n is not None:
                etl[key] = n
        set_field(ev, "citysoc.etl", etl)
        word = pick_str(doc, "event", "action") or etl.get("status") or "log"
        ok = status_outcome(etl.get("status")) if "status" in etl else status_outcome(word)
        if ok is None and any(k in word.lower() for k in ("fail", "error")):
            ok = False
        phase = _phase(word)
        cats, types = ["process"], [phase]
        if etl.get("rows_written"):
            cats.append("database")
            types.append("change")
        categorize(ev, cats, types, "etl-" + word.lower().replace(" ", "-").replace("_", "-"))
        if ok is not None:
            set_outcome(ev, ok)
        duration = pick(doc, "duration_ms")
        if isinstance(duration, (int, float)):
            ev["event"]["duration"] = int(duration * 1_000_000)
        level = pick_str(doc, "level", "severity")
        if level:
            set_field(ev, "log.level", level.lower())
        user = pick_str(doc, "user", "owner")
        if user:
            set_field(ev, "user.name", user)
        host = pick_str(doc, "host", "hostname", "worker")
        if host:
            set_field(ev, "host.name", host)
        err = pick_str(doc, "error", "exception", "error_message")
        if err:
            set_field(ev, "error.message", err)
        msg = pick_str(doc, "message", "msg")
        ev["message"] = msg or f"{etl.get('pipeline', '?')}/{etl.get('task', '-')}: {word}"


PARSER = EtlJsonParser()
