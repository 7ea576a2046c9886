"""The analyst's day on the demo, in Vietnamese, in Chromium (issue 16, Done when).

The demo city (``citysoc demo``'s generator and replay, 22 cameras, three days ending ten
minutes ago) is served as ``make run DEMO=1`` serves it (``demo_config``: its own firewall
namespace, background logs, mail to a host that resolves nowhere). Two responders sign in
through the login form:

1. ``resp`` opens the queue: incidents, not an alert storm; the camera port scan is one
   incident naming its targets and rules, in Vietnamese, expandable to its alerts;
2. turns that incident into a case (case page: incident, every alert, timeline);
3. opens one of its alerts, dry-runs the matching playbook (what it would do, in
   Vietnamese), starts it: it waits for approval at ``isolate``; approving it himself is
   refused (four eyes);
4. ``resp2`` approves it on the playbooks page: the camera is isolated in the demo's own
   namespace, the e-mail step fails (``smtp.demo.invalid``), and the run shows "hoàn tất
   nhưng có bước lỗi" in red with the failed step marked failed; ``resp``'s alert page
   follows without a reload;
5. ``resp`` notes it in the case and marks it in progress.

Every page is screenshotted into ``tests/dashboards/artifacts/analyst-day-*.png``."""
from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path
from typing import Any
from collections.abc import Iterator

import pytest
import yaml
from playwright.sync_api import expect

from citysoc.demo.run import demo_config, run_offline
from citysoc.testing import ServeProcess
from console_helpers import PASSWORDS, shot

pytestmark = [pytest.mark.slow]

SCANNER = "10.20.5.11"  # the demo's camera-portscan scenario: a camera SYN-scans the camera core


