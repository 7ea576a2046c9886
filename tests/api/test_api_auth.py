"""Access control: every route needs credentials (except /healthz and login), every
role check holds, and each way of presenting a credential works where it should."""
from __future__ import annotations

import base64
import logging
import re

import pytest

from api.app import API_PREFIX, PUBLIC_ROUTES
from core.auth import ROLE_PERMISSIONS, ROLES
from core.protocols import Detection


def _operations(app):
    doc = app.openapi()
    ops = []
    for path, item in doc["paths"].items():
        for method, op in item.items():
            ops.append((method.upper(), path, op))
    # Routes outside the schema that still need a caller.
    ops.append(("GET", f"{API_PREFIX}/openapi.json", {"x-citysoc-permission": "authenticated"}))
    ops.append(("GET", f"{API_PREFIX}/docs", {"x-citysoc-permission": "authenticated"}))
    return ops


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", lambda m: "x" if m.group(0) in ("{index}", "{name}", "{key_id}", "{rule_id}") else "1",
                  path)


def test_every_route_says_what_it_requires(stack):
    missing = [(m, p) for m, p, op in _operations(stack.app)
               if "x-citysoc-permission" not in op and (m, p) not in PUBLIC_ROUTES]
    assert missing == []
    assert len(_operations(stack.app)) > 45


def test_anonymous_gets_401_on_every_protected_route(stack, client):
    checked = 0
    for method, path, _op in _operations(stack.app):
        if (method, path) in PUBLIC_ROUTES:
            continue
        r = client.request(method, _concrete(path))
        assert r.status_code == 401, (method, path, r.status_code, r.text)
        assert "WWW-Authenticate" in r.headers
        checked += 1
    assert checked > 45


def test_too_weak_role_gets_403_on_every_route(stack, client, hdr):
    checked = 0
    for method, path, op in _operations(stack.app):
        perm = op.get("x-citysoc-permission")
        if perm in (None, "authenticated"):
            continue
        weak = [r for r in ROLES if perm not in ROLE_PERMISSIONS[r]]
        assert weak, f"{perm} is held by every role"
        for role in weak:
            r = client.request(method, _concrete(path), headers=hdr(role))
            assert r.status_code == 403, (method, path, role, r.status_code, r.text)
            if method != "HEAD":  # a HEAD answer has no body (the Elasticsearch-compatible exists checks)
                assert perm in r.json()["detail"]
            checked += 1
    assert checked > 100


def test_public_routes_answer_without_credentials(client):
    assert client.get("/healthz").status_code == 200
    assert client.post(f"{API_PREFIX}/auth/login", json={"username": "nobody", "password": "x"}).status_code == 401


def test_role_matrix_spot_checks(client, hdr):
    assert client.get(f"{API_PREFIX}/alerts", headers=hdr("viewer")).status_code == 200
    assert client.get(f"{API_PREFIX}/audit", headers=hdr("viewer")).status_code == 403
    assert client.get(f"{API_PREFIX}/audit", headers=hdr("auditor")).status_code == 200
    assert client.get(f"{API_PREFIX}/audit/export", headers=hdr("auditor")).status_code == 200
    assert client.get(f"{API_PREFIX}/alerts", headers=hdr("ingest")).status_code == 403
    assert client.get(f"{API_PREFIX}/users", headers=hdr("responder")).status_code == 403
    assert client.get(f"{API_PREFIX}/users", headers=hdr("admin")).status_code == 200
    assert client.post(f"{API_PREFIX}/rules/test-brute-force/disable", headers=hdr("analyst")).status_code == 403
    r = client.post(f"{API_PREFIX}/rules/test-brute-force/disable", headers=hdr("admin"))
    assert r.status_code == 200 and r.json()["enabled"] is False


@pytest.mark.parametrize("form", ["raw", "es_base64", "id_secret_base64", "bearer"])
def test_api_key_forms(stack, client, form):
    key = stack.keys["viewer"]
    kid, secret = key[4:16], key[17:]
    value = {
        "raw": f"ApiKey {key}",
        "es_base64": "ApiKey " + base64.b64encode(f"{kid}:{key}".encode()).decode(),
        "id_secret_base64": "ApiKey " + base64.b64encode(f"{kid}:{secret}".encode()).decode(),
        "bearer": f"Bearer {key}",
    }[form]
    r = client.get(f"{API_PREFIX}/auth/me", headers={"Authorization": value})
    assert r.status_code == 200, r.text
    assert r.json()["role"] == "viewer"


def test_wrong_and_revoked_keys_get_401(stack, client):
    key = stack.keys["viewer"]
    bad = key[:-3] + ("AAA" if not key.endswith("AAA") else "BBB")
    assert client.get(f"{API_PREFIX}/auth/me", headers={"Authorization": f"ApiKey {bad}"}).status_code == 401
    stack.soc.users.revoke_api_key(key[4:16])
    r = client.get(f"{API_PREFIX}/auth/me", headers={"Authorization": f"ApiKey {key}"})
    assert r.status_code == 401 and "revoked" in r.json()["detail"]


