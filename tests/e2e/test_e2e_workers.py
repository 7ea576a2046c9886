"""`citysoc serve` with two parse worker processes: SIGKILL one of them while `_bulk`
batches stream in. The server carries on, every batch is acknowledged, and every
acknowledged batch is stored exactly once (the killed worker's batch was parsed again)."""
from __future__ import annotations

import os
import signal
import socket
import threading
import time
from pathlib import Path

import httpx
import orjson
import pytest

from citysoc.testing import ServeProcess, child_pids, wait_for

pytestmark = [pytest.mark.timeout(240)]


def _parse_workers(serve_pid: int) -> list[int]:
    """The forkserver's children: with the forkserver method the workers are forked by it."""
    found = []
    for child in child_pids(serve_pid):
        try:
            cmd = Path(f"/proc/{child}/cmdline").read_bytes()
        except OSError:
            continue
        if b"forkserver" in cmd:
            found += child_pids(child)
    return found


_RULE = """title: wkill first record of a batch
id: 5d1c7a52-0a43-4c5e-9d64-3f0e1b2a7c11
status: test
logsource: {product: citysoc, category: test}
detection:
  sel:
    message|endswith: ' n0'
  condition: sel
level: low
"""


def test_sigkill_of_a_parse_worker_loses_nothing_and_duplicates_nothing(tmp_path):
    """Workers parse and match Sigma's base rules: a worker killed mid-batch has its batch
    parsed and matched again, and since detections are emitted only after the commit, the
    rule that fires once per batch counts exactly the acknowledged batches."""
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "wkill.yml").write_text(_RULE)
    cfg = tmp_path / "citysoc.yml"
    cfg.write_text(f"pipeline: {{workers: 2}}\nrules: ['{rules}']\n")
    srv = ServeProcess(tmp_path / "data", config=cfg)
    srv.data.mkdir()
    ingest_key, viewer_key = srv.api_key("ingest"), srv.api_key("viewer")
    srv.start()
    acked: list[int] = []
    failed: list[str] = []
    stop = threading.Event()

    def sender() -> None:
        client = httpx.Client(timeout=60)
        batch = 0
        while not stop.is_set() and batch < 400:
            body = b"".join(b'{"create":{"_index":"logs-wkill.test-default"}}\n'
                            + orjson.dumps({"message": f"wkill b{batch} n{i}", "labels": {"batch": batch}}) + b"\n"
                            for i in range(200))
            r = client.post(f"{srv.url}/_bulk", content=body, headers={"Authorization": f"ApiKey {ingest_key}"})
            if r.status_code == 200 and not r.json()["errors"]:
                acked.append(batch)
            else:
                failed.append(f"{r.status_code}: {r.text[:200]}")
            batch += 1

    try:
        assert srv.proc is not None
        deadline = time.monotonic() + 60
        workers = _parse_workers(srv.proc.pid)
        while len(workers) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
            workers = _parse_workers(srv.proc.pid)
        assert len(workers) == 2, f"expected 2 parse workers, found {workers}"
        t = threading.Thread(target=sender)
        t.start()
        while len(acked) < 10 and time.monotonic() < deadline:
            time.sleep(0.02)
        os.kill(workers[0], signal.SIGKILL)
        n_at_kill = len(acked)
        while len(acked) < n_at_kill + 20 and t.is_alive() and time.monotonic() < deadline + 60:
            time.sleep(0.05)
        stop.set()
        t.join(timeout=120)
        assert srv.proc.poll() is None, "serve died with its worker: " + srv.log_tail()
        assert failed == [], failed[:3]
        assert len(acked) >= n_at_kill + 20, "ingest did not carry on after the worker was killed"
        # Workers are back to full strength, and none of them is the one killed.
        now = _parse_workers(srv.proc.pid)
        assert len(now) == 2 and workers[0] not in now
        total = srv.count(viewer_key, "event.dataset:wkill.test")
        assert total == len(acked) * 200  # nothing lost, nothing stored twice
        for b in (acked[0], n_at_kill - 1, n_at_kill, acked[-1]):
            assert srv.count(viewer_key, f"labels.batch:{b} AND event.dataset:wkill.test") == 200
        # One detection per acknowledged batch: none lost with the worker, none twice.
        rule_id = "5d1c7a52-0a43-4c5e-9d64-3f0e1b2a7c11"

        def detected() -> int:
            r = httpx.get(f"{srv.url}/api/v1/alerts", params={"rule_id": rule_id, "limit": 500},
                          headers={"Authorization": f"ApiKey {viewer_key}"}, timeout=30)
            return sum(a["count"] for a in r.json()["items"])

        assert wait_for(lambda: detected() >= len(acked), 60)
        time.sleep(1.0)
        assert detected() == len(acked)
    finally:
        stop.set()
        srv.stop()


