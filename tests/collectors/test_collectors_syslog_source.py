"""Syslog sources over real loopback sockets: framing, truncation, TLS, backpressure, UDP drops."""
from __future__ import annotations

import asyncio
import shutil
import socket
import ssl
import subprocess
from pathlib import Path

import pytest

from collectors.parsers import parse_record
from collectors.sources.syslog import SyslogFramer, SyslogTCPSource, SyslogUDPSource
from core.protocols import RawRecord


class Collect:
    """An ``Emit`` that keeps what it is given; ``gate`` (when set) holds every batch."""

    def __init__(self) -> None:
        self.records: list[RawRecord] = []
        self.gate: asyncio.Event | None = None
        self.batches = 0

    async def __call__(self, batch):
        if self.gate is not None:
            await self.gate.wait()
        self.records.extend(batch)
        self.batches += 1

    async def wait_for(self, n: int, timeout: float = 10.0) -> None:
        async def _poll() -> None:
            while len(self.records) < n:
                await asyncio.sleep(0.01)
        await asyncio.wait_for(_poll(), timeout)


async def _start(src, sink):
    task = asyncio.create_task(src.run(sink))
    await asyncio.wait_for(src.ready.wait(), 5)
    return task


async def _stop(task) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


# -- framing, byte by byte ---------------------------------------------------------------
STREAM = (b"<13>Nov 25 10:00:00 h a: one\n"
          b"27 <13>1 - h a - - - octet one"
          b"<13>Nov 25 10:00:00 h a: two\r\n"
          b"\x00"
          b"15 <13>1 - h - - -"
          b"2026 is not an octet count\n"
          b"9 <13>ninex\n")


def _frames(chunks) -> list[tuple[bytes, bool]]:
    fr = SyslogFramer(64)
    out = []
    for c in chunks:
        out += fr.feed(c)
    return out + fr.finish()


def test_framer_mixed_framing_any_split() -> None:
    whole = _frames([STREAM])
    assert [m for m, _ in whole] == [
        b"<13>Nov 25 10:00:00 h a: one", b"<13>1 - h a - - - octet one", b"<13>Nov 25 10:00:00 h a: two",
        b"<13>1 - h - - -", b"2026 is not an octet count", b"<13>ninex"]
    assert not any(t for _, t in whole)
    assert _frames([STREAM[i:i + 1] for i in range(len(STREAM))]) == whole
    for cut in range(1, len(STREAM)):
        assert _frames([STREAM[:cut], STREAM[cut:]]) == whole, cut


def test_framer_truncates_and_resyncs() -> None:
    data = b"<13>" + b"a" * 200 + b"\n" + b"<13>after\n" + b"300 <" + b"b" * 299 + b"<13>next\n"
    for chunks in ([data], [data[i:i + 7] for i in range(0, len(data), 7)]):
        got = _frames(chunks)
        assert [(len(m), t) for m, t in got] == [(64, True), (9, False), (64, True), (8, False)]
        assert got[1][0] == b"<13>after" and got[3][0] == b"<13>next"


def test_framer_unfinished_frame_at_close() -> None:
    fr = SyslogFramer(1024)
    assert fr.feed(b"50 <13>1 - h a - - - cut sh") == []
    assert fr.finish() == [(b"<13>1 - h a - - - cut sh", True)]
    fr = SyslogFramer(1024)
    assert fr.feed(b"<13>no newline at the end") == []
    assert fr.finish() == [(b"<13>no newline at the end", False)]


