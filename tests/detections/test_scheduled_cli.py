"""``citysoc scheduled status|check`` and the serve wiring of scheduled rules, over a real
data folder (SQLite event store, soc.db alerts, scheduled.db)."""
from __future__ import annotations

import datetime as _dt
import json
from pathlib import Path

from click.testing import CliRunner

from citysoc.cli import main
from citysoc.runtime import _build_scheduled_rules
from citysoc.wiring import build_alerting, open_soc, open_store
from core.alerts import AlertFilter
from core.settings import Settings
from detections.scheduled import RunState, state_path

RULE_ID = "dc6f987d-bbb1-4b10-97fb-cead3bec1e91"  # camera_telnet_enabled (our pack)


def _event(ts: _dt.datetime, host: str) -> dict:
    return {"@timestamp": ts.isoformat().replace("+00:00", "Z"), "host": {"name": host},
            "event": {"action": "device-config-change"}, "dahua": {"group": "Telnet"}}


def test_serve_wiring_runs_a_pack_rule_by_id_into_soc_alerts_and_the_cli_shows_runs_and_gaps(tmp_path: Path) -> None:
    data = tmp_path / "data"
    settings = Settings(data=data, detection={"scheduled": {"rules": [{"id": RULE_ID, "interval": "5m"}],
                                                           "max_catchup_chunks": 30}})
    store = open_store(settings)
    soc = open_soc(settings)
    now = _dt.datetime.now(_dt.timezone.utc)
    store.ingest([_event(now - _dt.timedelta(minutes=3), "IPC-D3-0107")])
    # The server was down: the state says the rule last covered up to two hours ago.
    state = RunState(state_path(data))
    state.set_covered_end(RULE_ID, int((now - _dt.timedelta(hours=2)).timestamp() * 1000))
    state.close()
    recorder, _services = build_alerting(soc)
    runner = _build_scheduled_rules(settings, store, recorder)
    try:
        assert runner is not None and list(runner.rules) == [RULE_ID]
        outcomes = runner.run_due()
        assert outcomes[0].alerts == 1 and {o.kind for o in outcomes} == {"run", "catchup"}
        _total, [alert] = soc.alerts.list(AlertFilter())
        assert soc.alerts.get(alert.id).engine == "sigma-scheduled"
    finally:
        runner.state.close()
        store.close()
        soc.close()
    env = {"CITYSOC_DATA": str(data)}
    res = CliRunner().invoke(main, ["scheduled", "status", "--json", "--limit", "100"], env=env)
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    [gap] = doc["gaps"]
    assert gap["rule_id"] == RULE_ID and gap["open"] is False and 110 < gap["minutes"] < 116
    assert {r["kind"] for r in doc["runs"]} == {"run", "catchup"}
    res = CliRunner().invoke(main, ["scheduled", "status"], env=env)
    assert res.exit_code == 0 and "catchup" in res.output and "closed" in res.output


def test_serve_starts_no_runner_without_configured_rules(tmp_path: Path) -> None:
    settings = Settings(data=tmp_path)
    assert _build_scheduled_rules(settings, None, None) is None


def test_status_without_state_says_how_to_get_some(tmp_path: Path) -> None:
    res = CliRunner().invoke(main, ["scheduled", "status"], env={"CITYSOC_DATA": str(tmp_path)})
    assert res.exit_code != 0 and "detection.scheduled.rules" in res.output


def test_check_lists_every_pack_rule_that_cannot_be_scheduled_with_its_reason(tmp_path: Path) -> None:
    res = CliRunner().invoke(main, ["scheduled", "check", "--json"], env={"CITYSOC_DATA": str(tmp_path)})
    assert res.exit_code == 1  # our pack has regular-expression and correlation rules
    rows = [json.loads(line) for line in res.output.splitlines()]
    ok = [r for r in rows if r["ok"]]
    bad = [r for r in rows if not r["ok"]]
    assert len(ok) >= 25 and any(r["id"] == RULE_ID for r in ok)
    assert all(r["reason"] for r in bad)
    assert {("regular expressions" in r["reason"]) or ("correlation" in r["reason"]) or ("time-part" in r["reason"])
            for r in bad} == {True}
