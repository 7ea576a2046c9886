"""The console in Debian's Chromium against a real ``citysoc serve``: sign in, filter and
bulk-triage the queue, triage an alert, pivot into search and filter by a field value,
dry-run a playbook, run it and approve its gated step, switch language, download a report, and an alert raised by serve itself arrives live.
Every page is screenshotted in both languages (tests/dashboards/artifacts/)."""
from __future__ import annotations

import json
import re
import time

import httpx
import yaml

from playwright.sync_api import expect

from console_helpers import ROOT, Console, shot

PAGES = ["/", "/incidents", "/alerts", "/cases", "/search", "/assets", "/playbooks", "/rules", "/reports"]


def _loaded(page) -> None:
    page.wait_for_selector("body[data-loaded='1']", timeout=10_000)


def test_sign_in_form_rejects_wrong_password_then_lands_on_bookmark(console: Console, new_page) -> None:
    page, watch = new_page()
    page.goto("/alerts?level=critical")
    assert "/login?next=" in page.url
    page.fill("#username", "ana")
    page.fill("#password", "wrong")
    page.click("button[type=submit]")
    page.wait_for_selector("#login-error:not([hidden])")
    assert page.text_content("#login-error") == "Sai tên đăng nhập hoặc mật khẩu."
    shot(page, "login-failed-vi")
    page.fill("#password", "Analyst-pass-123")
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r"/alerts\?level=critical$"))
    _loaded(page)
    rows = page.locator("#alerts-body tr")
    assert rows.count() == 1 and "Unknown device" in rows.first.text_content()
    assert page.is_checked("input[name=level][value=critical]")
    shot(page, "login-then-alerts-critical-vi")
    assert not watch.errors and not watch.dialogs


def test_queue_filters_sort_and_bulk_acknowledge(console: Console, new_page) -> None:
    page, watch = new_page("ana")
    page.goto("/alerts")
    _loaded(page)
    assert page.locator("#alerts-body tr").count() >= 8
    page.fill("input[name=center]", "warehouse")
    page.click("#filters button[type=submit]")
    expect(page.locator("#alerts-body tr")).to_have_count(1)
    assert "center=warehouse" in page.url
    page.click("#reset")
    page.select_option("select[name=sort]", "-risk_score")
    expect(page.locator("#alerts-body tr").first).to_contain_text("Unknown device")
    ids = [console.alert_ids["xss3"], console.alert_ids["xss4"]]
    for i in ids:
        page.check(f"#alerts-body tr[data-id='{i}'] input[type=checkbox]")
    assert page.text_content("#selected-count") == "2"
    page.click("[data-bulk=acknowledged]")
    page.wait_for_selector("#toast:not([hidden])")
    assert "2" in page.text_content("#toast")
    for i in ids:
        page.wait_for_selector(f"#alerts-body tr[data-id='{i}'] .st-acknowledged")
    shot(page, "alerts-bulk-acknowledged-vi")
    assert not watch.errors and not watch.dialogs


def test_alert_triage_comment_pivot_and_field_filter(console: Console, new_page) -> None:
    page, watch = new_page("ana")
    aid = console.alert_ids["brute"]
    page.goto(f"/alerts/{aid}")
    _loaded(page)
    # A rule outside our pack (no Vietnamese title) shows its English title, marked as English.
    assert page.text_content("#a-title") == "Camera brute force (tiếng Anh)"
    assert page.locator("#a-attack a", has_text="T1110").get_attribute("href") == "https://attack.mitre.org/techniques/T1110/"
    page.wait_for_selector("#timeline li details")  # related events found by entity
    assert page.locator("#a-events details").count() == 3
    page.click("[data-status=acknowledged]")
    page.wait_for_selector("#a-status .st-acknowledged")
    page.click("#assign-me")
    expect(page.locator("#a-assignee")).to_have_text("ana")
    page.fill("#comment-text", "Checked the NVR logs <b>not bold</b>")
    page.click("#comment-form button[type=submit]")
    page.wait_for_selector("#comments p:text('Checked the NVR logs <b>not bold</b>')")
    shot(page, "alert-detail-vi")
    page.click("#a-entities a[data-field='host.name']")
    page.wait_for_url(re.compile(r"/search\?q=host\.name"))
    _loaded(page)
    assert page.input_value("#q") == 'host.name:"cam-q1-000"'
    expect(page.locator("#hits-total")).to_have_text(re.compile(r"^4 "))
    page.click("#field-list button.field:text-is('source.ip')")
    page.click("#field-list button.value:text-is('10.20.0.1')")
    expect(page.locator("#hits-total")).to_have_text(re.compile(r"^1 "))
    assert page.input_value("#q") == '(host.name:"cam-q1-000") AND source.ip:"10.20.0.1"'
    assert "source.ip" in page.url
    page.locator("#results-body button.expand").first.click()
    assert page.locator("#results-body tr.detail:not([hidden]) th:text-is('event.action')").count() == 1
    shot(page, "search-pivot-vi")
    page.locator("#histogram g.col").last.click()  # zoom into a bar: it becomes the time range
    expect(page.locator("#range")).to_have_value("custom")
    expect(page.locator("#hits-total")).to_have_text(re.compile(r"^1 "))
    assert "from=" in page.url and "to=" in page.url
    page.fill("#q", "host.name:(")
    page.click("#search-form button[type=submit]")
    page.wait_for_selector("#search-error:not([hidden])")
    assert not watch.errors and not watch.dialogs


