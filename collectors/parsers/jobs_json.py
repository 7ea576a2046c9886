"""Job scheduler logs in JSON (the forecasting center's model training and scoring jobs).

Accepted shape, one object per line::

    {"time": "2026-11-25T01:00:00Z", "scheduler": "slurm", "event": "fail", "job_id": "88231",
     "job_name": "flood-forecast-train", "user": "fc_ml", "queue": "gpu", "node": "gpu-03",
     "exit_code": 137, "command": "python train.py --model flood-v3"}
    {"time": "...", "event": "artifact_written", "job_id": "88232",
     "artifact": {"path": "/models/flood-v3/model.pt", "sha256": "...", "size": 104857600}}

Events: submit, start, finish, fail, cancel, artifact_written (and their -ed forms). A
model artifact written is a ``file`` ``creation`` event with ``file.path`` and
``file.hash.sha256``: a model replaced outside a scheduled job is exactly what the
forecasting center wants to be told about.
"""
from __future__ import annotations

import datetime as _dt
from typing import Any

from core.events import Event, set_field
from core.protocols import RawRecord

from ._common import categorize, set_outcome, set_timestamp, to_int
from ._json import JsonFamilyParser
from ._pick import pick, pick_str

__all__ = ["JobsJsonParser", "PARSER"]

_EVENTS: dict[str, tuple[list[str], list[str], str, bool | None]] = {}
for _w in ("submit", "submitted", "queued", "pending"):
    _EVENTS[_w] = (["process"], ["info"], "job-submitted", None)
for _w in ("start", "started", "running"):
    _EVENTS[_w] = (["process"], ["start"], "job-started", None)
for _w in ("finish", "finished", "complete", "completed", "success", "succeeded", "done"):
    _EVENTS[_w] = (["process"], ["end"], "job-finished", True)
for _w in ("fail", "failed", "error", "killed", "timeout", "oom", "node_fail"):
    _EVENTS[_w] = (["process"], ["end"], "job-failed", False)
for _w in ("cancel", "cancelled", "canceled"):
    _EVENTS[_w] = (["process"], ["end"], "job-cancelled", None)
for _w in ("artifact_written", "model_written", "artifact", "model_saved", "artifact_saved"):
    _EVENTS[_w] = (["file"], ["creation"], "model-artifact-written", True)


class JobsJsonParser(JsonFamilyParser):
    name = "jobs_json"
    dataset = "scheduler.job"
    module = "scheduler"
    order = 84
    json_claims = True

    def claims(self, doc: dict[str, Any]) -> bool:
        if "job_id" not in doc:
            return False
        event = str(doc.get("event", doc.get("state", ""))).lower()
        return "scheduler" in doc or event in _EVENTS or "artifact" in doc

    def apply_doc(self, ev: Event, doc: dict[str, Any], record: RawRecord, now: _dt.datetime) -> None:
        set_timestamp(ev, pick(doc, "@timestamp", "time", "ts", "timestamp"), now)
        word = (pick_str(doc, "event", "state") or "").lower()
        job: dict[str, Any] = {"event": word}
        for out, keys in (("id", ("job_id",)), ("name", ("job_name", "name")), ("queue", ("queue", "partition")),
                          ("model", ("model", "model_name")), ("scheduler", ("scheduler",)),
                          ("array_id", ("array_id",))):
            value = pick_str(doc, *keys)
            if value is not None:
                job[out] = value
        set_field(ev, "citysoc.job", job)
        cats, types, action, ok = _EVENTS.get(word, (["process"], ["info"], "job-" + (word or "event"), None))
        categorize(ev, cats, types, action)
        exit_code = to_int(doc.get("exit_code"))
        if exit_code is not None:
            set_field(ev, "process.exit_code", exit_code)
            if ok is None and action in ("job-finished",):
                ok = exit_code == 0
        if ok is not None:
            set_outcome(ev, ok)
        user = pick_str(doc, "user", "owner")
        if user:
            set_field(ev, "user.name", user)
        host = pick_str(doc, "node", "host", "hostname")
        if host:
            set_field(ev, "host.name", host)
        command = pick_str(doc, "command", "cmd")
        if command:
            set_field(ev, "process.command_line", command)
            set_field(ev, "process.args", command.split())
        artifact = doc.get("artifact")
        path = pick_str(artifact, "path") if isinstance(artifact, dict) else pick_str(doc, "artifact_path", "artifact")
        if path:
            set_field(ev, "file.path", path)
            set_field(ev, "file.name", path.rsplit("/", 1)[-1])
        if isinstance(artifact, dict):
            if artifact.get("sha256"):
                set_field(ev, "file.hash.sha256", str(artifact["sha256"]))
            size = to_int(artifact.get("size"))
            if size is not None:
                set_field(ev, "file.size", size)
        err = pick_str(doc, "error", "reason")
        if err:
            set_field(ev, "error.message", err)
        msg = pick_str(doc, "message", "msg")
        ev["message"] = msg or f"job {job.get('id', '?')} {job.get('name', '')} {word}".replace("  ", " ").strip()


PARSER = JobsJsonParser()
