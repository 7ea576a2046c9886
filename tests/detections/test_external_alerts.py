"""Sensor alerts (Suricata, Zeek notices, FortiGate IPS, PAN-OS threats) become deduplicated citysoc alerts."""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from collectors.parsers import parse_record
from core.alerts import AlertFilter, AlertRecorder
from core.protocols import RawRecord
from detections.external import ExternalAlerts, suricata_level
from storage.socdb import open_socdb
from citysoc.testing import corpora_dir

NOW = dt.datetime(2026, 11, 25, 12, 0, 0, tzinfo=dt.timezone.utc)


def _corpus() -> Path | None:
    base = corpora_dir() / "ecs-parity"
    return base if base.is_dir() else None


def _eve(sid: int = 2034647, src: str = "203.0.113.9", severity: int = 1, action: str = "allowed") -> bytes:
    return json.dumps({
        "timestamp": "2026-11-25T17:00:01.123456+0700", "flow_id": 1, "event_type": "alert", "src_ip": src,
        "src_port": 40001, "dest_ip": "10.20.0.5", "dest_port": 80, "proto": "TCP",
        "alert": {"action": action, "gid": 1, "signature_id": sid, "rev": 2, "severity": severity,
                  "signature": "ET EXPLOIT Apache log4j RCE Attempt (CVE-2021-44228)",
                  "category": "Attempted Administrator Privilege Gain",
                  "metadata": {"mitre_technique_id": ["T1190"]}}}).encode()


def _parse(line: bytes, fmt: str) -> dict:
    return parse_record(RawRecord(line, format=fmt), now=NOW)


def test_suricata_alert_becomes_a_detection_with_the_documented_level() -> None:
    dets = ExternalAlerts().process(_parse(_eve(), "suricata"))
    assert len(dets) == 1
    d = dets[0]
    assert (d.rule_id, d.level, d.engine) == ("suricata:2034647", "high", "external")
    assert d.title.startswith("ET EXPLOIT Apache log4j")
    assert "attack.t1190" in d.tags and "suricata" in d.tags
    assert [suricata_level(s) for s in (1, 2, 3, 4, "x")] == ["high", "medium", "low", "informational", "medium"]


def test_suricata_alerts_are_deduplicated_like_our_own(tmp_path) -> None:
    soc = open_socdb(tmp_path)
    try:
        rec = AlertRecorder(soc.alerts)
        ext = ExternalAlerts()
        for _ in range(10):
            rec.emit(ext.process(_parse(_eve(), "suricata")))
        rec.emit(ext.process(_parse(_eve(src="203.0.113.77"), "suricata")))
        rec.emit(ext.process(_parse(_eve(sid=2000001, severity=3), "suricata")))
        total, items = soc.alerts.list(AlertFilter(sort="id"))
        assert total == 3
        first = soc.alerts.get(items[0].id)
        assert first.count == 10 and first.rule_id == "suricata:2034647" and first.level == "high"
        assert {a.level for a in items} == {"high", "low"}
    finally:
        soc.close()


def test_zeek_notice_and_non_alert_events() -> None:
    notice = json.dumps({"ts": 1795600807.0, "uid": "C1", "id.orig_h": "203.0.113.11", "id.orig_p": 0,
                         "id.resp_h": "10.20.0.5", "id.resp_p": 0, "note": "Scan::Port_Scan",
                         "msg": "203.0.113.11 scanned at least 15 unique ports", "src": "203.0.113.11"}).encode()
    det = ExternalAlerts().process(_parse(notice, "zeek"))
    assert [(d.rule_id, d.level) for d in det] == [("zeek:Scan::Port_Scan", "medium")]
    flow = json.dumps({"timestamp": "2026-11-25T17:00:02+0700", "event_type": "flow", "src_ip": "10.0.0.1",
                       "dest_ip": "10.0.0.2", "proto": "UDP", "flow": {"bytes_toserver": 1}}).encode()
    assert ExternalAlerts().process(_parse(flow, "suricata")) == []
    # An "alert" someone else's JSON claims to be is not a sensor alert.
    assert ExternalAlerts().process({"event": {"kind": "alert", "module": "json"}}) == []


def test_corpus_firewall_threat_logs_become_detections() -> None:
    base = _corpus()
    if base is None:
        pytest.skip("shared/corpora/ecs-parity not found beside the repo or at /work/shared")
    ext = ExternalAlerts()
    got = []
    for path, fmt in ((base / "fortinet_fortigate.log" / "test-fortinet-fix.log", "fortigate"),
                      (base / "panw.panos" / "test-panw-panos-threat-url-no-xff-sample.log", "panos"),
                      (base / "suricata.eve" / "test-eve-tls-empty-subject.log", "suricata")):
        for line in path.read_bytes().splitlines():
            if line.strip():
                got += [(d.rule_id, d.level) for d in ext.process(_parse(line, fmt))]
    # FortiGate IPS signature 55823 (severity high) twice; PAN-OS URL threat 9999 (informational);
    # the Suricata TLS records are not alerts.
    assert got == [("fortigate:55823", "high"), ("fortigate:55823", "high"), ("panos:9999", "informational")]
