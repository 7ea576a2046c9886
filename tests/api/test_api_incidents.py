"""The incidents API: list, detail with alerts and timeline, expand, select all, facets, triage."""
from __future__ import annotations

from core.protocols import Detection

V1 = "/api/v1"


def _seed(stack):
    rec = stack.state.services["alert_recorder"]
    rec.emit([Detection(rule_id=f"r{i}", title=f"Rule {i}", level="high",
                        events=[{"@timestamp": f"2026-11-25T08:00:{i:02d}Z", "source": {"ip": "203.0.113.7"},
                                 "destination": {"ip": f"10.30.0.{i + 1}"}, "citysoc": {"center": "warehouse"}}])
              for i in range(3)])


def test_incident_list_detail_expand_ids_facets_and_triage(stack, client, hdr):
    _seed(stack)
    h = hdr("analyst")
    page = client.get(f"{V1}/incidents", headers=h).json()
    assert page["total"] == 1
    inc = page["items"][0]
    assert inc["alert_count"] == 3 and inc["attacker"] == "203.0.113.7" and inc["target_count"] == 3
    detail = client.get(f"{V1}/incidents/{inc['id']}", headers=h).json()
    assert len(detail["alerts"]) == 3 and [t["rule_id"] for t in detail["timeline"]] == ["r0", "r1", "r2"]
    assert len(client.get(f"{V1}/incidents/{inc['id']}/alerts", headers=h).json()) == 3
    assert client.get(f"{V1}/alerts", params={"incident_id": inc["id"]}, headers=h).json()["total"] == 3
    assert client.get(f"{V1}/incidents/ids", params={"center": "warehouse"}, headers=h).json()["ids"] == [inc["id"]]
    assert "warehouse" in client.get(f"{V1}/incidents/facets", headers=h).json()["center"]
    r = client.patch(f"{V1}/incidents/{inc['id']}", json={"status": "closed"}, headers=h)
    assert r.status_code == 409
    r = client.patch(f"{V1}/incidents/{inc['id']}", json={"status": "closed", "resolution": "true_positive"},
                     headers=h)
    assert r.status_code == 200 and r.json()["status"] == "closed"
    alerts = client.get(f"{V1}/alerts", params={"incident_id": inc["id"]}, headers=h).json()["items"]
    assert {a["status"] for a in alerts} == {"closed"}
    assert client.patch(f"{V1}/incidents/{inc['id']}", json={"status": "new"},
                        headers=hdr("viewer")).status_code == 403
    assert client.get(f"{V1}/incidents/999", headers=h).status_code == 404


def test_ndjson_export_downloads_with_a_name(stack, client, hdr):
    _seed(stack)
    r = client.get(f"{V1}/alerts/export", params={"format": "ndjson"}, headers=hdr("admin"))
    assert r.status_code == 200
    assert 'filename="citysoc-alerts.ndjson"' in r.headers["content-disposition"]