def _vi() -> dict[str, str]:
    return json.loads((Path(__file__).resolve().parents[2] / "dashboards/i18n/vi.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    where = tmp_path_factory.mktemp("analyst-day")
    data = where / "data"
    run_offline(data, cameras=22, days=3, end=float(int(time.time() - 600) // 60 * 60))
    cfg = demo_config(data, data / "warehouse-ingest")
    cfg["syslog"] = {"host": "127.0.0.1"}
    (where / "citysoc.yml").write_text(yaml.safe_dump(cfg), encoding="utf-8")
    from citysoc.wiring import open_soc
    from core.settings import Settings

    soc = open_soc(Settings(data=data))
    for user in ("resp", "resp2"):
        soc.users.create_user(user, "responder", PASSWORDS[user])
    soc.close()
    srv = ServeProcess(data, config=where / "citysoc.yml")
    srv.start(timeout=180)
    try:
        yield srv
    finally:
        srv.stop()


def _sign_in(browser: Any, url: str, user: str) -> tuple[Any, Any, list[str]]:
    ctx = browser.new_context(base_url=url, viewport={"width": 1400, "height": 1000}, locale="vi-VN",
                              timezone_id="Asia/Ho_Chi_Minh")
    ctx.add_cookies([{"name": "citysoc_lang", "value": "vi", "url": url}])
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("dialog", lambda d: (errors.append("dialog: " + d.message), d.dismiss()))
    page.goto("/login")
    page.fill("#username", user)
    page.fill("#password", PASSWORDS[user])
    page.click("button[type=submit]")
    page.wait_for_url(lambda u: "/login" not in u, timeout=20_000)
    return ctx, page, errors


def _loaded(page: Any) -> None:
    page.wait_for_selector("body[data-loaded='1']", timeout=20_000)


def test_analyst_day_on_the_demo_in_vietnamese(demo: ServeProcess, browser: Any) -> None:
    vi = _vi()
    key = demo.api_key("admin")
    alerts_total = demo.get(key, "/api/v1/alerts", limit=1).json()["total"]
    ns = f"citysoc-demo-{demo.proc.pid}" if demo.proc else ""
    ctx, page, errors = _sign_in(browser, demo.url, "resp")
    ctx2 = None
    try:
        # 1. The queue: incidents, first in the menu, far fewer than the alerts behind them.
        page.goto("/incidents")
        _loaded(page)
        assert page.locator("html").get_attribute("lang") == "vi"
        assert page.locator("nav.menu a").first.text_content().strip() == vi["incidents.title"]
        total = int(re.sub(r"\D", "", page.text_content("#total")))
        assert 5 <= total and total * 3 <= alerts_total, (total, alerts_total)
        scan = page.locator("#incidents-body > tr", has=page.locator(".attacker", has_text=SCANNER))
        expect(scan).to_have_count(1)
        cells = scan.locator("td")
        assert cells.nth(5).text_content() == vi["center.operations"]  # the center by name, not "operations"
        n_alerts = int(re.match(r"(\d+)", cells.nth(6).text_content()).group(1))
        assert n_alerts >= 30  # the whole scan: one incident, not 30 queue items
        assert "10.20.0.20" in cells.nth(7).text_content()  # it names its targets
        assert re.search(r"\+\d+ nữa", cells.nth(7).text_content())
        rules_text = cells.nth(8).text_content()
        assert "Quét cổng" in rules_text and "tiếng Anh" not in rules_text and "Port scan" not in rules_text
        assert cells.nth(2).text_content() == vi["level.high"]  # the brute-force alert inside raises it
        shot(page, "analyst-day-01-incidents-vi")
        scan.locator("button.expand").click()
        inner = page.locator("#incidents-body tr.incident-alerts")
        expect(inner.locator("tbody tr")).to_have_count(n_alerts)
        assert "Port scan of" not in inner.text_content()  # rule titles in Vietnamese
        # ...so each alert's targets say which host it was about
        targets = [r.locator("td").nth(2).text_content() for r in inner.locator("tbody tr").all()]
        assert "10.20.0.20" in targets and "10.20.0.49" in targets, targets
        shot(page, "analyst-day-02-incident-expanded-vi")

        # 2. The incident becomes a case.
        scan.locator("input[type=checkbox]").check()
        page.click("#make-case")
        page.wait_for_url(re.compile(r"/cases/\d+$"))
        _loaded(page)
        case_id = int(page.url.rsplit("/", 1)[1])
        expect(page.locator("#c-title")).to_have_text(vi["cases.from_incidents"].replace("{who}", SCANNER)
                                                       .replace("{n}", "1"))
        expect(page.locator("#c-incidents")).to_contain_text(vi["center.operations"])
        expect(page.locator("#c-alerts tr")).to_have_count(n_alerts)
        expect(page.locator("#c-timeline")).to_contain_text("đã mở hồ sơ")
        expect(page.locator("#c-status")).to_have_text(vi["case_status.open"])
        shot(page, "analyst-day-03-case-vi")
        got = demo.get(key, "/api/v1/incidents", attacker=SCANNER, status="new").json()["items"]
        assert got and got[0]["case_id"] == case_id

        # 3. One of its alerts: a scan of one camera-core host; dry run, then a real start.
        scan_title = next(r.text_content() for r in page.locator("#c-alerts tr td:nth-child(3)").all()
                          if "Quét cổng" in r.text_content())
        page.locator("#c-alerts tr", has_text=scan_title).first.locator("a").first.click()
        page.wait_for_url(re.compile(r"/alerts/\d+$"))
        _loaded(page)
        alert_id = int(page.url.rsplit("/", 1)[1])
        page.wait_for_selector("#pb-select option[value='camera-unknown-device']", state="attached")
        assert page.input_value("#pb-select") == "camera-unknown-device"  # the playbook whose trigger matches
        assert page.is_disabled("#pb-run")  # a dry run first
        page.click("#pb-dry")
        page.wait_for_selector("#pb-result ol.steps li")
        result = page.text_content("#pb-result")
        assert f"sẽ thêm {SCANNER} vào tập nftables inet citysoc" in result  # what isolate would do
        assert "sẽ gửi e-mail tới soc-duty@security.hcmc.example" in result
        assert "would " not in result and vi["playbook.preview"] in result
        assert page.locator("#pb-result li.st-would_run").count() == 3
        shot(page, "analyst-day-04-dry-run-vi")
        page.click("#pb-run")
        page.wait_for_selector("#pb-approve")
        expect(page.locator("#pb-status")).to_have_class(re.compile("run-awaiting_approval"))
        expect(page.locator("#pb-status")).to_have_text(vi["run.awaiting_approval"])
        expect(page.locator("#pb-result li.st-awaiting_approval")).to_contain_text("isolate")
        assert vi["playbook.waiting"].replace("{step}", "isolate") in page.text_content("#pb-result")
        shot(page, "analyst-day-05-run-waiting-vi")
        # four eyes: who started it cannot approve it
        page.click("#pb-approve")
        page.wait_for_selector("#toast.error:not([hidden])")
        assert page.text_content("#toast").strip().startswith(vi["playbook.four_eyes"][:40])
        page.wait_for_selector("#pb-approve:not([disabled])")
        expect(page.locator("#pb-status")).to_have_class(re.compile("run-awaiting_approval"))
        shot(page, "analyst-day-06-four-eyes-vi")

        # 4. The second responder approves on the playbooks page.
        ctx2, page2, errors2 = _sign_in(browser, demo.url, "resp2")
        page2.goto("/playbooks")
        _loaded(page2)
        pending = page2.locator("#pending .pending-run")
        expect(pending).to_have_count(1)
        expect(pending).to_contain_text(vi["playbook.waiting"].replace("{step}", "isolate"))
        expect(pending).to_contain_text(f"#{alert_id}")
        shot(page2, "analyst-day-07-playbooks-pending-vi")
        pending.locator("button.primary").click()
        page2.wait_for_selector("#pending p.muted", timeout=60_000)  # none pending any more
        status = page2.locator("#run-status")
        expect(status).to_have_class(re.compile("run-completed_with_failures"), timeout=60_000)
        expect(status).to_have_text(vi["run.completed_with_failures"])
        colors = status.evaluate("n => [getComputedStyle(n).color, getComputedStyle(n).backgroundColor]")
        assert colors == ["rgb(142, 27, 27)", "rgb(253, 232, 228)"], colors  # red, not green
        failed = page2.locator("#run-detail li.st-failed")
        expect(failed).to_have_count(1)
        expect(failed).to_contain_text("notify")
        expect(failed.locator(".status")).to_have_text(vi["step.failed"])
        # the action's error in Vietnamese too (the system's own detail kept as it is)
        expect(failed.locator(".error")).to_contain_text("gửi e-mail qua máy chủ SMTP smtp.demo.invalid:25 thất bại")
        assert " failed: " not in failed.locator(".error").text_content()
        isolated = page2.locator("#run-detail li.step", has_text="isolate")
        expect(isolated).to_have_class(re.compile("st-succeeded"))
        expect(isolated).to_contain_text(vi["playbook.approved_by"] + " resp2")
        run_row = page2.locator("#runs-body tr", has=page2.locator("a", has_text=f"#{alert_id}")).first
        expect(run_row.locator("td").nth(4)).to_have_text("resp")  # who started it, by name
        shot(page2, "analyst-day-08-run-completed-with-failures-vi")
        # the approved isolation acted in the demo's own namespace (the host's firewall is
        # guarded for the whole session by tests/conftest.py)
        inside = subprocess.run(["ip", "netns", "exec", ns, "nft", "list", "table", "inet", "citysoc"],
                                capture_output=True, text=True)
        assert SCANNER in inside.stdout, (inside.stdout, inside.stderr)
        # the first responder's page followed without a reload
        expect(page.locator("#pb-status")).to_have_class(re.compile("run-completed_with_failures"), timeout=30_000)
        expect(page.locator("#pb-status")).to_have_text(vi["run.completed_with_failures"])
        expect(page.locator("#pb-result li.st-failed")).to_contain_text("notify")
        shot(page, "analyst-day-09-alert-followed-vi")

        # 5. Back to the case: a note, in progress.
        page.goto(f"/cases/{case_id}")
        _loaded(page)
        page.fill("#c-note", f"Đã cô lập camera {SCANNER}; e-mail báo trực ban chưa gửi được.")
        page.click("#c-note-form button[type=submit]")
        page.wait_for_selector(f"#c-notes p:text('Đã cô lập camera {SCANNER}; e-mail báo trực ban chưa gửi được.')")
        page.select_option("#c-form select[name=status]", "in_progress")
        page.click("#c-form button[type=submit]")
        expect(page.locator("#c-status")).to_have_text(vi["case_status.in_progress"])
        shot(page, "analyst-day-10-case-in-progress-vi")
        assert not errors and not errors2, (errors, errors2)
    finally:
        if ctx2 is not None:
            ctx2.close()
        ctx.close()
