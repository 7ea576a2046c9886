"""A SOC gateway built from network namespaces for the nftables tests (root only).

``gw`` routes between an attacker (10.99.40.2) and an ordinary client (10.99.41.2),
and listens on TCP 8080 on both of its addresses (10.99.40.1, 10.99.41.1). Addresses
exist only inside the namespaces; everything is removed in :meth:`Gateway.close`.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

import pytest

ATTACKER, CLIENT = "10.99.40.2", "10.99.41.2"
GW_A, GW_C = "10.99.40.1", "10.99.41.1"
PORT = 8080

_SERVER = f"""
import socket, threading
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", {PORT})); s.listen(64)
while True:
    c, _ = s.accept()
    try:
        c.sendall(b"ok"); c.close()
    except OSError:
        pass
"""

_CONNECT = """
import socket, sys
try:
    c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=float(sys.argv[3]))
    sys.exit(0 if c.recv(2) == b"ok" else 2)
except OSError:
    sys.exit(1)
"""


def require_netns() -> None:
    if os.geteuid() != 0:
        pytest.skip("nftables tests create network namespaces: run as root")
    for tool in ("ip", "nft"):
        if shutil.which(tool) is None:
            pytest.skip(f"`{tool}` is not installed (scripts/system-deps.sh installs nftables and iproute2)")


def _run(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True, text=True, timeout=20)


class Gateway:
    def __init__(self) -> None:
        tag = f"{os.getpid() % 100000}{int(time.monotonic() * 1000) % 1000}"
        self.gw, self.att, self.cli = f"cspb-gw-{tag}", f"cspb-at-{tag}", f"cspb-cl-{tag}"
        self._server: subprocess.Popen | None = None
        self._nss: list[str] = []
        try:
            for ns in (self.gw, self.att, self.cli):
                _run("ip", "netns", "add", ns)
                self._nss.append(ns)
            links = ((self.att, f"pba{tag}"[:15], f"pbg{tag}"[:15], ATTACKER, GW_A),
                     (self.cli, f"pbc{tag}"[:15], f"pbh{tag}"[:15], CLIENT, GW_C))
            for ns, inner, outer, addr, gw_addr in links:
                _run("ip", "link", "add", inner, "netns", ns, "type", "veth", "peer", "name", outer, "netns", self.gw)
                _run("ip", "-n", ns, "addr", "add", f"{addr}/24", "dev", inner)
                _run("ip", "-n", self.gw, "addr", "add", f"{gw_addr}/24", "dev", outer)
                _run("ip", "-n", ns, "link", "set", inner, "up")
                _run("ip", "-n", self.gw, "link", "set", outer, "up")
                _run("ip", "-n", ns, "link", "set", "lo", "up")
                _run("ip", "-n", ns, "route", "add", "default", "via", gw_addr)
            _run("ip", "-n", self.gw, "link", "set", "lo", "up")
            _run("ip", "netns", "exec", self.gw, "sysctl", "-qw", "net.ipv4.ip_forward=1")
            self._server = subprocess.Popen(["ip", "netns", "exec", self.gw, sys.executable, "-c", _SERVER],
                                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            deadline = time.monotonic() + 10
            while not self.connects(self.cli, GW_C, timeout=0.5):
                if time.monotonic() > deadline:
                    raise RuntimeError("the test server in the gateway namespace did not come up")
                time.sleep(0.05)
        except BaseException:
            self.close()
            raise

    @property
    def prefix(self) -> list[str]:
        return ["ip", "netns", "exec", self.gw]

    def connects(self, ns: str, host: str, *, timeout: float = 1.0) -> bool:
        """A real TCP connect from namespace ``ns`` to ``host:8080``: True when it got through."""
        cp = subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c", _CONNECT, host, str(PORT), str(timeout)],
                            capture_output=True, timeout=timeout + 10)
        return cp.returncode == 0

    def nft(self, *args: str) -> str:
        return subprocess.run([*self.prefix, "nft", *args], check=True, capture_output=True, text=True,
                              timeout=10).stdout

    def close(self) -> None:
        if self._server is not None:
            self._server.kill()
            self._server.wait(5)
        for ns in reversed(self._nss):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=20)
        self._nss.clear()
