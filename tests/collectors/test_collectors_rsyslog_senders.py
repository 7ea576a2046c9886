"""Real senders: util-linux ``logger`` and a real ``rsyslogd`` forwarding to our listeners.

rsyslogd runs in the foreground with its own config, pid file and work directory in
``tmp_path`` (no system socket, no kernel log), receives from ``logger`` on a loopback
TCP port and forwards every message three ways: TCP octet-counted (RFC 5424 format),
TCP newline-framed (traditional forward format) and UDP. Every message sent is counted
and must arrive on every path, parsed.
"""
from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from collectors.parsers import parse_record
from collectors.sources.syslog import SyslogTCPSource, SyslogUDPSource
from core.protocols import RawRecord

pytestmark = [pytest.mark.timeout(120), pytest.mark.network]

LOGGER = shutil.which("logger")
RSYSLOGD = shutil.which("rsyslogd") or ("/usr/sbin/rsyslogd" if os.path.exists("/usr/sbin/rsyslogd") else None)


class Collect:
    def __init__(self) -> None:
        self.records: list[RawRecord] = []

    async def __call__(self, batch):
        self.records.extend(batch)

    async def wait_for(self, pred, timeout: float = 30.0) -> None:
        async def _poll() -> None:
            while not pred():
                await asyncio.sleep(0.05)
        await asyncio.wait_for(_poll(), timeout)


async def _start(src, sink):
    task = asyncio.create_task(src.run(sink))
    await asyncio.wait_for(src.ready.wait(), 5)
    return task


def _free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _ssh_line(i: int) -> str:
    return f"Failed password for user{i} from 10.9.{i // 250}.{i % 250} port {20000 + i} ssh2"


async def _logger(args: list[str], lines: list[str]) -> None:
    proc = await asyncio.create_subprocess_exec(
        LOGGER, *args, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    _out, err = await asyncio.wait_for(proc.communicate(("\n".join(lines) + "\n").encode()), 30)
    assert proc.returncode == 0, err.decode()


@pytest.mark.skipif(LOGGER is None, reason="logger (bsdutils) is not installed")
def test_logger_straight_to_our_listeners() -> None:
    async def main() -> None:
        n = 300
        tcp_sink, udp_sink = Collect(), Collect()
        tcp = SyslogTCPSource(port=0)
        udp = SyslogUDPSource(port=0)
        tasks = [await _start(tcp, tcp_sink), await _start(udp, udp_sink)]
        lines = [_ssh_line(i) for i in range(n)]
        base = ["-n", "127.0.0.1", "-t", "sshd", "-p", "auth.info"]
        await _logger(base + ["--tcp", "-P", str(tcp.port), "--rfc5424", "--octet-count"], lines[:100])
        await _logger(base + ["--tcp", "-P", str(tcp.port), "--rfc3164"], lines[100:200])
        await _logger(base + ["--udp", "-P", str(udp.port), "--rfc5424"], lines[200:])
        await tcp_sink.wait_for(lambda: len(tcp_sink.records) >= 200)
        await udp_sink.wait_for(lambda: len(udp_sink.records) >= 100)
        await asyncio.sleep(0.2)
        got = {}
        for rec in tcp_sink.records + udp_sink.records:
            ev = parse_record(rec)
            assert ev["event"]["action"] == "ssh-login" and ev["event"]["outcome"] == "failure", ev
            assert ev["log"]["syslog"]["facility"]["name"] == "auth"
            got[ev["user"]["name"]] = got.get(ev["user"]["name"], 0) + 1
        assert got == {f"user{i}": 1 for i in range(n)}
        assert tcp.counters()["received"] == 200 and udp.counters()["received"] == 100
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    asyncio.run(main())


@pytest.mark.skipif(LOGGER is None or RSYSLOGD is None, reason="rsyslog or logger not installed "
                    "(scripts/system-deps.sh installs rsyslog)")
def test_real_rsyslogd_forwards_everything(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("rsyslogd needs root here (it drops privileges itself only when configured)")

    async def main() -> None:
        n = 400
        tcp_sink, udp_sink = Collect(), Collect()
        tcp = SyslogTCPSource(port=0)
        udp = SyslogUDPSource(port=0)
        tasks = [await _start(tcp, tcp_sink), await _start(udp, udp_sink)]
        in_port = _free_port()
        work = tmp_path / "work"
        work.mkdir()
        conf = tmp_path / "rsyslog.conf"
        conf.write_text(f"""
global(workDirectory="{work}" maxMessageSize="64k")
module(load="imtcp")
input(type="imtcp" port="{in_port}" address="127.0.0.1" ruleset="fwd")
ruleset(name="fwd") {{
  action(type="omfwd" target="127.0.0.1" port="{tcp.port}" protocol="tcp" TCP_Framing="octet-counted"
         template="RSYSLOG_SyslogProtocol23Format" queue.type="LinkedList" action.resumeRetryCount="-1")
  action(type="omfwd" target="127.0.0.1" port="{tcp.port}" protocol="tcp"
         template="RSYSLOG_ForwardFormat" queue.type="LinkedList" action.resumeRetryCount="-1")
  action(type="omfwd" target="127.0.0.1" port="{udp.port}" protocol="udp"
         template="RSYSLOG_TraditionalForwardFormat")
}}
""")
        check = subprocess.run([RSYSLOGD, "-N1", "-f", str(conf)], capture_output=True, text=True, timeout=30)
        assert check.returncode == 0, check.stderr
        proc = await asyncio.create_subprocess_exec(
            RSYSLOGD, "-n", "-f", str(conf), "-i", str(tmp_path / "rsyslogd.pid"),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        try:
            async def _listening() -> None:
                while True:
                    try:
                        _, w = await asyncio.open_connection("127.0.0.1", in_port)
                        w.close()
                        return
                    except OSError:
                        await asyncio.sleep(0.05)
            await asyncio.wait_for(_listening(), 15)
            lines = [_ssh_line(i) for i in range(n)]
            await _logger(["-n", "127.0.0.1", "-P", str(in_port), "--tcp", "--octet-count", "-t", "sshd",
                           "-p", "authpriv.notice"], lines)
            # Each message arrives twice over TCP (two framings) and once over UDP.
            await tcp_sink.wait_for(lambda: len(tcp_sink.records) >= 2 * n)
            await udp_sink.wait_for(lambda: len(udp_sink.records) >= n)
            await asyncio.sleep(0.3)
        finally:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        per_path: dict[str, dict[str, int]] = {}
        for rec in tcp_sink.records + udp_sink.records:
            ev = parse_record(rec)
            assert ev["event"].get("action") == "ssh-login", rec
            assert ev["log"]["syslog"]["facility"]["name"] == "authpriv"
            assert ev["process"]["name"] == "sshd"
            path = f"{ev['network']['transport']}-{ev['log']['syslog'].get('version', 'bsd')}"
            counts = per_path.setdefault(path, {})
            counts[ev["user"]["name"]] = counts.get(ev["user"]["name"], 0) + 1
        want = {f"user{i}": 1 for i in range(n)}
        assert per_path == {"tcp-1": want, "tcp-bsd": want, "udp-bsd": want}
        assert udp.counters()["dropped"] == 0
        assert tcp.counters()["connections_total"] >= 2 and tcp.counters()["errors"] == 0
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    asyncio.run(main())
