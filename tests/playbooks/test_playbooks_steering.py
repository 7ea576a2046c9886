"""Issue 18: log content must not steer a response by itself.

* one spoofed UDP syslog line through a real ``citysoc serve`` fires the factory-account
  rule and starts ``camera-bruteforce``, whose block step is ``approval: {auto: ...}``:
  the step now waits for a person and nothing is blocked;
* the ``ip`` input type refuses scope ids and anything that does not print back as an
  address; internal ranges are blocked only when listed; automatic runs are rate limited;
* concurrent runs create the nft table once (file lock).
All nft calls go to network namespaces the tests create and remove.
"""
from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest

from citysoc.testing import ServeProcess, wait_for
from core.alerts import AlertChange
from core.playbooks import NftSettings, PlaybookSettings, RateLimit, RateLimitSettings
from netns_gateway import Gateway, require_netns
from pbhelpers import audit_actions, make_runner, record_alert
from playbooks.actions import ACTIONS, ActionContext, ActionError
from playbooks.actions.base import PARAM_TYPES
from playbooks.actions.nft import block_allowed, ensure_table

SPOOFED = b"<14>Dec  2 17:00:00 NVR-D3-02 Dahua: [Account] User Login. User: 888888, IP: 198.51.100.23, Client: Web"


@pytest.mark.parametrize("bad", ["fe80::1%x } ; flush ruleset ; ", "fe80::1%eth0", " 10.0.0.1", "10.0.0.1 ",
                                 "010.0.0.1", "10.0.0.1/32", "::ffff:1.2.3.4 }", "1.2.3.4\n"])
def test_ip_input_type_refuses_anything_that_is_not_an_address_as_printed(bad):
    with pytest.raises(ValueError):
        PARAM_TYPES["ip"](bad)


def test_ip_input_type_keeps_addresses():
    assert PARAM_TYPES["ip"]("203.0.113.9") == "203.0.113.9"
    assert PARAM_TYPES["ip"]("2001:DB8::1") == "2001:db8::1"


def test_internal_ranges_are_blocked_only_when_listed():
    default = NftSettings()
    assert block_allowed(default, "198.51.100.23") is None
    assert "internal range" in block_allowed(default, "10.20.3.250")
    assert "internal range" in block_allowed(default, "192.168.1.5")
    listed = NftSettings(allow_block=["0.0.0.0/0", "10.20.3.0/24"])
    assert block_allowed(listed, "10.20.3.250") is None
    assert block_allowed(listed, "10.20.4.1") is not None
    only_public = NftSettings(allow_block=["203.0.113.0/24"])
    assert "not in playbooks.nft.allow_block" in block_allowed(only_public, "198.51.100.1")


def test_block_action_refuses_an_internal_address_before_touching_nft(tmp_path: Path):
    ctx = ActionContext(settings=PlaybookSettings(nft=NftSettings(command_prefix=["/nonexistent-nft-wrapper"])),
                        data_dir=tmp_path)
    with pytest.raises(ActionError, match="internal range"):
        ACTIONS["block_ip"].run(ctx, ip="10.20.3.250", ttl_s=60)


def test_one_alert_does_not_block_its_address_automatically(soc, tmp_path: Path):
    calls: list[str] = []

    def execute(action, ctx, params, step):
        calls.append(step)
        return {"ip": params.get("ip"), "message_id": "m", "recipients": [], "case_id": 1, "title": "t"}

    runner = make_runner(soc, tmp_path, execute=execute)
    alert = record_alert(soc, source_ip="198.51.100.23")
    run = asyncio.run(runner.start("camera-bruteforce", alert_id=alert.id, actor="system:playbooks", trigger="alert"))
    assert run.status == "awaiting_approval" and run.current_step == "block"
    assert "comes only from log content" in run.reason
    assert calls == []
    acts = audit_actions(soc, run.id)
    assert any(d.get("uncorroborated") for a, d in acts if a == "playbook.step")
    # a second rule naming the same address corroborates it: the next run acts by itself
    record_alert(soc, rule_id="citysoc-rtsp-auth-failures", source_ip="198.51.100.24")
    other = record_alert(soc, rule_id="citysoc-rtsp-auth-failures", source_ip="198.51.100.23")
    run2 = asyncio.run(runner.start("camera-bruteforce", alert_id=other.id, actor="system:playbooks",
                                    trigger="alert"))
    assert run2.status == "succeeded", run2.reason
    assert calls[0] == "block"


