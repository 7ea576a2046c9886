"""`citysoc demo --server`: the demo city sent to a real `citysoc serve` process through
syslog TCP and the HTTP ingest API is stored, attributed and detected there too."""
from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import yaml

from citysoc.demo.run import build_world, demo_config
from citysoc.demo.send import send_world
from core.events import get_field

PY = sys.executable


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_send_world_to_a_running_server(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    world = build_world(tmp_path / "gen", cameras=22, days=3)  # ends now: the server's clock is the wall
    cfg = demo_config(data, world.ingest_dir)
    (tmp_path / "citysoc.yml").write_text(yaml.safe_dump(cfg))
    env = dict(os.environ, CITYSOC_DATA=str(data))
    res = subprocess.run([PY, "-m", "citysoc.cli", "apikeys", "create", "demo", "--role", "admin"], env=env,
                         capture_output=True, text=True, timeout=120)
    key = re.search(r"(csk_\S+)", res.stdout).group(1)
    http_port, syslog_port = _free_port(), _free_port()
    log = tmp_path / "serve.log"
    proc = subprocess.Popen([PY, "-m", "citysoc.cli", "serve", "--port", str(http_port), "--syslog-port",
                             str(syslog_port), "--config", str(tmp_path / "citysoc.yml")], env=env,
                            stdout=open(log, "ab"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{http_port}"
    h = {"Authorization": f"ApiKey {key}"}
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        counts = send_world(world, url, key, ("127.0.0.1", syslog_port))
        assert counts["assets"] == len(world.city.assets) and counts["onvif"] > 0 and counts["ecs"] > 0
        assert counts["etl_json"] > 0 and counts["syslog"] > 0
        sent = sum(v for k, v in counts.items() if k != "assets")
        assert sent == len(world.records)

        def n(q: str) -> int:
            return httpx.get(f"{url}/api/v1/events/count", params={"q": q}, headers=h, timeout=30).json()["count"]
        deadline = time.monotonic() + 60
        while n("*") < sent and time.monotonic() < deadline:
            time.sleep(0.5)
        assert n("*") == sent
        q = "NOT _exists_:citysoc.asset.id AND NOT event.dataset:network.*"  # pcaps also hold outside peers
        stray = httpx.get(f"{url}/api/v1/events/search", params={"q": q, "limit": 3}, headers=h).json()
        assert stray["total"] == 0, [get_field(e, "event.original") for e in stray["hits"]]  # all attributed
        assert n("event.dataset:onvif.event AND citysoc.center:operations") > 0
        alerts = httpx.get(f"{url}/api/v1/alerts", params={"limit": 500}, headers=h).json()["items"]
        # an alert folded from several detectors of one behaviour lists them all in "rules"
        rules = {a["rule_id"] for a in alerts} | {r for a in alerts for r in (a.get("rules") or [])}
        expected = {"9f8ae69a-72c0-4121-8e56-832435a8728f", "a7150a9d-efc1-431a-9e59-6bf44a1f9125",
                    "c60c6af1-31a8-4d61-9d63-91f51671ae63", "e16efa7d-bb03-4616-b59e-4cc51602360d",
                    "679b0e8a-6e2e-499f-8c3d-b3d5889bc8fb", "net:port_scan", "net:camera_egress", "asset:unmanaged",
                    "yara:webshells.citysoc_webshell_php_eval_request"}
        assert expected <= rules, expected - rules
    finally:
        proc.terminate()
        proc.wait(timeout=60)
