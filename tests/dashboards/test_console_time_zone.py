"""Every time a console page shows carries its zone (issue 16 item 5): each clock time in
the visible text of every page, opened in Vietnamese, is written with its offset
(``2026-12-03 14:05:09 (UTC+07)``), and a chart whose axis ticks are clock times names the
zone on the axis. Shown in the site zone (``site.timezone``) by default, so with the
browser set to another zone the offset is still the site's.

Log content (event documents: an alert's samples, a search hit's fields) is what the
sender wrote, not a console time, and is left out; the hit's time column is checked."""
from __future__ import annotations

import re

from console_helpers import Console, shot

PAGES = ["/", "/incidents", "/alerts", "/cases", "/search", "/assets", "/playbooks", "/rules", "/reports"]

# Every text node holding a clock time, with the text after the time in that node and
# whether the node is an axis tick of a chart that names its zone.
TIMES = r"""() => {
  // log content: event documents (an alert's samples, a search hit's fields and columns
  // other than its time) hold whatever the sender wrote, syslog clock times included
  const skip = "code, pre, kbd, script, style, [hidden], details.doc > :not(summary), option, noscript, " +
               "#results-body tr.detail, #results-body td:not(.time)";
  const out = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const clock = /(?<![\d.:])\d{1,2}:\d{2}(?::\d{2})?(?![\d:])/g;
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const p = n.parentElement;
    if (!p || p.closest(skip)) continue;
    if (p.closest("svg") && p.closest("title")) continue;  // tooltips are fmtDate, checked with the rest
    const text = n.textContent;
    for (const m of text.matchAll(clock)) {
      const svg = p.closest("svg");
      const zoneOnAxis = !!(svg && p.classList.contains("tick") &&
                            [...svg.querySelectorAll("text.zone")].some(z => /UTC[+-]\d{2}/.test(z.textContent)));
      out.push({time: m[0], after: text.slice(m.index + m[0].length, m.index + m[0].length + 12),
                where: (p.id || p.className || p.tagName) + "", text: text.slice(0, 90), zoneOnAxis});
    }
  }
  return out;
}"""

ZONED = re.compile(r"^ \(UTC[+-]\d{2}(?::\d{2})?\)")


def _open(page, path: str) -> None:
    page.goto(path)
    try:
        page.wait_for_selector("body[data-loaded='1'], #chart-level svg", timeout=10_000)
    except Exception:
        page.wait_for_timeout(1_500)
    page.wait_for_timeout(800)


def test_every_time_on_every_page_shows_its_zone(console: Console, new_page, browser) -> None:
    with console.login_api("resp") as c:  # a run with approvals and expiry times on the playbooks page
        r = c.post("/api/v1/playbooks/camera-unknown-device/run",
                   json={"alert_id": console.alert_ids["unknown"], "inputs": {"host_ip": "10.30.7.77"}})
        assert r.status_code == 200, r.text
        case = c.post("/api/v1/cases", json={"title": "giờ có múi", "alert_ids": [console.alert_ids["brute"]]})
        assert case.status_code in (200, 201), case.text
        c.post(f"/api/v1/cases/{case.json()['id']}/notes", json={"text": "ghi chú"})
    # the browser in another zone: the console still shows the site's (UTC+07), labelled
    ctx = browser.new_context(base_url=console.url, viewport={"width": 1400, "height": 1000}, locale="vi-VN",
                              timezone_id="Europe/Paris")
    try:
        page = ctx.new_page()
        page.goto("/login")
        page.fill("#username", "resp")
        page.fill("#password", "Responder-pass-123")
        page.click("button[type=submit]")
        page.wait_for_url(lambda u: "/login" not in u, timeout=10_000)
        paths = [*PAGES, f"/alerts/{console.alert_ids['brute']}", f"/cases/{case.json()['id']}",
                 "/search?q=host.name:cam-q1-000&range=24h"]
        unzoned: dict[str, list[dict]] = {}
        seen = 0
        for path in paths:
            _open(page, path)
            if path == "/incidents":
                page.locator("#incidents-body > tr button.expand").first.click()
                page.wait_for_selector("#incidents-body tr.incident-alerts td.time")
            if path == "/playbooks":
                page.locator("#runs-body tr button.link").first.click()
                page.wait_for_timeout(800)
            found = page.evaluate(TIMES)
            seen += len(found)
            bad = [f for f in found if not f["zoneOnAxis"] and not ZONED.match(f["after"])]
            if bad:
                unzoned[path] = bad
            for f in found:  # the site's zone, not the browser's (Paris is UTC+01)
                if ZONED.match(f["after"]):
                    assert "(UTC+07)" in f["after"], (path, f)
            shot(page, "zone" + (path.split("?")[0].replace("/", "-").rstrip("-") or "-overview") + "-vi")
        assert seen >= 30, seen  # the scan saw the pages' times (queue rows, details, charts)
        assert unzoned == {}, unzoned
        # the charts' axes name the zone
        _open(page, "/")
        assert page.locator("svg text.zone").count() >= 1
        # "UTC+07", its tooltip the zone's name
        assert page.locator("svg text.zone").first.evaluate("n => n.firstChild.nodeValue") == "UTC+07"
    finally:
        ctx.close()


def test_a_pivot_keeps_its_seconds(console: Console, new_page) -> None:
    """Issue 16: a datetime field dropped seconds from a pivot (08:49:05 became 08:49:00).
    A search opened with an exact range shows it to the second in the site zone, and
    searching again keeps it to the second in the URL and the request."""
    page, watch = new_page("ana")
    page.goto("/search?q=host.name:cam-q1-000&from=2026-12-03T01:49:05Z&to=2026-12-03T02:00:07Z")
    page.wait_for_selector("body[data-loaded='1']", timeout=10_000)
    assert page.input_value("#from") == "2026-12-03T08:49:05"  # UTC+07, seconds kept
    assert page.input_value("#to") == "2026-12-03T09:00:07"
    with page.expect_request(lambda r: "/api/v1/events/search" in r.url or "/api/v1/events" in r.url) as req:
        page.click("#search-form button[type=submit]")
    assert "01%3A49%3A05Z" in req.value.url or "01:49:05Z" in req.value.url, req.value.url
    page.wait_for_selector("body[data-loaded='1']")
    assert "from=2026-12-03T01%3A49%3A05Z" in page.url or "from=2026-12-03T01:49:05Z" in page.url, page.url
    assert not watch.errors and not watch.dialogs
