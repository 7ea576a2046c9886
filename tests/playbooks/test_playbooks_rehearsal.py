"""Rehearsals: the real runner, run store, soc.db and audit log, with scripted action
results (playbooks.rehearsal.Script), checking the step sequence and the states a run
goes through: retries, on_error, timeouts, approvals (given, refused, expired), resume,
rerun, dry runs, idempotency, the concurrency limit and bad inputs."""
from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest

from core.alerts import AlertChange
from core.playbooks import ApprovalDenied, PlaybookInputError, Run, RunStateError
from pbhelpers import audit_actions, lab_settings, make_runner, record_alert
from playbooks.actions import ACTIONS, ActionError
from playbooks.rehearsal import Pause, Script
from playbooks.spec import load_folders

OK_BLOCK = {"ip": "10.99.40.2", "set": "inet citysoc blocked4", "ttl_s": 14400, "expires_at": "later",
            "table_created": False}


def _custom(tmp_path: Path, text: str) -> dict:
    d = tmp_path / "custom"
    d.mkdir(exist_ok=True)
    (d / "pb.yml").write_text(text)
    cat = load_folders([d], ACTIONS)
    assert not cat.errors, [str(e) for e in cat.errors]
    return cat.playbooks


def test_retry_then_success_then_continue_past_a_failed_notification(soc, tmp_path: Path):
    alert = record_alert(soc)
    script = Script({"block": [ActionError("nft: busy"), OK_BLOCK],
                     "notify": [ActionError("smtp down")] * 3,
                     "case": [{"case_id": 4, "title": "t"}]})
    runner = make_runner(soc, tmp_path, execute=script)
    # make the retry backoff short for the test without changing the library file
    for st in runner.playbooks["camera-bruteforce"].steps:
        st.on_error.backoff_s = 0.01
    run = asyncio.run(runner.start("camera-bruteforce", alert_id=alert.id, actor="user:an"))
    assert script.sequence() == ["block", "block", "notify", "notify", "notify", "case"]
    assert run.status == "completed_with_failures"  # a failed step passed over is not a success
    assert "notify (smtp down)" in run.reason
    assert [(s.name, s.status, s.attempts) for s in run.steps] == [
        ("block", "succeeded", 2), ("notify", "failed", 3), ("case", "succeeded", 1)]
    assert script.inputs("block")[0] == {"ip": "10.99.40.2", "ttl_s": 14400, "reason": f"camera brute force, alert {alert.id}"}
    assert "Block: succeeded" in script.inputs("case")[0]["description"]
    acts = audit_actions(soc, run.id)
    assert [a for a, _ in acts].count("playbook.step.attempt") == 4
    assert acts[-1] == ("playbook.run.end", {"dry_run": False, "playbook": "camera-bruteforce",
                                             "reason": run.reason, "status": "completed_with_failures"})


def test_abort_leaves_a_clear_record_and_resume_starts_at_the_failed_step(soc, tmp_path: Path):
    alert = record_alert(soc)
    script = Script({"block": [OK_BLOCK], "notify": [{"message_id": "m", "recipients": ["x@y.z"]}],
                     "case": [ActionError("database is locked"), ActionError("database is locked"),
                              {"case_id": 1, "title": "t"}]})
    runner = make_runner(soc, tmp_path, execute=script)
    runner.playbooks["camera-bruteforce"].step("case").on_error.backoff_s = 0.01
    run = asyncio.run(runner.start("camera-bruteforce", alert_id=alert.id, actor="user:an"))
    assert run.status == "failed" and run.current_step == "case"
    assert run.reason == (f"step 'case' (create_case) failed after 2 attempt(s): database is locked; "
                          f"fix the cause, then resume run {run.id}")
    assert run.step("case").error == "database is locked"
    resumed = asyncio.run(runner.resume(run.id, actor="user:an"))
    assert resumed.status == "succeeded"
    assert script.sequence() == ["block", "notify", "case", "case", "case"], "resume must not redo earlier steps"
    with pytest.raises(RunStateError, match="only failed runs"):
        asyncio.run(runner.resume(run.id, actor="user:an"))
    assert "playbook.run.resume" in [a for a, _ in audit_actions(soc, run.id)]


