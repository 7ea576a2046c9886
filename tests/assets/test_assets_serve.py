"""`citysoc serve` as a process: an inventory imported by the CLI attributes syslog from a
camera; an asset added over the API attributes the very next event; a camera that goes
quiet past its interval raises `asset:silent`; health survives in assets.db."""
from __future__ import annotations

import socket
import time
from pathlib import Path

import httpx

from citysoc.testing import ServeProcess, run_cli, wait_for
from core.assets import Asset, dump_yaml



def test_serve_attributes_tracks_health_and_alerts_silence(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    srv = ServeProcess(data, env={"CITYSOC_ASSETS__CHECK_INTERVAL_S": "0.5"})
    env = srv.env
    cam = Asset(id="cam-q1-0001", name="Camera Ben Thanh", type="camera", center="operations", criticality=4,
                ips=["10.20.1.11"], hostnames=["CAM-Q1-0001"], log_interval_s=3)
    (tmp_path / "inv.yml").write_text(dump_yaml([cam]))
    run_cli(env, "assets", "import", str(tmp_path / "inv.yml"))
    key = srv.api_key("admin")
    srv.start()
    proc, url, syslog_port = srv.proc, srv.url, srv.syslog_port
    h = {"Authorization": f"ApiKey {key}"}
    try:
        def send(line: str) -> None:
            with socket.create_connection(("127.0.0.1", syslog_port), timeout=10) as s:
                s.sendall(line.encode() + b"\n")

        ts = time.strftime("%b %d %H:%M:%S", time.gmtime())
        send(f"<134>{ts} CAM-Q1-0001 HIKVISION: Major Type: Alarm, Minor Type: Motion Detection Started, "
             "Channel No.: 1")

        def count(q: str) -> int:
            return httpx.get(f"{url}/api/v1/events/count", params={"q": q}, headers=h, timeout=10).json()["count"]
        assert wait_for(lambda: count("citysoc.asset.id:cam-q1-0001") == 1)
        assert wait_for(lambda: httpx.get(f"{url}/api/v1/assets/cam-q1-0001", headers=h).json()["status"] == "healthy")

        # an asset added over the API attributes the next event at once
        nvr = {"id": "nvr-q1-01", "type": "nvr", "center": "operations", "ips": ["10.20.0.11"],
               "hostnames": ["NVR-Q1-01"], "criticality": 5}
        assert httpx.post(f"{url}/api/v1/assets", json=nvr, headers=h).status_code == 201
        send(f"<14>{ts} NVR-Q1-01 Dahua: [Event] Motion Detect Start. Channel: 3")
        assert wait_for(lambda: count("citysoc.asset.id:nvr-q1-01 AND citysoc.center:operations") == 1)

        # the camera stays quiet past its 3 s interval: one asset:silent alert
        def silent_alerts() -> list:
            r = httpx.get(f"{url}/api/v1/alerts", params={"rule_id": "asset:silent"}, headers=h, timeout=10)
            return r.json()["items"]
        alerts = wait_for(silent_alerts, 30)
        assert [a["entities"]["asset_id"] for a in alerts] == ["cam-q1-0001"]
        summary = {s["center"]: s for s in httpx.get(f"{url}/api/v1/assets/summary", headers=h).json()}
        assert summary["operations"]["by_status"]["silent"] >= 1 and summary["operations"]["open_alerts"] >= 1
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    out = run_cli(env, "assets", "list", "--status", "silent")
    assert "1 shown of 2 assets" in out
