"""Zero-setup first start: `citysoc serve` on an empty data dir creates an admin with a
random password, prints it once and keeps it in a 0600 file; the API then needs it.
Then the whole served path: syslog -> parser -> store -> our Sigma pack -> alert on the
API and the SSE stream within a second, ten identical lines making one alert."""
from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from citysoc.wiring import ensure_initial_admin, open_soc
from core.settings import Settings


def test_initial_admin_is_created_once(tmp_path):
    settings = Settings(data=tmp_path)
    soc = open_soc(settings)
    printed: list[str] = []
    password = ensure_initial_admin(settings, soc, echo=printed.append)
    assert password and password in printed[0]
    f = tmp_path / "initial-admin-password"
    assert f.read_text().strip() == password
    assert stat.S_IMODE(f.stat().st_mode) == 0o600
    assert soc.users.authenticate("admin", password).role == "admin"
    assert ensure_initial_admin(settings, soc, echo=printed.append) is None
    assert len(printed) == 1
    entry = soc.audit.list(action="user.create")[1][0]
    assert entry.actor == "system:serve" and password not in str(entry.to_dict())
    soc.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_on_an_empty_data_dir(tmp_path):
    port = _free_port()
    env = {**os.environ, "CITYSOC_DATA": str(tmp_path)}
    env.pop("CITYSOC_CONFIG", None)
    syslog_port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "citysoc.cli", "serve", "--port", str(port),
                             "--syslog-port", str(syslog_port), "--log-level", "warning"], env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, proc.stderr.read()
            assert time.monotonic() < deadline, "serve did not become ready in 30 s"
            time.sleep(0.2)
        password = (tmp_path / "initial-admin-password").read_text().strip()
        assert httpx.get(f"{url}/api/v1/alerts").status_code == 401
        with httpx.Client(base_url=url) as c:
            r = c.post("/api/v1/auth/login", json={"username": "admin", "password": password})
            assert r.status_code == 200 and r.json()["role"] == "admin"
            assert c.get("/api/v1/alerts").json()["total"] == 0
            # The whole path: syslog over UDP -> parser -> store -> our Sigma pack -> alert
            # -> the console's stream (which must also not hold the shutdown up).
            frames: list[tuple[float, str]] = []
            stream_ended = threading.Event()
            connected = threading.Event()

            def follow() -> None:
                try:
                    with c.stream("GET", "/api/v1/alerts/stream", timeout=httpx.Timeout(5, read=60)) as s:
                        for line in s.iter_lines():
                            connected.set()
                            if line.startswith("event: "):
                                frames.append((time.monotonic(), line[7:]))
                except httpx.HTTPError:
                    pass
                stream_ended.set()

            threading.Thread(target=follow, daemon=True).start()
            assert connected.wait(5)
            line = b"<12>Nov 25 10:20:30 NVR-D3-02 Dahua: [Account] Account Locked. User: admin, IP: 203.0.113.61"
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                t_sent = time.monotonic()
                for _ in range(10):
                    udp.sendto(line, ("127.0.0.1", syslog_port))
            rule_id = "44d1ee55-f51a-47c3-919a-8f59e609c980"  # camera_account_locked.yml
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                items = c.get("/api/v1/alerts").json()["items"]
                locked = [a for a in items if a["rule_id"] == rule_id]
                if locked and locked[0]["count"] == 10:
                    break
                time.sleep(0.1)
            # Ten identical lines: one alert of count 10 (the pack's brute-force correlation
            # rule may add its own alert for the same ten failures).
            assert len(locked) == 1 and locked[0]["count"] == 10, [(a["rule_title"], a["count"]) for a in items]
            assert locked[0]["entities"]["source_ip"] == "203.0.113.61"
            # The SSE frame arrives (its latency is a benchmark figure: bench/bench_api.py).
            wait_until = time.monotonic() + 15
            while time.monotonic() < wait_until and not any(n == "alert.created" for _, n in frames):
                time.sleep(0.05)
            created = [t for t, name in frames if name == "alert.created"]
            assert created and created[0] >= t_sent, frames
            t0 = time.monotonic()
            proc.terminate()
            _out, err = proc.communicate(timeout=20)
            assert time.monotonic() - t0 < 5, "shutdown waited on the open alert stream"
            assert stream_ended.wait(5)
    finally:
        if proc.poll() is None:
            proc.terminate()
            _out, err = proc.communicate(timeout=20)
    assert password in err  # printed once to the terminal ...
    assert err.count(password) == 1
    assert not list(Path(tmp_path).glob("*.log"))  # ... and no log file holds it