def test_a_hanging_action_times_out_and_the_run_ends(soc, tmp_path: Path):
    pbs = _custom(tmp_path, """
name: slow
steps:
  - name: lookup
    action: enrich
    with: {indicator: "10.0.0.1"}
    timeout: 0.2
""")
    script = Script({"lookup": [Pause(1.0)]})
    runner = make_runner(soc, tmp_path, execute=script, playbooks=pbs)

    async def timed() -> tuple[Run, float]:
        t0 = time.monotonic()
        r = await runner.start("slow", actor="user:an")
        return r, time.monotonic() - t0

    run, took = asyncio.run(timed())
    assert took < 1.0, "the run must end at the step timeout, not when the action returns"
    assert run.status == "failed"
    assert run.step("lookup").error == "timed out after 0.2 s"
    assert "timed out after 0.2 s" in run.reason and run.ended_at


def test_approval_blocks_until_given_and_checks_the_role(soc, tmp_path: Path):
    alert = record_alert(soc, tags=["citysoc.camera.unknown_device"], source_ip="10.99.41.9")
    script = Script({"lookup": [{"asset": {"name": "cam-xyz"}, "intel": [], "sources": ["assets"]}],
                     "isolate": [{"ip": "10.99.41.9", "set": "s", "expires_at": None, "soc_addresses": []}],
                     "notify": [{"message_id": "m", "recipients": []}]})
    runner = make_runner(soc, tmp_path, execute=script)

    async def scenario() -> tuple[Run, Run]:
        (parked,) = await runner.on_alerts([AlertChange(alert=alert, created=True)])
        await runner.drain()
        parked = runner.get_run(parked.id)
        assert parked.status == "awaiting_approval" and parked.current_step == "isolate"
        assert script.sequence() == ["lookup"], "the destructive step must not run before approval"
        assert parked.step("isolate").inputs == {"ip": "10.99.41.9", "ttl_s": 0}
        assert parked.reason == "step 'isolate' (isolate_host) waits for approval by role 'responder'"
        assert "citysoc " not in parked.reason, "a console user is never shown a CLI command"
        for role in ("viewer", "analyst", "auditor"):
            with pytest.raises(ApprovalDenied):
                await runner.approve(parked.id, actor=f"user:{role}", role=role)
        assert script.sequence() == ["lookup"]
        done = await runner.approve(parked.id, actor="user:lan", role="responder")
        return parked, done

    _parked, done = asyncio.run(scenario())
    assert done.status == "succeeded"
    assert script.sequence() == ["lookup", "isolate", "notify"]
    assert done.step("isolate").approved_by == "user:lan"
    assert "cam-xyz" in script.inputs("notify")[0]["body"]
    with pytest.raises(RunStateError, match="not awaiting approval"):
        asyncio.run(runner.approve(done.id, actor="user:lan", role="responder"))


def test_rejection_ends_the_run_without_acting(soc, tmp_path: Path):
    alert = record_alert(soc, tags=["citysoc.camera.new_destination"], source_ip="10.99.41.9")
    script = Script({"lookup": [{"asset": None, "intel": [], "sources": []}]})
    runner = make_runner(soc, tmp_path, execute=script)
    run = asyncio.run(runner.start("camera-unknown-device", alert_id=alert.id, actor="system:playbooks"))
    assert run.status == "awaiting_approval"
    rejected = asyncio.run(runner.reject(run.id, actor="user:lan", role="admin", comment="known maintenance laptop"))
    assert rejected.status == "rejected"
    assert rejected.reason == "step 'isolate' (isolate_host) was rejected by user:lan: known maintenance laptop"
    assert rejected.step("isolate").status == "rejected" and rejected.step("notify").status == "pending"
    assert script.sequence() == ["lookup"]
    assert [a for a, _ in audit_actions(soc, run.id)][-2:] == ["playbook.reject", "playbook.run.end"]


