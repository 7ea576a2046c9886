"""``/api/v1/rules`` over the real rule catalog (``citysoc.detection.build_detection``):
network rules list with their real level, and toggling one answers 200, takes effect for
the next event and survives a restart."""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from api_stack import make_stack
from citysoc.detection import build_detection
from core.settings import Settings


def _runtime(tmp_path: Path, attach: tuple[Any, ...] = (), **detection: Any):
    settings = Settings(data=tmp_path, detection={"sigma_pack": False, **detection})
    return build_detection(settings, catalog_only=True, attach=attach)


def _probe(src: str, dst: str, port: int) -> dict:
    """A connection attempt as the network collector reports a SYN to a closed port."""
    return {"@timestamp": f"2026-11-25T10:00:{port:02d}Z", "event": {"action": "connection_attempt"},
            "source": {"ip": src}, "destination": {"ip": dst, "port": port}, "network": {"transport": "tcp"}}


def test_disable_over_the_api_answers_200_takes_effect_and_persists(tmp_path):
    rt = _runtime(tmp_path, network={"port_scan": {"default": {"distinct_ports": 10}}})
    s = make_stack(tmp_path, with_rules=False)
    s.state.services = replace(s.state.services, rules=rt)
    hdr = {"Authorization": f"ApiKey {s.keys['admin']}"}
    scan = [_probe("10.99.1.1", "10.99.1.2", p) for p in range(1, 31)]
    try:
        with TestClient(s.app) as c:
            r = c.post("/api/v1/rules/net:port_scan/disable", headers=hdr)
            assert r.status_code == 200, r.text
            assert r.json()["enabled"] is False and r.json()["level"] == "medium"
            assert [d for ev in scan for d in rt.network.process(ev)] == []
            listed = c.get("/api/v1/rules", params={"q": "net:"}, headers=hdr).json()["items"]
            assert {i["id"]: i["enabled"] for i in listed}["net:port_scan"] is False
            assert json.loads((tmp_path / "rules-state.json").read_text())["disabled"] == ["net:port_scan"]
            again = _runtime(tmp_path)
            assert again.get_rule("net:port_scan").enabled is False, "the toggle survives a restart"
            r = c.post("/api/v1/rules/net:port_scan/enable", headers=hdr)
            assert r.status_code == 200 and r.json()["enabled"] is True
            assert [d.rule_id for ev in scan for d in rt.network.process(ev)] == ["net:port_scan"]
            assert c.post("/api/v1/rules/net:nope/disable", headers=hdr).status_code == 404
    finally:
        s.soc.close()
        s.state.store.close()


def test_asset_detectors_are_in_the_catalog_and_toggle(tmp_path):
    from citysoc.wiring import build_assets

    s = make_stack(tmp_path, with_rules=False)
    assets = build_assets(s.settings)  # built first, as citysoc serve does: the catalog lists its detectors
    rt = _runtime(tmp_path, attach=assets.toggled)
    s.state.services = assets.services(replace(s.state.services, rules=rt))
    hdr = {"Authorization": f"ApiKey {s.keys['admin']}"}
    flow = {"event": {"category": ["network"], "dataset": "network.flow", "action": "network_flow"},
            "source": {"ip": "10.20.9.9"}, "destination": {"ip": "10.20.0.2", "port": 554}}
    try:
        with TestClient(s.app) as c:
            listed = {i["id"]: i for i in c.get("/api/v1/rules", params={"q": "asset:"}, headers=hdr).json()["items"]}
            assert {k: v["level"] for k, v in listed.items()} == {"asset:unmanaged": "medium", "asset:silent": "high"}
            assert listed["asset:silent"]["title_vi"] and listed["asset:silent"]["engine"] == "assets"
            r = c.post("/api/v1/rules/asset:unmanaged/disable", headers=hdr)
            assert r.status_code == 200 and r.json()["enabled"] is False
            assert assets.unmanaged.process(flow) == []
            c.post("/api/v1/rules/asset:unmanaged/enable", headers=hdr)
            assert [d.rule_id for d in assets.unmanaged.process(flow)] == ["asset:unmanaged"]
            c.post("/api/v1/rules/asset:silent/disable", headers=hdr)
            assert assets.silent.enabled is False
        assert json.loads((tmp_path / "rules-state.json").read_text())["disabled"] == ["asset:silent"]
        # a catalog that does not run the asset detectors (an offline report) keeps their state
        again = _runtime(tmp_path)
        again.set_enabled("net:beaconing", False)
        assert json.loads((tmp_path / "rules-state.json").read_text())["disabled"] == ["asset:silent", "net:beaconing"]
    finally:
        assets.store.close()
        s.soc.close()
        s.state.store.close()
