"""The web and database parsers reached the ways a deployment feeds them (syslog, ``auto``, a shipper)."""
from __future__ import annotations

import datetime as dt
import json

from collectors.parsers import parse_record
from core.protocols import RawRecord

NOW = dt.datetime(2026, 11, 25, 12, 0, 0, tzinfo=dt.timezone.utc)
HTTP_LINE = ('10.40.3.20:51022 [25/Nov/2026:10:50:00.125] api-https~ warehouse_api/api2 0/0/1/12/13 503 1532 - - '
             'sH-- 12/12/3/1/0 0/0 "GET /api/v1/datasets HTTP/1.1"')
TCP_LINE = "10.40.3.8:33313 [25/Nov/2026:10:50:04.443] pg_front pg_back/pg1 0/0/5007 212 -- 0/0/0/0/3 0/0"


def _parse(data: str, fmt: str) -> dict:
    return parse_record(RawRecord(data.encode(), format=fmt), now=NOW)


def test_haproxy_over_syslog_is_routed_by_program_name() -> None:
    ev = _parse(f"<134>Nov 25 10:50:00 lb-dw-01 haproxy[2201]: {HTTP_LINE}", "syslog")
    assert ev["event"]["dataset"] == "haproxy.log" and ev["event"]["module"] == "haproxy"
    assert ev["source"]["ip"] == "10.40.3.20" and ev["http"]["response"]["status_code"] == 503
    assert ev["event"]["outcome"] == "failure" and ev["haproxy"]["termination_state"] == "sH--"
    assert ev["process"] == {"name": "haproxy", "pid": 2201}


def test_haproxy_lines_are_found_by_sniffing() -> None:
    for line, category in ((HTTP_LINE, ["web"]), (TCP_LINE, ["network"])):
        ev = _parse(line, "auto")
        assert ev["event"]["dataset"] == "haproxy.log" and ev["event"]["category"] == category, line
    relayed = _parse(f"<134>Nov 25 10:50:00 lb-dw-01 lb: {TCP_LINE}", "syslog")  # a program name we do not know
    assert relayed["event"]["dataset"] == "haproxy.log" and relayed["source"]["port"] == 33313


def test_haproxy_shipped_by_filebeat_is_parsed_as_the_syslog_path_does() -> None:
    doc = {"message": HTTP_LINE, "event": {"dataset": "haproxy.log"}, "log": {"file": {"path": "/var/log/haproxy.log"}}}
    ev = _parse(json.dumps(doc), "json")
    assert ev["event"]["dataset"] == "haproxy.log" and ev["source"]["ip"] == "10.40.3.20"
    assert ev["url"]["path"] == "/api/v1/datasets"
