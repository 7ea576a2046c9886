"""RELP input: the framing, the limits, and a real rsyslog ``omrelp`` sender across a SIGKILL.

rsyslogd (Debian ``rsyslog`` + ``rsyslog-relp``) runs in the foreground with its own config
and work folder in ``tmp_path``: it takes lines on a loopback imtcp port and forwards them
with omrelp, which keeps every message until citysoc answers ``200 OK`` for it. citysoc
answers only after the commit, so killing ``serve`` with SIGKILL mid-stream must lose none
of them: rsyslog resends what was not acknowledged to the restarted server.
"""
from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from citysoc.testing import ServeProcess, free_port, wait_for
from collectors.parsers import parse_record
from collectors.sources.relp import RelpFramer, RelpProtocolError, RelpSource
from collectors.sources.syslog import PeerSlots, SyslogTCPSource

pytestmark = [pytest.mark.timeout(240)]

RSYSLOGD = shutil.which("rsyslogd") or ("/usr/sbin/rsyslogd" if os.path.exists("/usr/sbin/rsyslogd") else None)
OMRELP = any(Path(p).exists() for p in ("/usr/lib/x86_64-linux-gnu/rsyslog/omrelp.so",
                                        "/usr/lib/aarch64-linux-gnu/rsyslog/omrelp.so"))
needs_rsyslog_relp = pytest.mark.skipif(
    RSYSLOGD is None or not OMRELP or os.geteuid() != 0,
    reason="needs root, rsyslogd and omrelp (scripts/system-deps.sh installs rsyslog and rsyslog-relp)")


# -- framing ----------------------------------------------------------------------------

def test_framer_splits_frames_across_reads_and_zero_length_frames():
    f = RelpFramer(1024)
    stream = b"1 open 3 abc\n2 syslog 5 hello\n3 close 0\n"
    frames = []
    for i in range(len(stream)):  # one byte at a time: every split point
        frames += f.feed(stream[i:i + 1])
    assert [(x.txnr, x.command, x.data) for x in frames] == [
        (1, b"open", b"abc"), (2, b"syslog", b"hello"), (3, b"close", b"")]
    assert not f.pending


def test_framer_data_may_contain_newlines_and_spaces():
    f = RelpFramer(1024)
    (fr,) = f.feed(b"7 syslog 11 a b\nc d\ne f\n")
    assert fr.data == b"a b\nc d\ne f"


@pytest.mark.parametrize("bad", [
    b"x syslog 5 hello\n",            # transaction number not a number
    b"1 sys-log 5 hello\n",           # command not a word
    b"1 syslog 5 helloX",             # trailer is not LF
    b"1 syslog 99999999 a",           # over the size limit: refused before buffering
    b"1234567890123 syslog 1 a\n",    # txnr too long
    b"1 syslog 0 data\n",             # zero length but data
])
def test_framer_refuses_broken_frames(bad):
    with pytest.raises(RelpProtocolError):
        RelpFramer(1024).feed(bad)


def test_peer_slots_bound_connections_per_address_and_in_all():
    s = PeerSlots(total=3, per_peer=2)
    assert s.acquire("a") and s.acquire("a") and not s.acquire("a")
    assert s.acquire("b") and not s.acquire("c")  # total reached
    s.release("a")
    assert s.acquire("c")
    for p in ("a", "b", "c"):
        s.release(p)
    assert s.used == 0 and s._by_peer == {}


# -- the listener on real sockets ------------------------------------------------------

class DurableSink:
    """Stands where the pipeline's submit stands; records what a commit would hold."""

    def __init__(self) -> None:
        self.records = []
        self.waited = []

    async def __call__(self, batch, *, wait=False):
        self.waited.append(wait)
        self.records.extend(batch)


async def _start(src, sink):
    task = asyncio.create_task(src.run(sink))
    await asyncio.wait_for(src.ready.wait(), 5)
    return task


