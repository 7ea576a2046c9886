"""Syslog listeners: UDP, TCP and TCP over TLS.

**TCP framing** (RFC 6587) is detected per message, so one connection may even mix
them: a frame that starts with digits, a space and ``<`` is octet-counted
(``"123 <34>1 ..."``); anything else is newline-delimited (``\\n``, an optional ``\\r``
before it is dropped; NUL bytes between frames are skipped). A message longer than
``max_message_size`` is cut to that size, marked ``meta["truncated"]`` (the parser tags
the event ``truncated``) and the rest of it is skipped, so one huge line costs bounded
memory and never desynchronises the stream.

**Backpressure.** A connection reads a chunk, frames it, and awaits ``emit`` before it
reads again. While the pipeline is full nothing is read: asyncio's buffer fills, the
kernel's receive buffer fills, the TCP window closes and the sender (rsyslog, a camera)
blocks or queues on its side. Nothing is dropped.

**Limits.** At most ``max_connections`` senders at once and ``max_connections_per_peer``
from one address (more are closed at accept and counted in ``refused`` and in ``dropped``:
their lines were never read, so the count is of connections, not lines); a connection
silent for ``idle_timeout`` seconds is closed (``idle_closed``), its unfinished message
emitted. A message that has been started must be finished within ``frame_timeout``
seconds (``slow_closed``): the clock is not reset by each byte, so a sender trickling one
byte at a time cannot hold a slot for ever. TLS handshake failures happen before
a connection reaches us: asyncio logs them, they are not in ``errors``.

**UDP** cannot push back. Datagrams go through a bounded queue; when it is full the
datagram is dropped and counted (``queue_drops``). Datagrams the kernel dropped because
our socket buffer was full are read from the ``drops`` column of ``/proc/net/udp`` and
``/proc/net/udp6`` for our socket's inode (``kernel_drops``); ``dropped`` is the sum.
The socket asks for a large receive buffer (``rcvbuf``, capped by ``net.core.rmem_max``).

Example::

    src = SyslogTCPSource(host="0.0.0.0", port=6514, tls_cert="cert.pem", tls_key="key.pem")
    asyncio.create_task(src.run(pipeline.submit)); await src.ready.wait(); src.port
"""
from __future__ import annotations

import asyncio
import logging
import os
import socket
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from core.protocols import Emit, RawRecord

from . import SourceCounters
from .peer_zones import PeerZones, Zone

__all__ = ["SyslogUDPSource", "SyslogTCPSource", "SyslogFramer", "PeerSlots", "udp_kernel_drops"]

log = logging.getLogger("citysoc.collectors.syslog")

DEFAULT_MAX_MESSAGE = 256 * 1024


