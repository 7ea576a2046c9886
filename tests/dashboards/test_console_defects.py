"""Console defects reproduced by issue 16, each checked in Chromium against a real serve:
chart tick labels inside the chart, whole words in table cells, "top rules" titled by the
rule (not one alert's title), the at-risk asset's own IP (not the attacker's), and a query
error that does not also say "no events"."""
from __future__ import annotations

import sys
import time

from playwright.sync_api import expect

from console_helpers import ROOT, Console


def _loaded(page) -> None:
    page.wait_for_selector("body[data-loaded='1']", timeout=10_000)


def _seed(data) -> None:
    sys.path.insert(0, str(ROOT))
    from citysoc.wiring import open_soc
    from core.alerts import Alert, Entities, GroupingPolicy, dedupe_key, events_query, risk_score
    from core.settings import Settings

    soc = open_soc(Settings(data=data))
    now = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
    made = []
    # enough alerts that this rule and this camera top the overview whatever else is open
    targets = [(f"nvr-q7-{i:02d}", "net:port_scan") for i in range(1, 13)]
    targets += [("cam-q7-0001", r) for r in ("net:port_scan", "net:brute_force", "net:camera_egress", "x:a", "x:b")]
    for i, (target, rid) in enumerate(targets):
        ent = Entities(host=target, asset_id=target, source_ip="203.0.113.66",
                       destination_ip="10.30.9.99" if target == "cam-q7-0001" else f"10.30.9.{i + 1}",
                       center="camera-ops")
        made.append(Alert(id=0, rule_id=rid, rule_title=f"Port scan of {target}" if rid == "net:port_scan" else f"Other {rid}", level="critical", tags=[],
                          engine="network", description="scan", entities=ent, risk_score=risk_score("critical", 5),
                          status="new", resolution=None, assignee=None, dedupe_key=dedupe_key(rid, ent),
                          first_seen=now, last_seen=now, count=1, created_at=now, updated_at=now, events=[],
                          events_query=events_query(ent)))
    soc.alerts.record(made, window_s=0, policy=GroupingPolicy())
    soc.close()


def _until(page, path: str, selector: str, check) -> None:
    """The overview is cached for 10 s on the server: reload until the seeded alerts show."""
    deadline = time.monotonic() + 25
    while True:
        page.goto(path)
        page.wait_for_selector(selector, state="attached")
        if check() or time.monotonic() > deadline:
            return
        page.wait_for_timeout(1000)


def test_overview_rules_by_rule_title_and_ticks_inside_the_chart(console: Console, new_page) -> None:
    _seed(console.data)
    with console.login_api("ana") as c:
        rule = c.get("/api/v1/rules/net:port_scan").json()
    page, watch = new_page("ana", lang="en")
    lbl = "#chart-rules svg text.lbl title"
    _until(page, "/", "#chart-rules svg", lambda: rule["title"] in page.locator(lbl).all_text_contents())
    labels = page.locator(lbl).all_text_contents()
    assert rule["title"] in labels, labels
    assert not [t for t in labels if t.startswith("Port scan of")], labels
    page.wait_for_selector("#chart-time svg, .chart svg text.tick")
    over = page.evaluate("""() => Array.from(document.querySelectorAll('svg.svgchart')).flatMap(svg => {
        const w = svg.viewBox.baseVal.width;
        return Array.from(svg.querySelectorAll('text.tick')).map(t => { const b = t.getBBox(); return [b.x + b.width, w, t.textContent]; })
          .filter(([right, width]) => right > width + 0.5); })""")
    assert page.locator("svg text.tick").count() > 0
    assert over == [], over  # the last x-axis label was cut off at the right edge
    assert not watch.errors


def test_at_risk_assets_show_the_assets_ip_and_cells_keep_words_whole(console: Console, new_page) -> None:
    page, watch = new_page("ana")
    _until(page, "/assets", "body[data-loaded='1']",
           lambda: page.locator("#assets-body tr", has_text="cam-q7-0001").count() == 1)
    row = page.locator("#assets-body tr", has_text="cam-q7-0001")
    expect(row).to_have_count(1)
    assert "203.0.113.66" not in row.text_content()  # the attacker is not the asset
    assert "10.30.9.99" in row.text_content()
    page.goto("/incidents?status=all")
    _loaded(page)
    broken = page.evaluate("""() => Array.from(document.querySelectorAll('table.data td')).filter(td => {
        const text = td.textContent.trim();
        if (!/^[A-Za-z0-9._]{4,40}$/.test(text)) return false;  // one word (a hyphen is a normal break)
        const r = document.createRange(); r.selectNodeContents(td);
        return new Set(Array.from(r.getClientRects()).map(x => Math.round(x.top))).size > 1; }).map(td => td.textContent)""")
    assert broken == [], broken  # "warehous|e"
    assert not watch.errors
    with console.login_api("ana") as c:  # the seeded scan leaves the queue as it found it
        ids = c.get("/api/v1/incidents/ids", params={"attacker": "203.0.113.66"}).json()["ids"]
        r = c.post("/api/v1/incidents/bulk", json={"ids": ids, "status": "closed", "resolution": "benign"})
        assert r.status_code == 200 and r.json()["failed"] == 0


def test_query_error_does_not_also_say_no_events(console: Console, new_page) -> None:
    page, watch = new_page("ana")
    page.goto("/search?q=host.name:nothing-like-this")
    _loaded(page)
    expect(page.locator("#results-body")).to_contain_text("Không có sự kiện nào khớp.")
    page.fill("#q", "host.name:(")
    page.click("#search-form button[type=submit]")
    page.wait_for_selector("#search-error:not([hidden])")
    assert page.text_content("#results-body").strip() == ""
    assert page.text_content("#hits-total").strip() == ""
    assert not watch.errors
