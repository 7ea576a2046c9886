"""Inventory file form, health status, silent/unmanaged detections and risk."""
from __future__ import annotations

import datetime as _dt
from pathlib import Path

import pytest

from collectors.enrich import AssetIndex
from core.alerts import Alert, Entities
from core.assets import (Asset, AssetError, AssetHealth, HealthTracker, Location, asset_risk, center_summary, dump_csv,
                         dump_yaml, health_status, load_inventory_text)
from detections.assets import UnmanagedAssetDetector, silent_detections
from storage.assets import SQLiteAssetStore

CAM = Asset(id="cam-q1-0001", name="Camera Nguyen Hue", type="camera", center="operations", criticality=4,
            subsystem="cctv", zone="camera-lan", ips=["10.20.1.1"], hostnames=["CAM-Q1-0001"], owner="ops-team",
            location=Location(ward="Ben Nghe", district="Quan 1", lat=10.7743, lon=106.7038),
            log_sources=["hikvision"], log_interval_s=600, tags=["outdoor"])
DB = Asset(id="wh-db-01", name="Warehouse DB 1", type="db_node", center="warehouse", criticality=5,
           ips=["10.30.0.11"], hostnames=["wh-db-01.city.local"], log_sources=["postgresql.log"])


def test_yaml_and_csv_round_trip_exactly() -> None:
    for fmt, text in (("yaml", dump_yaml([CAM, DB])), ("csv", dump_csv([CAM, DB]))):
        back = load_inventory_text(text, fmt=fmt)
        assert back == [CAM, DB], fmt


def test_exported_files_attribute_events_through_asset_index(tmp_path: Path) -> None:
    for name, text in (("inv.yml", dump_yaml([CAM, DB])), ("inv.csv", dump_csv([CAM, DB]))):
        p = tmp_path / name
        p.write_text(text)
        idx = AssetIndex.load(p)
        ev = {"observer": {"ip": "10.20.1.1"}}
        idx.enrich(ev)
        assert ev["citysoc"]["asset"]["id"] == "cam-q1-0001"
        assert ev["citysoc"]["asset"]["criticality"] == "high"
        assert ev["citysoc"]["center"] == "operations"


def test_every_bad_row_is_reported() -> None:
    text = "assets:\n- {id: a, type: toaster, center: operations, ips: [1.2.3.4]}\n" \
           "- {id: a2, type: camera, center: operations, ips: [1.2.3.5]}\n" \
           "- {id: b, type: camera, center: mars, ips: [nope], criticality: 9}\n" \
           "- {id: c, type: camera, center: operations, ips: [1.2.3.5]}\n"
    with pytest.raises(AssetError) as exc:
        load_inventory_text(text, fmt="yaml")
    msg = str(exc.value)
    assert "item 1" in msg and "toaster" in msg
    assert "item 3" in msg and "mars" in msg and "'nope'" in msg and "within 1-5" in msg
    assert "item 4" in msg and "already belongs to 'a2'" in msg


def test_health_statuses_against_own_baseline() -> None:
    t0 = 1_800_000_000.0 - (1_800_000_000.0 % 3600)
    tr = HealthTracker(clock="event")
    assert health_status(CAM, tr.get(CAM.id), t0) == "unknown"
    for hour in range(10):
        for i in range(60):
            tr.observe(CAM.id, t0 + hour * 3600 + i * 60)
    now = t0 + 10 * 3600 + 30
    tr.observe(CAM.id, now)
    assert health_status(CAM, tr.get(CAM.id), now + 1) == "healthy"
    # a quiet hour (2 events instead of 60) -> degraded
    for i in range(2):
        tr.observe(CAM.id, now + i)
    tr.observe(CAM.id, t0 + 11 * 3600 + 5)
    assert tr.get(CAM.id).last_hour_count == 3
    assert health_status(CAM, tr.get(CAM.id), t0 + 11 * 3600 + 10) == "degraded"
    # quiet longer than its interval (600 s) -> silent
    assert health_status(CAM, tr.get(CAM.id), t0 + 11 * 3600 + 700) == "silent"


def test_event_clock_reads_timestamps() -> None:
    tr = HealthTracker(clock="event")
    tr.process({"@timestamp": "2026-11-25T08:15:30.000Z", "citysoc": {"asset": {"id": "x"}}})
    tr.process({"@timestamp": "2026-11-25T08:00:00.000Z"})  # unattributed: ignored
    h = tr.get("x")
    assert h is not None and h.total == 1
    assert h.last_seen == _dt.datetime(2026, 11, 25, 8, 15, 30, tzinfo=_dt.timezone.utc).timestamp()


def test_event_epoch_reads_offsets_exactly() -> None:
    from core.assets import event_epoch

    z = event_epoch("2026-11-25T08:15:30.250Z")
    assert z == _dt.datetime(2026, 11, 25, 8, 15, 30, tzinfo=_dt.timezone.utc).timestamp()
    assert event_epoch("2026-11-25T15:15:30+07:00") == z
    assert event_epoch("2026-11-25T08:15:30.123456Z") == z
    assert event_epoch("yesterday") is None and event_epoch(None) is None


def test_silent_once_per_silence_and_rearmed() -> None:
    h = {DB.id: AssetHealth(DB.id, last_seen=1000.0)}
    already: set[str] = set()
    assert silent_detections([DB, CAM], h, 1500.0, already) == []
    dets = silent_detections([DB, CAM], h, 1000.0 + 601, already)
    assert [d.rule_id for d in dets] == ["asset:silent"]
    ev = dets[0].events[0]
    assert ev["citysoc"]["asset"]["id"] == DB.id and ev["citysoc"]["center"] == "warehouse"
    assert silent_detections([DB], h, 5000.0, already) == []  # still the same silence
    h[DB.id].last_seen = 4990.0
    assert silent_detections([DB], h, 5000.0, already) == []  # heard again: re-armed
    assert len(silent_detections([DB], h, 6000.0, already)) == 1


