"""Responses an attacker cannot steer (issue 18): log content alone never blocks an address.

* the ``ip`` input type refuses scope ids and every spelling ``ipaddress`` would not print
  back identically (the text that reaches nft is the text that was shown and approved);
* an automatic block from one alert waits for approval; a second rule naming the address,
  or a network-observed detection, corroborates it;
* automatic runs are rate-limited per playbook and per rule: the runs over the limit are
  stored ``refused`` with the reason, audited and counted;
* nft elements travel as ``nft -j`` JSON, and concurrent ``ensure_table`` from several
  processes creates one table (real nft in a namespace the test creates).
"""
from __future__ import annotations

import asyncio
import json
import multiprocessing
import subprocess
import uuid
from pathlib import Path

import pytest

from core.alerts import AlertRecorder
from core.playbooks import NftSettings, PlaybookInputError, PlaybookSettings, RateLimit, RateLimitSettings
from core.protocols import Detection
from netns_gateway import require_netns
from pbhelpers import audit_actions, lab_settings, make_runner, record_alert
from playbooks.actions import ACTIONS, ActionContext, ActionError
from playbooks.actions.base import PARAM_TYPES, validate_params
from playbooks.actions.nft import element_command, ensure_table, table_script
from playbooks.rehearsal import Script

OK_BLOCK = {"ip": "x", "set": "inet citysoc blocked4", "ttl_s": 14400, "expires_at": "later", "table_created": False}


@pytest.mark.parametrize("bad", [
    "fe80::1%x } ; flush ruleset", "fe80::1%eth0", " 10.0.0.1", "10.0.0.1 ", "010.000.000.001", "FE80::1",
    "2001:db8:0:0::1", "::ffff:10.0.0.1x", "10.0.0.1/32", "", "1" * 60, None, ["10.0.0.1"],
])
def test_ip_type_refuses_what_ipaddress_would_not_print_back(bad):
    with pytest.raises(ValueError):
        PARAM_TYPES["ip"](bad)
    if bad not in ("", None):
        with pytest.raises(PlaybookInputError, match="input 'ip'"):
            validate_params(ACTIONS["block_ip"], {"ip": bad})


@pytest.mark.parametrize("good", ["10.0.0.1", "2001:db8::1", "fe80::1", "198.51.100.23"])
def test_ip_type_accepts_canonical_addresses(good):
    assert PARAM_TYPES["ip"](good) == good


def test_nft_element_is_json_not_syntax():
    doc = json.loads(element_command("add", "citysoc", "blocked6", "2001:db8::7", 60))
    assert doc == {"nftables": [{"add": {"element": {"family": "inet", "table": "citysoc", "name": "blocked6",
                                                     "elem": [{"elem": {"val": "2001:db8::7", "timeout": 60}}]}}}]}
    with pytest.raises(ActionError, match="scope id"):
        element_command("add", "citysoc", "blocked6", "fe80::1%x } ; flush ruleset")


def _emit(soc, rule_id: str, ip: str, *, engine: str = "sigma", extra: dict | None = None,
          tags: tuple[str, ...] = ("citysoc.camera.bruteforce",)):
    ev = {"@timestamp": "2026-12-02T17:00:00.000Z", "source": {"ip": ip}, "host": {"name": "nvr-d3-02"},
          "citysoc": {"center": "camera-ops", "asset": {"type": "nvr"}}, **(extra or {})}
    changes: list = []
    AlertRecorder(soc.alerts, listeners=[changes.extend]).emit(
        [Detection(rule_id=rule_id, title=rule_id, level="high", events=[ev], tags=list(tags), engine=engine)])
    return changes[-1]


def _script(n: int = 5) -> Script:
    return Script({"block": [OK_BLOCK] * n, "notify": [{"message_id": "m", "recipients": []}] * n,
                   "case": [{"case_id": 1, "title": "t"}] * n})


def test_one_log_alert_parks_the_block_and_a_second_rule_corroborates(soc, tmp_path: Path):
    script = _script()
    runner = make_runner(soc, tmp_path, execute=script)
    first = _emit(soc, "camera_factory_account_login", "198.51.100.23",
                  extra={"log": {"source": {"address": "127.0.0.1:5514"}}})

    async def scenario():
        (held,) = await runner.on_alerts([first])
        await runner.drain()
        held = runner.get_run(held.id)
        assert held.status == "awaiting_approval" and held.current_step == "block", held.reason
        assert script.sequence() == [], "one alert from log content must not act by itself"
        assert "not corroborated (1 rule(s) name it, 2 needed" in held.reason
        assert held.step("block").approval_role == "responder"
        second = _emit(soc, "rtsp_auth_failures", "198.51.100.23")
        (acting,) = await runner.on_alerts([second])
        await runner.drain()
        return held, runner.get_run(acting.id)

    held, acting = asyncio.run(scenario())
    assert acting.status == "succeeded" and script.sequence() == ["block", "notify", "case"]
    parked = [d for a, d in audit_actions(soc, held.id) if d.get("status") == "awaiting_approval"]
    assert parked[0]["corroboration"] == {"entity": "source_ip", "value": "198.51.100.23",
                                          "rules": ["camera_factory_account_login"], "needed": 2}
    assert runner.counters["steps_held_uncorroborated"] == 1
    # the held run is still a person's decision: approving it acts with exactly the shown inputs
    done = asyncio.run(runner.approve(held.id, actor="user:lan", role="responder"))
    assert done.status == "succeeded" and script.inputs("block")[1]["ip"] == "198.51.100.23"


