"""Shipper documents (Filebeat, Elastic Agent, ...) that carry a raw ``message`` are parsed by the
same parser as the syslog path and merged with the shipper's fields (issue 13 item 4)."""
from __future__ import annotations

import datetime as dt
import json

import pytest

from collectors.parsers import parse_record
from collectors.parsers.json_generic import shipped_format
from core.events import flatten
from core.protocols import RawRecord

NOW = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.timezone.utc)
LINE = "Nov 25 10:29:05 fc-gpu-01 sshd[811]: Failed password for root from 203.0.113.99 port 40001 ssh2"
DETECTION = ("source.ip", "source.port", "user.name", "event.outcome", "event.action", "event.category",
             "event.type", "process.name", "process.pid", "host.name", "@timestamp")


def _bulk_doc(**extra: object) -> bytes:
    doc = {"@timestamp": "2026-11-25T11:00:00.000Z", "message": LINE, "agent": {"type": "filebeat"}, **extra}
    return json.dumps(doc).encode()


def _fields(ev: dict) -> dict:
    flat = flatten(ev)
    return {k: flat.get(k) for k in DETECTION}


@pytest.mark.parametrize("extra", [
    {"event": {"module": "system", "dataset": "system.auth"}, "log": {"file": {"path": "/var/log/auth.log"}}},
    {"data_stream": {"dataset": "system.auth", "type": "logs", "namespace": "default"}},
    {"event": {"module": "system"}, "fileset": {"name": "auth"}},
    {"log": {"file": {"path": "/var/log/auth.log"}}},
])
def test_filebeat_document_parsed_like_the_syslog_line(extra: dict) -> None:
    shipped = parse_record(RawRecord(_bulk_doc(**extra), format="json", source="bulk:x", dataset="filebeat-8.17.0"),
                           now=NOW)
    direct = parse_record(RawRecord(LINE.encode(), format="syslog", source="syslog:x"), now=NOW)
    assert _fields(shipped) == _fields(direct)
    assert shipped["source"]["ip"] == "203.0.113.99" and shipped["event"]["outcome"] == "failure"
    assert shipped["agent"]["type"] == "filebeat"  # the shipper's fields are kept
    assert shipped["event"]["original"] == LINE
    if "path" in json.dumps(extra):
        assert shipped["log"]["file"]["path"] == "/var/log/auth.log"


def test_shipper_dataset_wins_over_the_index_name() -> None:
    ev = parse_record(RawRecord(_bulk_doc(event={"dataset": "system.auth"}), format="json", dataset="filebeat-8.17.0"),
                      now=NOW)
    assert ev["event"]["dataset"] == "system.auth"


def test_unknown_dataset_stays_an_ecs_merge_and_shipper_time_is_used_when_the_log_has_none() -> None:
    assert shipped_format({"message": "x", "event": {"dataset": "acme.app"}}) is None
    ev = parse_record(RawRecord(json.dumps({"@timestamp": "2026-11-25T11:00:00.000Z", "message": "hello",
                                            "event": {"dataset": "acme.app"}}).encode(), format="json"), now=NOW)
    assert ev["message"] == "hello" and "source" not in ev
    ev = parse_record(RawRecord(json.dumps({"@timestamp": "2026-11-25T11:00:00.000Z", "message": "no header here",
                                            "log": {"file": {"path": "/var/log/syslog"}}}).encode(), format="json"),
                      now=NOW)
    assert ev["@timestamp"] == "2026-11-25T11:00:00.000Z"
