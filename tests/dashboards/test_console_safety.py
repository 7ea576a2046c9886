"""Log content is attacker-controlled. Events and alerts whose message, host name, user
name, center, rule title and tags hold script payloads are shown on every page that can
show them, in Chromium, and nothing runs: no dialog, ``window.__pwned`` stays unset, the
title stays ours, and the payloads appear as literal text. Static checks back it up: no
HTML sinks in our scripts, no inline script or handlers in our templates."""
from __future__ import annotations

import re
from pathlib import Path

from console_helpers import XSS, Console, shot

DASH = Path(__file__).resolve().parents[2] / "dashboards"


def _assert_clean(page, watch, where: str) -> None:
    assert page.evaluate("() => window.__pwned") is None, where
    assert page.evaluate("() => window.parent.__pwned") is None, where
    assert "PWNED" not in page.title(), where
    assert not watch.dialogs, (where, watch.dialogs)
    assert not watch.errors, (where, watch.errors)
    # No element carries an attribute that came from a payload.
    assert page.locator("[onerror], [onload], iframe, svg[onload], img[src='x']").count() == 0, where


def test_script_payloads_never_run_on_any_page(console: Console, new_page) -> None:
    page, watch = new_page("resp")
    for path in ["/", "/alerts", "/assets", "/playbooks"]:
        page.goto(path)
        page.wait_for_timeout(700)
        _assert_clean(page, watch, path)
    page.goto("/alerts?rule_id=xss-rule-0")
    page.wait_for_selector("#alerts-body tr")
    assert XSS[0] in page.text_content("#alerts-body")  # shown literally, as text
    for k in range(len(XSS)):
        aid = console.alert_ids[f"xss{k}"]
        page.goto(f"/alerts/{aid}")
        page.wait_for_selector("body[data-loaded='1']")
        page.wait_for_timeout(300)
        for d in page.locator("details.doc").all():
            d.locator("summary").click()
        assert page.text_content("#a-title") == f"Rule {XSS[k]} (tiếng Anh)"  # not our pack: marked English
        assert XSS[k] in page.text_content("#a-entities")
        # Entity pivots stay on our own search page whatever the value.
        for a in page.locator("#a-entities a").all():
            assert a.get_attribute("href").startswith("/search?q="), a.get_attribute("href")
        page.fill("#comment-text", XSS[k])
        page.click("#comment-form button[type=submit]")
        page.wait_for_selector("#comments p")
        _assert_clean(page, watch, f"/alerts/{aid}")
        if k == 1:
            shot(page, "xss-alert-detail")
    page.goto("/search?q=event.dataset:%22xss.test%22")
    page.wait_for_selector("body[data-loaded='1']")
    for b in page.locator("#results-body button.expand").all():
        b.click()
    for field in ["host.name", "user.name", "message", "url.original"]:
        page.click(f"#field-list button.field:text-is('{field}')")
    page.wait_for_timeout(800)
    body = page.text_content("#results-body")
    for p in XSS:
        assert p in body
    shot(page, "xss-search")
    _assert_clean(page, watch, "/search")
    # Filtering by a payload value quotes it into the query, still as text.
    page.locator("#field-list button.value", has_text="onerror").first.click()
    page.wait_for_selector("body[data-loaded='1']")
    page.wait_for_timeout(500)
    assert 'host.name:"<img src=x onerror=\\"window.__pwned=2' in page.input_value("#q")
    _assert_clean(page, watch, "/search filtered")


def test_scripts_use_no_html_sinks() -> None:
    sinks = re.compile(r"\.innerHTML|\.outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function|"
                       r"setTimeout\(\s*['\"]|setInterval\(\s*['\"]")
    files = sorted((DASH / "static").glob("*.js"))
    assert len(files) >= 10
    for f in files:
        text = f.read_text(encoding="utf-8")
        assert not sinks.search(text), f"{f.name}: {sinks.search(text).group(0)}"


def test_templates_have_no_inline_script_or_handlers_and_autoescape() -> None:
    from dashboards.pages import templates

    assert templates.env.autoescape is True
    for f in sorted((DASH / "templates").glob("*.html")):
        text = f.read_text(encoding="utf-8")
        for tag in re.findall(r"<script\b[^>]*>", text):
            assert 'src="/static/console/' in tag or 'type="application/json"' in tag, (f.name, tag)
        assert not re.search(r"\son[a-z]+\s*=", text), f.name
        assert "|safe" not in text and "Markup(" not in text, f.name
