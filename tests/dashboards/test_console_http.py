"""The console over plain HTTP against the real ``citysoc serve``: content negotiation at
``/``, sign-in redirects, role gates, security headers, the language switch."""
from __future__ import annotations

import httpx

from console_helpers import Console


def test_root_serves_shippers_es_info_and_browsers_the_console(console: Console) -> None:
    key = {"Authorization": f"ApiKey {console.ingest_key}"}
    r = httpx.get(console.url + "/", headers={"Accept": "application/json", **key})
    assert r.status_code == 200 and r.json()["version"]["number"].startswith("8.")
    assert r.headers["x-elastic-product"] == "Elasticsearch"
    r = httpx.get(console.url + "/", headers=key)  # httpx sends Accept: */*, like curl and the shippers
    assert r.json()["tagline"] == "You Know, for Search"
    # Anonymous shippers' probes get 401 (issue 18: GET / answered anyone).
    assert httpx.get(console.url + "/", headers={"Accept": "application/json"}).status_code == 401
    r = httpx.get(console.url + "/", headers={"Accept": "text/html,application/xhtml+xml"})
    assert r.status_code == 303 and r.headers["location"] == "/login?next=%2F"


def test_pages_need_sign_in_and_keep_the_bookmark(console: Console) -> None:
    for path in ["/alerts", "/alerts/1", "/search?q=host.name:x", "/assets", "/playbooks", "/rules", "/reports"]:
        r = httpx.get(console.url + path, headers={"Accept": "text/html"})
        assert r.status_code == 303, path
        assert r.headers["location"].startswith("/login?next=%2F"), path
    r = httpx.get(console.url + "/login")
    assert r.status_code == 200 and 'id="login-form"' in r.text


def test_security_headers_on_every_console_response(console: Console) -> None:
    with console.login_api("ana") as c:
        for path in ["/", "/login", "/alerts", "/static/console/common.js"]:
            r = c.get(path, headers={"Accept": "text/html"})
            assert r.status_code == 200, path
            csp = r.headers["content-security-policy"]
            assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "unsafe-eval" not in csp, path
            assert r.headers["x-content-type-options"] == "nosniff"
            assert r.headers["x-frame-options"] == "DENY"
        # API answers are data: a stored file opened from there can never run script.
        r = c.get("/api/v1/alerts")
        assert "sandbox" in r.headers["content-security-policy"]
        assert "script-src" not in r.headers["content-security-policy"]
        docs = c.get("/api/v1/docs")
        assert docs.status_code == 200 and "content-security-policy" not in docs.headers


def test_session_cookie_is_httponly_samesite(console: Console) -> None:
    r = httpx.post(console.url + "/api/v1/auth/login", json={"username": "ana", "password": "Analyst-pass-123"})
    cookie = next(v for k, v in r.headers.multi_items() if k == "set-cookie" and v.startswith("citysoc_session="))
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie


def test_role_gates_pages_and_menus(console: Console) -> None:
    with console.login_api("view") as c:
        r = c.get("/reports", headers={"Accept": "text/html"})
        assert r.status_code == 403 and "export" in r.text
        r = c.get("/alerts", headers={"Accept": "text/html"})
        assert r.status_code == 200
        assert 'data-nav="reports"' not in r.text and 'data-nav="alerts"' in r.text
    with console.login_api("audit") as c:
        assert 'data-nav="reports"' in c.get("/alerts", headers={"Accept": "text/html"}).text


def test_state_change_without_csrf_token_is_refused(console: Console) -> None:
    with console.login_api("ana") as c:
        del c.headers["X-CSRF-Token"]
        r = c.patch(f"/api/v1/alerts/{console.alert_ids['warehouse']}", json={"assignee": "ana"})
        assert r.status_code == 403 and "CSRF" in r.text


def test_language_switch_sets_cookie_and_refuses_offsite_next(console: Console) -> None:
    r = httpx.get(console.url + "/lang/en?next=/alerts%3Fstatus%3Dnew")
    assert r.status_code == 303 and r.headers["location"] == "/alerts?status=new"
    assert "citysoc_lang=en" in r.headers["set-cookie"]
    for evil in ["//evil.example/", "https://evil.example/", "/\\evil.example"]:
        r = httpx.get(console.url + "/lang/vi", params={"next": evil})
        assert r.headers["location"] == "/", evil
    assert httpx.get(console.url + "/lang/fr").status_code == 404
    vi = httpx.get(console.url + "/login").text
    en = httpx.get(console.url + "/login", cookies={"citysoc_lang": "en"}).text
    assert "Đăng nhập" in vi and 'lang="vi"' in vi
    assert "Sign in" in en and 'lang="en"' in en


def test_overview_and_health_api(console: Console) -> None:
    with console.login_api("view") as c:
        o = c.get("/api/v1/console/overview").json()
        assert o["open_by_level"]["critical"] >= 1 and o["open_total"] >= 8
        assert {"camera-ops", "warehouse"} <= {b["key"] for b in o["by_center"]}
        assert len(o["over_time"]) == 25 and sum(b["high"] for b in o["over_time"]) >= 1
        h = c.get("/api/v1/console/health").json()
        assert {"parse", "store"} <= {s["name"] for s in h["stages"]} and h["ready"] is True
        hits = c.get("/api/v1/console/rule-hits", params=[("ids", "cam-bruteforce"), ("ids", "nope")]).json()
        assert hits == {"cam-bruteforce": 1, "nope": 0}
    assert httpx.get(console.url + "/api/v1/console/overview").status_code == 401