# -- TCP -----------------------------------------------------------------------------------
@pytest.mark.timeout(60)
def test_tcp_many_messages_both_framings() -> None:
    async def main() -> None:
        sink = Collect()
        src = SyslogTCPSource(port=0, max_message_size=4096)
        task = await _start(src, sink)
        n = 2000
        _r1, w1 = await asyncio.open_connection("127.0.0.1", src.port)
        _r2, w2 = await asyncio.open_connection("127.0.0.1", src.port)
        for i in range(n):
            msg = f"<38>Nov 25 10:00:01 srv sshd[1]: Failed password for u{i} from 10.0.0.1 port {i} ssh2".encode()
            if i % 2:
                w1.write(msg + b"\n")
            else:
                w2.write(str(len(msg)).encode() + b" " + msg)
        big = b"<13>Nov 25 10:00:01 srv app: " + b"z" * 100_000 + b"\n"
        w1.write(big + b"<13>Nov 25 10:00:01 srv app: after-big\n")
        for w in (w1, w2):
            await w.drain()
            w.close()
        await sink.wait_for(n + 2)
        await asyncio.sleep(0.1)
        c = src.counters()
        assert c["received"] == c["emitted"] == n + 2 and c["truncated"] == 1 and c["errors"] == 0
        users = set()
        for rec in sink.records:
            ev = parse_record(rec)
            if ev["event"].get("action") == "ssh-login":
                users.add(ev["user"]["name"])
                assert ev["network"]["transport"] == "tcp"
                assert ev["log"]["source"]["address"].startswith("127.0.0.1:")
        assert users == {f"u{i}" for i in range(n)}
        trunc = [r for r in sink.records if r.meta.get("truncated")]
        assert len(trunc) == 1 and len(trunc[0].data) == 4096
        assert "truncated" in parse_record(trunc[0])["tags"]
        assert sink.records[-1].data.endswith(b"after-big") or any(r.data.endswith(b"after-big") for r in sink.records)
        await _stop(task)

    asyncio.run(main())


@pytest.mark.timeout(60)
def test_tcp_backpressure_stops_reading() -> None:
    """While emit is blocked the sender's writes stall (TCP window), then everything arrives."""
    async def main() -> None:
        sink = Collect()
        sink.gate = asyncio.Event()
        src = SyslogTCPSource(port=0, read_size=16 * 1024)
        task = await _start(src, sink)
        line = b"<13>Nov 25 10:00:01 srv app: " + b"p" * 200 + b"\n"
        total = 40_000  # ~9 MB: far more than socket buffers hold
        payload = line * total
        loop = asyncio.get_running_loop()
        sock = socket.create_connection(("127.0.0.1", src.port))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 * 1024)
        sock.setblocking(False)
        sent = 0
        stalled_since = None
        while sent < len(payload):
            try:
                sent += sock.send(payload[sent:sent + 65536])
                stalled_since = None
            except BlockingIOError:
                stalled_since = stalled_since or loop.time()
                if loop.time() - stalled_since > 1.0:
                    break
                await asyncio.sleep(0.01)
        assert sent < len(payload) // 4, f"sender was never held back ({sent} of {len(payload)} bytes went out)"
        assert src.counters()["emitted"] == 0
        sink.gate.set()
        await loop.sock_sendall(sock, payload[sent:])
        sock.close()
        await sink.wait_for(total, timeout=30)
        assert src.counters()["emitted"] == total and src.counters()["dropped"] == 0
        await _stop(task)

    asyncio.run(main())


def _self_signed(tmp: Path) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl binary not installed (apt-get install openssl)")
    cert, key = tmp / "cert.pem", tmp / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=60)
    return cert, key


@pytest.mark.timeout(60)
def test_tls_listener_with_self_signed_cert(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)

    async def main() -> None:
        sink = Collect()
        src = SyslogTCPSource(port=0, tls_cert=cert, tls_key=key)
        assert src.name.startswith("syslog-tls:")
        task = await _start(src, sink)
        ctx = ssl.create_default_context(cafile=str(cert))
        _, w = await asyncio.open_connection("127.0.0.1", src.port, ssl=ctx, server_hostname="localhost")
        for i in range(100):
            msg = f"<86>1 2026-11-25T10:00:00Z srv sudo - - - alice : TTY=pts/0 ; PWD=/ ; USER=root ; COMMAND=/bin/id {i}"
            w.write(f"{len(msg.encode())} {msg}".encode())
        await w.drain()
        w.close()
        await sink.wait_for(100)
        evs = [parse_record(r) for r in sink.records]
        assert all(e["tls"]["established"] is True and e["event"]["action"] == "sudo-command" for e in evs)
        assert sorted(e["process"]["args"][-1] for e in evs) == sorted(str(i) for i in range(100))
        # A plain-TCP client on the TLS port gets nothing in: the handshake fails.
        _, w2 = await asyncio.open_connection("127.0.0.1", src.port)
        w2.write(b"<13>Nov 25 10:00:00 h a: plaintext\n")
        await w2.drain()
        w2.close()
        await asyncio.sleep(0.3)
        assert len(sink.records) == 100
        await _stop(task)

    asyncio.run(main())