def test_playbook_dry_run_then_run_and_approve(console: Console, new_page) -> None:
    page, watch = new_page("resp")
    aid = console.alert_ids["unknown"]
    page.goto(f"/alerts/{aid}")
    _loaded(page)
    page.wait_for_selector("#pb-select option[value='camera-unknown-device']", state="attached")
    # the picker defaults to the playbook whose trigger matches this alert
    assert page.input_value("#pb-select") == "camera-unknown-device"
    assert page.is_disabled("#pb-run")
    page.click("#pb-dry")
    page.wait_for_selector("#pb-result ol.steps li")
    assert page.locator("#pb-result li.st-would_run").count() >= 2
    assert "10.30.7.77" in page.text_content("#pb-result")
    shot(page, "playbook-dry-run-vi")
    page.click("#pb-run")
    page.wait_for_selector("#pb-approve")
    assert page.get_attribute("#pb-status", "class").endswith("run-awaiting_approval")
    # four eyes: who started the run cannot approve it
    page.click("#pb-approve")
    page.wait_for_selector("#toast.error:not([hidden])")
    assert "bốn mắt" in page.text_content("#toast")
    page.wait_for_selector("#pb-approve:not([disabled])")
    assert page.get_attribute("#pb-status", "class").endswith("run-awaiting_approval")
    # a second responder approves on the playbooks page; the first one's page follows live
    page2, watch2 = new_page("resp2")
    page2.goto("/playbooks")
    _loaded(page2)
    pending = page2.locator("#pending .pending-run")
    assert pending.count() == 1
    shot(page2, "playbooks-pending-vi")
    pending.locator("button.primary").click()
    page2.wait_for_selector("#pending p.muted", timeout=30_000)  # none pending any more
    expect(page2.locator("#run-detail")).to_contain_text("resp2", timeout=30_000)  # approved by the second responder
    # its e-mail step really failed (nothing listens on the SMTP port): not green
    expect(page2.locator("#run-status")).to_have_class(re.compile("run-completed_with_failures"))
    expect(page2.locator("#run-detail li.st-failed")).to_contain_text("notify")
    expect(page.locator("#pb-status")).to_have_class(re.compile("run-completed_with_failures"), timeout=20_000)
    expect(page.locator("#pb-result li.st-failed")).to_contain_text("notify")  # no reload on the first page
    shot(page, "playbook-completed-with-failures-vi")
    page.goto(f"/alerts/{console.alert_ids['warehouse']}")  # no camera here: no camera playbook by default
    _loaded(page)
    page.wait_for_selector("#pb-select option[value='camera-bruteforce']", state="attached")
    assert page.input_value("#pb-select") != "camera-bruteforce"
    assert not watch.errors and not watch.dialogs and not watch2.errors


def test_every_page_in_both_languages(console: Console, new_page) -> None:
    page, watch = new_page("resp")
    for lang in ["vi", "en"]:
        if lang == "en":
            page.click("a[data-lang=en]")
            page.wait_for_selector("html[lang=en]")
        for path in PAGES + [f"/alerts/{console.alert_ids['brute']}"]:
            page.goto(path)
            if path != "/reports":  # responders lack the export permission: the 403 page
                page.wait_for_selector("body[data-loaded='1'], #chart-level svg", timeout=10_000)
            page.wait_for_timeout(300)
            name = path.strip("/").replace("/", "-") or "overview"
            shot(page, f"page-{name}-{lang}")
        nav = page.text_content("nav.menu")
        assert ("Cảnh báo" in nav) if lang == "vi" else ("Alerts" in nav and "Cảnh báo" not in nav)
    assert not watch.errors and not watch.dialogs
    # Our own pages live within their policy: nothing was refused (inline style, script, ...).
    assert not [m for m in watch.console if "Content Security Policy" in m], watch.console