def test_session_acknowledges_after_commit_and_refuses_commands_not_offered():
    async def main():
        sink = DurableSink()
        src = RelpSource(port=0)
        task = await _start(src, sink)
        r, w = await asyncio.open_connection("127.0.0.1", src.port)
        offers = b"relp_version=0\nrelp_software=t\ncommands=syslog"
        msg = b"<13>Dec  2 10:00:00 h x"
        w.write(b"1 open %d %s\n" % (len(offers), offers))
        w.write(b"2 syslog %d %s\n3 syslog 5 hello\n" % (len(msg), msg))
        await w.drain()
        got = b""
        while got.count(b"\n") < 6:  # open rsp has 4 lines, then two rsps
            chunk = await asyncio.wait_for(r.read(4096), 10)
            assert chunk, f"server closed the session: {got!r}"
            got += chunk
        assert got.startswith(b"1 rsp ") and b"200 OK\nrelp_version=0" in got and b"commands=syslog" in got
        assert b"2 rsp 6 200 OK\n" in got and b"3 rsp 6 200 OK\n" in got
        assert sink.waited and all(sink.waited), "acknowledged without waiting for the commit"
        assert [x.data for x in sink.records] == [b"<13>Dec  2 10:00:00 h x", b"hello"]
        w.write(b"4 starttls 0\n")
        await w.drain()
        tail = await asyncio.wait_for(r.read(4096), 10)
        assert b"4 rsp" in tail and b"500" in tail and b"serverclose" in tail
        assert src.counters()["protocol_errors"] == 1 and src.counters()["acknowledged"] == 2
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    asyncio.run(main())


def test_syslog_before_open_is_refused_unacknowledged():
    async def main():
        sink = DurableSink()
        src = RelpSource(port=0)
        task = await _start(src, sink)
        r, w = await asyncio.open_connection("127.0.0.1", src.port)
        w.write(b"1 syslog 5 hello\n")
        await w.drain()
        got = await asyncio.wait_for(r.read(4096), 10)
        assert b"500" in got and sink.records == []
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    asyncio.run(main())


@pytest.mark.parametrize("kind", ["tcp", "relp"])
def test_one_address_cannot_take_every_slot_and_refusals_are_counted(kind):
    async def main():
        sink = DurableSink()
        src = (SyslogTCPSource(port=0, max_connections=100, max_connections_per_peer=3) if kind == "tcp"
               else RelpSource(port=0, max_connections=100, max_connections_per_peer=3))
        task = await _start(src, sink)
        conns = [await asyncio.open_connection("127.0.0.1", src.port) for _ in range(5)]
        await asyncio.sleep(0.3)
        c = src.counters()
        assert c["connections"] == 3 and c["refused"] == 2 and c["dropped"] == 2
        for _, w in conns:
            w.close()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    asyncio.run(main())


@pytest.mark.parametrize("kind", ["tcp", "relp"])
def test_trickling_sender_is_closed_by_the_frame_deadline(kind):
    """One byte every 0.2 s resets an idle timer for ever; the frame deadline does not reset."""
    async def main():
        sink = DurableSink()
        src = (SyslogTCPSource(port=0, idle_timeout=5, frame_timeout=1.0) if kind == "tcp"
               else RelpSource(port=0, idle_timeout=5, frame_timeout=1.0))
        task = await _start(src, sink)
        _, w = await asyncio.open_connection("127.0.0.1", src.port)
        if kind == "relp":
            w.write(b"1 open 0\n")
        closed_at = None
        start = time.monotonic()
        try:
            for _ in range(100):  # at most 20 s of trickling
                w.write(b"1" if kind == "relp" else b"x")
                await w.drain()
                await asyncio.sleep(0.2)
                if src.counters()["slow_closed"]:
                    closed_at = time.monotonic() - start
                    break
        except (ConnectionError, OSError):
            closed_at = time.monotonic() - start
        assert closed_at is not None, "a trickling sender kept its connection"
        assert src.counters()["slow_closed"] == 1 and src.counters()["connections"] == 0
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    asyncio.run(main())


# -- a real rsyslog omrelp sender --------------------------------------------------------

