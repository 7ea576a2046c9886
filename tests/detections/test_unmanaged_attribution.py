"""The unmanaged-device alert is about the unknown device, not the asset it talked to
(issue 16: the demo's 10.20.3.250 talking RTSP to the VMS put risk 60 on vms-01)."""
from __future__ import annotations

from core.alerts import Alert, risk_score
from detections.assets import UnmanagedAssetDetector
from netevents import T0, flow


def test_unmanaged_alert_names_the_stranger_not_the_vms_it_talked_to() -> None:
    ev = flow("10.20.3.250", "10.20.0.2", 554, T0)
    # what the enricher adds when only the destination is in the inventory (a last resort)
    ev["citysoc"] = {"center": "operations", "asset": {"id": "vms-01", "name": "Video management server",
                                                      "type": "vms", "criticality": 5, "matched": "destination.ip"}}
    ev["host"] = {"name": "vms-01"}
    det = UnmanagedAssetDetector(["10.20.0.0/16"], lambda ip: ip == "10.20.0.2")
    [d] = det.process(ev)
    a = Alert.from_detection(d, "2026-12-03T05:00:00.000Z")
    assert a.entities.source_ip == "10.20.3.250"
    assert a.entities.asset_id is None and a.entities.host is None  # not vms-01
    assert a.entities.center == "operations"  # still the camera network's center
    assert a.risk_score == risk_score("medium", None) == 36  # not 60 (the VMS's criticality 5)
