"""Real nftables in network namespaces: an alert starts the camera brute-force playbook,
the attacker's TCP connects really fail while another client still connects, the
e-mail reaches a real SMTP server, the case exists and the audit log holds every step;
then TTL expiry and unblock_ip give the attacker back, and isolate_host leaves a host
only the SOC address."""
from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from core.alerts import AlertRecorder
from core.playbooks import NftSettings, PlaybookSettings, SmtpSettings
from core.protocols import Detection
from netns_gateway import ATTACKER, CLIENT, GW_A, GW_C, Gateway, require_netns
from pbhelpers import audit_actions, make_runner
from playbooks.actions import ACTIONS, ActionContext, ActionError
from smtp_sink import SmtpSink

pytestmark = [pytest.mark.network]


@pytest.fixture
def gateway():
    require_netns()
    g = Gateway()
    try:
        yield g
    finally:
        g.close()


@pytest.fixture
def smtp():
    s = SmtpSink()
    yield s
    s.close()


def _settings(g: Gateway, smtp: SmtpSink | None = None, **nft) -> PlaybookSettings:
    # the test network is internal (10/8): playbooks may block in it only because it is listed
    nft.setdefault("allow_block", ["0.0.0.0/0", "::/0", "10.99.0.0/16"])
    return PlaybookSettings(nft=NftSettings(command_prefix=g.prefix, soc_addresses=[GW_A], **nft),
                            smtp=SmtpSettings(host="127.0.0.1", port=smtp.port if smtp else 25,
                                              default_to=["soc-duty@hcmc-soc.example"]))


def test_alert_runs_camera_bruteforce_for_real(gateway, smtp, soc, tmp_path: Path):
    assert gateway.connects(gateway.att, GW_A) and gateway.connects(gateway.cli, GW_C)
    runner = make_runner(soc, tmp_path, settings=_settings(gateway, smtp))

    async def scenario():
        recorder = AlertRecorder(soc.alerts, listeners=[runner.alert_listener(asyncio.get_running_loop())])
        ev = {"@timestamp": "2026-11-25T08:00:00.000Z", "source": {"ip": ATTACKER}, "host": {"name": "cam-q1-017"},
              "citysoc": {"center": "camera-ops", "asset": {"type": "camera"}}}
        det = Detection(rule_id="citysoc-camera-bruteforce", title="Camera login brute force", level="high",
                        events=[ev], tags=["citysoc.camera.bruteforce", "attack.t1110"])
        # a second rule already named the attacker: the automatic block is corroborated
        seen = Detection(rule_id="citysoc-rtsp-auth-failures", title="RTSP authentication failures", level="medium",
                         events=[ev], tags=["citysoc.camera.rtsp"])
        await asyncio.to_thread(recorder.emit, [seen])
        await asyncio.to_thread(recorder.emit, [det])  # the pipeline calls emit from a worker thread
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            total, runs = runner.list_runs(playbook="camera-bruteforce")
            if total and runs[0].status not in ("queued", "running"):
                break
            await asyncio.sleep(0.05)
        await runner.drain()
        await asyncio.to_thread(recorder.emit, [det])  # the same incident again: no second run
        await asyncio.sleep(0.2)
        await runner.drain()

    asyncio.run(scenario())
    total, runs = runner.list_runs(playbook="camera-bruteforce")
    assert total == 1, "a grown alert must not start the playbook again"
    run = runs[0]
    assert run.status == "succeeded", run.reason
    assert [(s.name, s.status) for s in run.steps] == [("block", "succeeded"), ("notify", "succeeded"),
                                                        ("case", "succeeded")]
    # the attacker is really dropped; the other client still gets through
    assert "10.99.40.2" in gateway.nft("list", "set", "inet", "citysoc", "blocked4")
    assert not gateway.connects(gateway.att, GW_A, timeout=1.0)
    assert gateway.connects(gateway.cli, GW_C)
    # the mail arrived
    msgs = smtp.wait_for(1)
    assert len(msgs) == 1
    rcpt, msg = msgs[0]
    assert rcpt == ["soc-duty@hcmc-soc.example"] and ATTACKER in msg["Subject"]
    assert "Block at the gateway: succeeded" in msg.get_payload()
    # the case holds the alert
    case_id = run.step("case").output["case_id"]
    case = soc.cases.get_case(case_id)
    assert case.alert_ids == [run.alert_id] and ATTACKER in case.title
    # every step is in the audit log, and the chain verifies
    acts = audit_actions(soc, run.id)
    assert [a for a, _ in acts] == ["playbook.run.start", "playbook.step", "playbook.step", "playbook.step",
                                    "playbook.run.end"]
    assert [d["step"] for a, d in acts if a == "playbook.step"] == ["block", "notify", "case"]
    assert soc.audit.verify().ok


def test_block_ttl_expires_and_unblock_restores(gateway, tmp_path: Path):
    ctx = ActionContext(settings=_settings(gateway), data_dir=tmp_path, timeout=10)
    out = ACTIONS["block_ip"].run(ctx, ip=ATTACKER, ttl_s=2)
    assert out["table_created"] and out["ttl_s"] == 2
    t0 = time.monotonic()
    assert not gateway.connects(gateway.att, GW_A, timeout=0.5)
    assert gateway.connects(gateway.cli, GW_C)
    while time.monotonic() - t0 < 2.6:
        time.sleep(0.1)
    assert gateway.connects(gateway.att, GW_A), "the kernel should have lifted the block after its TTL"
    # permanent block, then unblock_ip
    ACTIONS["block_ip"].run(ctx, ip=ATTACKER, ttl_s=0)
    assert not gateway.connects(gateway.att, GW_A, timeout=0.5)
    assert ACTIONS["unblock_ip"].run(ctx, ip=ATTACKER) == {"ip": ATTACKER, "was_blocked": True}
    assert gateway.connects(gateway.att, GW_A)
    assert ACTIONS["unblock_ip"].run(ctx, ip=ATTACKER)["was_blocked"] is False


def test_isolate_host_leaves_only_the_soc(gateway, tmp_path: Path):
    ctx = ActionContext(settings=_settings(gateway), data_dir=tmp_path, timeout=10)
    ACTIONS["isolate_host"].run(ctx, ip=CLIENT)
    assert not gateway.connects(gateway.cli, GW_C, timeout=0.5), "isolated host reached a non-SOC address"
    assert gateway.connects(gateway.cli, GW_A), "isolated host must still reach the SOC address"
    assert gateway.connects(gateway.att, GW_A), "other hosts are untouched"
    assert ACTIONS["release_host"].run(ctx, ip=CLIENT)["was_isolated"] is True
    assert gateway.connects(gateway.cli, GW_C)


def test_refuses_soc_and_loopback_and_foreign_table(gateway, tmp_path: Path):
    ctx = ActionContext(settings=_settings(gateway), data_dir=tmp_path, timeout=10)
    with pytest.raises(ActionError, match="SOC address"):
        ACTIONS["block_ip"].run(ctx, ip=GW_A)
    with pytest.raises(ActionError, match="loopback"):
        ACTIONS["block_ip"].run(ctx, ip="127.0.0.1")
    gateway.nft("add", "table", "inet", "someone_else")
    foreign = ActionContext(settings=_settings(gateway, table="someone_else"), data_dir=tmp_path, timeout=10)
    with pytest.raises(ActionError, match="was not made by citysoc"):
        ACTIONS["block_ip"].run(foreign, ip=ATTACKER)
