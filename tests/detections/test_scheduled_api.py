"""``/api/v1/scheduled-rules``: the overview, run log and gaps of a real runner, with the
access checks of the API (viewer reads, ingest-only keys do not)."""
from __future__ import annotations

import datetime as _dt
from dataclasses import replace
from pathlib import Path

from fastapi.testclient import TestClient

from api.app import create_app
from api.deps import AppState
from citysoc.wiring import build_alerting, build_pipeline, open_soc
from core.settings import Settings
from detections.scheduled import RunState, build_scheduled, state_path
from storage.deadletters import SQLiteDeadLetterStore
from storage.sqlite import SQLiteEventStore

PACK = Path(__file__).resolve().parents[2] / "detections" / "rules" / "sigma"
RULE_ID = "dc6f987d-bbb1-4b10-97fb-cead3bec1e91"


def test_overview_runs_and_gaps_through_the_api(tmp_path: Path) -> None:
    settings = Settings(data=tmp_path)
    store = SQLiteEventStore(tmp_path / "events.db")
    dls = SQLiteDeadLetterStore(tmp_path / "deadletters.db")
    soc = open_soc(settings)
    sink, services = build_alerting(soc)
    pipeline = build_pipeline(settings, store, dls, detectors=[], alert_sink=sink)
    state = AppState(settings=settings, store=store, deadletters=dls, pipeline=pipeline, services=services, ready=True)
    app = create_app(state)
    viewer = {"Authorization": f"ApiKey {soc.users.create_api_key('v', 'viewer', 'test')[1]}"}
    ingest = {"Authorization": f"ApiKey {soc.users.create_api_key('i', 'ingest', 'test')[1]}"}
    try:
        with TestClient(app) as c:
            assert c.get("/api/v1/scheduled-rules", headers=viewer).status_code == 503  # none configured
            now = _dt.datetime.now(_dt.timezone.utc)
            rs = RunState(state_path(tmp_path))
            rs.set_covered_end(RULE_ID, int((now - _dt.timedelta(minutes=40)).timestamp() * 1000))
            rs.close()
            runner = build_scheduled(
                {"rules": [{"id": RULE_ID}, {"path": str(PACK / "forecasting" / "job_command_downloads_or_shell.yml")}]},
                store, sink, tmp_path, search_paths=[PACK])
            state.services = replace(services, scheduled_rules=runner)
            runner.run_due()
            assert c.get("/api/v1/scheduled-rules", headers=ingest).status_code == 403
            ov = c.get("/api/v1/scheduled-rules", headers=viewer).json()
            assert [r["id"] for r in ov["rules"]] == [RULE_ID]
            assert ov["rules"][0]["interval_s"] == 300 and ov["rules"][0]["open_gaps"] == 0
            assert "regular expressions" in ov["not_scheduled"][0]["reason"]
            runs = c.get("/api/v1/scheduled-rules/runs", params={"rule_id": RULE_ID}, headers=viewer).json()
            assert [r["kind"] for r in runs][-1] == "run" and {r["status"] for r in runs} == {"ok"}
            gaps = c.get("/api/v1/scheduled-rules/gaps", headers=viewer).json()
            assert len(gaps) == 1 and gaps[0]["open"] is False and 34 < gaps[0]["minutes"] < 36
            assert c.get("/api/v1/scheduled-rules/gaps", params={"open_only": True}, headers=viewer).json() == []
        runner.state.close()
    finally:
        store.close()
        dls.close()
        soc.close()