def test_automatic_runs_are_rate_limited_per_rule(soc, tmp_path: Path):
    def execute(action, ctx, params, step):
        return {"ip": params.get("ip"), "message_id": "m", "recipients": [], "case_id": 1, "title": "t"}

    settings = PlaybookSettings(rate_limits=RateLimitSettings(per_rule=RateLimit(max_runs=3, window_s=3600)))
    runner = make_runner(soc, tmp_path, execute=execute, settings=settings)

    async def flood():
        changes = [AlertChange(record_alert(soc, source_ip=f"198.51.100.{i}", host=f"cam-{i}"), True)
                   for i in range(1, 9)]
        runs = await runner.on_alerts(changes)
        await runner.drain()
        return runs

    runs = asyncio.run(flood())
    assert len(runs) == 3 and runner.refused == 5
    _total, entries = soc.audit.list(limit=1000)
    refused = [e for e in entries if e.action == "playbook.run.refused"]
    assert len(refused) == 5 and "rate limit" in refused[0].details["reason"]


@pytest.mark.network
def test_concurrent_runs_create_the_nft_table_once(tmp_path: Path):
    require_netns()
    g = Gateway()
    try:
        ctx = ActionContext(settings=PlaybookSettings(nft=NftSettings(command_prefix=g.prefix)), data_dir=tmp_path)
        errors: list[BaseException] = []

        def go():
            try:
                ensure_table(ctx)
            except BaseException as exc:  # noqa: BLE001 - collected and asserted below
                errors.append(exc)

        threads = [threading.Thread(target=go) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert errors == []
        ruleset = g.nft("list", "ruleset")
        assert ruleset.count("table inet citysoc") == 1
        assert ruleset.count("ip saddr @blocked4 drop") == 2  # input + forward, once each
    finally:
        g.close()


@pytest.mark.network
def test_spoofed_syslog_line_through_serve_blocks_nothing(tmp_path: Path):
    require_netns()
    ns = f"cspb-spoof-{os.getpid() % 100000}"
    subprocess.run(["ip", "netns", "add", ns], check=True, capture_output=True, timeout=20)
    try:
        cfg = tmp_path / "citysoc.yml"
        cfg.write_text(f"playbooks:\n  nft:\n    command_prefix: [ip, netns, exec, {ns}]\n")
        srv = ServeProcess(tmp_path / "data", config=cfg)
        srv.data.mkdir()
        viewer = srv.api_key("admin")
        srv.start()
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                udp.sendto(SPOOFED, ("127.0.0.1", srv.syslog_port))

            def parked():
                r = httpx.get(f"{srv.url}/api/v1/playbook-runs", params={"playbook": "camera-bruteforce"},
                              headers={"Authorization": f"ApiKey {viewer}"}, timeout=10)
                r.raise_for_status()
                items = r.json()["items"]
                return items if items and items[0]["status"] not in ("queued", "running") else None

            items = wait_for(parked, timeout=60)
            assert items, "the spoofed line started no run (the factory-account rule did not fire?)"
            run = items[0]
            assert run["status"] == "awaiting_approval", run
            assert run["current_step"] == "block" and "log content" in run["reason"]
            time.sleep(0.5)
            listed = subprocess.run(["ip", "netns", "exec", ns, "nft", "list", "ruleset"], capture_output=True,
                                    text=True, timeout=10).stdout
            assert "198.51.100.23" not in listed
        finally:
            srv.stop()
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=20)