def test_unmanaged_device_once_per_ip() -> None:
    known = {"10.20.1.1"}
    det = UnmanagedAssetDetector(["10.20.0.0/16"], known.__contains__)
    net = {"event": {"category": ["network"], "dataset": "network.flow"}}
    assert det.process({**net, "source": {"ip": "10.20.1.1"}}) == []
    assert det.process({**net, "source": {"ip": "10.99.1.1"}}) == []
    assert det.process({"event": {"dataset": "hikvision"}, "source": {"ip": "10.20.9.9"}}) == []
    hits = det.process({**net, "source": {"ip": "10.20.9.9"}})
    assert [d.rule_id for d in hits] == ["asset:unmanaged"]
    assert det.process({**net, "source": {"ip": "10.20.9.9"}}) == []


def _alert(level: str, status: str = "new", resolution: str | None = None, updated: str = "2026-11-25T00:00:00.000Z",
           asset: str = "cam-q1-0001") -> Alert:
    return Alert(id=1, rule_id="r", rule_title="r", level=level, tags=[], engine="sigma", description="",
                 entities=Entities(asset_id=asset), risk_score=0, status=status, resolution=resolution, assignee=None,
                 first_seen=updated, last_seen=updated, count=1, dedupe_key="k", created_at=updated, updated_at=updated)


def test_risk_weights_level_and_criticality_and_decays() -> None:
    now = _dt.datetime(2026, 11, 25, tzinfo=_dt.timezone.utc).timestamp()
    assert asset_risk([], 5, now) == 0
    assert asset_risk([_alert("critical")], 5, now) == 100
    med3 = asset_risk([_alert("medium")], 3, now)
    assert med3 == 36
    assert asset_risk([_alert("medium"), _alert("medium")], 3, now) > med3
    assert asset_risk([_alert("medium")], 1, now) < med3
    closed = _alert("medium", "closed", "true_positive")
    assert asset_risk([closed], 3, now) == med3
    assert asset_risk([closed], 3, now + 86400) == 18  # one half-life later
    assert asset_risk([_alert("high", "closed", "false_positive")], 5, now) == 0


def test_center_summary_counts() -> None:
    now = 10_000.0
    health = {CAM.id: AssetHealth(CAM.id, last_seen=now - 10)}
    s = center_summary("operations", [CAM], health, [_alert("high")], now)
    assert s["by_status"]["healthy"] == 1 and s["open_alerts"] == 1 and s["risk"] == 64


def test_sqlite_store_crud_version_and_health(tmp_path: Path) -> None:
    st = SQLiteAssetStore(tmp_path / "assets.db")
    v0 = st.version()
    assert st.put_many([CAM, DB]) == (2, 0)
    assert st.get(CAM.id) == CAM
    assert [a.id for a in st.list(center="warehouse")] == [DB.id]
    changed = Asset(**{**CAM.to_dict(), "location": CAM.location, "criticality": 2})
    assert st.put(changed) == CAM
    assert st.get(CAM.id).criticality == 2
    assert st.version() > v0
    st.save_health([AssetHealth(CAM.id, last_seen=5.0, hour=0, hour_count=3, hours=1, total=3, baseline=2.0)])
    assert st.health()[CAM.id].baseline == 2.0
    assert st.delete(CAM.id) == changed and st.get(CAM.id) is None and CAM.id not in st.health()
    assert st.delete("nope") is None
    st.close()


def test_one_live_index_over_the_store_for_serve_ingest_and_the_enrich_action(tmp_path: Path) -> None:
    """The inventory file is imported once into the asset store; serve's live index, the
    playbook ``enrich`` lookup and ``citysoc ingest``'s enricher all answer from the store,
    so an asset added later (API/CLI) attributes events without touching the file."""
    from citysoc.wiring import build_assets, make_enrichers
    from core.settings import Settings

    inv = tmp_path / "inventory.yml"
    inv.write_text(dump_yaml([CAM]))
    settings = Settings(data=tmp_path / "data", inventory=inv)
    rt = build_assets(settings)
    assert rt.lookup("10.20.1.1")["id"] == "cam-q1-0001" and rt.lookup("10.30.0.11") is None
    rt.store.put(DB)  # what POST /api/v1/assets does, then it calls assets_changed
    rt.changed()
    found = rt.lookup("wh-db-01")
    assert found is not None and found["id"] == "wh-db-01" and found["criticality"] == 5
    ev = {"source": {"ip": "10.30.0.11"}}
    rt.enrich(ev)
    assert ev["citysoc"]["asset"]["id"] == "wh-db-01" and ev["citysoc"]["asset"]["criticality"] == "critical"
    assert ev["citysoc"]["center"] == "warehouse"
    rt.store.close()
    [enrich] = make_enrichers(settings)  # citysoc ingest: the same store, the API-added asset included
    ev2 = {"host": {"name": "WH-DB-01.city.local"}}
    enrich(ev2)
    assert ev2["citysoc"]["asset"]["id"] == "wh-db-01"
    # a file the asset model rejects is not imported (and the reason is logged), nothing half-imported
    bad = tmp_path / "bad.yml"
    bad.write_text("- {id: x, type: toaster, center: operations, ips: [10.9.9.9]}\n")
    assert make_enrichers(Settings(data=tmp_path / "other", inventory=bad)) == []
