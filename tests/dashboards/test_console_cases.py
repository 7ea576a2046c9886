"""Cases in Chromium against a real ``citysoc serve``: open a case from an incident of the
queue and from selected alerts, triage it, add a note, attach files (YARA-scanned by the
server: a web shell is flagged, a text file is clean), follow the timeline, and export the
evidence archive (zip + manifest) as an auditor."""
from __future__ import annotations

import io
import re
import zipfile

from playwright.sync_api import expect

from console_helpers import Console, shot


def _loaded(page) -> None:
    page.wait_for_selector("body[data-loaded='1']", timeout=10_000)


def test_case_from_an_incident_with_notes_attachments_and_timeline(console: Console, new_page) -> None:
    page, watch = new_page("ana")
    page.goto("/incidents?rule_id=wh-mass-export&status=all")
    _loaded(page)
    expect(page.locator("#incidents-body > tr")).to_have_count(1)
    page.locator("#incidents-body > tr input[type=checkbox]").check()
    page.click("#make-case")
    page.wait_for_url(re.compile(r"/cases/\d+$"))
    _loaded(page)
    case_id = int(page.url.rsplit("/", 1)[1])
    expect(page.locator("#c-title")).to_contain_text("10.40.0.9")
    expect(page.locator("#c-incidents")).to_contain_text("10.40.0.9")
    expect(page.locator("#c-alerts")).to_contain_text("Warehouse mass export")
    expect(page.locator("#c-timeline")).to_contain_text("đã mở hồ sơ")
    # triage
    page.select_option("#c-form select[name=status]", "in_progress")
    page.click("#c-assign-me")
    page.click("#c-form button[type=submit]")
    expect(page.locator("#c-status")).to_have_text("đang xử lý")
    expect(page.locator("#c-assignee")).to_have_text("ana")
    # a note, kept as text
    page.fill("#c-note", "ETL account <b>etl_bot</b> exported 2 GB")
    page.click("#c-note-form button[type=submit]")
    page.wait_for_selector("#c-notes p:text('ETL account <b>etl_bot</b> exported 2 GB')")
    # attachments: the server's YARA scan says which is which
    page.set_input_files("#c-file", files=[{"name": "shell.php", "mimeType": "text/plain",
                                            "buffer": b"<?php eval($_POST['cmd']); ?>"}])
    page.click("#c-upload button[type=submit]")
    row = page.locator("#c-attachments tr", has_text="shell.php")
    expect(row.locator(".scan-flagged")).to_have_text("YARA phát hiện mẫu độc hại")
    page.set_input_files("#c-file", files=[{"name": "ghi-chu.txt", "mimeType": "text/plain", "buffer": b"nothing here"}])
    page.click("#c-upload button[type=submit]")
    expect(page.locator("#c-attachments tr", has_text="ghi-chu.txt").locator(".scan-clean")).to_have_text("sạch")
    expect(page.locator("#c-timeline")).to_contain_text("đã quét shell.php: YARA phát hiện mẫu độc hại")
    shot(page, "case-detail-vi")
    with console.login_api("ana") as c:
        got = c.get(f"/api/v1/cases/{case_id}").json()
        assert got["status"] == "in_progress" and got["assignee"] == "ana"
        assert c.get("/api/v1/incidents?rule_id=wh-mass-export&status=new").json()["items"][0]["case_id"] == case_id
    page.goto("/cases")
    _loaded(page)
    expect(page.locator(f"#cases-body tr[data-id='{case_id}']")).to_contain_text("đang xử lý")
    shot(page, "cases-list-vi")
    # the auditor exports its evidence archive
    page2, watch2 = new_page("audit")
    page2.goto(f"/cases/{case_id}")
    _loaded(page2)
    assert page2.is_hidden("#c-triage") and page2.is_hidden("#c-upload")
    page2.click("#c-export")
    link = page2.locator("#c-evidence-result a.download")
    expect(link).to_be_visible()
    with page2.expect_download() as dl:
        link.click()
    data = open(dl.value.path(), "rb").read()
    names = zipfile.ZipFile(io.BytesIO(data)).namelist()
    assert any("case" in n for n in names), names
    assert page2.locator("#c-evidence-result a", has_text="manifest").count() == 1
    shot(page2, "case-evidence-vi")
    assert not watch.errors and not watch.dialogs and not watch2.errors


def test_case_from_selected_alerts(console: Console, new_page) -> None:
    page, watch = new_page("ana")
    page.goto("/alerts?rule_id=cam-bruteforce")
    _loaded(page)
    expect(page.locator("#alerts-body tr")).to_have_count(1)
    assert page.is_disabled("#make-case")
    page.check("#select-all")
    page.click("#make-case")
    page.wait_for_url(re.compile(r"/cases/\d+$"))
    _loaded(page)
    expect(page.locator("#c-title")).to_have_text("Hồ sơ từ 1 cảnh báo: Camera brute force")
    expect(page.locator("#c-alerts tr")).to_have_count(1)
    expect(page.locator("#c-incidents")).to_contain_text("10.20.0.1")
    assert not watch.errors and not watch.dialogs