def test_tls_needs_cert_and_key() -> None:
    with pytest.raises(ValueError, match="both tls_cert and tls_key"):
        SyslogTCPSource(port=0, tls_cert="/x.pem")


def test_tls_bad_cert_says_which_file(tmp_path: Path) -> None:
    bad = tmp_path / "nope.pem"
    bad.write_text("not a certificate")
    src = SyslogTCPSource(port=0, tls_cert=bad, tls_key=bad)
    with pytest.raises(ValueError, match="nope.pem"):
        asyncio.run(src.run(Collect()))


# -- UDP -----------------------------------------------------------------------------------
@pytest.mark.timeout(60)
def test_udp_all_arrive_and_drops_are_counted() -> None:
    async def main() -> None:
        sink = Collect()
        src = SyslogUDPSource(port=0)
        task = await _start(src, sink)
        tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        n = 500
        for i in range(n):
            tx.sendto(f"<134>Nov 25 10:15:02 cam HIKVISION: Major Type: Alarm, Minor Type: Motion Detection Started, "
                      f"Channel No.: {i}".encode(), ("127.0.0.1", src.port))
            if i % 50 == 0:
                await asyncio.sleep(0)
        await sink.wait_for(n)
        chans = sorted(parse_record(r)["hikvision"]["channel"] for r in sink.records)
        assert chans == list(range(n))
        assert src.counters()["dropped"] == 0 and src.counters()["received"] == n
        await _stop(task)

        # A blocked pipeline and a tiny queue: what does not fit is dropped and counted.
        sink2 = Collect()
        sink2.gate = asyncio.Event()
        src2 = SyslogUDPSource(port=0, queue_size=10, batch_size=5, rcvbuf=4096)
        task2 = await _start(src2, sink2)
        sent = 300
        for i in range(sent):
            tx.sendto(f"<13>Nov 25 10:00:00 h app: {i}".encode(), ("127.0.0.1", src2.port))
            if i % 20 == 0:
                await asyncio.sleep(0.005)
        await asyncio.sleep(0.3)
        sink2.gate.set()
        await asyncio.sleep(0.3)
        c = src2.counters()
        assert c["received"] + c["kernel_drops"] == sent, c
        assert c["emitted"] + c["queue_drops"] == c["received"], c
        assert c["dropped"] == c["queue_drops"] + c["kernel_drops"] > 0
        assert len(sink2.records) == c["emitted"]
        tx.close()
        await _stop(task2)

    asyncio.run(main())


def test_port_in_use_is_a_clear_error() -> None:
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    port = busy.getsockname()[1]
    try:
        with pytest.raises(OSError, match=f"cannot listen on 127.0.0.1:{port}"):
            asyncio.run(SyslogTCPSource(port=port).run(Collect()))
    finally:
        busy.close()


@pytest.mark.timeout(60)
def test_connection_limit_and_idle_timeout() -> None:
    async def main() -> None:
        sink = Collect()
        src = SyslogTCPSource(port=0, max_connections=2, idle_timeout=0.3)
        task = await _start(src, sink)
        conns = [await asyncio.open_connection("127.0.0.1", src.port) for _ in range(3)]
        await asyncio.sleep(0.1)
        assert src.counters()["refused"] == 1 and src.counters()["connections"] == 2
        conns[0][1].write(b"<13>Nov 25 10:00:00 h app: unterminated then silent")
        await conns[0][1].drain()
        await sink.wait_for(1, timeout=5)
        await asyncio.sleep(0.2)
        c = src.counters()
        assert c["idle_closed"] == 2 and c["connections"] == 0
        assert sink.records[0].data.endswith(b"unterminated then silent")
        for _, w in conns:
            w.close()
        await _stop(task)

    asyncio.run(main())
