"""The incident queue in Chromium against a real ``citysoc serve``: it is first in the menu,
shows open incidents sorted by risk, expands one to its alerts, filters by drop-downs fed by
the facets endpoint, selects every matching incident (not only the page) and bulk-closes
them, after which the header checkbox is unticked."""
from __future__ import annotations

import sys
import time

import httpx
from playwright.sync_api import expect

from console_helpers import ROOT, Console, shot

CENTER = "kho-bai-test"


def _loaded(page) -> None:
    page.wait_for_selector("body[data-loaded='1']", timeout=10_000)


def _seed_scanners(data, n: int, center: str = CENTER, net: str = "198.51.100") -> None:
    """``n`` low alerts, each from its own attacker against one center: ``n`` incidents."""
    sys.path.insert(0, str(ROOT))
    from citysoc.wiring import open_soc
    from core.alerts import Alert, Entities, GroupingPolicy, dedupe_key, events_query, risk_score
    from core.settings import Settings

    soc = open_soc(Settings(data=data))
    now = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
    made = []
    for i in range(n):
        ent = Entities(host=f"nvr-{i:02d}", source_ip=f"{net}.{i + 1}", center=center, asset_id=f"nvr-{i:02d}")
        made.append(Alert(id=0, rule_id="net:port_scan", rule_title=f"Port scan of nvr-{i:02d}", level="low", tags=[],
                          engine="network", description="scan", entities=ent, risk_score=risk_score("low", 2),
                          status="new", resolution=None, assignee=None, dedupe_key=dedupe_key("net:port_scan", ent),
                          first_seen=now, last_seen=now, count=1, created_at=now, updated_at=now, events=[],
                          events_query=events_query(ent)))
    soc.alerts.record(made, window_s=0, policy=GroupingPolicy())
    soc.close()


def test_incident_queue_risk_sort_expand_and_dropdown_filters(console: Console, new_page) -> None:
    page, watch = new_page("ana")
    page.goto("/")
    assert page.locator("nav.menu a").first.get_attribute("href") == "/incidents"
    page.goto("/incidents")
    _loaded(page)
    rows = page.locator("#incidents-body > tr")
    assert rows.count() >= 8
    first = rows.first
    expect(first).to_contain_text("10.30.7.77")  # the critical unknown device outranks the rest
    assert page.input_value("select[name=status]") == "open"
    first.locator("button.expand").click()
    inner = page.locator("#incidents-body tr.incident-alerts")
    expect(inner).to_contain_text("Unknown device on the camera VLAN")
    assert inner.locator("a").first.get_attribute("href").startswith("/alerts/")
    shot(page, "incidents-queue-expanded-vi")
    # the rule drop-down offers what the facets endpoint returns
    page.wait_for_selector("select[name=rule_id] option[value='wh-mass-export']", state="attached")
    page.select_option("select[name=rule_id]", "wh-mass-export")
    expect(page.locator("#incidents-body > tr")).to_have_count(1)
    expect(page.locator("#incidents-body > tr").first).to_contain_text("10.40.0.9")
    assert "rule_id=wh-mass-export" in page.url
    page.reload()
    _loaded(page)
    assert page.input_value("select[name=rule_id]") == "wh-mass-export"  # bookmarkable
    expect(page.locator("#incidents-body > tr")).to_have_count(1)
    assert not watch.errors and not watch.dialogs


def test_select_all_matching_then_bulk_close_unticks_the_header(console: Console, new_page) -> None:
    _seed_scanners(console.data, 30)
    page, watch = new_page("ana")
    page.goto("/incidents?limit=25")
    _loaded(page)
    page.wait_for_selector(f"select[name=center] option[value='{CENTER}']", state="attached")
    page.select_option("select[name=center]", CENTER)
    expect(page.locator("#incidents-body > tr")).to_have_count(25)
    expect(page.locator("#total")).to_have_text("(30)")
    page.check("#select-all")
    expect(page.locator("#selected-count")).to_have_text("25")
    banner = page.locator("#all-banner")
    expect(banner).to_be_visible()
    page.click("#select-matching")
    expect(page.locator("#selected-count")).to_have_text("30")  # the 5 on page 2 as well
    shot(page, "incidents-select-all-matching-vi")
    page.select_option("#bulk-resolution", "false_positive")
    page.click("[data-bulk=closed]")
    page.wait_for_selector("#toast:not([hidden])")
    assert "30" in page.text_content("#toast")
    expect(page.locator("#empty")).to_be_visible()  # open incidents only: none left for this center
    assert not page.is_checked("#select-all")
    expect(page.locator("#selected-count")).to_have_text("0")
    with console.login_api("ana") as c:
        closed = c.get("/api/v1/incidents", params={"center": CENTER, "status": "closed", "limit": 100}).json()
        assert closed["total"] == 30 and {i["resolution"] for i in closed["items"]} == {"false_positive"}
        alerts = c.get("/api/v1/alerts", params={"center": CENTER, "limit": 100}).json()["items"]
        assert len(alerts) == 30 and {a["status"] for a in alerts} == {"closed"}
    page.select_option("select[name=status]", "closed")
    expect(page.locator("#incidents-body > tr")).to_have_count(25)
    assert not watch.errors and not watch.dialogs


def test_viewer_sees_the_queue_without_bulk_controls(console: Console, new_page) -> None:
    page, watch = new_page("view")
    page.goto("/incidents")
    _loaded(page)
    assert page.locator("#incidents-body > tr").count() >= 1
    assert page.locator("#bulk").is_hidden()
    with httpx.Client(base_url=console.url) as anon:
        assert anon.get("/incidents", headers={"Accept": "text/html"}, follow_redirects=False).status_code == 303
    assert not watch.errors and not watch.dialogs


def test_alert_queue_header_checkbox_unticked_after_bulk_close(console: Console, new_page) -> None:
    _seed_scanners(console.data, 3, center="kho-hai-test", net="192.0.2")
    page, watch = new_page("ana")
    page.goto("/alerts?center=kho-hai-test")
    _loaded(page)
    expect(page.locator("#alerts-body tr")).to_have_count(3)
    page.check("#select-all")
    expect(page.locator("#selected-count")).to_have_text("3")
    page.click("[data-bulk=closed]")
    page.wait_for_selector("#toast:not([hidden])")
    page.wait_for_selector("#alerts-body tr .st-closed")
    expect(page.locator("#selected-count")).to_have_text("0")
    assert not page.is_checked("#select-all")
    assert not watch.errors and not watch.dialogs
