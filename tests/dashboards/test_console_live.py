"""A new alert arrives in an open alert queue without a reload.

``citysoc serve`` does not wire the Sigma engine yet, so no rule turns an event into an
alert in that process. This test runs the same parts the API tests use in-process — the
real pipeline, SQLite event store, soc.db, the alert recorder and SSE broadcaster, and a
tiny real detector (``event.action: failed-login``) — behind a real uvicorn on loopback,
with the console mounted exactly as ``citysoc serve`` mounts it. The event goes in over
``POST /api/v1/ingest`` with an ingest key; Chromium watches the queue.
"""
from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import httpx
import orjson
import pytest
import uvicorn
from playwright.sync_api import expect

from conftest import shot

PASSWORD = "Analyst-pass-123"


class FailedLoginDetector:
    name = "console-test-failed-login"

    def process(self, event: Any) -> list[Any]:
        from core.events import get_field
        from core.protocols import Detection

        if get_field(event, "event.action") != "failed-login":
            return []
        return [Detection(rule_id="console-live-brute-force", title="Failed login on a camera (live)", level="high",
                          events=[event], tags=["attack.credential_access", "attack.t1110"])]


class Live:
    def __init__(self, data: Path):
        from api.app import create_app
        from api.deps import AppState
        from citysoc.wiring import build_alerting, build_pipeline, open_soc
        from core.settings import Settings
        from dashboards.console import mount_console
        from storage.deadletters import SQLiteDeadLetterStore
        from storage.sqlite import SQLiteEventStore

        settings = Settings(data=data)
        self.store = SQLiteEventStore(data / "events.db")
        dls = SQLiteDeadLetterStore(data / "deadletters.db")
        self.soc = open_soc(settings)
        sink, services = build_alerting(self.soc)
        self.pipeline = build_pipeline(settings, self.store, dls, detectors=[FailedLoginDetector()], alert_sink=sink)
        state = AppState(settings=settings, store=self.store, deadletters=dls, pipeline=self.pipeline,
                         services=services, ready=True)
        self.app = mount_console(create_app(state))
        self.soc.users.create_user("ana", "analyst", PASSWORD)
        self.ingest_key = self.soc.users.create_api_key("live-ingest", "ingest", "test")[1]
        self.server: uvicorn.Server | None = None
        self.thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    async def _main(self) -> None:
        await self.pipeline.start()
        self.server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=0, log_level="warning",
                                                   lifespan="off", access_log=False, timeout_graceful_shutdown=1))
        try:
            await self.server.serve()
        finally:
            await self.pipeline.stop()

    def start(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not (self.server and self.server.started):
            assert time.monotonic() < deadline and self.thread.is_alive(), "uvicorn did not start"
            time.sleep(0.02)
        return f"http://127.0.0.1:{self.server.servers[0].sockets[0].getsockname()[1]}"

    def stop(self) -> None:
        if self.server:
            self.server.should_exit = True
        self.thread.join(10)
        self.soc.close()
        self.store.close()


@pytest.fixture
def live(tmp_path: Path) -> Iterator[tuple[Live, str]]:
    lv = Live(tmp_path)
    url = lv.start()
    yield lv, url
    lv.stop()


def test_new_alert_appears_in_open_queue_without_reload(live, browser) -> None:
    lv, url = live
    ctx = browser.new_context(base_url=url, viewport={"width": 1400, "height": 900})
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto("/login?next=/alerts")
    page.fill("#username", "ana")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{url}/alerts")
    page.wait_for_selector("body[data-loaded='1']")
    expect(page.locator("#alerts-body tr")).to_have_count(0)
    expect(page.locator("#live.on")).to_have_count(1)  # the SSE stream is open
    deadline = time.monotonic() + 5
    while lv.app.state.citysoc.services["alert_stream"].subscribers == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    page.evaluate("() => { window.__sameDocument = 'yes'; }")
    ev = {"@timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "message": "login failed for admin",
          "event": {"action": "failed-login"}, "host": {"name": "cam-live-01"}, "source": {"ip": "10.9.9.9"},
          "user": {"name": "admin"}}
    t0 = time.monotonic()
    r = httpx.post(url + "/api/v1/ingest", content=orjson.dumps(ev), headers={"Authorization": f"ApiKey {lv.ingest_key}"})
    assert r.status_code == 200 and r.json()["stored"] == 1, r.text
    row = page.locator("#alerts-body tr", has_text="cam-live-01")
    expect(row).to_have_count(1, timeout=5000)
    seen_after = time.monotonic() - t0
    assert page.evaluate("() => window.__sameDocument") == "yes"  # no reload happened
    assert "Failed login on a camera (live)" in row.text_content()
    shot(page, "alerts-live-arrival")
    # A second matching event grows the same alert: the row updates in place.
    ev["message"] = "login failed again"
    httpx.post(url + "/api/v1/ingest", content=orjson.dumps(ev), headers={"Authorization": f"ApiKey {lv.ingest_key}"})
    expect(row.locator("td").nth(9)).to_have_text("2", timeout=5000)
    expect(page.locator("#alerts-body tr")).to_have_count(1)
    assert not errors
    ctx.close()
    print(f"event -> row in the open queue: {seen_after:.3f} s")
