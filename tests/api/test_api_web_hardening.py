"""Issue 18, items 4-5 (web): each finding of the red-team pass, attacked on a real
``citysoc serve`` (or on the component where the answer is the component's own), with
the answer we now give. Every test here failed on the code before the fix."""
from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys

import httpx
import pytest

from citysoc.testing import ServeProcess, wait_for

pytestmark = [pytest.mark.timeout(180)]


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("web-hardening")
    cfg = tmp / "citysoc.yml"
    cfg.write_text("server:\n  header_timeout: 1.5\n")
    s = ServeProcess(tmp / "data", config=cfg)
    old = os.umask(0o022)  # a permissive caller: serve must not inherit it
    try:
        s.data.mkdir()
        s.keys = {r: s.api_key(r) for r in ("ingest", "viewer", "admin")}
        s.start()
    finally:
        os.umask(old)
    yield s
    s.stop()


def _h(srv, role: str) -> dict[str, str]:
    return {"Authorization": f"ApiKey {srv.keys[role]}"}


# -- GET / (Elasticsearch info) needs an ingest key, as Filebeat sends it ---------------------
def test_es_info_needs_an_ingest_key(srv):
    assert httpx.get(srv.url + "/").status_code == 401
    assert httpx.get(srv.url + "/", headers={"Accept": "application/json"}).status_code == 401
    r = httpx.get(srv.url + "/", headers=_h(srv, "ingest"))
    assert r.status_code == 200 and r.headers["x-elastic-product"] == "Elasticsearch"
    # Filebeat's own form: HTTP basic with the key as password.
    r = httpx.get(srv.url + "/", auth=("apikey", srv.keys["ingest"]))
    assert r.status_code == 200 and r.json()["version"]["number"].startswith("8.")
    assert httpx.get(srv.url + "/", headers=_h(srv, "viewer")).status_code == 403


# -- X-Forwarded-For is ignored unless the peer is a listed proxy -----------------------------
def test_forwarded_for_from_loopback_does_not_reset_the_login_throttle(srv):
    statuses = []
    for i in range(7):  # every try claims another client address
        r = httpx.post(srv.url + "/api/v1/auth/login", json={"username": "admin", "password": f"wrong-{i}xxxxx"},
                       headers={"X-Forwarded-For": f"198.51.100.{i + 1}"})
        statuses.append(r.status_code)
    assert statuses[:5] == [401] * 5 and statuses[5:] == [429, 429], statuses
    r = httpx.get(srv.url + "/api/v1/audit", params={"action": "auth.login_failed"}, headers=_h(srv, "admin"))
    assert r.status_code == 200
    ips = {e.get("source_ip") for e in r.json()["items"]}
    assert ips == {"127.0.0.1"}, ips


# -- the next redirect after sign-in stays on this site ---------------------------------------
@pytest.mark.parametrize("target", ["/%09/evil.example", "//evil.example", "\\\\evil.example", "/\\evil.example",
                                    "https://evil.example/", "/%2509/evil.example", "javascript:alert(1)"])
def test_login_page_refuses_off_site_next(srv, target):
    r = httpx.get(srv.url + "/login", params={"next": target})
    assert r.status_code == 200
    assert '"next":"/"' in r.text.replace(" ", ""), r.text[:400]
    r = httpx.get(srv.url + "/lang/en", params={"next": target})
    assert r.status_code == 303 and r.headers["location"] == "/"


def test_login_page_keeps_a_same_site_bookmark(srv):
    r = httpx.get(srv.url + "/login", params={"next": "/search?q=host.name:cam-1"})
    assert '"next":"/search?q=host.name:cam-1"' in r.text.replace(" ", "")


# -- date math overflow: 400 with a reason, not 500; CLI message, not a traceback ---------------
@pytest.mark.parametrize("params", [{"q": "@timestamp:[now-9999999999d TO now]"},
                                    {"q": "*", "from": "now-99999999999999w"},
                                    {"q": "@timestamp:[now-99999999y TO now]"}])
def test_date_math_overflow_is_a_400(srv, params):
    r = srv.get(srv.keys["viewer"], "/api/v1/events/search", **params)
    assert r.status_code == 400, r.text
    assert "now-30d" in r.text or "too long" in r.text or "too far back" in r.text