def _alive(pid: int) -> bool:
    """Running (a zombie nobody reaped yet counts as ended)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def _serve_with_workers(tmp_path: Path) -> tuple[ServeProcess, str, list[int]]:
    cfg = tmp_path / "citysoc.yml"
    cfg.write_text("pipeline: {workers: 2}\n")
    srv = ServeProcess(tmp_path / "data", config=cfg)
    srv.data.mkdir()
    viewer_key = srv.api_key("viewer")
    srv.start()
    assert srv.proc is not None
    workers = _parse_workers(srv.proc.pid)
    assert len(workers) == 2, workers
    return srv, viewer_key, workers


def test_sigterm_with_an_open_alert_stream_stops_serve_and_its_workers_promptly(tmp_path):
    """uvicorn re-raises the SIGTERM it caught once it has stopped; with Python's default
    handler that killed serve before its cleanup, orphaning the parse workers (which kept
    the caller's pipes open: serve seemed to hang). Now the cleanup runs: exit 0, stream
    ended, workers gone, and what was accepted before the signal is stored."""
    srv, viewer_key, workers = _serve_with_workers(tmp_path)
    assert srv.proc is not None
    connected, ended = threading.Event(), threading.Event()

    def follow() -> None:
        try:
            with httpx.stream("GET", f"{srv.url}/api/v1/alerts/stream", headers={"Authorization": f"ApiKey {viewer_key}"},
                              timeout=httpx.Timeout(5, read=60)) as s:
                for _ in s.iter_lines():
                    connected.set()
        except httpx.HTTPError:
            pass
        ended.set()

    threading.Thread(target=follow, daemon=True).start()
    assert connected.wait(10), "the alert stream did not open: " + srv.log_tail()
    with socket.create_connection(("127.0.0.1", srv.syslog_port)) as tcp:
        tcp.sendall(b"".join(f"<38>Nov 25 10:00:01 gw sshd[7]: Invalid user term{i} from 10.0.0.9 port 22\n".encode()
                             for i in range(500)))
    assert srv.wait_count(viewer_key, "user.name:term*", 500, timeout=30) == 500
    t0 = time.monotonic()
    srv.proc.send_signal(signal.SIGTERM)
    rc = srv.proc.wait(timeout=20)
    took = time.monotonic() - t0
    assert took < 5, f"serve took {took:.1f} s to stop"
    assert rc == 0, srv.log_tail()
    assert ended.wait(5), "the alert stream was not ended"
    deadline = time.monotonic() + 5
    while any(_alive(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(_alive(w) for w in workers), "parse workers outlived serve"
    assert "SIGTERM received" in srv.log_tail()


def test_parse_workers_exit_when_serve_is_killed(tmp_path):
    """SIGKILL gives serve no chance to stop its pool: each worker watches the server
    process and exits on its own instead of waiting on its task queue forever."""
    srv, _key, workers = _serve_with_workers(tmp_path)
    assert srv.proc is not None
    srv.proc.send_signal(signal.SIGKILL)
    srv.proc.wait(timeout=20)
    deadline = time.monotonic() + 5
    while any(_alive(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(_alive(w) for w in workers), "parse workers outlived a killed serve"