def test_a_network_observed_detection_corroborates_alone_but_not_when_it_came_from_a_log(soc, tmp_path: Path):
    script = _script()
    runner = make_runner(soc, tmp_path, execute=script)
    from_log = _emit(soc, "net:brute_force", "203.0.113.8", engine="network", tags=("citysoc.camera.bruteforce",),
                     extra={"log": {"source": {"address": "10.20.0.9:514"}}})
    seen = _emit(soc, "net:brute_force", "203.0.113.9", engine="network", tags=("citysoc.camera.bruteforce",))

    async def scenario():
        runs = await runner.on_alerts([from_log, seen])
        await runner.drain()
        return [runner.get_run(r.id) for r in runs]

    held, acted = asyncio.run(scenario())
    assert held.status == "awaiting_approval", held.reason
    assert acted.status == "succeeded", acted.reason
    assert [c[2]["ip"] for c in script.calls if c[0] == "block"] == ["203.0.113.9"]


def test_a_person_starting_the_run_needs_no_corroboration(soc, tmp_path: Path):
    script = _script()
    runner = make_runner(soc, tmp_path, execute=script)
    alert = record_alert(soc, source_ip="198.51.100.40")
    run = asyncio.run(runner.start("camera-bruteforce", alert_id=alert.id, actor="user:lan"))
    assert run.status == "succeeded" and script.sequence()[0] == "block"


def test_rate_limits_per_rule_and_per_playbook_refuse_with_a_reason(soc, tmp_path: Path):
    settings = lab_settings(rate_limits=RateLimitSettings(per_playbook=RateLimit(max_runs=4, window_s=600),
                                                          per_rule=RateLimit(max_runs=2, window_s=600)),
                            corroboration={"enabled": False})
    script = _script(10)
    runner = make_runner(soc, tmp_path, execute=script, settings=settings)
    flood = [_emit(soc, "camera_factory_account_login", f"198.51.100.{i}") for i in range(1, 4)]
    other = [_emit(soc, "rtsp_auth_failures", f"203.0.113.{i}") for i in range(1, 4)]

    async def scenario():
        runs = await runner.on_alerts([*flood, *other])
        await runner.drain()
        return [runner.get_run(r.id) for r in runs]

    runs = asyncio.run(scenario())
    assert [r.status for r in runs] == ["succeeded", "succeeded", "refused", "succeeded", "succeeded", "refused"]
    assert "rule 'camera_factory_account_login' in playbook 'camera-bruteforce'" in runs[2].reason
    assert "(limit 2)" in runs[2].reason and runs[2].ended_at
    assert runner.counters["runs_refused_rate_limit"] == 2
    assert audit_actions(soc, runs[2].id)[0][0] == "playbook.run.refused"
    assert script.sequence().count("block") == 4
    # per playbook: 4 real runs exist, so a third rule is refused too
    (last,) = asyncio.run(runner.on_alerts([_emit(soc, "camera_login_brute_force", "198.51.100.77")]))
    assert last.status == "refused" and "playbook 'camera-bruteforce' in the last 600 s (limit 4)" in last.reason
    # a person is not rate-limited
    manual = asyncio.run(runner.start("camera-bruteforce", alert_id=last.alert_id, actor="user:lan"))
    assert manual.status == "succeeded"


def _race(prefix: list[str], data_dir: str, barrier) -> str:
    ctx = ActionContext(settings=PlaybookSettings(nft=NftSettings(table="csrace", command_prefix=prefix)),
                        data_dir=Path(data_dir), timeout=10)
    barrier.wait()
    return "created" if ensure_table(ctx) else "present"


def test_concurrent_ensure_table_from_several_processes_creates_one_table(tmp_path: Path):
    require_netns()
    ns = f"cspb-race-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", ns], check=True, timeout=20)
    try:
        prefix = ["ip", "netns", "exec", ns]
        n = 4
        mp = multiprocessing.get_context("fork")
        barrier = mp.Manager().Barrier(n)
        with mp.Pool(n) as pool:
            results = pool.starmap(_race, [(prefix, str(tmp_path / "data"), barrier)] * n)
        assert sorted(results) == ["created"] + ["present"] * (n - 1)
        listed = json.loads(subprocess.run([*prefix, "nft", "-j", "list", "ruleset"], check=True, capture_output=True,
                                           text=True, timeout=20).stdout)["nftables"]
        assert sum(1 for o in listed if "table" in o) == 1
        rules = [o["rule"] for o in listed if "rule" in o]
        expected = table_script(ActionContext(settings=PlaybookSettings(nft=NftSettings(table="csrace")),
                                              data_dir=tmp_path)).count(" drop")
        assert len(rules) == expected, "every drop rule exists once"
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=20)

