"""The whole chain in a real ``citysoc serve`` process: a Dahua syslog line (factory account
login from the attacker's address) -> parser -> our Sigma pack -> alert -> the camera
brute-force playbook -> the address is dropped by nftables in the gateway namespace, the
mail reaches a real SMTP server, the case and every audited step are visible through the
API. Root, ``ip`` and ``nft`` needed (skips otherwise)."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

from netns_gateway import ATTACKER, GW_A, GW_C, Gateway, require_netns
from smtp_sink import SmtpSink

pytestmark = [pytest.mark.network, pytest.mark.slow]
LINE = "<14>Nov 25 10:20:11 NVR-D3-02 Dahua: [Account] User Login. User: 888888, IP: {ip}, Client: Web"


def _free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_syslog_line_to_blocked_attacker_through_citysoc_serve(tmp_path: Path):
    require_netns()
    gw = Gateway()
    smtp = SmtpSink()
    proc = None
    try:
        api_port, syslog_port = _free_port(), _free_port(socket.SOCK_DGRAM)
        cfg = tmp_path / "citysoc.yml"
        cfg.write_text(yaml.safe_dump({
            "data": str(tmp_path / "data"),
            "server": {"host": "127.0.0.1", "port": api_port},
            "syslog": {"host": "127.0.0.1", "port": syslog_port, "tcp": False},
            # the test network is internal (10/8): blocks land there only because it is listed
            "playbooks": {"nft": {"command_prefix": gw.prefix, "soc_addresses": [GW_A],
                                  "allow_block": ["0.0.0.0/0", "::/0", "10.99.0.0/16"]},
                          "smtp": {"host": "127.0.0.1", "port": smtp.port, "default_to": ["duty@hcmc-soc.example"]}},
        }))
        env = {**os.environ, "CITYSOC_CONFIG": str(cfg)}
        cli = [sys.executable, "-m", "citysoc.cli"]
        created = subprocess.run([*cli, "apikeys", "create", "e2e", "--role", "responder"], env=env, cwd=tmp_path,
                                 capture_output=True, text=True, timeout=60)
        assert created.returncode == 0, created.stderr
        key = next(line.split()[1] for line in created.stdout.splitlines() if line.startswith("key:"))
        log = (tmp_path / "serve.log").open("w")
        proc = subprocess.Popen([*cli, "serve"], env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
        api = httpx.Client(base_url=f"http://127.0.0.1:{api_port}", headers={"Authorization": f"ApiKey {key}"},
                           timeout=10)
        deadline = time.monotonic() + 60
        while True:
            try:
                if api.get("/healthz").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()[-2000:]
            assert time.monotonic() < deadline, "citysoc serve did not become ready in 60 s"
            time.sleep(0.2)
        assert gw.connects(gw.att, GW_A)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(LINE.format(ip=ATTACKER).encode(), ("127.0.0.1", syslog_port))
        run = None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            page = api.get("/api/v1/playbook-runs", params={"playbook": "camera-bruteforce"}).json()
            if page["total"] and page["items"][0]["status"] not in ("queued", "running"):
                run = page["items"][0]
                break
            time.sleep(0.2)
        assert run is not None, ("no camera-bruteforce run finished within 30 s of the syslog line:\n"
                                 + (tmp_path / "serve.log").read_text()[-2000:])
        # one unauthenticated log line names the address: the automatic block waits for a person
        assert run["status"] == "awaiting_approval" and run["current_step"] == "block", run["reason"]
        assert "log content" in run["reason"]
        assert gw.connects(gw.att, GW_A), "blocked before anyone approved"
        r = api.post(f"/api/v1/playbook-runs/{run['id']}/approve", json={"comment": "checked with the NVR owner"})
        assert r.status_code == 200, r.text
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            run = api.get(f"/api/v1/playbook-runs/{run['id']}").json()
            if run["status"] not in ("queued", "running", "awaiting_approval"):
                break
            time.sleep(0.2)
        assert run["status"] == "succeeded", run["reason"]
        assert run["trigger"] == "alert" and run["inputs"]["source_ip"] == ATTACKER
        alert = api.get(f"/api/v1/alerts/{run['alert_id']}").json()
        assert alert["rule_id"] == "a7150a9d-efc1-431a-9e59-6bf44a1f9125"
        # the attacker is dropped at the gateway; others are not
        assert not gw.connects(gw.att, GW_A, timeout=1.0)
        assert gw.connects(gw.cli, GW_C)
        # the mail and the case
        (rcpt, msg), = smtp.wait_for(1)
        assert rcpt == ["duty@hcmc-soc.example"] and ATTACKER in msg["Subject"]
        case_id = run["steps"][2]["output"]["case_id"]
        case = api.get(f"/api/v1/cases/{case_id}").json()
        assert case["alert_ids"] == [run["alert_id"]]
        # every step in the audit log, chain intact
        audit = httpx.get(f"http://127.0.0.1:{api_port}/api/v1/audit",
                          params={"target": f"playbook_run:{run['id']}", "limit": 50},
                          headers={"Authorization": f"ApiKey {_auditor_key(cli, env, tmp_path)}"}, timeout=10).json()
        steps = [e["details"]["step"] for e in audit["items"] if e["action"] == "playbook.step"]
        assert sorted(set(steps)) == ["block", "case", "notify"]
        assert any(e["action"] == "playbook.approve" or "approv" in e["action"] for e in audit["items"])
    finally:
        if proc is not None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        smtp.close()
        gw.close()


def _auditor_key(cli: list[str], env: dict, cwd: Path) -> str:
    out = subprocess.run([*cli, "apikeys", "create", "e2e-audit", "--role", "auditor"], env=env, cwd=cwd,
                         capture_output=True, text=True, timeout=60).stdout
    return next(line.split()[1] for line in out.splitlines() if line.startswith("key:"))