def test_unanswered_approval_expires_to_failed(soc, tmp_path: Path):
    pbs = _custom(tmp_path, """
name: gated
steps:
  - name: cut
    action: isolate_host
    with: {ip: "10.99.41.9"}
    approval: {role: responder, timeout_s: 1}
""")
    runner = make_runner(soc, tmp_path, execute=Script({}), playbooks=pbs)
    run = asyncio.run(runner.start("gated", actor="user:an"))
    assert run.status == "awaiting_approval" and run.approval_expires_at
    time.sleep(1.1)
    assert asyncio.run(runner.expire_approvals()) == [run.id]
    ended = runner.get_run(run.id)
    assert ended.status == "failed" and "no decision on step 'cut'" in ended.reason
    with pytest.raises(RunStateError):
        asyncio.run(runner.approve(run.id, actor="user:lan", role="responder"))


def test_dry_run_touches_nothing(soc, tmp_path: Path):
    alert = record_alert(soc, tags=["citysoc.camera.unknown_device"])
    script = Script({})  # any real call would fail the rehearsal
    runner = make_runner(soc, tmp_path, execute=script,
                         settings=lab_settings(smtp={"default_to": ["duty@hcmc.example"]}))
    for name in ("camera-bruteforce", "camera-unknown-device"):
        run = asyncio.run(runner.start(name, alert_id=alert.id, actor="user:an", dry_run=True))
        assert run.status == "succeeded" and run.reason.startswith("dry run: nothing was changed")
        assert all(s.status == "would_run" and s.would.startswith("would ") for s in run.steps), \
            [(s.name, s.status, s.would) for s in run.steps]
    assert script.calls == []
    assert soc.cases.list_cases()[0] == 0
    assert "(after approval by role responder)" in run.step("isolate").would
    assert run.step("isolate").inputs == {"ip": "10.99.40.2", "ttl_s": 0}
    # dry runs are not deduplicated and do not block the real run
    again = asyncio.run(runner.start("camera-unknown-device", alert_id=alert.id, actor="user:an", dry_run=True))
    assert again.id != run.id and not again.duplicate


def test_idempotency_and_rerun(soc, tmp_path: Path):
    record_alert(soc, rule_id="rtsp-auth-failures")  # a second rule names the address: the block is corroborated
    alert = record_alert(soc)
    script = Script({"block": [OK_BLOCK, OK_BLOCK], "notify": [{"message_id": "m", "recipients": []}] * 2,
                     "case": [{"case_id": 1, "title": "t"}] * 2})
    runner = make_runner(soc, tmp_path, execute=script)
    first = asyncio.run(runner.start("camera-bruteforce", alert_id=alert.id, actor="system:playbooks", trigger="alert"))
    second = asyncio.run(runner.start("camera-bruteforce", alert_id=alert.id, actor="system:playbooks",
                                      trigger="alert"))
    assert second.id == first.id and second.duplicate
    assert script.sequence() == ["block", "notify", "case"]
    again = asyncio.run(runner.rerun(first.id, actor="user:lan"))
    assert again.id != first.id and again.parent_run_id == first.id and again.trigger == "rerun"
    assert again.inputs == first.inputs and again.status == "succeeded"
    assert script.sequence() == ["block", "notify", "case"] * 2


def test_concurrent_runs_are_limited(soc, tmp_path: Path):
    pbs = _custom(tmp_path, """
name: slowish
inputs: {n: {type: int}}
idempotency_key: "{{ inputs.n }}"
steps:
  - name: lookup
    action: enrich
    with: {indicator: "x{{ inputs.n }}"}
""")
    lock = threading.Lock()
    active = {"now": 0, "max": 0}

    def execute(action, ctx, params, step):
        with lock:
            active["now"] += 1
            active["max"] = max(active["max"], active["now"])
        time.sleep(0.15)
        with lock:
            active["now"] -= 1
        return {"asset": None, "intel": [], "sources": []}

    runner = make_runner(soc, tmp_path, execute=execute, playbooks=pbs,
                         settings=lab_settings(max_concurrent_runs=2))

    async def scenario() -> list[Run]:
        return list(await asyncio.gather(*(runner.start("slowish", actor="u", inputs={"n": i}) for i in range(6))))

    runs = asyncio.run(scenario())
    assert all(r.status == "succeeded" for r in runs)
    assert active["max"] == 2