class SyslogFramer:
    """Splits a TCP byte stream into syslog messages (octet-counting or newline framing).

    ``feed(bytes)`` returns the complete messages as ``(message, truncated)`` pairs and
    keeps the unfinished rest; ``finish()`` returns what is left when the peer closes.
    """

    def __init__(self, max_message_size: int = DEFAULT_MAX_MESSAGE) -> None:
        if max_message_size < 16:
            raise ValueError("max_message_size must be at least 16 bytes")
        self.max = max_message_size
        self._buf = bytearray()
        self._skip_octets = 0  # rest of an oversized octet-counted frame to discard
        self._skip_line = False  # rest of an oversized line to discard (until \n)

    @property
    def pending(self) -> bool:
        """True while a message has been started and not finished (or is being skipped)."""
        return bool(self._buf) or bool(self._skip_octets) or self._skip_line

    def feed(self, data: bytes) -> list[tuple[bytes, bool]]:
        buf = self._buf
        buf += data
        out: list[tuple[bytes, bool]] = []
        pos, n = 0, len(buf)
        mx = self.max
        while pos < n:
            if self._skip_octets:
                take = min(self._skip_octets, n - pos)
                pos += take
                self._skip_octets -= take
                continue
            if self._skip_line:
                i = buf.find(b"\n", pos)
                if i < 0:
                    pos = n
                    break
                pos = i + 1
                self._skip_line = False
                continue
            c = buf[pos]
            if c in (10, 13, 0, 32):  # separators and stray spaces between frames
                pos += 1
                continue
            if 48 <= c <= 57:
                sp = buf.find(b" ", pos, min(n, pos + 11))
                if sp < 0:
                    if n - pos < 11 and buf[pos:n].isdigit():
                        break  # maybe an octet count still arriving
                elif buf[pos:sp].isdigit():
                    if sp + 1 >= n:
                        break  # need one more byte to tell the framings apart
                    if buf[sp + 1] == 60:  # "<": octet counting
                        length = int(buf[pos:sp])
                        start = sp + 1
                        if length <= mx:
                            if n - start < length:
                                break
                            out.append((bytes(buf[start:start + length]), False))
                            pos = start + length
                        else:
                            if n - start < mx:
                                break
                            out.append((bytes(buf[start:start + mx]), True))
                            pos = start + mx
                            self._skip_octets = length - mx
                        continue
            i = buf.find(b"\n", pos)
            if i >= 0:
                end = i - 1 if i > pos and buf[i - 1] == 13 else i
                if end - pos > mx:
                    out.append((bytes(buf[pos:pos + mx]), True))
                else:
                    out.append((bytes(buf[pos:end]), False))
                pos = i + 1
                continue
            if n - pos > mx:
                out.append((bytes(buf[pos:pos + mx]), True))
                pos = n
                self._skip_line = True
            break
        del buf[:pos]
        return out

    def finish(self) -> list[tuple[bytes, bool]]:
        """The unterminated last message, if any (an unfinished octet frame is marked truncated)."""
        rest = bytes(self._buf).strip(b"\r\n\x00 ")
        self._buf.clear()
        if not rest or self._skip_line:
            return []
        head, _, body = rest.partition(b" ")
        if head.isdigit() and body.startswith(b"<"):
            return [(body[: self.max], True)]
        return [(rest[: self.max], len(rest) > self.max)]


def udp_kernel_drops(inode: int) -> int | None:
    """The kernel's drop count for the UDP socket with ``inode`` (``/proc/net/udp[6]``)."""
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        try:
            with open(table, encoding="ascii") as fh:
                next(fh, None)
                for line in fh:
                    cols = line.split()
                    if len(cols) >= 13 and cols[9] == str(inode):
                        return int(cols[-1])
        except OSError:
            continue
    return None


class PeerSlots:
    """Connection slots: at most ``total`` at once and ``per_peer`` from one address.

    Memory is bounded by ``total`` (one counter per connected address), whatever the
    number of addresses that try.
    """

    def __init__(self, total: int, per_peer: int) -> None:
        if total < 1 or per_peer < 1:
            raise ValueError("connection limits must be at least 1")
        self.total, self.per_peer = total, per_peer
        self.used = 0
        self._by_peer: dict[str, int] = {}

    def acquire(self, peer: str) -> bool:
        held = self._by_peer.get(peer, 0)
        if self.used >= self.total or held >= self.per_peer:
            return False
        self._by_peer[peer] = held + 1
        self.used += 1
        return True

    def release(self, peer: str) -> None:
        held = self._by_peer.get(peer, 0)
        if held <= 1:
            self._by_peer.pop(peer, None)
        else:
            self._by_peer[peer] = held - 1
        self.used = max(0, self.used - 1)


@dataclass
class _UdpCounters(SourceCounters):
    queue_drops: int = 0
    kernel_drops: int = 0
    truncated: int = 0


@dataclass
class _TcpCounters(SourceCounters):
    truncated: int = 0
    connections: int = 0
    connections_total: int = 0
    refused: int = 0
    idle_closed: int = 0
    slow_closed: int = 0


def _meta(peer: Any, transport: str, timezone: Zone) -> dict[str, Any]:
    meta: dict[str, Any] = {"network.transport": transport}
    host = None
    if isinstance(peer, tuple) and len(peer) >= 2:
        host = peer[0]
        meta["log.source.address"] = f"[{host}]:{peer[1]}" if ":" in str(host) else f"{host}:{peer[1]}"
    if isinstance(timezone, PeerZones):
        timezone = timezone.zone_for(host) if host is not None else timezone.default
    if timezone:
        meta["timezone"] = timezone
    return meta


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, owner: SyslogUDPSource, queue: asyncio.Queue[RawRecord]) -> None:
        self.owner = owner
        self.queue = queue

    def datagram_received(self, data: bytes, addr: Any) -> None:
        o = self.owner
        o._c.received += 1
        data = data.rstrip(b"\n\x00")
        meta = _meta(addr, "udp", o.timezone)
        if len(data) > o.max_message_size:
            data = data[: o.max_message_size]
            meta["truncated"] = True
            o._c.truncated += 1
        rec = RawRecord(data, format=o.format, source=o.name, dataset=o.dataset, meta=meta)
        try:
            self.queue.put_nowait(rec)
        except asyncio.QueueFull:
            o._c.queue_drops += 1

    def error_received(self, exc: Exception) -> None:
        self.owner._c.errors += 1


