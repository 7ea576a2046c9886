"""RELP input: syslog with an application-level acknowledgement per message.

Plain syslog over TCP has no acknowledgement: what sits in kernel buffers when citysoc
dies is lost and nobody knows. RELP (the Reliable Event Logging Protocol that rsyslog's
``omrelp`` and ``imrelp`` speak) numbers every message and waits for the receiver's
``rsp 200 OK``; a sender resends whatever was not acknowledged when the session breaks.
citysoc answers ``200 OK`` only **after the pipeline committed** the message
(``emit(records, wait=True)``, the same promise ``_bulk`` makes), so an acknowledged
message survives a SIGKILL of the server.

**Frames** (as rsyslog's librelp writes them)::

    TXNR SP COMMAND SP DATALEN [SP DATA] LF

``TXNR`` is the sender's transaction number (1..999999999), ``COMMAND`` one of ``open``,
``syslog``, ``close`` (we answer with ``rsp``), ``DATALEN`` the byte length of ``DATA``.
The session starts with ``open``, whose data offers ``relp_version``, ``relp_software``
and ``commands``; we answer with ours (``commands=syslog``). A ``close`` is answered and
the connection ends. Anything else (a bad header, a frame over ``max_message_size``, a
command we do not offer, ``syslog`` before ``open``) ends the session with a
``serverclose`` and is counted in ``errors``: the sender reconnects and resends the
unacknowledged messages, so nothing is lost by refusing.

**Batching.** The sender keeps a window of unacknowledged messages in flight (omrelp:
128 by default). Every frame in one read is committed as one batch, and the answers are
written in transaction order after the commit, so acknowledgement costs one commit per
read, not per message.

**Limits** are the syslog TCP source's: ``max_connections`` in all and
``max_connections_per_peer`` per address (refused at accept, counted in ``refused`` and
``dropped``), ``idle_timeout`` for a silent session, and ``frame_timeout`` for a frame
that was started and not finished (a sender trickling one byte at a time cannot hold
a slot forever: the clock is not reset by each byte).
"""
from __future__ import annotations

import asyncio
import logging
import os
import ssl
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from core.protocols import RawRecord

from . import SourceCounters
from .peer_zones import Zone
from .syslog import DEFAULT_MAX_MESSAGE, PeerSlots, _meta

__all__ = ["RelpSource", "RelpFramer", "RelpFrame", "RelpProtocolError", "DurableEmit"]

log = logging.getLogger("citysoc.collectors.relp")

DurableEmit = Callable[..., Awaitable[Any]]
"""The pipeline's ``submit``: called as ``emit(records, wait=True)``; returns after commit."""

_COMMANDS = {b"open", b"syslog", b"close"}
_MAX_TXNR = 999_999_999
_SOFTWARE = "citysoc"


class RelpProtocolError(ValueError):
    """The peer broke the RELP framing; the session ends (the sender resends)."""


@dataclass(frozen=True)
class RelpFrame:
    txnr: int
    command: bytes
    data: bytes


