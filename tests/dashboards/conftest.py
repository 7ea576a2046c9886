"""Fixtures for the console tests: a real ``citysoc serve`` subprocess on loopback with a
temp data dir (users, an ingest key, events sent over HTTP, alerts written through the
alert store), and Debian's Chromium driven by Playwright."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from collections.abc import Iterator

import httpx
import orjson
import pytest

from console_helpers import (ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, PASSWORDS, ROLES, ROOT, XSS, Console, Watch,
                             _events, _netns, _seed_alerts, _settings_file, free_port)


@pytest.fixture(scope="session")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    data = tmp_path_factory.mktemp("console-data")
    netns = _netns()
    cfg = _settings_file(data, netns)
    port, syslog_port = free_port(), free_port()
    env = {**os.environ, "CITYSOC_DATA": str(data), "CITYSOC_CONFIG": str(cfg)}
    cli = [str(ROOT / ".venv/bin/citysoc")] if (ROOT / ".venv/bin/citysoc").exists() else [sys.executable, "-m", "citysoc.cli"]
    log = open(data / "serve.log", "wb")
    proc = subprocess.Popen([*cli, "serve", "--port", str(port), "--syslog-port", str(syslog_port), "--config", str(cfg)],
                            env=env, stdout=log, stderr=subprocess.STDOUT, cwd=str(ROOT))
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 40
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"citysoc serve exited: {(data / 'serve.log').read_text()[-3000:]}")
            try:
                if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"citysoc serve not ready: {(data / 'serve.log').read_text()[-3000:]}")
            time.sleep(0.2)
        sys.path.insert(0, str(ROOT))
        from citysoc.wiring import open_soc
        from core.settings import Settings

        soc = open_soc(Settings(data=data))
        for user, role in ROLES.items():
            soc.users.create_user(user, role, PASSWORDS[user])
        _key, ingest_key = soc.users.create_api_key("console-test-ingest", "ingest", "test")
        soc.close()
        body = b"".join(orjson.dumps(e) + b"\n" for e in _events(12))
        r = httpx.post(url + "/api/v1/ingest", content=body, headers={"Authorization": f"ApiKey {ingest_key}"}, timeout=20)
        assert r.status_code == 200 and r.json()["stored"] == 12 + len(XSS), r.text
        c = Console(url=url, data=data, proc=proc, ingest_key=ingest_key)
        c.alert_ids = _seed_alerts(data)
        yield c
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        if netns:
            subprocess.run(["ip", "netns", "delete", netns], capture_output=True)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    # Module scope, not session (package scope is session for a folder without __init__): Playwright's sync API keeps an event loop running in
    # the main thread while it is open, and every later test folder's asyncio.run() would
    # fail with "cannot be called from a running event loop".
    if not Path(CHROMIUM).exists():
        subprocess.run(["bash", str(ROOT / "scripts/system-deps.sh")], check=False)
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed and scripts/system-deps.sh could not install it")
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def new_page(browser: Any, console: Console) -> Iterator[Any]:
    """``new_page(user)`` -> (page, watch), signed in through the login form."""
    contexts: list[Any] = []

    def make(user: str | None = None, lang: str | None = None) -> tuple[Any, Watch]:
        ctx = browser.new_context(base_url=console.url, accept_downloads=True, viewport={"width": 1400, "height": 1000},
                                  locale="vi-VN" if lang != "en" else "en-GB", timezone_id="Asia/Ho_Chi_Minh")
        contexts.append(ctx)
        if lang:
            ctx.add_cookies([{"name": "citysoc_lang", "value": lang, "url": console.url}])
        page = ctx.new_page()
        watch = Watch(page)
        if user:
            page.goto("/login")
            page.fill("#username", user)
            page.fill("#password", PASSWORDS[user])
            page.click("button[type=submit]")
            page.wait_for_url(lambda u: "/login" not in u, timeout=10_000)
        return page, watch

    yield make
    for ctx in contexts:
        ctx.close()
