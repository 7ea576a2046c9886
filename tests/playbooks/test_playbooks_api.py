"""The playbook API on the real app (auth, roles, soc.db, run store), with scripted actions:
who may read, run and approve; dry runs; approvals through HTTP; errors as status codes;
and the CLI commands over the same data directory."""
from __future__ import annotations

import getpass
import json
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from api.app import create_app
from api.deps import AppState
from api.routers.playbooks import routers
from citysoc.cli import main as cli
from citysoc.wiring import build_alerting, build_pipeline, build_playbooks, open_soc
from core.auth import ROLES
from core.settings import Settings
from pbhelpers import LAB_ALLOW_BLOCK, record_alert
from playbooks.rehearsal import Script
from storage.deadletters import SQLiteDeadLetterStore
from storage.sqlite import SQLiteEventStore


@pytest.fixture
def api(tmp_path: Path):
    settings = Settings(data=tmp_path / "data", playbooks={"smtp": {"default_to": ["duty@hcmc.example"]},
                                                           "nft": {"allow_block": LAB_ALLOW_BLOCK}})
    soc = open_soc(settings)
    sink, services = build_alerting(soc)
    script = Script({"case": [{"case_id": 1, "title": "t"}] * 5,
                     "disable": [{"database": "warehouse", "account": "etl", "could_login_before": True,
                                  "sessions_terminated": 0}] * 5})
    runner, errors = build_playbooks(settings, soc, execute=script, rescan=object())
    assert not errors
    services = replace(services, playbooks=runner)
    store = SQLiteEventStore(tmp_path / "data" / "events.db")
    dls = SQLiteDeadLetterStore(tmp_path / "data" / "deadletters.db")
    state = AppState(settings=settings, store=store, deadletters=dls,
                     pipeline=build_pipeline(settings, store, dls, alert_sink=sink), services=services, ready=True)
    keys = {r: soc.users.create_api_key(f"k-{r}", r, "test")[1] for r in ROLES}
    keys["responder2"] = soc.users.create_api_key("k-responder2", "responder", "test")[1]  # four eyes
    with TestClient(create_app(state)) as client:
        yield client, keys, soc, script
    store.close()
    soc.close()


def _h(keys: dict, role: str) -> dict:
    return {"Authorization": f"ApiKey {keys[role]}"}


def test_roles_read_run_approve(api):
    client, keys, soc, script = api
    alert = record_alert(soc, tags=["citysoc.warehouse.privilege_grant"], user="etl", rule_id="r1")
    assert client.get("/api/v1/playbooks").status_code == 401
    names = [p["name"] for p in client.get("/api/v1/playbooks", headers=_h(keys, "viewer")).json()]
    assert "camera-bruteforce" in names and "warehouse-account-abuse" in names
    pb = client.get("/api/v1/playbooks/warehouse-account-abuse", headers=_h(keys, "viewer")).json()
    assert pb["steps"][1] == {"name": "disable", "action": "disable_db_account", "destructive": True,
                              "approval": {"role": "responder"}, "timeout": 30.0, "on_error": "abort",
                              "retries": 2, "if": None}
    for role in ("viewer", "analyst", "auditor"):
        r = client.post("/api/v1/playbooks/warehouse-account-abuse/run", json={"alert_id": alert.id},
                        headers=_h(keys, role))
        assert r.status_code == 403, role
    r = client.post("/api/v1/playbooks/warehouse-account-abuse/run", json={"alert_id": alert.id},
                    headers=_h(keys, "responder"))
    assert r.status_code == 200, r.text
    run = r.json()
    assert run["status"] == "awaiting_approval" and script.sequence() == ["case"]
    assert client.post(f"/api/v1/playbook-runs/{run['id']}/approve", json={}, headers=_h(keys, "analyst")).status_code == 403
    r = client.post(f"/api/v1/playbook-runs/{run['id']}/approve", json={"comment": "ok"}, headers=_h(keys, "responder"))
    assert r.status_code == 403 and "four eyes" in str(r.json()["detail"])  # who started it cannot approve it
    r = client.post(f"/api/v1/playbook-runs/{run['id']}/approve", json={"comment": "ok"}, headers=_h(keys, "responder2"))
    assert r.status_code == 200, r.text
    done = r.json()
    assert done["status"] == "succeeded" and script.sequence() == ["case", "disable"]
    assert done["approvals"][0]["actor"].startswith("apikey:") and done["approvals"][0]["comment"] == "ok"
    page = client.get("/api/v1/playbook-runs", params={"playbook": "warehouse-account-abuse"},
                      headers=_h(keys, "viewer")).json()
    assert page["total"] == 1 and page["items"][0]["steps"][1]["approved_by"].startswith("apikey:")
    # the run is in the audit log under the caller's name
    _total, entries = soc.audit.list(target=f"playbook_run:{run['id']}", limit=100)
    assert {e.action for e in entries} >= {"playbook.run.start", "playbook.approve", "playbook.step", "playbook.run.end"}
    assert all(e.actor.startswith("apikey:") for e in entries)


