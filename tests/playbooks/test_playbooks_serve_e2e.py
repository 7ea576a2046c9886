"""The whole chain in a real ``citysoc serve`` process, attacked as in issue 18: spoofed UDP
syslog lines (a Dahua "factory account login" naming any address) reach the parser, our
Sigma pack, an alert and the camera brute-force playbook, and **block nobody**: the first
lines' runs wait for a person's approval (one log line is not corroboration), the lines
over the per-rule rate limit are refused with the reason, all audited. A responder then
approves one run through the API and only that address is dropped by nftables in the
gateway namespace; the mail reaches a real SMTP server and the case holds the alert.
Root, ``ip`` and ``nft`` needed (skips otherwise)."""
from __future__ import annotations

import socket
from pathlib import Path

import httpx
import pytest
import yaml

from citysoc.testing import ServeProcess, wait_for
from netns_gateway import ATTACKER, GW_A, GW_C, Gateway, require_netns
from pbhelpers import LAB_ALLOW_BLOCK
from smtp_sink import SmtpSink

pytestmark = [pytest.mark.network, pytest.mark.slow]
LINE = "<14>Dec  2 17:00:00 NVR-D3-02 Dahua: [Account] User Login. User: 888888, IP: {ip}, Client: Web"
SPOOFED = [ATTACKER, "198.51.100.23", "198.51.100.24", "198.51.100.25", "198.51.100.26"]


def test_spoofed_syslog_lines_block_nobody_until_a_responder_approves(tmp_path: Path):
    require_netns()
    gw = Gateway()
    smtp = SmtpSink()
    cfg = tmp_path / "citysoc.yml"
    cfg.write_text(yaml.safe_dump({
        "syslog": {"host": "127.0.0.1", "tcp": False},
        "playbooks": {"nft": {"command_prefix": gw.prefix, "soc_addresses": [GW_A], "allow_block": LAB_ALLOW_BLOCK},
                      "rate_limits": {"per_rule": {"max_runs": 3, "window_s": 3600}},
                      "smtp": {"host": "127.0.0.1", "port": smtp.port, "default_to": ["duty@hcmc-soc.example"]}},
    }))
    srv = ServeProcess(tmp_path / "data", config=cfg)
    try:
        responder, auditor = srv.api_key("responder"), srv.api_key("auditor")
        srv.start()
        assert gw.connects(gw.att, GW_A)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for ip in SPOOFED:
                s.sendto(LINE.format(ip=ip).encode(), ("127.0.0.1", srv.syslog_port))

        def settled() -> list[dict] | None:
            page = srv.get(responder, "/api/v1/playbook-runs", playbook="camera-bruteforce", limit=50).json()
            items = page["items"]
            return items if len(items) == len(SPOOFED) and all(
                r["status"] not in ("queued", "running") for r in items) else None

        runs = wait_for(settled, timeout=60)
        assert runs, "the spoofed lines did not all reach the playbook:\n" + srv.log_tail()
        by_ip = {r["inputs"]["source_ip"]: r for r in runs}
        assert sorted(r["status"] for r in runs) == ["awaiting_approval"] * 3 + ["refused"] * 2, \
            [(r["inputs"]["source_ip"], r["status"], r["reason"]) for r in runs]
        for r in runs:
            if r["status"] == "refused":
                assert "rate limit" in r["reason"] and "(limit 3)" in r["reason"]
            else:
                assert "not corroborated" in r["reason"] and r["steps"][0]["status"] == "awaiting_approval"
        # nothing reached nftables: no table, no element, the attacker still connects
        assert "citysoc" not in gw.nft("list", "ruleset")
        assert gw.connects(gw.att, GW_A)
        alert = srv.get(responder, f"/api/v1/alerts/{runs[0]['alert_id']}").json()
        assert alert["rule_id"] == "a7150a9d-efc1-431a-9e59-6bf44a1f9125"
        # every decision is audited
        refused = next(r for r in runs if r["status"] == "refused")
        audit = srv.get(auditor, "/api/v1/audit", target=f"playbook_run:{refused['id']}", limit=10).json()
        assert [e["action"] for e in audit["items"]] == ["playbook.run.refused"]
        # a responder approves the run for the lab attacker: only that address is blocked
        held = by_ip.get(ATTACKER)
        assert held is not None and held["status"] == "awaiting_approval", by_ip
        r = httpx.post(f"{srv.url}/api/v1/playbook-runs/{held['id']}/approve", json={"comment": "checked"},
                       headers={"Authorization": f"ApiKey {responder}"}, timeout=60)
        assert r.status_code == 200, r.text
        done = r.json()
        assert done["status"] == "succeeded", done["reason"]
        assert not gw.connects(gw.att, GW_A, timeout=1.0)
        assert gw.connects(gw.cli, GW_C)
        listed = gw.nft("list", "set", "inet", "citysoc", "blocked4")
        assert ATTACKER in listed and "198.51.100" not in listed
        (rcpt, msg), = smtp.wait_for(1)
        assert rcpt == ["duty@hcmc-soc.example"] and ATTACKER in msg["Subject"]
        case = srv.get(responder, f"/api/v1/cases/{done['steps'][2]['output']['case_id']}").json()
        assert case["alert_ids"] == [held["alert_id"]]
        audit = srv.get(auditor, "/api/v1/audit", target=f"playbook_run:{held['id']}", limit=50).json()
        acts = [e["action"] for e in audit["items"]]
        assert "playbook.approve" in acts and acts.count("playbook.step") == 4  # parked + 3 done
    finally:
        srv.stop()
        smtp.close()
        gw.close()
