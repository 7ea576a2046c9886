"""Live capture in network namespaces the test creates: real sockets, real tcpreplay.

Two namespaces joined by a veth pair (10.99.7.1 <-> 10.99.7.2, addresses only inside
the namespaces). ``LiveCaptureSource`` runs in a thread that has joined namespace B
(``setns``; the capture thread it starts inherits it) and captures on B's veth end,
while namespace A makes a real TCP connection to a listener in B, sends a DNS query,
and tcpreplay replays a pcap of an RTSP session onto A's veth end.
"""
from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import orjson
import pytest

from citysoc.testing import netns_pair
from collectors.sources.pcap import CaptureError, LiveCaptureSource

pytestmark = [pytest.mark.network]

CLONE_NEWNET = 0x40000000
A_IP, B_IP = "10.99.7.1", "10.99.7.2"


def _require() -> None:
    if os.geteuid() != 0:
        pytest.skip("live capture in network namespaces needs root")
    for tool in ("ip", "tcpreplay"):
        if shutil.which(tool) is None:
            pytest.skip(f"`{tool}` is not installed (scripts/system-deps.sh installs it)")
    if ctypes.util.find_library("pcap") is None:
        pytest.skip("libpcap0.8 is not installed: BPF filters cannot be compiled")


def _run(*args: str, timeout: float = 20) -> subprocess.CompletedProcess:
    return subprocess.run(args, check=True, capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def netns():
    _require()
    with netns_pair("csnet", A_IP, B_IP) as (ns_a, ns_b, veth_a, veth_b):
        yield ns_a, ns_b, veth_a, veth_b


class _CaptureInNamespace:
    """Runs a LiveCaptureSource in its own thread and event loop, inside a namespace."""

    def __init__(self, ns: str, iface: str, bpf: str) -> None:
        self.ns = ns
        self.source = LiveCaptureSource(iface, bpf, promisc=True, batch_interval=0.05, udp_idle=30)
        self.records: list = []
        self.error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task | None = None
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._main, daemon=True)

    def _main(self) -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        fd = os.open(f"/var/run/netns/{self.ns}", os.O_RDONLY)
        try:
            if libc.setns(fd, CLONE_NEWNET) != 0:
                self.error = OSError(ctypes.get_errno(), "setns failed")
                self._started.set()
                return
        finally:
            os.close(fd)

        async def main() -> None:
            async def emit(batch) -> None:
                self.records.extend(batch)

            self._loop = asyncio.get_running_loop()
            self._task = asyncio.create_task(self.source.run(emit))
            self._started.set()
            try:
                await self._task
            except asyncio.CancelledError:
                pass

        try:
            asyncio.run(main())
        except BaseException as exc:  # reported to the test thread
            self.error = exc
            self._started.set()

    def start(self, timeout: float = 10.0) -> None:
        self._thread.start()
        assert self._started.wait(timeout), "capture thread did not start"
        deadline = time.monotonic() + timeout
        while not self.source.ready.is_set():
            if self.error is not None:
                raise self.error
            assert time.monotonic() < deadline, "capture socket did not open in time"
            time.sleep(0.02)

    def stop(self, timeout: float = 15.0) -> list[dict]:
        if self._loop is not None and self._task is not None:
            self._loop.call_soon_threadsafe(self._task.cancel)
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "capture did not stop"
        if self.error is not None and not isinstance(self.error, asyncio.CancelledError):
            raise self.error
        return [orjson.loads(r.data) for r in self.records]


LISTENER = """
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], 8080)); s.listen(1); s.settimeout(20)
print("ready", flush=True)
c, _ = s.accept(); c.settimeout(10)
data = b""
while b"\\r\\n\\r\\n" not in data:
    chunk = c.recv(4096)
    if not chunk: break
    data += chunk
c.sendall(b"HTTP/1.1 200 OK\\r\\nContent-Length: 2\\r\\nConnection: close\\r\\n\\r\\nok")
c.close(); s.close()
"""

CLIENT = """
import socket, sys
c = socket.create_connection((sys.argv[1], 8080), timeout=10)
c.sendall(b"GET /live-test?cam=7 HTTP/1.1\\r\\nHost: nvr.test\\r\\nUser-Agent: citysoc-live-test\\r\\n\\r\\n")
resp = b""
while True:
    chunk = c.recv(4096)
    if not chunk: break
    resp += chunk
assert resp.startswith(b"HTTP/1.1 200"), resp
c.close()
q = bytes.fromhex("abcd01000001000000000000") + b"\\x05cam-7\\x04hcmc\\x04test\\x00" + b"\\x00\\x01\\x00\\x01"
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.sendto(q, (sys.argv[1], 53))
"""