def test_dry_run_errors_and_states(api):
    client, keys, soc, script = api
    alert = record_alert(soc)
    h = _h(keys, "responder")
    r = client.post("/api/v1/playbooks/camera-bruteforce/run", json={"alert_id": alert.id, "dry_run": True}, headers=h)
    assert r.status_code == 200
    body = r.json()
    assert body["dry_run"] and body["status"] == "succeeded", body["reason"]
    assert body["steps"][0]["would"].startswith("would add 10.99.40.2")
    assert script.calls == [] and soc.cases.list_cases()[0] == 0
    assert client.post("/api/v1/playbooks/nope/run", json={}, headers=h).status_code == 404
    r = client.post("/api/v1/playbooks/camera-bruteforce/run", json={"inputs": {"source_ip": "1.2.3.4; reboot"}},
                    headers=h)
    assert r.status_code == 422 and "not an IP address" in r.json()["detail"]
    assert client.post(f"/api/v1/playbook-runs/{body['id']}/resume", json={}, headers=h).status_code == 409
    assert client.get("/api/v1/playbook-runs/999", headers=h).status_code == 404
    assert client.post("/api/v1/playbooks/camera-bruteforce/run", json={"bogus": 1}, headers=h).status_code == 422
    parked = client.post("/api/v1/playbooks/camera-unknown-device/run",
                         json={"inputs": {"host_ip": "10.99.41.5"}}, headers=h).json()
    assert parked["status"] == "awaiting_approval"
    assert client.post(f"/api/v1/playbook-runs/{parked['id']}/cancel", json={}, headers=_h(keys, "viewer")).status_code == 403
    cancelled = client.post(f"/api/v1/playbook-runs/{parked['id']}/cancel", json={"comment": "dup"}, headers=h).json()
    assert cancelled["status"] == "cancelled" and cancelled["reason"].endswith(": dup")
    assert client.post(f"/api/v1/playbook-runs/{parked['id']}/approve", json={}, headers=h).status_code == 409
    rerun = client.post(f"/api/v1/playbook-runs/{body['id']}/rerun", json={"dry_run": True}, headers=h).json()
    assert rerun["parent_run_id"] == body["id"] and rerun["status"] == "succeeded"


