"""The assets API on a real stack: CRUD audited, the running enricher sees changes at
once, silent and unmanaged assets become alerts through the real alert sink."""
from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.deps import AppState
from citysoc.wiring import build_alerting, build_assets, build_pipeline, open_soc
from core.alerts import AlertFilter
from core.protocols import RawRecord
from core.settings import Settings
from storage.deadletters import SQLiteDeadLetterStore
from storage.sqlite import SQLiteEventStore

CAM = {"id": "cam-q3-0007", "name": "Camera Vo Van Tan", "type": "camera", "center": "operations", "criticality": 4,
       "ips": ["10.20.3.7"], "hostnames": ["CAM-Q3-0007"], "zone": "camera-lan",
       "location": {"ward": "Vo Thi Sau", "district": "Quan 3", "lat": 10.7797, "lon": 106.6880},
       "log_sources": ["hikvision"], "log_interval_s": 600}


@pytest.fixture
def stack(tmp_path: Path):
    clock = [1_800_000_000.0]
    settings = Settings(data=tmp_path)
    store = SQLiteEventStore(tmp_path / "events.db")
    dls = SQLiteDeadLetterStore(tmp_path / "deadletters.db")
    soc = open_soc(settings)
    sink, services = build_alerting(soc)
    assets = build_assets(settings, sink)
    assets.tracker._now = lambda: clock[0]  # the wall clock, under the test's control
    assets.monitor.clock = lambda: clock[0]
    # as citysoc serve builds it: the live index enriches, the asset detectors ride the detect stage
    pipeline = build_pipeline(settings, store, dls, alert_sink=sink, detectors=assets.detectors,
                              enrichers=[assets.enrich], worker_context=assets.inventory_version)
    state = AppState(settings=settings, store=store, deadletters=dls, pipeline=pipeline,
                     services=assets.services(services), ready=True)
    app = create_app(state)
    keys = {r: soc.users.create_api_key(f"k-{r}", r, "test")[1] for r in ("admin", "viewer", "analyst")}
    yield app, soc, assets, pipeline, keys, clock
    soc.close()
    store.close()


def _h(key: str) -> dict[str, str]:
    return {"Authorization": f"ApiKey {key}"}


def _ingest(pipeline, lines: list[bytes]) -> None:
    async def go() -> None:
        await pipeline.start()
        await pipeline.submit([RawRecord(data=line, format="ecs") for line in lines], wait=True)
        await pipeline.drain()
        await pipeline.stop()
    asyncio.run(go())


def test_crud_is_audited_and_permissioned(stack) -> None:
    app, soc, _assets, _p, keys, _c = stack
    c = TestClient(app)
    assert c.post("/api/v1/assets", json=CAM).status_code == 401
    assert c.post("/api/v1/assets", json=CAM, headers=_h(keys["viewer"])).status_code == 403
    r = c.post("/api/v1/assets", json=CAM, headers=_h(keys["admin"]))
    assert r.status_code == 201, r.text
    assert c.post("/api/v1/assets", json=CAM, headers=_h(keys["admin"])).status_code == 409
    got = c.get(f"/api/v1/assets/{CAM['id']}", headers=_h(keys["viewer"])).json()
    assert got["asset"]["criticality_level"] == 4 and got["status"] == "unknown" and got["risk"] == 0
    bad = {**CAM, "type": "toaster"}
    assert c.put(f"/api/v1/assets/{CAM['id']}", json=bad, headers=_h(keys["admin"])).status_code == 422
    upd = {**CAM, "criticality": 5}
    assert c.put(f"/api/v1/assets/{CAM['id']}", json=upd, headers=_h(keys["admin"])).status_code == 200
    assert c.get("/api/v1/assets?center=operations", headers=_h(keys["viewer"])).json()[0]["asset"]["criticality"] \
        == "critical"
    csv_text = c.get("/api/v1/assets/export?format=csv", headers=_h(keys["viewer"])).text
    assert csv_text.startswith("id,name,type") and "10.20.3.7" in csv_text
    assert c.delete(f"/api/v1/assets/{CAM['id']}", headers=_h(keys["analyst"])).status_code == 403
    assert c.delete(f"/api/v1/assets/{CAM['id']}", headers=_h(keys["admin"])).status_code == 204
    assert c.delete(f"/api/v1/assets/{CAM['id']}", headers=_h(keys["admin"])).status_code == 404
    actions = [e.action for e in soc.audit.iter_all() if e.target == f"asset:{CAM['id']}"]
    assert actions == ["asset.create", "asset.update", "asset.delete"]
    assert soc.audit.verify().ok


def test_api_change_reaches_the_running_enricher_and_silence_alerts(stack) -> None:
    app, soc, assets, pipeline, keys, clock = stack
    c = TestClient(app)
    assert c.post("/api/v1/assets", json=CAM, headers=_h(keys["admin"])).status_code == 201
    ev = b'{"@timestamp": "2027-01-15T08:00:00.000Z", "observer": {"ip": "10.20.3.7"}, "message": "motion"}'
    _ingest(pipeline, [ev])
    h = assets.tracker.get(CAM["id"])
    assert h is not None and h.total == 1
    assert c.get(f"/api/v1/assets/{CAM['id']}", headers=_h(keys["viewer"])).json()["status"] == "healthy"
    clock[0] += 601
    dets = assets.monitor.tick()
    assert [d.rule_id for d in dets] == ["asset:silent"]
    _total, alerts = soc.alerts.list(AlertFilter(rule_id="asset:silent"))
    assert len(alerts) == 1 and alerts[0].entities.asset_id == CAM["id"] and alerts[0].entities.center == "operations"
    assert alerts[0].risk_score == 4 * 4 * 4  # high x criticality 4
    assert assets.monitor.tick() == []  # one alert per silence
    summary = {s["center"]: s for s in c.get("/api/v1/assets/summary", headers=_h(keys["viewer"])).json()}
    ops = summary["operations"]
    assert ops["by_status"]["silent"] == 1 and ops["open_alerts"] == 1 and ops["risk"] == 64
    assert c.get(f"/api/v1/assets/{CAM['id']}", headers=_h(keys["viewer"])).json()["risk"] == 64
    assert assets.store.health()[CAM["id"]].total == 1  # flushed by the tick


def test_unmanaged_camera_network_device_alerts_once(stack) -> None:
    app, soc, assets, pipeline, keys, _c = stack
    c = TestClient(app)
    assert c.post("/api/v1/assets", json=CAM, headers=_h(keys["admin"])).status_code == 201
    flow = (b'{"@timestamp": "2027-01-15T08:00:00.000Z", "event": {"category": ["network"], "dataset": "network.flow"},'
            b' "source": {"ip": "%s"}, "destination": {"ip": "10.20.0.2"}}')
    _ingest(pipeline, [flow % b"10.20.3.7", flow % b"10.20.3.99", flow % b"10.20.3.99"])
    _total, alerts = soc.alerts.list(AlertFilter(rule_id="asset:unmanaged"))
    assert [a.entities.source_ip for a in alerts] == ["10.20.3.99"] and alerts[0].count == 1
    # once it is in the inventory, the next new address is still reported but it is not
    new = {**CAM, "id": "cam-q3-0099", "ips": ["10.20.3.99"], "hostnames": []}
    assert c.post("/api/v1/assets", json=new, headers=_h(keys["admin"])).status_code == 201
    assert assets.index.lookup_ip("10.20.3.99").id == "cam-q3-0099"
