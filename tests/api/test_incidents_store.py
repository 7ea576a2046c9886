"""Incidents and same-behaviour folding in the SQLite alert store (real soc.db)."""
from __future__ import annotations

import pytest

from core.alerts import AlertFilter, AlertRecorder, AlertSettings, GroupingPolicy, IncidentFilter, check_transition
from core.protocols import Detection
from detections.network.bruteforce import BruteForceDetector
from detections.network.portscan import PortScanDetector
from storage.socdb import open_socdb

SSH_CORR = "66476bbc-62e7-4b08-a2f3-26e9cf5abfb2"


@pytest.fixture
def soc(tmp_path):
    s = open_socdb(tmp_path)
    yield s
    s.close()


def _ev(ts: str, src: str = "10.20.5.11", dst: str = "10.20.0.5", port: int = 22, center: str = "operations",
        **more):
    ev = {"@timestamp": ts, "source": {"ip": src}, "destination": {"ip": dst, "port": port},
          "citysoc": {"center": center}, "event": {"action": "network_flow", "duration": 10_000_000}}
    ev.update(more)
    return ev


def test_a_port_scan_is_one_incident_naming_its_targets_and_ports(soc):
    """30 hosts x 40 ports from one camera: the detector raises one alert per scanned host
    plus the horizontal one; the queue shows one incident with every target and port."""
    det = PortScanDetector()
    rec = AlertRecorder(soc.alerts)
    n = 0
    for h in range(30):
        for p in range(40):
            n += 1
            rec.emit(det.process(_ev(f"2026-11-25T08:{(n // 60) % 60:02d}:{n % 60:02d}Z",
                                     dst=f"10.20.0.{h + 10}", port=1000 + p)))
    total_alerts, _ = soc.alerts.list(AlertFilter(limit=500))
    assert total_alerts > 1  # the detector's own alerts stay (expandable)
    total, incs = soc.incidents.list_incidents(IncidentFilter())
    assert total == 1
    inc = incs[0]
    assert inc.attacker == "10.20.5.11" and inc.attacker_kind == "source_ip" and inc.center == "operations"
    assert inc.alert_count == total_alerts
    assert inc.target_count == 30 and "10.20.0.10" in inc.targets and "10.20.0.39" in inc.targets
    assert inc.port_count >= 30 and 1000 in inc.ports  # the ports its detections named
    assert inc.rules == ["net:port_scan"]
    assert "10.20.5.11" in inc.title and "30 targets" in inc.title and "ports" in inc.title
    # every alert title names its target
    _n, alerts = soc.alerts.list(AlertFilter(limit=500))
    assert all("10.20.0." in a.rule_title or "hosts" in a.rule_title for a in alerts)
    assert {a.incident_id for a in alerts} == {inc.id}


def test_network_brute_force_and_the_sigma_correlation_fold_into_one_alert(soc):
    rec = AlertRecorder(soc.alerts)
    bf = BruteForceDetector()
    dets = []
    for i in range(40):
        dets += bf.process(_ev(f"2026-11-25T08:00:{i:02d}Z", port=22))
    assert [d.rule_id for d in dets] == ["net:brute_force"]
    rec.emit(dets)
    rec.emit([Detection(rule_id=SSH_CORR, title="SSH brute force against a center server", level="high",
                        events=[{"@timestamp": "2026-11-25T08:00:30Z", "source": {"ip": "10.20.5.11"},
                                 "host": {"name": "wh-db-01"}, "user": {"name": "root"},
                                 "citysoc": {"center": "operations"}}],
                        tags=["attack.t1110"], engine="sigma", group_key="source.ip=10.20.5.11")])
    total, alerts = soc.alerts.list(AlertFilter())
    assert total == 1
    a = soc.alerts.get(alerts[0].id)
    assert a.rules == ["net:brute_force", SSH_CORR] and a.count == 2
    assert "10.20.0.5" in a.rule_title  # the title names the target
    # the folded alert is found by either rule
    assert soc.alerts.list(AlertFilter(rule_id=SSH_CORR))[0] == 1
    assert soc.alerts.list(AlertFilter(rule_id="net:brute_force"))[0] == 1
    assert soc.incidents.list_incidents(IncidentFilter(rule_id=SSH_CORR))[0] == 1


def test_folding_off_keeps_the_two_alerts(soc):
    rec = AlertRecorder(soc.alerts, policy=GroupingPolicy(AlertSettings(behaviours={})))
    for rid in ("net:brute_force", SSH_CORR):
        rec.emit([Detection(rule_id=rid, title=rid, level="high",
                            events=[{"@timestamp": "2026-11-25T08:00:30Z", "source": {"ip": "10.20.5.11"}}])])
    assert soc.alerts.list(AlertFilter())[0] == 2
    assert soc.incidents.list_incidents(IncidentFilter())[0] == 1  # still one attacker


