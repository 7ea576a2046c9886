"""A new alert appears in an open alert queue without a reload; the rules page shows the
loaded rules, their hits and ATT&CK coverage, and toggles them.

``citysoc serve`` does not wire the Sigma engine yet, so no rule turns an event into an
alert in that process. These tests run in-process what the API tests use — the real
pipeline, SQLite event store, soc.db, alert recorder and SSE broadcaster — with our real
Sigma engine over ``detections/rules/sigma/camera`` as the detector, behind a real
uvicorn on loopback, with the console mounted exactly as ``citysoc serve`` mounts it. The
event is the camera rule pack's own test event, sent over ``POST /api/v1/ingest`` with an
ingest key; Chromium watches the queue.
"""
from __future__ import annotations

import asyncio
import dataclasses
import re
import threading
import time
from pathlib import Path
from typing import Any
from collections.abc import Iterator

import httpx
import orjson
import pytest
import uvicorn
import yaml
from playwright.sync_api import expect

from console_helpers import ROOT, shot

PASSWORD = "Analyst-pass-123"


RULES = ROOT / "detections" / "rules" / "sigma" / "camera"
FACTORY_RULE = "a7150a9d-efc1-431a-9e59-6bf44a1f9125"


class SigmaCatalog:
    """``core.protocols.RuleCatalog`` over the real engine and its loaded rule files (the
    wiring ``citysoc serve`` will need; the API tests use a static one)."""

    def __init__(self, ruleset: Any, engine: Any):
        self.specs = {r.id: r for r in ruleset.rules}
        self.engine = engine
        self.disabled: set[str] = set()

    def _info(self, rid: str) -> Any:
        from core.protocols import RuleInfo

        r = self.specs[rid]
        return RuleInfo(id=r.id, title=r.title, level=r.level, enabled=rid not in self.disabled, tags=list(r.tags),
                        engine="sigma", description=r.description, source=r.path)

    def list_rules(self) -> list[Any]:
        return [self._info(rid) for rid in self.specs]

    def get_rule(self, rule_id: str) -> Any:
        return self._info(rule_id) if rule_id in self.specs else None

    def set_enabled(self, rule_id: str, enabled: bool) -> Any:
        (self.engine.enable if enabled else self.engine.disable)(rule_id)
        (self.disabled.discard if enabled else self.disabled.add)(rule_id)
        return self._info(rule_id)


def factory_login_event() -> dict[str, Any]:
    doc = yaml.safe_load((RULES / "camera_factory_account_login.tests.yml").read_text(encoding="utf-8"))
    ev = doc["match"][0]
    ev["@timestamp"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return ev


class Live:
    def __init__(self, data: Path):
        from api.app import create_app
        from api.deps import AppState
        from citysoc.wiring import build_alerting, build_pipeline, open_soc
        from core.settings import Settings
        from dashboards.console import mount_console
        from storage.deadletters import SQLiteDeadLetterStore
        from storage.sqlite import SQLiteEventStore

        from detections.sigma import SigmaEngine, load_rules

        settings = Settings(data=data)
        ruleset = load_rules([RULES])
        assert not ruleset.failures, ruleset.failures
        self.engine = SigmaEngine(ruleset.rules)
        self.store = SQLiteEventStore(data / "events.db")
        dls = SQLiteDeadLetterStore(data / "deadletters.db")
        self.soc = open_soc(settings)
        sink, services = build_alerting(self.soc)
        services = dataclasses.replace(services, rules=SigmaCatalog(ruleset, self.engine))
        self.pipeline = build_pipeline(settings, self.store, dls, detectors=[self.engine], alert_sink=sink)
        state = AppState(settings=settings, store=self.store, deadletters=dls, pipeline=self.pipeline,
                         services=services, ready=True)
        self.app = mount_console(create_app(state))
        self.soc.users.create_user("ana", "analyst", PASSWORD)
        self.ingest_key = self.soc.users.create_api_key("live-ingest", "ingest", "test")[1]
        self.soc.users.create_user("adm", "admin", PASSWORD)
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


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Live, str]]:
    lv = Live(tmp_path_factory.mktemp("console-live"))
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
    while lv.app.state.citysoc.services.alert_stream.subscribers == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    page.evaluate("() => { window.__sameDocument = 'yes'; }")
    ev = factory_login_event()
    t0 = time.monotonic()
    r = httpx.post(url + "/api/v1/ingest", content=orjson.dumps(ev), headers={"Authorization": f"ApiKey {lv.ingest_key}"})
    assert r.status_code == 200 and r.json()["stored"] == 1, r.text
    row = page.locator("#alerts-body tr", has_text="NVR-D3-02")
    expect(row).to_have_count(1, timeout=5000)
    seen_after = time.monotonic() - t0
    assert page.evaluate("() => window.__sameDocument") == "yes"  # no reload happened
    assert "Camera or NVR login with a factory-default account" in row.text_content()
    shot(page, "alerts-live-arrival")
    # A second matching event grows the same alert: the row updates in place.
    ev = factory_login_event()
    httpx.post(url + "/api/v1/ingest", content=orjson.dumps(ev), headers={"Authorization": f"ApiKey {lv.ingest_key}"})
    expect(row.locator("td").nth(9)).to_have_text("2", timeout=5000)
    expect(page.locator("#alerts-body tr")).to_have_count(1)
    assert not errors
    ctx.close()
    print(f"event -> row in the open queue: {seen_after:.3f} s")


def test_rules_page_shows_hits_coverage_and_toggles(live, browser) -> None:
    lv, url = live
    ctx = browser.new_context(base_url=url, viewport={"width": 1400, "height": 900})
    page = ctx.new_page()
    page.goto("/lang/en?next=/login%3Fnext%3D/rules")
    page.fill("#username", "ana")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{url}/rules")
    page.wait_for_selector("body[data-loaded='1']")
    n = len(lv.engine.rule_ids)
    expect(page.locator("#rules-body tr")).to_have_count(n)
    expect(page.locator("#rules-total")).to_have_text(f"({n})")
    row = page.locator("#rules-body tr", has_text=FACTORY_RULE)
    expect(row.locator("td").nth(5)).to_have_text(re.compile(r"^[1-9]"))  # the alert of the live test
    assert row.locator("a.tag", has_text="T1078.001").get_attribute("href") == \
        "https://attack.mitre.org/techniques/T1078/001/"
    covered = page.locator(".tactic-col.covered h3")
    assert "Initial access" in covered.all_text_contents()
    shot(page, "rules-en")
    # analysts hold rules:read only: the toggle is shown but disabled
    assert row.locator("input[type=checkbox]").is_disabled()
    ctx.close()
    ctx = browser.new_context(base_url=url)
    page = ctx.new_page()
    page.goto("/login?next=/rules")
    page.fill("#username", "adm")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{url}/rules")
    page.wait_for_selector("body[data-loaded='1']")
    box = page.locator("#rules-body tr", has_text=FACTORY_RULE).locator("input[type=checkbox]")
    assert box.is_checked() and box.is_enabled()
    with page.expect_response(lambda r: r.url.endswith(f"/api/v1/rules/{FACTORY_RULE}/disable")) as resp:
        box.uncheck()
    assert resp.value.status == 200
    assert FACTORY_RULE not in lv.engine.matches(factory_login_event())  # the engine stopped matching it
    ctx.close()