def _rsyslog_conf(tmp_path: Path, in_port: int, relp_port: int) -> Path:
    work = tmp_path / "rs-work"
    work.mkdir(exist_ok=True)
    conf = tmp_path / "rsyslog-relp.conf"
    conf.write_text(f"""
global(workDirectory="{work}" maxMessageSize="64k")
module(load="imtcp")
module(load="omrelp")
input(type="imtcp" port="{in_port}" address="127.0.0.1" ruleset="fwd")
ruleset(name="fwd") {{
  action(type="omrelp" target="127.0.0.1" port="{relp_port}" timeout="5" windowSize="128"
         queue.type="LinkedList" queue.size="100000" action.resumeRetryCount="-1" action.resumeInterval="1")
}}
""")
    check = subprocess.run([RSYSLOGD, "-N1", "-f", str(conf)], capture_output=True, text=True, timeout=30)
    assert check.returncode == 0, check.stderr
    return conf


def _start_rsyslog(tmp_path: Path, conf: Path, in_port: int) -> subprocess.Popen:
    proc = subprocess.Popen([RSYSLOGD, "-n", "-f", str(conf), "-i", str(tmp_path / "rsyslogd-relp.pid")],
                            stdout=open(tmp_path / "rsyslogd.log", "ab"), stderr=subprocess.STDOUT)

    def listening() -> bool:
        try:
            socket.create_connection(("127.0.0.1", in_port), timeout=1).close()
            return True
        except OSError:
            return False
    assert wait_for(listening, timeout=30), "rsyslogd did not start listening"
    return proc


def _line(i: int) -> bytes:
    return (f"<38>Dec  2 17:29:05 relp-host sshd[811]: Failed password for relpuser{i} from 10.66.{i // 250}.{i % 250} "
            f"port {20000 + i} ssh2\n").encode()


@needs_rsyslog_relp
def test_real_rsyslog_omrelp_to_listener(tmp_path):
    async def main():
        sink = DurableSink()
        src = RelpSource(port=0)
        task = await _start(src, sink)
        in_port = free_port()
        conf = _rsyslog_conf(tmp_path, in_port, src.port)
        proc = await asyncio.to_thread(_start_rsyslog, tmp_path, conf, in_port)
        try:
            n = 500
            s = socket.create_connection(("127.0.0.1", in_port))
            s.sendall(b"".join(_line(i) for i in range(n)))
            s.close()
            deadline = time.monotonic() + 60
            while len(sink.records) < n and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            users = sorted({parse_record(r)["user"]["name"] for r in sink.records})
            assert users == sorted(f"relpuser{i}" for i in range(n))
            assert src.counters()["acknowledged"] >= n
        finally:
            proc.terminate()
            proc.wait(timeout=20)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    asyncio.run(main())


@needs_rsyslog_relp
def test_sigkill_of_serve_loses_no_relp_message(tmp_path):
    """rsyslog keeps sending while serve is SIGKILLed and restarted: every line arrives."""
    relp_port = free_port()
    cfg = tmp_path / "citysoc.yml"
    cfg.write_text(f"syslog:\n  relp_port: {relp_port}\n")
    srv = ServeProcess(tmp_path / "data", config=cfg)
    srv.data.mkdir()
    viewer = srv.api_key("viewer")
    srv.start()
    in_port = free_port()
    conf = _rsyslog_conf(tmp_path, in_port, relp_port)
    proc = _start_rsyslog(tmp_path, conf, in_port)
    n = 1000
    try:
        s = socket.create_connection(("127.0.0.1", in_port))
        for i in range(n):
            s.sendall(_line(i))
            if i == 400:
                assert wait_for(lambda: srv.count(viewer, "user.name:relpuser*") >= 100, timeout=60)
                srv.proc.send_signal(signal.SIGKILL)
                srv.proc.wait(timeout=30)
            if i == 700:
                srv.start()  # same data directory and RELP port
        s.close()
        if srv.proc.poll() is not None:
            srv.start()
        srv.wait_count(viewer, "user.name:relpuser*", n, timeout=120)
        r = srv.get(viewer, "/api/v1/events/terms", field="user.name", q="user.name:relpuser*", size=1000)
        r.raise_for_status()
        got = {b["key"] for b in r.json()}
        missing = sorted({f"relpuser{i}" for i in range(n)} - got)
        assert missing == [], f"{len(missing)} lines lost across the SIGKILL, e.g. {missing[:5]}"
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        srv.stop()
