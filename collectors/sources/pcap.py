"""Live capture source: a raw packet socket on an interface, decoded into network events.

A capture thread reads frames from scapy's ``L2ListenSocket`` (AF_PACKET, with the
BPF filter compiled by libpcap and attached in the kernel, so unwanted packets never
reach Python) and decodes them with :class:`collectors.network.NetworkDecoder`. Its
events go to the pipeline as ``RawRecord(format="ecs")``: the record already holds an
ECS JSON document and the parser registry passes it through.

Packets cannot be slowed down the way a TCP sender can: when the pipeline is slower
than the wire, batches are dropped at the hand-over queue and counted in
``dropped`` (the kernel counts its own drops when the socket buffer overflows).

On ``lo`` every packet is seen twice (out and in): add ``and inbound`` to the filter.

Example::

    source = LiveCaptureSource("eth1", "tcp or udp", name="pcap:eth1")
    await source.run(pipeline.emit)   # until cancelled; open flows are flushed then
"""
from __future__ import annotations

import asyncio
import contextlib
import select
import threading
import time
from typing import Any

import orjson

from collectors.network.decoder import NetworkDecoder
from collectors.network.packet import LINKTYPE_ETHERNET, LINKTYPE_LINUX_SLL, LINKTYPE_RAW
from core.events import Event
from core.protocols import Emit, RawRecord

__all__ = ["LiveCaptureSource", "CaptureError"]


class CaptureError(RuntimeError):
    """The capture socket could not be opened (no such interface, no privilege, bad filter)."""


def _linktype_of(layer: Any) -> int:
    name = getattr(layer, "__name__", "")
    if name in ("CookedLinux", "CookedLinuxV2"):
        return LINKTYPE_LINUX_SLL
    if name in ("IP", "IPv6", "IPv46"):
        return LINKTYPE_RAW
    return LINKTYPE_ETHERNET


class LiveCaptureSource:
    """Capture on ``interface`` with ``bpf_filter`` and emit decoded network events.

    ``batch_size``/``batch_interval`` bound how long an event waits in the capture
    thread; ``queue_batches`` bounds the hand-over queue (the memory held when the
    pipeline stalls). Decoder options (``max_flows``, timeouts) pass through.
    """

    def __init__(
        self,
        interface: str,
        bpf_filter: str | None = None,
        *,
        name: str | None = None,
        promisc: bool = False,
        batch_size: int = 256,
        batch_interval: float = 0.2,
        queue_batches: int = 256,
        **decoder_options: Any,
    ) -> None:
        self.interface = interface
        self.bpf_filter = bpf_filter
        self.name = name or f"pcap:{interface}"
        self.promisc = promisc
        self.batch_size = batch_size
        self.batch_interval = batch_interval
        self.queue_batches = queue_batches
        decoder_options.setdefault("observer", interface)
        self.decoder = NetworkDecoder(**decoder_options)
        self.ready = threading.Event()
        """Set once the socket is open and filtering: traffic sent after this is seen."""
        self._stop = threading.Event()
        self._c = {"received": 0, "emitted": 0, "errors": 0, "dropped": 0}
        self._lock = threading.Lock()
        self._error: BaseException | None = None

    def counters(self) -> dict[str, int]:
        """received (frames), emitted (events handed on), errors, dropped, plus the decoder's."""
        with self._lock:
            out = dict(self._c)
        for k, v in self.decoder.counters().items():
            out[f"decoder_{k}"] = v
        return out

    def _open(self) -> Any:
        from scapy.arch.linux import L2ListenSocket

        try:
            return L2ListenSocket(iface=self.interface, filter=self.bpf_filter, promisc=self.promisc)
        except PermissionError as exc:
            raise CaptureError(f"cannot capture on {self.interface}: {exc}; run as root or grant "
                               "CAP_NET_RAW to the interpreter") from exc
        except OSError as exc:
            raise CaptureError(f"cannot capture on {self.interface}: {exc}; check the interface "
                               "name with `ip link`") from exc
        except Exception as exc:  # scapy raises Scapy_Exception for filter problems
            raise CaptureError(f"cannot capture on {self.interface} with filter {self.bpf_filter!r}: {exc}; "
                               "check the BPF syntax (tcpdump -d) and that libpcap0.8 is installed") from exc

    def _capture(self, loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[list[Event] | None]) -> None:
        dec = self.decoder
        batch: list[Event] = []
        last_hand = time.monotonic()

        def hand_over(events: list[Event] | None) -> None:
            def put() -> None:
                try:
                    queue.put_nowait(events)
                except asyncio.QueueFull:
                    with self._lock:
                        self._c["dropped"] += len(events or ())
            loop.call_soon_threadsafe(put)

        try:
            sock = self._open()
        except CaptureError as exc:
            self._error = exc
            hand_over(None)
            return
        try:
            linktype = _linktype_of(sock.LL)
            self.ready.set()
            fd = sock.ins.fileno()
            last_expire = time.time()
            while not self._stop.is_set():
                readable, _, _ = select.select([fd], [], [], self.batch_interval)
                if readable:
                    try:
                        _cls, data, ts = sock.recv_raw()
                    except OSError:
                        with self._lock:
                            self._c["errors"] += 1
                        continue
                    if data is not None:
                        with self._lock:
                            self._c["received"] += 1
                        try:
                            batch.extend(dec.feed(ts or time.time(), linktype, data))
                        except Exception:  # one odd frame must not stop the capture
                            with self._lock:
                                self._c["errors"] += 1
                now = time.time()
                if now - last_expire >= 1.0:
                    batch.extend(dec.expire(now))
                    last_expire = now
                if batch and (len(batch) >= self.batch_size or time.monotonic() - last_hand >= self.batch_interval):
                    hand_over(batch)
                    batch = []
                    last_hand = time.monotonic()
            batch.extend(dec.flush("capture_stopped"))
            if batch:
                hand_over(batch)
        finally:
            sock.close()
            hand_over(None)

    async def run(self, emit: Emit) -> None:
        """Capture until cancelled; then stop the thread, flush open flows and emit them."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[list[Event] | None] = asyncio.Queue(maxsize=self.queue_batches)
        self._stop.clear()
        thread = threading.Thread(target=self._capture, args=(loop, queue), name=f"capture-{self.interface}",
                                  daemon=True)
        thread.start()
        try:
            while True:
                events = await queue.get()
                if events is None:
                    break
                await self._emit(emit, events)
        except asyncio.CancelledError:
            self._stop.set()
            await asyncio.shield(asyncio.to_thread(thread.join, 10.0))
            # Drain what the thread handed over while stopping (the flushed flows).
            await asyncio.sleep(0)
            while True:
                try:
                    events = queue.get_nowait()
                except asyncio.QueueEmpty:
                    break
                if events:
                    with contextlib.suppress(Exception):
                        await asyncio.shield(self._emit(emit, events))
            raise
        finally:
            self._stop.set()
        if self._error is not None:
            raise self._error

    async def _emit(self, emit: Emit, events: list[Event]) -> None:
        records = [RawRecord(data=orjson.dumps(ev), format="ecs", source=self.name, dataset=ev["event"]["dataset"],
                             meta={"interface": self.interface}) for ev in events]
        await emit(records)
        with self._lock:
            self._c["emitted"] += len(records)