def test_basic_auth_only_on_ingest_routes(stack, client):
    basic = {"Authorization": "Basic " + base64.b64encode(f"apikey:{stack.keys['ingest']}".encode()).decode()}
    assert client.get("/", headers=basic).status_code == 200
    admin_basic = {"Authorization": "Basic " + base64.b64encode(f"apikey:{stack.keys['admin']}".encode()).decode()}
    r = client.get(f"{API_PREFIX}/alerts", headers=admin_basic)
    assert r.status_code == 401 and "only on ingest routes" in r.json()["detail"]


def _login(client, user="alice", password="correct horse battery"):
    return client.post(f"{API_PREFIX}/auth/login", json={"username": user, "password": password})


def test_session_cookie_csrf_and_logout(stack, client):
    stack.soc.users.create_user("alice", "analyst", "correct horse battery")
    stack.state.services.alert_recorder.emit([Detection("r1", "t", "high", [{"host": {"name": "h"}}])])
    r = _login(client)
    assert r.status_code == 200
    csrf = r.json()["csrf_token"]
    cookie = r.headers.get_list("set-cookie")
    session_cookie = next(c for c in cookie if c.startswith("citysoc_session="))
    assert "HttpOnly" in session_cookie and "SameSite=lax" in session_cookie.replace("Lax", "lax")
    assert client.get(f"{API_PREFIX}/auth/me").json()["name"] == "alice"
    # State-changing request with the cookie but without the CSRF token: refused.
    r = client.patch(f"{API_PREFIX}/alerts/1", json={"status": "acknowledged"})
    assert r.status_code == 403 and "CSRF" in r.json()["detail"]
    r = client.patch(f"{API_PREFIX}/alerts/1", json={"status": "acknowledged"}, headers={"X-CSRF-Token": "nope"})
    assert r.status_code == 403
    r = client.patch(f"{API_PREFIX}/alerts/1", json={"status": "acknowledged"}, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 200 and r.json()["status"] == "acknowledged"
    assert client.post(f"{API_PREFIX}/auth/logout", headers={"X-CSRF-Token": csrf}).status_code == 204
    client.cookies.clear()
    assert client.get(f"{API_PREFIX}/auth/me").status_code == 401


def test_login_is_throttled_per_user_and_address(stack, client):
    stack.soc.users.create_user("bob", "viewer", "correct horse battery")
    for _ in range(5):
        assert _login(client, "bob", "wrong password!").status_code == 401
    r = _login(client, "bob", "correct horse battery")
    assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0
    # Another user from the same address is not locked out.
    stack.soc.users.create_user("carol", "viewer", "correct horse battery")
    assert _login(client, "carol", "correct horse battery").status_code == 200


def test_disabled_user_cannot_sign_in_and_changes_are_audited(stack, client, hdr):
    r = client.post(f"{API_PREFIX}/users", headers=hdr("admin"), json={"name": "dave", "role": "analyst"})
    assert r.status_code == 201
    generated = r.json()["password"]
    assert _login(client, "dave", generated).status_code == 200
    client.cookies.clear()
    assert client.patch(f"{API_PREFIX}/users/dave", headers=hdr("admin"), json={"disabled": True}).status_code == 200
    assert _login(client, "dave", generated).status_code == 401
    actions = [e.action for e in stack.soc.audit.list(limit=50)[1]]
    assert {"user.create", "user.update", "auth.login", "auth.login_failed"} <= set(actions)
    assert stack.soc.audit.verify().ok


def test_no_secret_reaches_any_log_or_the_audit_log(stack, client, hdr, caplog):
    caplog.set_level(logging.DEBUG)
    r = client.post(f"{API_PREFIX}/apikeys", headers=hdr("admin"), json={"name": "filebeat", "role": "ingest"})
    new_key = r.json()["key"]
    client.get("/", headers={"Authorization": f"ApiKey {new_key}"})
    stack.soc.users.create_user("erin", "viewer", "s3cret-password-xyz")
    _login(client, "erin", "s3cret-password-xyz")
    _login(client, "erin", "wrong-password-abc")
    secrets_ = [new_key, new_key[17:], "s3cret-password-xyz", "wrong-password-abc", stack.keys["admin"]]
    logged = "\n".join(rec.getMessage() for rec in caplog.records)
    audit_text = "\n".join(str(e.to_dict()) for e in stack.soc.audit.iter_all())
    db_text = (stack.data / "soc.db").read_bytes()
    for s in secrets_:
        assert s not in logged
        assert s not in audit_text
        assert s.encode() not in db_text
