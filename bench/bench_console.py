"""Console speed with 100k alerts stored (``python -m bench.run console``).

* **Alert queue in a real browser**: Debian's Chromium (Playwright) opens ``/alerts``
  against a real uvicorn on loopback serving the console and API over a ``soc.db`` with
  100k alerts; time from navigation to the first page of rows drawn (``body[data-loaded]``),
  for the default view, a filtered view and a sorted one. Goal: p95 under 1 s.
* **Server side**: latency of the page shell, the first alert page, the overview
  aggregates and the per-rule hit counts, over plain HTTP, so the browser figure can be
  split into server and client time.
"""
from __future__ import annotations

import asyncio
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

__all__ = ["run"]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
PASSWORD = "Bench-console-pass-1"
VIEWS = {"default": "/alerts", "filtered": "/alerts?status=new&level=medium&center=camera-ops",
         "sorted_by_risk": "/alerts?sort=-risk_score&limit=200", "deep_page": "/alerts?offset=5000"}


def _pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, round(p / 100 * (len(xs) - 1))))] if xs else float("nan")


def _seed(soc: Any, n: int) -> float:
    """n alerts over the last 24 hours (so the overview's time series has them)."""
    from core.alerts import Alert, Entities, dedupe_key

    levels = ["low", "medium", "high", "critical", "informational"]
    statuses = ["new", "new", "acknowledged", "in_progress", "closed"]
    centers = ["camera-ops", "warehouse", "forecast"]
    now = time.time()
    t0 = time.perf_counter()
    batch: list[Alert] = []
    for i in range(n):
        ent = Entities(host=f"cam-{i % 2000:04d}", user=f"op{i % 40}", source_ip=f"10.{i % 250}.{(i // 250) % 250}.{i % 7}",
                       center=centers[i % 3], asset_id=f"asset-{i % 2000:04d}", criticality=1 + i % 5)
        ts = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(now - 86_000 * (n - i) / n))
        rule = f"rule-{i % 150}"
        batch.append(Alert(id=0, rule_id=rule, rule_title=f"Camera rule {i % 150}", level=levels[i % 5],
                           tags=["attack.credential_access", "attack.t1110"], engine="sigma", description="",
                           entities=ent, risk_score=12 + (i % 89), status=statuses[i % 5],
                           resolution="benign" if i % 5 == 4 else None, assignee=None, first_seen=ts, last_seen=ts,
                           count=1, dedupe_key=dedupe_key(rule, ent, f"seed-{i}"), created_at=ts, updated_at=ts,
                           events=[{"host": {"name": ent.host}}]))
        if len(batch) == 5000:
            soc.alerts.record(batch, window_s=0)
            batch = []
    if batch:
        soc.alerts.record(batch, window_s=0)
    return time.perf_counter() - t0


class _Server:
    def __init__(self, app: Any):
        import uvicorn

        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning",
                                                    lifespan="off", access_log=False, timeout_graceful_shutdown=1))
        self.thread = threading.Thread(target=lambda: asyncio.run(self.server.serve()), daemon=True)

    def start(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return f"http://127.0.0.1:{self.server.servers[0].sockets[0].getsockname()[1]}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def _http(url: str, runs: int) -> dict[str, Any]:
    import httpx

    from dashboards import overview_api

    out: dict[str, Any] = {}
    with httpx.Client(base_url=url, timeout=30) as c:
        r = c.post("/api/v1/auth/login", json={"username": "bench", "password": PASSWORD})
        r.raise_for_status()
        ids = [("ids", f"rule-{i}") for i in range(150)]
        targets = {"page_shell": ("/alerts", {}), "alerts_first_page": ("/api/v1/alerts?limit=50", {}),
                   "alerts_filtered": ("/api/v1/alerts?status=new&level=medium&center=camera-ops&limit=50", {}),
                   "overview_cached": ("/api/v1/console/overview", {}),
                   "overview_uncached": ("/api/v1/console/overview", {}),
                   "rule_hits_150": ("/api/v1/console/rule-hits", ids)}
        for name, (path, params) in targets.items():
            lat = []
            for _ in range(runs):
                if name == "overview_uncached":
                    overview_api.CACHE.clear()
                t0 = time.perf_counter()
                resp = c.get(path, params=params or None, headers={"Accept": "text/html"} if name == "page_shell" else {})
                lat.append(time.perf_counter() - t0)
                resp.raise_for_status()
            out[name] = {"p50_ms": round(_pct(lat, 50) * 1000, 1), "p95_ms": round(_pct(lat, 95) * 1000, 1)}
    return out


def _browser(url: str, runs: int) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    out: dict[str, Any] = {}
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        ctx = b.new_context(base_url=url, viewport={"width": 1400, "height": 900})
        page = ctx.new_page()
        page.goto("/login")
        page.fill("#username", "bench")
        page.fill("#password", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(lambda u: "/login" not in u)
        for name, path in VIEWS.items():
            lat, fetch_render = [], []
            for _ in range(runs):
                t0 = time.perf_counter()
                page.goto(path)
                page.wait_for_selector("body[data-loaded='1']")
                lat.append(time.perf_counter() - t0)
                fetch_render.append(float(page.get_attribute("#alerts-table", "data-render-ms") or "nan"))
            rows = page.locator("#alerts-body tr").count()
            out[name] = {"rows": rows, "p50_ms": round(_pct(lat, 50) * 1000, 1), "p95_ms": round(_pct(lat, 95) * 1000, 1),
                         "fetch_and_draw_p50_ms": round(statistics.median(fetch_render), 1)}
        b.close()
    return out


def run(quick: bool) -> dict[str, Any]:
    from api.app import create_app
    from api.deps import AppState
    from citysoc.wiring import build_alerting, build_pipeline, open_soc
    from core.settings import Settings
    from dashboards.console import mount_console
    from storage.deadletters import SQLiteDeadLetterStore
    from storage.sqlite import SQLiteEventStore

    n = 20_000 if quick else 100_000
    runs = 5 if quick else 15
    with tempfile.TemporaryDirectory(prefix="citysoc-bench-console-") as tmp:
        data = Path(tmp)
        settings = Settings(data=data)
        store = SQLiteEventStore(data / "events.db")
        dls = SQLiteDeadLetterStore(data / "deadletters.db")
        soc = open_soc(settings)
        seed_s = _seed(soc, n)
        soc.users.create_user("bench", "admin", PASSWORD)
        sink, services = build_alerting(soc)
        pipeline = build_pipeline(settings, store, dls, alert_sink=sink)
        app = mount_console(create_app(AppState(settings=settings, store=store, deadletters=dls, pipeline=pipeline,
                                                services=services, ready=True)))
        srv = _Server(app)
        url = srv.start()
        try:
            http = _http(url, runs)
            browser = _browser(url, runs) if Path(CHROMIUM).exists() else {"skipped": "no /usr/bin/chromium"}
        finally:
            srv.stop()
            soc.close()
            store.close()
    return {"alerts_stored": n, "seed_s": round(seed_s, 1), "runs_per_view": runs,
            "browser_alert_queue": browser, "http": http, "goal_browser_p95_ms": 1000}
