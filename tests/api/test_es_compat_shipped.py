"""Shipper documents over HTTP (``/api/v1/ingest`` and ``_bulk``) on a live server: the raw
``message`` is parsed by the syslog path's parser, read in the right zone (issue 13 item 4).

An auth.log line carries no zone. Elastic's pipeline reads it in the shipper's
``event.timezone`` (Filebeat's ``add_locale``); citysoc does the same and, when the shipper
sends none, reads it in the site's zone, as it does for syslog sources without a zone.
"""
from __future__ import annotations

import datetime as dt
import json
from zoneinfo import ZoneInfo

import httpx
import pytest

from collectors.parsers._common import record_zone
from core.protocols import RawRecord
from core.timezones import DEFAULT_SITE_ZONE
from citysoc.testing import wait_for

LINE_BODY = "fc-gpu-01 sshd[811]: Failed password for root from 203.0.113.99 port 40001 ssh2"


def _line(at: dt.datetime) -> str:
    return at.strftime("%b %e %H:%M:%S") + " " + LINE_BODY


def _search(live, hdr, q: str, n: int) -> list[dict]:
    def hits() -> list[dict]:
        r = httpx.get(f"{live.url}/api/v1/events/search", params={"q": q, "limit": 50}, headers=hdr("viewer"),
                      timeout=10)
        r.raise_for_status()
        got = r.json()["hits"]
        return got if len(got) >= n else []
    return wait_for(hits, timeout=20) or hits()


def test_ingest_ndjson_of_filebeat_documents_is_parsed_in_the_site_zone(live, hdr) -> None:
    """``POST /api/v1/ingest`` (format auto -> ndjson): no ``event.timezone``, so the site's zone."""
    local = dt.datetime.now(ZoneInfo(DEFAULT_SITE_ZONE)).replace(microsecond=0) - dt.timedelta(minutes=3)
    docs = [{"@timestamp": "2026-01-01T00:00:00.000Z", "message": _line(local),
             "event": {"module": "system", "dataset": "system.auth"}, "fileset": {"name": "auth"},
             "log": {"file": {"path": "/var/log/auth.log"}, "offset": 0}, "agent": {"type": "filebeat"}}]
    r = httpx.post(f"{live.url}/api/v1/ingest", content="\n".join(json.dumps(d) for d in docs),
                   headers=hdr("ingest"), timeout=20)
    assert r.status_code == 200 and r.json()["stored"] == 1, r.text
    ev = _search(live, hdr, "source.ip:203.0.113.99", 1)[0]
    assert ev["event"]["dataset"] == "system.auth" and ev["user"]["name"] == "root"
    assert ev["event"]["outcome"] == "failure" and ev["agent"]["type"] == "filebeat"
    assert ev["@timestamp"] == local.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    assert "tags" not in ev or "timestamp_future" not in ev["tags"]


@pytest.mark.parametrize("zone", ["+05:30", "America/New_York"])
def test_bulk_elastic_agent_document_is_read_in_the_shippers_zone(live, hdr, zone: str) -> None:
    """Elastic Agent's data stream (``logs-system.auth-default``, ``data_stream.dataset``) with an
    ``event.timezone`` that is not the site's: the shipper's zone wins."""
    tz = ZoneInfo(zone) if "/" in zone else dt.timezone(dt.timedelta(hours=5, minutes=30))
    local = dt.datetime.now(tz).replace(microsecond=0) - dt.timedelta(minutes=2)
    port = 41000 + (7 if "/" in zone else 3)
    doc = {"@timestamp": "2026-01-01T00:00:00.000Z", "message": _line(local).replace("40001", str(port)),
           "data_stream": {"type": "logs", "dataset": "system.auth", "namespace": "default"},
           "event": {"timezone": zone}, "agent": {"type": "filebeat", "version": "8.17.0"},
           "elastic_agent": {"id": "x", "version": "8.17.0", "snapshot": False}}
    body = b'{"create":{"_index":"logs-system.auth-default"}}\n' + json.dumps(doc).encode() + b"\n"
    r = httpx.post(f"{live.url}/_bulk", content=body, headers={**hdr("ingest"), "Content-Type": "application/x-ndjson"},
                   timeout=20)
    assert r.status_code == 200 and r.json()["errors"] is False, r.text
    ev = _search(live, hdr, f"source.port:{port}", 1)[0]
    assert ev["event"]["dataset"] == "system.auth" and ev["source"]["ip"] == "203.0.113.99"
    assert ev["@timestamp"] == local.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