class RelpFramer:
    """Splits a RELP byte stream into frames; keeps the unfinished rest.

    Memory is bounded by ``max_data``: a header announcing more is refused before any
    of its data is buffered.
    """

    _HEADER_MAX = 9 + 1 + 32 + 1 + 9 + 1  # txnr SP command SP datalen SP

    def __init__(self, max_data: int = DEFAULT_MAX_MESSAGE) -> None:
        self.max_data = max_data
        self._buf = bytearray()

    @property
    def pending(self) -> bool:
        """True while a frame has been started and not finished."""
        return bool(self._buf)

    def feed(self, chunk: bytes) -> list[RelpFrame]:
        buf = self._buf
        buf += chunk
        frames: list[RelpFrame] = []
        pos = 0
        n = len(buf)
        while pos < n:
            # header: three space-separated tokens; datalen is followed by SP (data) or LF (none)
            sp1 = buf.find(b" ", pos, pos + 10)
            if sp1 < 0:
                if n - pos >= 10:
                    raise RelpProtocolError("transaction number is not a number of at most 9 digits")
                break
            txnr_b = bytes(buf[pos:sp1])
            if not txnr_b.isdigit():
                raise RelpProtocolError(f"transaction number {txnr_b[:12]!r} is not a number")
            sp2 = buf.find(b" ", sp1 + 1, sp1 + 34)
            if sp2 < 0:
                if n - sp1 - 1 >= 33:
                    raise RelpProtocolError("command longer than 32 characters")
                break
            command = bytes(buf[sp1 + 1:sp2])
            if not command.isalpha():
                raise RelpProtocolError(f"command {command[:32]!r} is not a word")
            # datalen: digits up to SP or LF
            end = sp2 + 1
            while end < n and end - sp2 <= 10 and 48 <= buf[end] <= 57:
                end += 1
            if end >= n:
                if end - sp2 > 10:
                    raise RelpProtocolError("data length longer than 9 digits")
                break
            if end == sp2 + 1 or end - sp2 > 10 or buf[end] not in (0x20, 0x0A):
                raise RelpProtocolError("data length is not a number of at most 9 digits")
            datalen = int(buf[sp2 + 1:end])
            if datalen > self.max_data:
                raise RelpProtocolError(f"frame of {datalen} bytes is over the limit of {self.max_data}")
            if datalen == 0:
                if buf[end] != 0x0A:
                    # librelp writes "N cmd 0\n"; tolerate "N cmd 0 \n" too
                    if end + 1 >= n:
                        break
                    if buf[end + 1] != 0x0A:
                        raise RelpProtocolError("frame with data length 0 carries data")
                    end += 1
                data = b""
                nxt = end + 1
            else:
                if buf[end] != 0x20:
                    raise RelpProtocolError("data length is not followed by a space")
                start = end + 1
                stop = start + datalen
                if stop >= n:
                    break  # need the data and the trailer
                if buf[stop] != 0x0A:
                    raise RelpProtocolError("frame trailer is not a line feed")
                data = bytes(buf[start:stop])
                nxt = stop + 1
            txnr = int(txnr_b)
            if txnr > _MAX_TXNR:
                raise RelpProtocolError("transaction number over 999999999")
            frames.append(RelpFrame(txnr, command, data))
            pos = nxt
        del buf[:pos]
        if len(buf) > self.max_data + self._HEADER_MAX + 1:  # pragma: no cover - guarded above
            raise RelpProtocolError("frame over the limit")
        return frames


def _rsp(txnr: int, text: str) -> bytes:
    data = text.encode()
    return b"%d rsp %d %s\n" % (txnr, len(data), data) if data else b"%d rsp 0\n" % txnr


_SERVERCLOSE = b"0 serverclose 0\n"


@dataclass
class _RelpCounters(SourceCounters):
    connections: int = 0
    connections_total: int = 0
    refused: int = 0
    idle_closed: int = 0
    slow_closed: int = 0
    acknowledged: int = 0
    protocol_errors: int = 0