def test_bad_inputs_are_refused_before_anything_runs(soc, tmp_path: Path):
    runner = make_runner(soc, tmp_path, execute=Script({}))
    no_ip = record_alert(soc, source_ip="", host="cam-2")
    with pytest.raises(PlaybookInputError, match="input 'source_ip' \\(ip\\) is required and the alert does not"):
        asyncio.run(runner.start("camera-bruteforce", alert_id=no_ip.id, actor="u"))
    with pytest.raises(PlaybookInputError, match="is not an IP address"):
        asyncio.run(runner.start("camera-bruteforce", actor="u", inputs={"source_ip": "10.0.0.1; nft flush ruleset"}))
    with pytest.raises(PlaybookInputError, match="unknown input 'extra'"):
        asyncio.run(runner.start("camera-bruteforce", actor="u", inputs={"source_ip": "10.0.0.1", "extra": 1}))
    assert runner.list_runs()[0] == 0


def test_bad_step_inputs_fail_the_step_without_calling_the_action(soc, tmp_path: Path):
    pbs = _custom(tmp_path, """
name: badip
inputs: {who: {type: str}}
steps:
  - name: block
    action: block_ip
    with: {ip: "{{ inputs.who }}"}
    approval: {auto: "test playbook, nothing real is blocked here"}
""")
    script = Script({})
    runner = make_runner(soc, tmp_path, execute=script, playbooks=pbs)
    run = asyncio.run(runner.start("badip", actor="u", inputs={"who": "10.0.0.1 } ; flush ruleset"}))
    assert run.status == "failed" and script.calls == []
    assert "bad inputs" in run.step("block").error and "is not an IP address" in run.step("block").error


def test_conditions_skip_steps_and_only_new_alerts_trigger(soc, tmp_path: Path):
    pbs = _custom(tmp_path, """
name: conditional
trigger:
  alert: {rule_id: ["rule-a*"], min_level: high}
steps:
  - name: only_critical
    action: enrich
    if: "alert.level == 'critical'"
    with: {indicator: "{{ alert.entities.source_ip }}"}
  - name: always
    action: enrich
    if: "steps.only_critical.status == 'skipped'"
    with: {indicator: "x"}
""")
    script = Script({"always": [{"asset": None, "intel": [], "sources": []}]})
    runner = make_runner(soc, tmp_path, execute=script, playbooks=pbs)
    high = record_alert(soc, rule_id="rule-a1", level="high")
    low = record_alert(soc, rule_id="rule-a2", level="medium")
    other = record_alert(soc, rule_id="rule-b", level="critical")

    async def scenario():
        runs = await runner.on_alerts([AlertChange(high, True), AlertChange(low, True), AlertChange(other, True),
                                       AlertChange(high, False)])
        await runner.drain()
        return runs

    runs = asyncio.run(scenario())
    assert len(runs) == 1
    run = runner.get_run(runs[0].id)
    assert [(s.name, s.status) for s in run.steps] == [("only_critical", "skipped"), ("always", "succeeded")]
    assert script.sequence() == ["always"]


def test_interrupted_runs_are_ended_on_recover(soc, tmp_path: Path):
    runner = make_runner(soc, tmp_path, execute=Script({}))
    run = Run(id=0, playbook="camera-bruteforce", status="running", trigger="alert", actor="system:playbooks",
              current_step="notify")
    stored, _ = runner.store.create_run(run)
    assert asyncio.run(runner.recover()) == [stored.id]
    ended = runner.get_run(stored.id)
    assert ended.status == "failed" and "interrupted" in ended.reason and "'notify'" in ended.reason
