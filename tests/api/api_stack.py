"""The API tests' real stack (SQLite event store, dead letters, soc.db, pipeline with a
tiny real detector) and a real uvicorn server on loopback. A module with its own name, not
``conftest``, so test files import it without colliding with other folders' conftests."""
from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import uvicorn

from api.app import create_app
from api.deps import AppState
from citysoc.wiring import build_alerting, build_pipeline, open_soc
from core.auth import ROLES
from core.events import Event, get_field
from core.protocols import Detection
from core.settings import Settings
from storage.deadletters import SQLiteDeadLetterStore
from storage.sqlite import SQLiteEventStore


class FailedLoginDetector:
    """A real (tiny) detector: every ``event.action: failed-login`` is a detection."""

    name = "test-failed-login"

    def process(self, event: Event) -> list[Detection]:
        if get_field(event, "event.action") != "failed-login":
            return []
        return [Detection(rule_id="test-brute-force", title="Failed login on a camera", level="high",
                          events=[event], tags=["attack.credential_access", "attack.t1110"])]


class StaticRuleCatalog:
    """A real in-memory RuleCatalog (the Sigma engine implements the same protocol)."""

    def __init__(self) -> None:
        from core.protocols import RuleInfo

        self.rules = {"test-brute-force": RuleInfo(id="test-brute-force", title="Failed login", level="high",
                                                   enabled=True, tags=["attack.t1110"])}

    def list_rules(self):
        return list(self.rules.values())

    def get_rule(self, rule_id):
        return self.rules.get(rule_id)

    def set_enabled(self, rule_id, enabled):
        r = self.rules[rule_id]
        r.enabled = enabled
        return r


@dataclass
class Stack:
    data: Path
    settings: Settings
    state: AppState
    soc: Any
    keys: dict[str, str]
    app: Any


def make_stack(data: Path, *, with_rules: bool = True) -> Stack:
    settings = Settings(data=data)
    store = SQLiteEventStore(data / "events.db")
    dls = SQLiteDeadLetterStore(data / "deadletters.db")
    soc = open_soc(settings)
    sink, services = build_alerting(soc)
    if with_rules:
        services = replace(services, rules=StaticRuleCatalog())
    pipeline = build_pipeline(settings, store, dls, detectors=[FailedLoginDetector()], alert_sink=sink)
    state = AppState(settings=settings, store=store, deadletters=dls, pipeline=pipeline, services=services, ready=True)
    keys = {role: soc.users.create_api_key(f"test-{role}", role, "test")[1] for role in ROLES}
    # Every router is mounted as citysoc serve mounts them (api.app.ROUTERS); the playbook,
    # asset, report and scheduled-rule parts are not wired here: they answer 503 after the
    # access checks, which is what these tests walk.
    app = create_app(state)
    return Stack(data=data, settings=settings, state=state, soc=soc, keys=keys, app=app)


class LiveServer:
    """uvicorn on 127.0.0.1 (free port) in a thread with its own loop; the pipeline runs there too."""

    def __init__(self, stack: Stack):
        self.stack = stack
        self.server: uvicorn.Server | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.port = 0
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    async def _main(self) -> None:
        self.loop = asyncio.get_running_loop()
        pipeline = self.stack.state.pipeline
        await pipeline.start()
        config = uvicorn.Config(self.stack.app, host="127.0.0.1", port=0, log_level="warning", lifespan="off",
                                access_log=False, timeout_graceful_shutdown=1)
        self.server = uvicorn.Server(config)
        try:
            await self.server.serve()
        finally:
            await pipeline.stop()

    def start(self) -> LiveServer:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not (self.server and self.server.started):
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("uvicorn did not start within 10 s")
            time.sleep(0.01)
        self.port = self.server.servers[0].sockets[0].getsockname()[1]
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.stack.state.services.alert_stream.close()  # as citysoc serve does on shutdown
        if self.server:
            self.server.should_exit = True
        self._thread.join(10)
