"""`citysoc serve` with two detector processes (``pipeline.detector_processes: 2``) beside
a parse worker: SSH brute forces sent over syslog TCP raise their alerts from the
detector processes, and a detector process SIGKILLed halfway through every source's
window is rebuilt from its replay log, so each source still alerts exactly once."""
from __future__ import annotations

import os
import signal
import socket
import time

import httpx
import pytest

from citysoc.testing import ServeProcess, descendants, wait_for

pytestmark = [pytest.mark.timeout(240)]

SOURCES = [f"198.51.100.{i}" for i in range(1, 9)]


def _detector_processes(serve_pid: int) -> list[int]:
    return descendants(serve_pid, "citysoc-det")


def _lines(first: int, last: int) -> bytes:
    return b"".join(
        f"<38>Dec  6 08:00:{2 * n:02d} gw-d1 sshd[{4000 + n}]: Failed password for invalid user op{n} "
        f"from {src} port {50000 + n} ssh2\n".encode()
        for n in range(first, last) for src in SOURCES)


def test_brute_force_alerts_come_from_detector_processes_and_survive_a_kill(tmp_path):
    cfg = tmp_path / "citysoc.yml"
    cfg.write_text("pipeline: {workers: 1, detector_processes: 2}\n")
    srv = ServeProcess(tmp_path / "data", config=cfg)
    srv.data.mkdir()
    viewer = srv.api_key("viewer")
    srv.start()
    assert srv.proc is not None
    try:
        procs = wait_for(lambda: p if len(p := _detector_processes(srv.proc.pid)) == 2 else None, 30)
        assert procs, "expected 2 detector processes"
        # Seven failures per source (the threshold is ten): half a window in each process.
        with socket.create_connection(("127.0.0.1", srv.syslog_port)) as tcp:
            tcp.sendall(_lines(0, 7))
        assert srv.wait_count(viewer, "event.outcome:failure AND source.ip:198.51.100.*", 7 * len(SOURCES)) == 56
        time.sleep(1.0)  # stored, then detected: the processes hold the counts now
        os.kill(procs[0], signal.SIGKILL)
        with socket.create_connection(("127.0.0.1", srv.syslog_port)) as tcp:
            tcp.sendall(_lines(7, 15))
        assert srv.wait_count(viewer, "event.outcome:failure AND source.ip:198.51.100.*", 15 * len(SOURCES)) == 120

        def brute_forces() -> dict[str, int] | None:
            r = httpx.get(f"{srv.url}/api/v1/alerts", params={"limit": 500},
                          headers={"Authorization": f"ApiKey {viewer}"}, timeout=30)
            got: dict[str, int] = {}
            for a in r.json()["items"]:
                if "net:brute_force" in (a.get("rules") or [a["rule_id"]]):
                    ip = a["entities"].get("source_ip")
                    got[ip] = got.get(ip, 0) + 1
            return got if len(got) == len(SOURCES) else None

        got = wait_for(brute_forces, 60)
        assert got == dict.fromkeys(SOURCES, 1), f"{got}\n{srv.log_tail()}"
        now = _detector_processes(srv.proc.pid)
        assert len(now) == 2 and procs[0] not in now
        assert "restarting it" in srv.log_tail(20000)
        metrics = httpx.get(f"{srv.url}/metrics", headers={"Authorization": f"ApiKey {viewer}"}, timeout=10).text
        assert "detector-processes" in metrics
    finally:
        srv.stop()
