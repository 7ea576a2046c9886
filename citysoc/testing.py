"""Helpers for testing against a real citysoc: free loopback ports, the CLI as a
subprocess, polling, and :class:`ServeProcess` (a real `citysoc serve` with its own data
directory). Shipped with the package, as httpx ships its mock transport, so the project's
tests and a site's own acceptance tests drive citysoc the same way.

Example::

    srv = ServeProcess(tmp_path / "data")
    key = srv.api_key("admin")
    srv.start()
    try:
        assert srv.count(key, "*") == 0
    finally:
        srv.stop()
"""
from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import httpx

__all__ = ["free_port", "run_cli", "wait_for", "ServeProcess", "netns_pair", "corpora_dir", "child_pids",
           "descendants", "pack_test_events", "parity_syslog_events"]

_T = TypeVar("_T")

_REPO = Path(__file__).resolve().parents[1]


def corpora_dir() -> Path:
    """Where the shared corpora are (real SigmaHQ rules, attack EVTX, pcaps, ecs-parity).

    ``$CITYSOC_CORPORA`` if set, else ``shared/corpora`` beside the checkout (the CI
    layout), else beside the main checkout of a worktree (``/work/wt/<name>`` ->
    ``/work/shared``). Tests skip with a reason when the folder is absent, so the one
    place that knows the layout is here."""
    env = os.environ.get("CITYSOC_CORPORA")
    if env:
        return Path(env)
    for base in (_REPO.parent, _REPO.parent.parent):
        if (base / "shared" / "corpora").is_dir():
            return base / "shared" / "corpora"
    return _REPO.parent / "shared" / "corpora"


def child_pids(pid: int) -> list[int]:
    """The live children of ``pid`` (every thread's), from /proc."""
    out: list[int] = []
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return out
    for task in tasks:
        try:
            out += [int(k) for k in (task / "children").read_text().split()]
        except OSError:
            pass
    return out


def descendants(pid: int, comm_prefix: str = "") -> list[int]:
    """Every live descendant of ``pid`` whose command name starts with ``comm_prefix``
    (e.g. ``citysoc-det``: the detector processes, forked by the forkserver, not serve)."""
    found, todo = [], [pid]
    while todo:
        for kid in child_pids(todo.pop()):
            todo.append(kid)
            try:
                if Path(f"/proc/{kid}/comm").read_text().startswith(comm_prefix):
                    found.append(kid)
            except OSError:
                continue
    return sorted(found)


def pack_test_events() -> list[dict[str, Any]]:
    """Every event of our Sigma pack's rule tests (``match`` and ``nomatch``), as written."""
    import yaml

    from detections.packs import SIGMA_PACK

    out: list[dict[str, Any]] = []
    for tests in sorted(Path(SIGMA_PACK).rglob("*.tests.yml")):
        doc = yaml.safe_load(tests.read_text()) or {}
        out += [ev for ev in doc.get("match", []) + doc.get("nomatch", []) if isinstance(ev, dict)]
    return out


def parity_syslog_events(streams: tuple[str, ...] = ("system.auth", "system.syslog")) -> list[dict[str, Any]]:
    """Every line of Elastic's pipeline-test logs of ``streams`` (``ecs-parity``), parsed
    by our syslog parser: real Linux auth and syslog lines nobody here wrote. [] without
    the corpora."""
    from collectors.parsers import parse_record
    from core.protocols import RawRecord

    base = corpora_dir() / "ecs-parity"
    out: list[dict[str, Any]] = []
    for stream in streams:
        for log in sorted((base / stream).glob("*.log")):
            out += [parse_record(RawRecord(line.encode(), format="syslog"))
                    for line in log.read_text().splitlines() if line.strip()]
    return out


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (also free for UDP in practice)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_cli(env: dict[str, str], *args: str, timeout: float = 120) -> str:
    """Run ``citysoc ARGS`` with ``env``; returns stdout, fails with stderr on a non-zero exit."""
    res = subprocess.run([sys.executable, "-m", "citysoc.cli", *args], env=env, capture_output=True, text=True,
                         timeout=timeout)
    if res.returncode != 0:
        raise AssertionError(f"citysoc {' '.join(args)} exited {res.returncode}: {res.stderr}")
    return res.stdout


