"""``/api/v1/reports`` on the real app: an auditor makes a report (audited), lists and
downloads it; the figures equal what ``/api/v1/alerts`` answers for the same period;
roles without ``export`` are refused; bad periods are 400s; names cannot escape."""
from __future__ import annotations

import hashlib
from dataclasses import replace

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.deps import AppState
from citysoc.wiring import build_alerting, build_pipeline, build_reports
from storage.deadletters import SQLiteDeadLetterStore


@pytest.fixture(scope="module")
def api(week):
    _sink, services = build_alerting(week.soc)
    gen, _ev = build_reports(week.settings, week.soc, events=week.events, assets=week.assets, runs=week.runs,
                             rules=week.rules)
    services = replace(services, reports=gen)
    dls = SQLiteDeadLetterStore(week.data / "deadletters.db")
    state = AppState(settings=week.settings, store=week.events, deadletters=dls,
                     pipeline=build_pipeline(week.settings, week.events, dls), services=services, ready=True)
    app = create_app(state)
    keys = {r: week.soc.users.create_api_key(f"rep-{r}", r, "test")[1] for r in ("auditor", "analyst", "admin", "viewer")}
    with TestClient(app) as client:
        yield client, keys


def auth(keys, role):
    return {"Authorization": f"ApiKey {keys[role]}"}


def test_auditor_generates_lists_and_downloads(week, api) -> None:
    client, keys = api
    body = {"start": week.first_day.isoformat(), "end": week.last_day.isoformat(), "format": "csv", "lang": "en"}
    r = client.post("/api/v1/reports", json=body, headers=auth(keys, "auditor"))
    assert r.status_code == 201, r.text
    info = r.json()
    assert info["figures"]["alerts"] == week.total and info["generated_by"].startswith("apikey:")
    listed = client.get("/api/v1/reports", headers=auth(keys, "auditor")).json()
    assert info["name"] in [i["name"] for i in listed["items"]]
    dl = client.get(info["download"], headers=auth(keys, "auditor"))
    assert dl.status_code == 200 and dl.headers["content-type"].startswith("text/csv")
    assert hashlib.sha256(dl.content).hexdigest() == info["sha256"]
    man = client.get(f"{info['download']}/manifest", headers=auth(keys, "auditor")).json()
    assert man["sha256"] == info["sha256"] and man["audit_head"] == info["audit_head"]
    _n, gen = week.soc.audit.list(action="report.generate", limit=5)
    assert gen[0].details["sha256"] == info["sha256"] and gen[0].source_ip
    _n, dls = week.soc.audit.list(action="report.download", limit=5)
    assert {e.target for e in dls} >= {f"report:{info['name']}", f"report:{info['name']}.manifest.json"}


def test_report_figures_match_the_alerts_api(week, api) -> None:
    client, keys = api
    body = {"start": week.first_day.isoformat(), "end": week.last_day.isoformat(), "format": "json", "lang": "vi"}
    info = client.post("/api/v1/reports", json=body, headers=auth(keys, "admin")).json()
    data = client.get(info["download"], headers=auth(keys, "admin")).json()
    since, until = data["period"]["start"], data["period"]["end"]
    total = client.get("/api/v1/alerts", params={"from": since, "to": until, "limit": 1},
                       headers=auth(keys, "auditor")).json()["total"]
    assert data["alerts"]["total"] == total == week.total
    for level, n in data["alerts"]["by_level"].items():
        got = client.get("/api/v1/alerts", params={"from": since, "to": until, "level": level, "limit": 1},
                         headers=auth(keys, "auditor")).json()["total"]
        assert got == n, level
    for status, n in data["alerts"]["by_status"].items():
        got = client.get("/api/v1/alerts", params={"from": since, "to": until, "status": status, "limit": 1},
                         headers=auth(keys, "auditor")).json()["total"]
        assert got == n, status


@pytest.mark.parametrize("role", ["analyst", "viewer"])
def test_roles_without_export_are_refused(week, api, role) -> None:
    client, keys = api
    body = {"start": "2026-11-16", "end": "2026-11-22"}
    assert client.post("/api/v1/reports", json=body, headers=auth(keys, role)).status_code == 403
    assert client.get("/api/v1/reports", headers=auth(keys, role)).status_code == 403
    assert client.post("/api/v1/reports", json=body).status_code == 401


def test_bad_requests_are_clear(api) -> None:
    client, keys = api
    h = auth(keys, "auditor")
    r = client.post("/api/v1/reports", json={"start": "2026-11-22", "end": "2026-11-16"}, headers=h)
    assert r.status_code == 400 and "swap" in r.json()["detail"]
    r = client.post("/api/v1/reports", json={"start": "2026-11-16", "end": "2026-11-22", "lang": "fr"}, headers=h)
    assert r.status_code == 422
    for name in ("..%2F..%2Fsoc.db", "soc.db", "report-x.pdf", "../../etc/passwd"):
        assert client.get(f"/api/v1/reports/{name}", headers=h).status_code == 404, name


def test_evidence_export_through_the_api(week, api) -> None:
    client, keys = api
    h = auth(keys, "auditor")
    r = client.post("/api/v1/reports/evidence", json={"case_id": week.case_id}, headers=h)
    assert r.status_code == 201, r.text
    info = r.json()
    assert info["kind"] == "evidence" and info["fmt"] == "zip" and info["figures"]["subject"] == f"case:{week.case_id}"
    dl = client.get(info["download"], headers=h)
    assert dl.status_code == 200 and dl.headers["content-type"] == "application/zip"
    assert hashlib.sha256(dl.content).hexdigest() == info["sha256"]
    assert info["name"] in {i["name"] for i in client.get("/api/v1/reports", headers=h).json()["items"]}
    assert client.post("/api/v1/reports/evidence", json={}, headers=h).status_code == 400
    assert client.post("/api/v1/reports/evidence", json={"case_id": 1, "alert_id": 1}, headers=h).status_code == 400
    assert client.post("/api/v1/reports/evidence", json={"alert_id": 987654}, headers=h).status_code == 404
    assert client.post("/api/v1/reports/evidence", json={"case_id": week.case_id},
                       headers=auth(keys, "analyst")).status_code == 403