class RelpSource:
    """RELP listener (rsyslog ``omrelp``), optionally over TLS; acknowledges after commit."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 2514,
        *,
        tls_cert: str | os.PathLike[str] | None = None,
        tls_key: str | os.PathLike[str] | None = None,
        format: str = "auto",
        dataset: str | None = None,
        name: str | None = None,
        max_message_size: int = DEFAULT_MAX_MESSAGE,
        read_size: int = 256 * 1024,
        timezone: Zone = None,
        max_connections: int = 1024,
        max_connections_per_peer: int = 64,
        idle_timeout: float | None = 600.0,
        frame_timeout: float = 30.0,
    ) -> None:
        if (tls_cert is None) != (tls_key is None):
            raise ValueError("RELP over TLS needs both tls_cert and tls_key (PEM files)")
        self.host, self.port = host, port
        self.tls_cert, self.tls_key = tls_cert, tls_key
        self.format, self.dataset, self.timezone = format, dataset, timezone
        self.name = name or f"relp:{port}"
        self.max_message_size = max_message_size
        self.read_size = read_size
        self.idle_timeout, self.frame_timeout = idle_timeout, frame_timeout
        self.slots = PeerSlots(max_connections, max_connections_per_peer)
        self.ready = asyncio.Event()
        self._c = _RelpCounters()

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
            raise ValueError(f"RELP TLS: cannot load certificate {self.tls_cert} / key {self.tls_key}: {exc}") from exc
        return ctx

    async def run(self, emit: DurableEmit) -> None:
        ctx = self._ssl_context()

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await self._session(reader, writer, emit)

        try:
            server = await asyncio.start_server(handle, self.host, self.port, ssl=ctx, limit=self.read_size,
                                                reuse_address=True)
        except OSError as exc:
            raise OSError(exc.errno, f"RELP cannot listen on {self.host}:{self.port}: {exc.strerror}") from exc
        self.port = server.sockets[0].getsockname()[1]
        self.ready.set()
        log.info("RELP listening on %s:%d", self.host, self.port)
        try:
            async with server:
                await server.serve_forever()
        finally:
            self.ready.clear()

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, emit: DurableEmit) -> None:
        c = self._c
        peer = writer.get_extra_info("peername")
        peer_host = str(peer[0]) if isinstance(peer, tuple) else "?"
        if not self.slots.acquire(peer_host):
            c.refused += 1
            c.dropped += 1
            writer.close()
            return
        c.connections += 1
        c.connections_total += 1
        meta = _meta(peer, "tcp", self.timezone)
        meta["log.source.protocol"] = "relp"
        framer = RelpFramer(self.max_message_size)
        opened = False
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
                    if framer.pending:
                        c.slow_closed += 1
                    else:
                        c.idle_closed += 1
                    writer.write(_SERVERCLOSE)
                    break
                if not chunk:
                    break
                was_pending = framer.pending
                try:
                    frames = framer.feed(chunk)
                except RelpProtocolError as exc:
                    c.protocol_errors += 1
                    c.errors += 1
                    log.info("%s: %s from %s; session closed", self.name, exc, meta.get("log.source.address"))
                    writer.write(_SERVERCLOSE)
                    break
                if framer.pending and (not was_pending or frames):
                    frame_started = time.monotonic()
                answers, accepted, opened, closing, bad = self._answer(frames, opened)
                records = [RawRecord(f.data.rstrip(b"\n\x00"), format=self.format, source=self.name,
                                     dataset=self.dataset, meta=dict(meta))
                           for f in accepted]
                if records:
                    c.received += len(records)
                    # Acknowledge only what the store has: the pipeline answers after commit.
                    await emit(records, wait=True)
                    c.emitted += len(records)
                    c.acknowledged += len(records)
                writer.write(b"".join(answers))
                await writer.drain()
                if bad:
                    c.protocol_errors += 1
                    c.errors += 1
                    writer.write(_SERVERCLOSE)
                    break
                if closing:
                    break
        except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError) as exc:
            c.errors += 1
            log.info("%s: session from %s ended: %s", self.name, meta.get("log.source.address"), exc)
        except asyncio.CancelledError:
            raise
        except Exception:
            # The pipeline refused (shutting down, store failing): nothing was acknowledged,
            # the sender keeps the messages and resends them to the next session.
            c.errors += 1
            log.exception("%s: batch not committed; session closed without acknowledgement", self.name)
        finally:
            c.connections -= 1
            self.slots.release(peer_host)
            try:
                writer.close()
                await writer.wait_closed()
            except (ConnectionError, ssl.SSLError, OSError):
                pass

    def _answer(self, frames: Sequence[RelpFrame],
                opened: bool) -> tuple[list[bytes], list[RelpFrame], bool, bool, bool]:
        """The responses to ``frames`` in order, written after the accepted messages commit.

        Returns (answers, accepted syslog frames, opened, closing, protocol error); frames
        after a ``close`` or a protocol error are neither answered nor committed.
        """
        answers: list[bytes] = []
        accepted: list[RelpFrame] = []
        for f in frames:
            if f.command not in _COMMANDS:
                answers.append(_rsp(f.txnr, f"500 command {f.command[:32].decode('ascii', 'replace')} not offered"))
                return answers, accepted, opened, False, True
            if f.command == b"open":
                opened = True
                answers.append(_rsp(f.txnr, f"200 OK\nrelp_version=0\nrelp_software={_SOFTWARE}\ncommands=syslog"))
            elif f.command == b"syslog":
                if not opened:
                    answers.append(_rsp(f.txnr, "500 session not opened"))
                    return answers, accepted, opened, False, True
                accepted.append(f)
                answers.append(_rsp(f.txnr, "200 OK"))
            else:  # close
                answers.append(_rsp(f.txnr, ""))
                return answers, accepted, opened, True, False
        return answers, accepted, opened, False, False