def test_reports_generate_download_and_exports_as_auditor(console: Console, new_page, tmp_path) -> None:
    page, watch = new_page("audit", lang="en")
    page.goto("/reports")
    _loaded(page)
    page.select_option("#generate-form select[name=format]", "csv")
    page.click("#generate")
    page.wait_for_selector("#reports-body tr[data-name$='.csv']")
    with page.expect_download() as dl:
        page.locator("#reports-body tr[data-name$='.csv'] a.download").click()
    report = tmp_path / dl.value.suggested_filename
    dl.value.save_as(report)
    assert report.stat().st_size > 0 and report.suffix == ".csv"
    page.select_option("#report-form select[name=level]", "critical")
    with page.expect_download() as dl:
        page.click("#report-download")
    path = tmp_path / "alerts.csv"
    dl.value.save_as(path)
    lines = path.read_text().splitlines()
    assert lines[0].startswith("id,rule_id,rule_title,level")
    assert len(lines) == 2 and "cam-unknown-device" in lines[1]
    shot(page, "reports-generated-en")
    # Auditors read an alert's history from the audit log: the analyst's triage is there.
    with console.login_api("ana") as c:
        assert c.patch(f"/api/v1/alerts/{console.alert_ids['xss2']}", json={"assignee": "ana"}).status_code == 200
    page.goto(f"/alerts/{console.alert_ids['xss2']}")
    _loaded(page)
    expect(page.locator("#history li").first).to_be_visible()
    history = page.text_content("#history")
    # The audit action in words from the catalog; its raw id stays in the tooltip.
    assert "updated the alert" in history and "ana" in history
    assert page.locator("#history .audit-action").first.get_attribute("title") == "alert.update"
    assert not watch.errors and not watch.dialogs


def test_rules_page_lists_serves_rule_pack(console: Console, new_page) -> None:
    page, watch = new_page("ana", lang="en")
    page.goto("/rules")
    _loaded(page)
    assert not page.is_visible("#rules-error")
    assert page.locator("#rules-body tr").count() >= 30  # our Sigma pack, as serve loads it
    assert "Credential access" in page.locator(".tactic-col.covered h3").all_text_contents()
    shot(page, "rules-serve-en")
    assert not watch.errors and not watch.dialogs


def test_alert_raised_by_serve_arrives_live(console: Console, new_page) -> None:
    """serve's own Sigma engine raises the alert from an event sent with an ingest key."""
    page, watch = new_page("ana")
    page.goto("/alerts")
    _loaded(page)
    expect(page.locator("#live.on")).to_have_count(1)
    page.evaluate("() => { window.__sameDocument = 'yes'; }")
    doc = yaml.safe_load((ROOT / "detections/rules/sigma/camera/camera_factory_account_login.tests.yml").read_text())
    ev = doc["match"][0]
    ev["@timestamp"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    r = httpx.post(console.url + "/api/v1/ingest", content=json.dumps(ev),
                   headers={"Authorization": f"ApiKey {console.ingest_key}"})
    assert r.status_code == 200 and r.json()["stored"] == 1, r.text
    row = page.locator("#alerts-body tr", has_text="NVR-D3-02")
    expect(row).to_have_count(1, timeout=5000)
    # Our pack's rule: its Vietnamese title on this (default, Vietnamese) page.
    assert "tài khoản mặc định của nhà sản xuất" in row.text_content()
    assert page.evaluate("() => window.__sameDocument") == "yes"
    shot(page, "alerts-live-from-serve-vi")
    assert not watch.errors and not watch.dialogs


def test_viewer_sees_no_triage_controls(console: Console, new_page) -> None:
    page, watch = new_page("view")
    page.goto("/alerts")
    _loaded(page)
    assert page.is_hidden("#bulk")
    assert [a.get_attribute("data-nav") for a in page.locator("nav.menu a").all()] == \
        ["incidents", "overview", "alerts", "cases", "search", "assets", "playbooks", "rules"]
    page.goto(f"/alerts/{console.alert_ids['warehouse']}")
    _loaded(page)
    assert page.is_hidden("#triage") and page.is_hidden("#comment-form") and page.is_hidden("#pb-dry")
    assert page.is_hidden("#pb-select")  # no playbook drop-down without a button
    assert page.is_visible("#a-entities")
    page.click("#logout")
    page.wait_for_url(re.compile(r"/login$"))
    page.goto("/alerts")
    assert "/login?next=%2Falerts" in page.url  # the session is gone
    assert not watch.errors and not watch.dialogs