def test_cli_date_math_overflow_prints_an_error(srv):
    res = subprocess.run([sys.executable, "-m", "citysoc.cli", "search", "*", "--since", "99999999999999w"],
                         env=srv.env, capture_output=True, text=True, timeout=60)
    assert res.returncode != 0 and "Traceback" not in res.stderr and "too long" in res.stderr
    res = subprocess.run([sys.executable, "-m", "citysoc.cli", "search", "@timestamp:[now-9999999999d TO now]"],
                         env=srv.env, capture_output=True, text=True, timeout=60)
    assert res.returncode != 0 and "Traceback" not in res.stderr and "years 1-9999" in res.stderr


# -- the data directory is private ------------------------------------------------------------
def test_data_dir_is_0700_and_files_0600(srv):
    wait_for(lambda: (srv.data / "events.db").exists())
    assert stat.S_IMODE(srv.data.stat().st_mode) == 0o700
    loose = [(str(p.relative_to(srv.data)), oct(stat.S_IMODE(p.stat().st_mode))) for p in srv.data.rglob("*")
             if not p.is_symlink() and stat.S_IMODE(p.stat().st_mode) & 0o077]
    assert not loose, loose
    assert any(p.name == "soc.db" for p in srv.data.iterdir())


# -- headers trickled byte by byte: the connection is closed ----------------------------------
def test_trickled_headers_are_cut_off(srv):
    with socket.create_connection(("127.0.0.1", srv.http_port), timeout=30) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        closed = False
        for _ in range(40):  # one header byte every 0.25 s: well past the 1.5 s deadline
            try:
                s.sendall(b"X")
            except OSError:
                closed = True
                break
            s.settimeout(0.25)
            try:
                if s.recv(1) == b"":
                    closed = True
                    break
            except TimeoutError:
                pass
        assert closed, "a trickling client kept its connection"
    # a normal request on a fresh connection still works
    assert httpx.get(srv.url + "/healthz").status_code == 200


# -- dead letters: capped per entry, pages bounded in bytes -------------------------------------
def test_dead_letter_pages_are_bounded(srv):
    big = b"x" * (2 * 1024 * 1024) + b"\n"  # one 2 MiB line that is no event
    for _ in range(4):
        r = httpx.post(srv.url + "/api/v1/ingest", content=b"{" + big, headers=_h(srv, "ingest"), timeout=60)
        assert r.status_code == 200
    r = srv.get(srv.keys["viewer"], "/api/v1/deadletters", limit=200)
    assert r.status_code == 200
    body = r.json()
    assert body["total"] >= 4
    assert len(r.content) < 8 * 1024 * 1024
    first = body["items"][0]
    assert first["meta"]["truncated"] is True and first["meta"]["raw_bytes"] > 2 * 1024 * 1024
    assert srv.get(srv.keys["viewer"], "/api/v1/deadletters", limit=1000).status_code == 422


# -- connections at once: past server.limit_concurrency a request is a 503, not a queue --------
def test_connections_past_the_concurrency_limit_are_answered_503(tmp_path):
    """Issue 18: 500 idle connections were all accepted and held. With
    ``server.limit_concurrency`` uvicorn answers 503 once that many connections are open,
    and serves again when they go."""
    cfg = tmp_path / "citysoc.yml"
    cfg.write_text("server:\n  limit_concurrency: 4\n  header_timeout: 30\n")
    s = ServeProcess(tmp_path / "data", config=cfg)
    s.data.mkdir()
    s.start()
    idle: list[socket.socket] = []
    try:
        for _ in range(4):  # silent connections: each holds a slot until its header deadline
            idle.append(socket.create_connection(("127.0.0.1", s.http_port), timeout=10))

        def refused() -> bool:
            return httpx.get(s.url + "/healthz", timeout=10).status_code == 503

        assert wait_for(refused, timeout=10), "a request past the connection limit was served"
        for c in idle:
            c.close()
        idle.clear()
        assert wait_for(lambda: httpx.get(s.url + "/healthz", timeout=10).status_code == 200, timeout=15)
    finally:
        for c in idle:
            c.close()
        s.stop()