def wait_for(fn: Callable[[], _T], timeout: float = 30.0, interval: float = 0.2) -> _T:
    """Call ``fn`` until it returns something truthy or ``timeout`` passes; returns its last answer."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = fn()
        if got:
            return got
        time.sleep(interval)
    return fn()


class ServeProcess:
    """One `citysoc serve` process with its own data directory, ports and log file."""

    def __init__(self, data: Path, config: Path | None = None, env: dict[str, str] | None = None):
        self.data = Path(data)
        self.env = dict(os.environ, CITYSOC_DATA=str(self.data), **(env or {}))
        if config is not None:
            self.env["CITYSOC_CONFIG"] = str(config)
        self.http_port = free_port()
        self.syslog_port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = self.data.parent / f"serve-{self.http_port}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def cli(self, *args: str) -> str:
        return run_cli(self.env, *args)

    def api_key(self, role: str) -> str:
        """A new API key with ``role`` (made with the CLI, as an administrator would)."""
        out = self.cli("apikeys", "create", f"test-{role}-{time.monotonic_ns()}", "--role", role)
        m = re.search(r"(csk_\S+)", out)
        if m is None:
            raise AssertionError(f"no key in: {out}")
        return m.group(1)

    def start(self, timeout: float = 90) -> None:
        """Start and wait for /healthz to answer 200; fails with the server's log."""
        self.data.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "citysoc.cli", "serve", "--port", str(self.http_port), "--syslog-port",
             str(self.syslog_port)], env=self.env, stdout=open(self.log, "ab"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"serve exited {self.proc.returncode}: {self.log_tail()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise AssertionError("serve did not become ready: " + self.log_tail())

    def log_tail(self, n: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-n:] if self.log.exists() else ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=timeout)

    def get(self, key: str, path: str, **params: Any) -> httpx.Response:
        return httpx.get(f"{self.url}{path}", params=params, headers={"Authorization": f"ApiKey {key}"}, timeout=30)

    def count(self, key: str, q: str) -> int:
        r = self.get(key, "/api/v1/events/count", q=q)
        r.raise_for_status()
        return r.json()["count"]

    def wait_count(self, key: str, q: str, n: int, timeout: float = 60) -> int:
        """The count of ``q`` once it reaches ``n`` (or the last count at ``timeout``)."""
        got = wait_for(lambda: (c := self.count(key, q)) >= n and c, timeout)
        return got if got else self.count(key, q)


@contextmanager
def netns_pair(prefix: str, addr_a: str, addr_b: str, plen: int = 24) -> Iterator[tuple[str, str, str, str]]:
    """Two network namespaces joined by a veth pair, torn down afterwards (needs root and
    ``ip``). Yields ``(ns_a, ns_b, veth_a, veth_b)``; names carry ``prefix`` and this
    process id, so parallel runs never meet. Tests only: addresses live inside the pair."""
    tag = f"{os.getpid() % 100000}"
    ns_a, ns_b = f"{prefix}-a-{tag}", f"{prefix}-b-{tag}"
    veth_a, veth_b = f"{prefix[:5]}a{tag}", f"{prefix[:5]}b{tag}"

    def run(*args: str) -> None:
        subprocess.run(args, check=True, capture_output=True, text=True, timeout=20)

    try:
        run("ip", "netns", "add", ns_a)
        run("ip", "netns", "add", ns_b)
        run("ip", "link", "add", veth_a, "type", "veth", "peer", "name", veth_b)
        run("ip", "link", "set", veth_a, "netns", ns_a)
        run("ip", "link", "set", veth_b, "netns", ns_b)
        for ns, dev, addr in ((ns_a, veth_a, addr_a), (ns_b, veth_b, addr_b)):
            run("ip", "-n", ns, "addr", "add", f"{addr}/{plen}", "dev", dev)
            run("ip", "-n", ns, "link", "set", dev, "up")
            run("ip", "-n", ns, "link", "set", "lo", "up")
        yield ns_a, ns_b, veth_a, veth_b
    finally:
        for ns in (ns_a, ns_b):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=20)
        subprocess.run(["ip", "link", "del", veth_a], capture_output=True, timeout=20)