class SyslogUDPSource:
    """Syslog over UDP (RFC 5426): one datagram is one message."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 5514,
        *,
        format: str = "auto",
        dataset: str | None = None,
        name: str | None = None,
        max_message_size: int = 65535,
        queue_size: int = 10_000,
        batch_size: int = 500,
        rcvbuf: int = 8 * 1024 * 1024,
        timezone: Zone = None,
    ) -> None:
        self.host, self.port = host, port
        self.format, self.dataset, self.timezone = format, dataset, timezone
        self.name = name or f"syslog-udp:{port}"
        self.max_message_size = max_message_size
        self.queue_size, self.batch_size, self.rcvbuf = queue_size, batch_size, rcvbuf
        self.ready = asyncio.Event()
        self._c = _UdpCounters()
        self._inode: int | None = None

    def counters(self) -> dict[str, int]:
        if self._inode is not None:
            k = udp_kernel_drops(self._inode)
            if k is not None:
                self._c.kernel_drops = k
        self._c.dropped = self._c.queue_drops + self._c.kernel_drops
        return self._c.as_dict()

    async def run(self, emit: Emit) -> None:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[RawRecord] = asyncio.Queue(self.queue_size)
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.rcvbuf)
            sock.bind((self.host, self.port))
        except OSError as exc:
            sock.close()
            raise OSError(exc.errno, f"syslog UDP cannot listen on {self.host}:{self.port}: {exc.strerror}") from exc
        transport, _ = await loop.create_datagram_endpoint(lambda: _UdpProtocol(self, queue), sock=sock)
        self.port = sock.getsockname()[1]
        self._inode = os.fstat(sock.fileno()).st_ino
        self.ready.set()
        log.info("syslog UDP listening on %s:%d", self.host, self.port)
        try:
            while True:
                batch = [await queue.get()]
                while len(batch) < self.batch_size and not queue.empty():
                    batch.append(queue.get_nowait())
                try:
                    await emit(batch)
                    self._c.emitted += len(batch)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("%s: pipeline refused a batch of %d; counted as dropped", self.name, len(batch))
                    self._c.errors += 1
                    self._c.queue_drops += len(batch)
        finally:
            transport.close()
            self.ready.clear()


class SyslogTCPSource:
    """Syslog over TCP (RFC 6587 framing, auto-detected) and, with a certificate, TLS (RFC 5425)."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 5514,
        *,
        tls_cert: str | os.PathLike[str] | None = None,
        tls_key: str | os.PathLike[str] | None = None,
        tls_client_ca: str | os.PathLike[str] | None = None,
        format: str = "auto",
        dataset: str | None = None,
        name: str | None = None,
        max_message_size: int = DEFAULT_MAX_MESSAGE,
        read_size: int = 64 * 1024,
        timezone: Zone = None,
        max_connections: int = 1024,
        max_connections_per_peer: int = 64,
        idle_timeout: float | None = 600.0,
        frame_timeout: float = 30.0,
    ) -> None:
        if (tls_cert is None) != (tls_key is None):
            raise ValueError("TLS needs both tls_cert and tls_key (PEM files)")
        self.host, self.port = host, port
        self.tls_cert, self.tls_key, self.tls_client_ca = tls_cert, tls_key, tls_client_ca
        self.format, self.dataset, self.timezone = format, dataset, timezone
        self.name = name or f"syslog-{'tls' if tls_cert else 'tcp'}:{port}"
        self.max_message_size = max_message_size
        self.read_size = read_size
        self.max_connections = max_connections
        self.slots = PeerSlots(max_connections, max_connections_per_peer)
        self.idle_timeout = idle_timeout
        self.frame_timeout = frame_timeout
        self.ready = asyncio.Event()
        self._c = _TcpCounters()
        SyslogFramer(max_message_size)  # validate early

    def counters(self) -> dict[str, int]:
        return self._c.as_dict()

    def _ssl_context(self) -> ssl.SSLContext | None:
        if self.tls_cert is None:
            return None
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        try:
            ctx.load_cert_chain(str(self.tls_cert), str(self.tls_key))
        except (OSError, ssl.SSLError) as exc:
            raise ValueError(f"syslog TLS: cannot load certificate {self.tls_cert} / key {self.tls_key}: {exc}") from exc
        if self.tls_client_ca is not None:
            ctx.load_verify_locations(str(self.tls_client_ca))
            ctx.verify_mode = ssl.CERT_REQUIRED
        return ctx

    async def run(self, emit: Emit) -> None:
        ctx = self._ssl_context()

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await self._connection(reader, writer, emit, tls=ctx is not None)

        try:
            server = await asyncio.start_server(handle, self.host, self.port, ssl=ctx, limit=self.read_size,
                                                reuse_address=True)
        except OSError as exc:
            raise OSError(exc.errno, f"syslog TCP cannot listen on {self.host}:{self.port}: {exc.strerror}") from exc
        self.port = server.sockets[0].getsockname()[1]
        self.ready.set()
        log.info("syslog %s listening on %s:%d", "TLS" if ctx else "TCP", self.host, self.port)
        try:
            async with server:
                await server.serve_forever()
        finally:
            self.ready.clear()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, emit: Emit,
                          *, tls: bool) -> None:
        c = self._c
        peer = writer.get_extra_info("peername")
        peer_host = str(peer[0]) if isinstance(peer, tuple) else "?"
        if not self.slots.acquire(peer_host):
            # Refuse rather than let a flood of idle sockets starve the real senders; the
            # refused sender's lines were never read: counted as dropped connections.
            c.refused += 1
            c.dropped += 1
            writer.close()
            return
        c.connections += 1
        c.connections_total += 1
        meta = _meta(peer, "tcp", self.timezone)
        if tls:
            meta["tls.established"] = True
        framer = SyslogFramer(self.max_message_size)
        frame_started: float | None = None
        try:
            while True:
                timeout = self.idle_timeout
                if framer.pending and frame_started is not None:
                    left = self.frame_timeout - (time.monotonic() - frame_started)
                    timeout = left if timeout is None else min(timeout, left)
                try:
                    if timeout is not None and timeout <= 0:
                        raise TimeoutError
                    chunk = await asyncio.wait_for(reader.read(self.read_size), timeout)
                except TimeoutError:
                    if framer.pending and frame_started is not None and \
                            time.monotonic() - frame_started >= self.frame_timeout:
                        c.slow_closed += 1
                    else:
                        c.idle_closed += 1
                    await self._emit(framer.finish(), meta, emit)
                    break
                if not chunk:
                    await self._emit(framer.finish(), meta, emit)
                    break
                was_pending = framer.pending
                frames = framer.feed(chunk)
                if framer.pending and (not was_pending or frames):
                    frame_started = time.monotonic()
                await self._emit(frames, meta, emit)
        except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError) as exc:
            c.errors += 1
            log.info("%s: connection from %s ended: %s", self.name, meta.get("log.source.address"), exc)
        finally:
            c.connections -= 1
            self.slots.release(peer_host)
            writer.close()
            try:
                await writer.wait_closed()
            except (ConnectionError, ssl.SSLError, OSError):
                pass

    async def _emit(self, frames: Sequence[tuple[bytes, bool]], meta: dict[str, Any], emit: Emit) -> None:
        if not frames:
            return
        c = self._c
        records = []
        # Records of one connection share its meta (nothing writes RawRecord.meta; a
        # worker batch then pickles it once); only a truncated one gets its own copy.
        shared = dict(meta)
        for data, truncated in frames:
            m = shared
            if truncated:
                m = {**shared, "truncated": True}
                c.truncated += 1
            records.append(RawRecord(data, format=self.format, source=self.name, dataset=self.dataset, meta=m))
        c.received += len(records)
        await emit(records)  # blocks while the pipeline is full: we stop reading = backpressure
        c.emitted += len(records)