def test_window_center_and_attacker_keep_incidents_apart(soc):
    rec = AlertRecorder(soc.alerts, policy=GroupingPolicy(AlertSettings.model_validate(
        {"incidents": {"window_s": 600}})))

    def det(rule, ts, src="203.0.113.9", center="warehouse"):
        return Detection(rule_id=rule, title=rule, level="medium",
                         events=[{"@timestamp": ts, "source": {"ip": src}, "citysoc": {"center": center}}])

    rec.emit([det("a", "2026-11-25T08:00:00Z"), det("b", "2026-11-25T08:09:00Z")])  # within 600 s: one
    rec.emit([det("c", "2026-11-25T08:30:00Z")])                                     # 21 min later: new
    rec.emit([det("d", "2026-11-25T08:00:00Z", center="operations")])                # other center
    rec.emit([det("a", "2026-11-25T08:00:00Z", src="203.0.113.10")])                 # other attacker
    _n, incs = soc.incidents.list_incidents(IncidentFilter(sort="id"))
    assert [(i.attacker, i.center, i.alert_count) for i in incs] == [
        ("203.0.113.9", "warehouse", 2), ("203.0.113.9", "warehouse", 1), ("203.0.113.9", "operations", 1),
        ("203.0.113.10", "warehouse", 1)]


def test_alerts_without_an_attacker_group_by_rule_and_center(soc):
    rec = AlertRecorder(soc.alerts)
    rec.emit([Detection(rule_id="asset:silent", title=f"Asset stopped logging: cam-{i}", level="medium",
                        events=[{"@timestamp": "2026-11-25T08:00:00Z", "host": {"name": f"cam-{i}"},
                                 "citysoc": {"center": "operations", "asset": {"id": f"cam-{i}"}}}],
                        group_key=f"silent:cam-{i}") for i in range(12)])
    total, incs = soc.incidents.list_incidents(IncidentFilter())
    assert total == 1 and incs[0].attacker_kind == "rule" and incs[0].alert_count == 12
    assert len(incs[0].assets) == 12
    assert soc.incidents.list_incidents(IncidentFilter(asset_id="cam-3"))[0] == 1


def test_closing_an_incident_closes_its_open_alerts(soc):
    rec = AlertRecorder(soc.alerts)
    rec.emit([Detection(rule_id=r, title=r, level="high",
                        events=[{"@timestamp": "2026-11-25T08:00:00Z", "source": {"ip": "10.1.1.1"}}])
              for r in ("x", "y")])
    inc = soc.incidents.list_incidents(IncidentFilter())[1][0]
    check_transition(inc.status, "closed", "true_positive")
    soc.incidents.update_incident(inc.id, status="closed", resolution="true_positive", assignee="an")
    _n, alerts = soc.alerts.list(AlertFilter())
    assert {(a.status, a.resolution, a.assignee) for a in alerts} == {("closed", "true_positive", "an")}
    assert soc.incidents.list_incidents(IncidentFilter(status=["new"]))[0] == 0
    # a new alert from the same attacker opens a new incident rather than hiding in a closed one
    rec.emit([Detection(rule_id="x", title="x", level="high",
                        events=[{"@timestamp": "2026-11-25T08:01:00Z", "source": {"ip": "10.1.1.1"}}])])
    assert soc.incidents.list_incidents(IncidentFilter(status=["new"]))[0] == 1


def test_risk_sort_puts_a_brute_force_on_a_critical_server_above_a_silent_camera(soc):
    rec = AlertRecorder(soc.alerts)
    rec.emit([Detection(rule_id="asset:silent", title="silent camera", level="medium",
                        events=[{"@timestamp": "2026-11-25T09:00:00Z", "host": {"name": "cam-1"},
                                 "citysoc": {"asset": {"id": "cam-1", "criticality": 2}}}])])
    rec.emit([Detection(rule_id="net:brute_force", title="brute force", level="high",
                        events=[{"@timestamp": "2026-11-25T08:00:00Z", "source": {"ip": "203.0.113.5"},
                                 "destination": {"ip": "10.30.0.11"},
                                 "citysoc": {"asset": {"id": "wh-db-01", "criticality": 5}}}])])
    _n, incs = soc.incidents.list_incidents(IncidentFilter(sort="-risk_score"))
    assert [i.rules[0] for i in incs] == ["net:brute_force", "asset:silent"]


def test_an_existing_soc_db_gains_the_new_columns(tmp_path):
    import sqlite3

    conn = sqlite3.connect(tmp_path / "soc.db")
    conn.execute("CREATE TABLE alerts(id INTEGER PRIMARY KEY AUTOINCREMENT, dedupe_key TEXT NOT NULL, rule_id TEXT"
                 " NOT NULL, rule_title TEXT NOT NULL, level TEXT NOT NULL, level_num INTEGER NOT NULL, tags TEXT NOT"
                 " NULL, engine TEXT NOT NULL, description TEXT NOT NULL, host TEXT, user_name TEXT, source_ip TEXT,"
                 " destination_ip TEXT, asset_id TEXT, center TEXT, criticality INTEGER, risk_score INTEGER NOT NULL,"
                 " status TEXT NOT NULL, resolution TEXT, assignee TEXT, first_seen TEXT NOT NULL, last_seen TEXT NOT"
                 " NULL, count INTEGER NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL, touched_at TEXT"
                 " NOT NULL, events TEXT NOT NULL, events_query TEXT NOT NULL, case_id INTEGER)")
    conn.execute("INSERT INTO alerts VALUES (1,'k','old','Old rule','high',4,'[]','sigma','',NULL,NULL,NULL,NULL,"
                 "NULL,NULL,NULL,48,'new',NULL,NULL,'2026-11-25T08:00:00.000Z','2026-11-25T08:00:00.000Z',1,'x','x',"
                 "'x','[]','*',NULL)")
    conn.commit()
    conn.close()
    s = open_socdb(tmp_path)
    try:
        a = s.alerts.get(1)
        assert a.rules == ["old"] and a.incident_id is None
    finally:
        s.close()
