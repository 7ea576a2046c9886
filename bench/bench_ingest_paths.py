"""End-to-end ingest: syslog TCP and `_bulk` (socket to committed store) against the
store-only rate measured in the same run.

A real `citysoc serve` runs as a subprocess with a fresh data directory and the detect
stage off (`detection.enabled: false`); the benchmark sends from this process and polls
`/metrics` until the store stage has committed everything.
"""
from __future__ import annotations

import datetime as dt
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import orjson

from storage.sqlite import SQLiteEventStore

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _syslog_lines(n: int) -> list[bytes]:
    now = dt.datetime.now(dt.timezone.utc)
    out = []
    for i in range(n):
        ts = (now - dt.timedelta(seconds=n - i)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        out.append(f"<38>1 {ts} srv-{i % 50:02d} sshd 4242 - - Failed password for invalid user u{i % 97} "
                   f"from 10.{i % 4}.{i % 250}.{i % 200 + 1} port {1024 + i % 60000} ssh2".encode())
    return out


def _docs(n: int) -> list[dict]:
    now = dt.datetime.now(dt.timezone.utc)
    return [{
        "@timestamp": (now - dt.timedelta(seconds=n - i)).isoformat().replace("+00:00", "Z"),
        "event": {"dataset": "camera.access", "category": ["authentication"], "outcome": "failure" if i % 3 else "success"},
        "host": {"name": f"cam-{i % 500:03d}"}, "source": {"ip": f"10.{i % 4}.{i % 250}.{i % 200 + 1}"},
        "user": {"name": f"user{i % 97}"}, "message": f"login attempt {i} from the camera network",
    } for i in range(n)]


def _stored(client: httpx.Client, key: str) -> int:
    text = client.get("/metrics", headers={"Authorization": f"Bearer {key}"}).text
    m = re.search(r'citysoc_component_emitted_total\{component="store",kind="stage"\} (\d+)', text)
    return int(m.group(1)) if m else 0


def _wait_stored(client: httpx.Client, key: str, target: int, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while _stored(client, key) < target:
        if time.monotonic() > deadline:
            raise TimeoutError(f"store reached {_stored(client, key)} of {target}")
        time.sleep(0.05)


def run(quick: bool) -> dict:
    n = 20_000 if quick else 200_000
    figures: dict = {"events": n}
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        # Detection off: this measures collection and storage, as issue 3 asks.
        env = dict(os.environ, CITYSOC_DATA=str(data), CITYSOC_DETECTION__ENABLED="false")
        py = sys.executable
        # Store-only baseline: the same store class, pre-parsed events, batches of 1,000.
        docs = _docs(n)
        store = SQLiteEventStore(Path(tmp) / "baseline.db")
        t0 = time.perf_counter()
        for i in range(0, n, 1000):
            store.ingest(docs[i:i + 1000])
        store_rate = n / (time.perf_counter() - t0)
        store.close()
        figures["store_only_events_per_s"] = round(store_rate)

        key = subprocess.run([py, "-m", "citysoc.cli", "apikeys", "create", "bench", "--role", "admin"], env=env,
                             capture_output=True, text=True, check=True).stdout
        key = re.search(r"(csk_\S+)", key).group(1)
        http_port, syslog_port = _free_port(), _free_port()
        proc = subprocess.Popen([py, "-m", "citysoc.cli", "serve", "--port", str(http_port), "--syslog-port",
                                 str(syslog_port), "--log-level", "warning"], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            client = httpx.Client(base_url=f"http://127.0.0.1:{http_port}", timeout=120)
            deadline = time.monotonic() + 60
            while True:
                try:
                    if client.get("/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError("citysoc serve did not become ready")
                time.sleep(0.1)

            # syslog over TCP, newline framing, one connection.
            lines = _syslog_lines(n)
            payload = b"\n".join(lines) + b"\n"
            t0 = time.perf_counter()
            with socket.create_connection(("127.0.0.1", syslog_port)) as s:
                s.sendall(payload)
            _wait_stored(client, key, n)
            syslog_rate = n / (time.perf_counter() - t0)

            # _bulk, batches of 1,000, acknowledged after commit.
            bodies = []
            for i in range(0, n, 1000):
                body = bytearray()
                for d in docs[i:i + 1000]:
                    body += b'{"create":{"_index":"logs-camera.access-default"}}\n' + orjson.dumps(d) + b"\n"
                bodies.append(bytes(body))
            t0 = time.perf_counter()
            for body in bodies:
                r = client.post("/_bulk", content=body, headers={"Authorization": f"ApiKey {key}",
                                                                  "Content-Type": "application/x-ndjson"})
                r.raise_for_status()
                assert not r.json()["errors"], r.text[:500]
            bulk_rate = n / (time.perf_counter() - t0)
            _wait_stored(client, key, 2 * n)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    figures.update({
        "syslog_tcp_events_per_s": round(syslog_rate),
        "bulk_events_per_s": round(bulk_rate),
        "syslog_vs_store_only": round(syslog_rate / store_rate, 3),
        "bulk_vs_store_only": round(bulk_rate / store_rate, 3),
    })
    return figures