@pytest.mark.parametrize("name,offset", [
    ("+07:00", 7 * 60), ("-0500", -5 * 60), ("+05:30", 330), ("UTC+07:00", 420), ("Asia/Ho_Chi_Minh", 420),
])
def test_record_zone_takes_iana_names_and_utc_offsets(name: str, offset: int) -> None:
    zone = record_zone(RawRecord(b"", meta={"timezone": name}))
    assert dt.datetime(2026, 6, 1, tzinfo=zone).utcoffset() == dt.timedelta(minutes=offset)


@pytest.mark.parametrize("name", ["+25:00", "Mars/Olympus", "7", ""])
def test_record_zone_falls_back_on_nonsense(name: str) -> None:
    assert record_zone(RawRecord(b"", meta={"timezone": name})) is dt.timezone.utc


# -- each shipper's own document shape, parsed in process (the HTTP path is the same call) ----------
from collectors.parsers import parse_record  # noqa: E402
from core.events import flatten  # noqa: E402

NOW = dt.datetime(2026, 11, 25, 5, 0, tzinfo=dt.timezone.utc)
LINE = "Nov 25 10:29:05 fc-gpu-01 sshd[811]: Failed password for root from 203.0.113.99 port 40001 ssh2"
DETECTION = ("@timestamp", "source.ip", "source.port", "user.name", "event.outcome", "event.action", "process.name")


def _parsed(doc: dict, dataset: str | None = None) -> dict:
    return flatten(parse_record(RawRecord(json.dumps(doc).encode(), format="json", source="bulk:x", dataset=dataset,
                                          meta={"timezone": DEFAULT_SITE_ZONE}), now=NOW))


def _syslog() -> dict:
    return flatten(parse_record(RawRecord(LINE.encode(), format="syslog", meta={"timezone": DEFAULT_SITE_ZONE}),
                                now=NOW))


@pytest.mark.parametrize("shipper,doc,index_dataset", [
    # Logstash 8 (ECS compatibility v8): its file input copies the line into event.original too.
    ("logstash", {"@timestamp": "2026-11-25T04:59:00.000Z", "message": LINE, "event": {"original": LINE},
                  "log": {"file": {"path": "/var/log/auth.log"}}, "host": {"name": "fc-gpu-01"}}, "generic"),
    # Fluent Bit's tail input: the line under "log", sent to a data stream named as Elastic names them.
    ("fluent-bit", {"@timestamp": "2026-11-25T04:59:00.000Z", "log": LINE}, "system.auth"),
    # Vector's file source: flat strings host/file, its own "timestamp" and "source_type".
    ("vector", {"file": "/var/log/auth.log", "host": "fc-gpu-01", "message": LINE, "source_type": "file",
                "timestamp": "2026-11-25T04:59:00.000Z"}, None),
])
def test_each_shippers_document_is_parsed_like_the_syslog_line(shipper: str, doc: dict,
                                                               index_dataset: str | None) -> None:
    got, want = _parsed(doc, index_dataset), _syslog()
    assert {k: got.get(k) for k in DETECTION} == {k: want.get(k) for k in DETECTION}, shipper
    assert got["source.ip"] == "203.0.113.99" and got["@timestamp"] == "2026-11-25T03:29:05.000Z"
    assert got["event.original"] == LINE and got["event.dataset"] == "system.auth"
    if shipper == "vector":  # flat strings kept apart from ECS objects
        assert got["log.file.path"] == "/var/log/auth.log" and got["json.source_type"] == "file"
        assert got["host.name"] == "fc-gpu-01" and "json.host" in got


def test_a_line_parsed_upstream_is_not_parsed_again() -> None:
    """``event.original`` differing from ``message``: someone upstream already parsed it (an
    ingest pipeline, a Logstash filter): the document is taken as it is."""
    doc = {"@timestamp": "2026-11-25T04:59:00.000Z", "message": "Failed password for root",
           "event": {"original": LINE, "dataset": "system.auth", "outcome": "failure"},
           "source": {"ip": "198.51.100.1"}}
    got = _parsed(doc)
    assert got["source.ip"] == "198.51.100.1" and got["message"] == "Failed password for root"
    assert got["@timestamp"] == "2026-11-25T04:59:00.000Z"


def test_unknown_index_dataset_leaves_plain_json_alone() -> None:
    got = _parsed({"message": LINE, "level": "info"}, dataset="acme-app")
    assert "source.ip" not in got and got["json.message"] == LINE
