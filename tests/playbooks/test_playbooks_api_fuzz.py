"""Schemathesis over the playbook routes against a live server whose runner is wired
(the API suite mounts them without one): no 5xx, every answer matches the documented
schema. Actions are refused by the executor, so fuzzed runs fail cleanly and act on nothing."""
from __future__ import annotations

import asyncio
import os
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

from api.app import create_app
from api.deps import AppState
from citysoc.wiring import build_alerting, build_pipeline, build_playbooks, open_soc
from core.settings import Settings
from pbhelpers import record_alert
from playbooks.actions import ActionError
from storage.deadletters import SQLiteDeadLetterStore
from storage.sqlite import SQLiteEventStore

schemathesis = pytest.importorskip("schemathesis")
hypothesis = pytest.importorskip("hypothesis")

EXAMPLES = int(os.environ.get("CITYSOC_FUZZ_EXAMPLES", "10"))


def _refuse(action, ctx, params, step):
    raise ActionError(f"fuzzing: {action.name} is not run")


def test_playbook_routes_conform_to_their_schema(tmp_path: Path):
    import uvicorn
    from hypothesis import HealthCheck, Phase, given, settings

    st = Settings(data=tmp_path / "data")
    soc = open_soc(st)
    runner, _errors = build_playbooks(st, soc, execute=_refuse, rescan=object())
    sink, services = build_alerting(soc)
    services = replace(services, playbooks=runner)
    store = SQLiteEventStore(tmp_path / "data" / "events.db")
    dls = SQLiteDeadLetterStore(tmp_path / "data" / "deadletters.db")
    state = AppState(settings=st, store=store, deadletters=dls, pipeline=build_pipeline(st, store, dls, alert_sink=sink),
                     services=services, ready=True)
    key = soc.users.create_api_key("fuzz", "admin", "test")[1]
    record_alert(soc)
    app = create_app(state)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        schema = schemathesis.openapi.from_dict(app.openapi())
        schema.config.update(base_url=f"http://127.0.0.1:{port}")
        headers = {"Authorization": f"ApiKey {key}"}
        failures: list[str] = []
        ops = 0
        for result in schema.get_all_operations():
            op = result.ok()
            if not op.path.startswith(("/api/v1/playbooks", "/api/v1/playbook-runs")):
                continue
            ops += 1

            @given(case=op.as_strategy())
            @settings(max_examples=EXAMPLES, deadline=None, phases=[Phase.explicit, Phase.generate],
                      suppress_health_check=list(HealthCheck), derandomize=True, database=None)
            def call(case):
                case.call_and_validate(headers=headers)

            try:
                call()
            except (Exception, BaseExceptionGroup) as exc:
                failures.append(f"{op.method.upper()} {op.path}: {exc}"[:3000])
        assert ops == 10
        assert not failures, "\n\n".join(failures)
    finally:
        server.should_exit = True
        thread.join(10)
        store.close()
        soc.close()
