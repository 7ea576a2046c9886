"""``citysoc.runtime.build_server``, the composition root of ``citysoc serve``, in process:
every part is built once and handed to the parts built after it, the API's typed
``Services`` are those very parts, and the routes mounted follow ``api.app.ROUTERS``."""
from __future__ import annotations

import asyncio
from pathlib import Path

from citysoc.runtime import ServerParts, build_server
from core.settings import Settings
from detections.packs import SIGMA_PACK

TELNET_RULE = "dc6f987d-bbb1-4b10-97fb-cead3bec1e91"  # camera_telnet_enabled (our pack), schedulable


def _settings(data: Path, **over: object) -> Settings:
    cfg: dict = {"data": data, "pipeline": {"workers": 1},
                 "detection": {"sigma_pack": False, "scheduled": {"rules": [{"id": TELNET_RULE}]}},
                 "rules": [str(SIGMA_PACK / "camera")]}
    cfg.update(over)
    return Settings.model_validate(cfg)


def _built(settings: Settings, check) -> None:
    async def go() -> None:
        parts = await build_server(settings)
        try:
            check(parts)
        finally:
            await parts.close()

    asyncio.run(go())


def _paths(parts: ServerParts) -> set[str]:
    """Every documented path, and the app's own routes and mounts (``/static/console``)."""
    return set(parts.app.openapi()["paths"]) | {getattr(r, "path", "") for r in parts.app.routes}


def test_services_are_the_parts_built_and_the_pipeline_gets_them_at_construction(tmp_path: Path) -> None:
    def check(parts: ServerParts) -> None:
        s = parts.state.services
        assert s.rules is parts.detection and s.playbooks is parts.playbooks is not None
        assert s.scheduled_rules is parts.scheduled_rules is not None
        assert list(parts.scheduled_rules.rules) == [TELNET_RULE]
        assert s.reports is parts.reports and s.alert_recorder is parts.alert_sink
        assert s.alert_stream is parts.alert_stream
        assert s.users is parts.soc.users and s.alerts is parts.soc.alerts and s.incidents is parts.soc.incidents
        assert s.assets is parts.assets.store and s.asset_tracker is parts.assets.tracker
        assert s.assets_changed == parts.assets.changed and s.asset_clock == parts.assets.now
        assert s.bus_counters is None and s.attachment_scanner is not None
        # the recorder tells the console's stream, then the playbook runner
        assert parts.alert_sink.listeners[0] == parts.alert_stream.publish and len(parts.alert_sink.listeners) == 2
        assert parts.alert_stream.run_listener in parts.playbooks.run_listeners
        # the pipeline: engines, then the asset detectors; the live index; the inventory version for the workers
        p = parts.pipeline
        assert p.detectors == [*parts.detection.detectors, parts.assets.tracker, parts.assets.unmanaged]
        assert p.enrichers == [parts.assets.enrich]
        assert p.workers is not None and p.workers.context == parts.assets.inventory_version
        # the catalog lists and toggles the asset detectors
        ids = {r.id for r in parts.detection.list_rules()}
        assert {"asset:unmanaged", "asset:silent", TELNET_RULE} <= ids
        paths = _paths(parts)
        assert {"/api/v1/playbooks", "/api/v1/playbook-runs", "/api/v1/assets", "/api/v1/reports",
                "/api/v1/scheduled-rules", "/api/v1/alerts", "/api/v1/console/overview", "/_bulk", "/healthz",
                "/metrics"} <= paths
        assert "/static/console" in paths  # the console, on a node with the api role (one machine: all)
        assert parts.sources and parts.cluster is None

    _built(_settings(tmp_path / "data"), check)


def test_playbooks_off_mounts_no_playbook_routes_and_wires_no_runner(tmp_path: Path) -> None:
    def check(parts: ServerParts) -> None:
        assert parts.playbooks is None and parts.state.services.playbooks is None
        assert parts.alert_sink.listeners == [parts.alert_stream.publish]
        paths = _paths(parts)
        assert "/api/v1/assets" in paths
        assert not any(p.startswith(("/api/v1/playbooks", "/api/v1/playbook-runs")) for p in paths)

    _built(_settings(tmp_path / "data", playbooks={"enabled": False}), check)


def test_detection_off_still_lists_the_asset_detectors(tmp_path: Path) -> None:
    def check(parts: ServerParts) -> None:
        assert parts.detection.detectors == []
        assert parts.pipeline.detectors == [parts.assets.tracker, parts.assets.unmanaged]
        assert {r.id for r in parts.detection.list_rules()} == {"asset:unmanaged", "asset:silent"}
        assert parts.scheduled_rules is None and parts.state.services.scheduled_rules is None

    _built(_settings(tmp_path / "data", detection={"enabled": False}), check)