def _rtsp_pcap(path: Path) -> None:
    from scapy.layers.inet import IP, TCP
    from scapy.layers.l2 import Ether
    from scapy.packet import Raw
    from scapy.utils import wrpcap

    eth = Ether(src="02:00:00:00:00:0a", dst="02:00:00:00:00:0b")
    cli, cam = "10.99.200.10", "10.99.200.15"
    req = b"OPTIONS rtsp://10.99.200.15:554/Streaming/Channels/101 RTSP/1.0\r\nCSeq: 1\r\nUser-Agent: replay\r\n\r\n"
    pk = [eth / IP(src=cli, dst=cam) / TCP(sport=45000, dport=554, flags="S", seq=1),
          eth / IP(src=cam, dst=cli) / TCP(sport=554, dport=45000, flags="SA", seq=100, ack=2),
          eth / IP(src=cli, dst=cam) / TCP(sport=45000, dport=554, flags="A", seq=2, ack=101),
          eth / IP(src=cli, dst=cam) / TCP(sport=45000, dport=554, flags="PA", seq=2, ack=101) / Raw(req),
          eth / IP(src=cam, dst=cli) / TCP(sport=554, dport=45000, flags="R", seq=101)]
    wrpcap(str(path), pk)


@pytest.mark.timeout(90)
def test_net_live_capture_in_namespaces(netns, tmp_path: Path) -> None:
    ns_a, ns_b, veth_a, veth_b = netns
    cap = _CaptureInNamespace(ns_b, veth_b, "tcp or udp")
    cap.start()
    events: list[dict] = []
    try:
        listener = subprocess.Popen(["ip", "netns", "exec", ns_b, sys.executable, "-c", LISTENER, B_IP],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert listener.stdout.readline().strip() == "ready", listener.stderr.read()
            _run("ip", "netns", "exec", ns_a, sys.executable, "-c", CLIENT, B_IP)
            assert listener.wait(20) == 0, listener.stderr.read()
        finally:
            if listener.poll() is None:
                listener.kill()
                listener.wait(5)
        replay = tmp_path / "rtsp.pcap"
        _rtsp_pcap(replay)
        out = _run("ip", "netns", "exec", ns_a, "tcpreplay", "-q", "-i", veth_a, "--pps", "200", str(replay))
        assert out.returncode == 0
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and cap.source.counters()["received"] < 10 + 5:
            time.sleep(0.05)
        time.sleep(0.3)
    finally:
        events = cap.stop()

    counters = cap.source.counters()
    assert counters["received"] >= 15 and counters["errors"] == 0 and counters["dropped"] == 0
    assert counters["emitted"] == len(events)
    by_action: dict[str, list[dict]] = {}
    for ev in events:
        by_action.setdefault(ev["event"]["action"], []).append(ev)

    (req,) = list(by_action["http_request"])
    assert req["url"]["path"] == "/live-test" and req["url"]["query"] == "cam=7"
    assert req["user_agent"]["original"] == "citysoc-live-test"
    assert (req["source"]["ip"], req["destination"]["ip"], req["destination"]["port"]) == (A_IP, B_IP, 8080)
    assert req["observer"]["name"] == veth_b
    (resp,) = by_action["http_response"]
    assert resp["http"]["response"]["status_code"] == 200

    tcp_flow = next(e for e in by_action["network_flow"]
                    if e["destination"].get("port") == 8080 and e["source"]["ip"] == A_IP)
    assert tcp_flow["citysoc"]["network"]["flow_end_reason"] == "fin"
    assert {"SYN", "ACK", "FIN"} <= set(tcp_flow["citysoc"]["network"]["tcp_flags"])
    assert tcp_flow["source"]["packets"] >= 4 and tcp_flow["destination"]["packets"] >= 3

    (query,) = by_action["dns_query"]
    assert query["dns"]["question"] == {"name": "cam-7.hcmc.test", "type": "A", "class": "IN"}
    dns_flow = next(e for e in by_action["network_flow"] if e["destination"].get("port") == 53)
    assert dns_flow["citysoc"]["network"]["flow_end_reason"] == "capture_stopped"

    (rtsp,) = by_action["rtsp_request"]
    assert rtsp["citysoc"]["network"]["rtsp"]["method"] == "OPTIONS"
    assert rtsp["url"]["path"] == "/Streaming/Channels/101" and rtsp["source"]["ip"] == "10.99.200.10"
    replayed = next(e for e in by_action["network_flow"] if e["destination"].get("port") == 554)
    assert replayed["network"]["packets"] == 5 and replayed["citysoc"]["network"]["flow_end_reason"] == "rst"


def test_net_live_capture_reports_a_missing_interface(netns) -> None:
    _ns_a, ns_b, _, _ = netns
    cap = _CaptureInNamespace(ns_b, "no-such-if0", "tcp")
    cap._thread.start()
    cap._thread.join(15)
    assert isinstance(cap.error, CaptureError) and "no-such-if0" in str(cap.error)


def test_net_live_capture_reports_a_bad_filter(netns) -> None:
    _ns_a, ns_b, _, veth_b = netns
    cap = _CaptureInNamespace(ns_b, veth_b, "tcp port banana")
    cap._thread.start()
    cap._thread.join(15)
    assert isinstance(cap.error, CaptureError) and "BPF" in str(cap.error)


def test_net_live_source_meets_the_source_protocol() -> None:
    from core.protocols import Source

    src = LiveCaptureSource("eth9", "udp port 53", max_flows=1000)
    assert isinstance(src, Source) and src.name == "pcap:eth9"
    assert src.counters()["received"] == 0 and src.decoder.max_flows == 1000