def test_cli_list_validate_run_approve(tmp_path: Path, monkeypatch):
    data = tmp_path / "data"
    monkeypatch.setenv("CITYSOC_DATA", str(data))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "citysoc.yml").write_text(f"playbooks:\n  nft: {{allow_block: {json.dumps(LAB_ALLOW_BLOCK)}}}\n")
    cli_runner = CliRunner()
    r = cli_runner.invoke(cli, ["playbooks", "list"])
    assert r.exit_code == 0, r.output
    assert "camera-bruteforce" in r.output
    soc = open_soc(Settings(data=data))
    alert = record_alert(soc, tags=["citysoc.camera.unknown_device"], source_ip="10.99.41.7")
    soc.close()
    r = cli_runner.invoke(cli, ["playbooks", "run", "camera-unknown-device", "--alert", str(alert.id), "--dry-run",
                                "--json"])
    assert r.exit_code == 1, r.output  # no mail recipients configured: the dry run says the mail would fail
    doc = json.loads(r.output)
    assert doc["status"] == "failed" and "would fail at notify (no recipients" in doc["reason"]
    assert doc["steps"][1]["would"].startswith("would add 10.99.41.7")
    (tmp_path / "citysoc.yml").write_text("playbooks:\n  smtp: {default_to: [duty@hcmc.example]}\n"
                                          f"  nft: {{allow_block: {json.dumps(LAB_ALLOW_BLOCK)}}}\n")
    r = cli_runner.invoke(cli, ["playbooks", "run", "camera-unknown-device", "--alert", str(alert.id), "--dry-run",
                                "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    assert doc["reason"] == "dry run: nothing was changed; completed"
    assert [s["status"] for s in doc["steps"]] == ["would_run"] * 3
    r = cli_runner.invoke(cli, ["playbooks", "run", "camera-unknown-device", "--alert", str(alert.id)])
    assert r.exit_code == 0 and "awaiting_approval" in r.output, r.output
    r = cli_runner.invoke(cli, ["playbooks", "runs"])
    assert r.exit_code == 0 and "3 runs" in r.output
    r = cli_runner.invoke(cli, ["playbooks", "show", "3", "--json"])
    assert json.loads(r.output)["current_step"] == "isolate"
    r = cli_runner.invoke(cli, ["playbooks", "reject", "3", "--comment", "lab device"])
    assert r.exit_code == 0 and "rejected" in r.output, r.output
    soc = open_soc(Settings(data=data))
    _total, entries = soc.audit.list(target="playbook_run:3", limit=50)
    soc.close()
    assert {e.actor for e in entries} == {f"cli:{getpass.getuser()}"}
    assert "playbook.reject" in {e.action for e in entries}
    r = cli_runner.invoke(cli, ["playbooks", "validate", str(Path(__file__).parent.parent.parent / "playbooks" / "library")])
    assert r.exit_code == 0 and "5 playbooks valid" in r.output, r.output
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.yml").write_text("name: x\nsteps:\n  - name: a\n    action: nuke\n")
    r = cli_runner.invoke(cli, ["playbooks", "validate", str(bad)])
    assert r.exit_code == 1 and "x.yml:4: steps[0].action: unknown action 'nuke'" in r.output, r.output
    r = cli_runner.invoke(cli, ["playbooks", "approve", "12345"])
    assert r.exit_code != 0 and "no playbook run 12345" in r.output


def test_serve_wiring_starts_playbooks_on_new_alerts(tmp_path: Path):
    """What `citysoc serve` builds (citysoc.runtime.build_server): the runner, subscribed to
    the alert recorder when the recorder is built, its routers mounted."""
    import asyncio

    from citysoc.runtime import build_server
    from core.protocols import Detection

    settings = Settings(data=tmp_path / "data", detection={"enabled": False}, pipeline={"workers": 0})

    async def scenario():
        parts = await build_server(settings)
        try:
            runner, recorder = parts.playbooks, parts.alert_sink
            assert parts.state.services.playbooks is runner is not None
            paths = parts.app.openapi()["paths"]
            assert all(f"/api/v1{x.path}" in paths for r in routers for x in r.routes)
            det = Detection(rule_id="c60c6af1-31a8-4d61-9d63-91f51671ae63", title="Warehouse export to file",
                            level="high", events=[{"user": {"name": "etl_ro"}, "host": {"name": "dwh-01"}}],
                            tags=["attack.exfiltration"])
            await asyncio.to_thread(recorder.emit, [det])
            for _ in range(200):
                if runner.list_runs()[0]:
                    break
                await asyncio.sleep(0.01)
            await runner.drain()
            return runner.list_runs()
        finally:
            await parts.close()

    total, runs = asyncio.run(scenario())
    soc2 = open_soc(settings)
    try:
        assert total == 1 and runs[0].playbook == "warehouse-account-abuse" and runs[0].trigger == "alert"
        assert runs[0].status == "awaiting_approval", runs[0].reason
        assert soc2.cases.list_cases()[0] == 1
    finally:
        soc2.close()
