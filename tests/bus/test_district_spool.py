"""District collectors ride out a link outage (issue 15 item 4), with real parts only.

A real 3-node JetStream cluster on loopback, a core node (``writer`` + ``api``) and a
district collector (``citysoc serve --roles collector``) that reaches the cluster only
through :class:`LinkProxy`, a TCP relay standing for the district's link: ``cut()`` drops
every connection and refuses new ones (the 60 s outage), ``pause()`` forwards nothing
while keeping connections open (a link that drops packets silently: the full-spool test),
``restore()`` lets everything through again. The servers
run with ``--no_advertise`` so the collector's client cannot learn (and reconnect around
the link to) the other servers' addresses.

Pinned: during a 60 s outage the collector keeps acknowledging (its spool fsyncs first);
when the link returns every acknowledged event reaches the writer once, in order per
source (checked on the stream itself, by a sequence number each sender puts in its
events), and new events queue behind the spooled ones. With a tiny ``spool_max_bytes``
the newest events are refused: sent = stored + dropped exactly, the dropped figure on
``/metrics``, one ``bus:spool_full`` alert for the episode.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import nats
import pytest

from bus.servers import NatsCluster
from bus.spool import SegmentSpool
from core.bus import BusRecord
from citysoc.testing import ServeProcess, free_port, wait_for


class LinkProxy:
    """A TCP relay 127.0.0.1:``port`` -> ``target``; :meth:`cut` is the district link failing."""

    def __init__(self, target: int):
        self.target = target
        self.port = free_port()
        self.up = True
        self.paused = False
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._srv = socket.create_server(("127.0.0.1", self.port), reuse_port=False)
        self._srv.settimeout(0.2)
        self._stop = False
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while not self._stop:
            if self.paused:  # a black hole: connection attempts wait in the backlog
                time.sleep(0.05)
                continue
            try:
                c, _ = self._srv.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if not self.up:
                c.close()  # the link is down: nothing gets through
                continue
            try:
                u = socket.create_connection(("127.0.0.1", self.target), timeout=2)
            except OSError:
                c.close()
                continue
            with self._lock:
                self._conns.update((c, u))
            for a, b in ((c, u), (u, c)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, a: socket.socket, b: socket.socket) -> None:
        try:
            while True:
                data = a.recv(65536)
                if not data:
                    break
                while self.paused and not self._stop:  # hold the bytes; TCP backpressure does the rest
                    time.sleep(0.05)
                b.sendall(data)
        except OSError:
            pass
        finally:
            for s in (a, b):
                self._close(s)

    def _close(self, s: socket.socket) -> None:
        with self._lock:
            self._conns.discard(s)
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        s.close()

    def cut(self) -> None:
        self.up = False
        with self._lock:
            conns = list(self._conns)
        for s in conns:
            self._close(s)

    def pause(self) -> None:
        """The link drops packets silently: connections stay open, nothing crosses."""
        self.paused = True

    def restore(self) -> None:
        self.up = True
        self.paused = False

    def close(self) -> None:
        self._stop = True
        self.cut()
        self._srv.close()
        self._thread.join(5)


@pytest.fixture(scope="module")
def core_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsCluster]:
    cluster = NatsCluster(tmp_path_factory.mktemp("nats-district"), nodes=3)
    for n in cluster.nodes:
        n.extra = ["--no_advertise"]  # clients know only the URL they were given: the link
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def district(tmp_path: Path, core_cluster: NatsCluster, stream_name: str):
    """``start(spool_max_bytes)`` -> (core node, collector node, link proxy)."""
    started: list[ServeProcess] = []
    proxies: list[LinkProxy] = []

    def node(name: str, roles: list[str], servers: list[str], **bus: object) -> ServeProcess:
        cfg = {"bus": {"backend": "nats", "servers": servers, "stream": stream_name, "partitions": 4,
                       "replicas": 3, "lease_s": 2.0, "roles": roles, "node": name, **bus},
               "playbooks": {"enabled": False}, "pipeline": {"workers": 0, "flush_ms": 20}}
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(cfg), encoding="utf-8")
        n = ServeProcess(tmp_path / name, config=path)
        n.start()
        started.append(n)
        return n

    def start(**collector_bus: object) -> tuple[ServeProcess, ServeProcess, LinkProxy]:
        core = node("core", ["writer", "api"], core_cluster.urls)
        link = LinkProxy(core_cluster.nodes[0].port)
        proxies.append(link)
        collector = node("district-7", ["collector"], [link.url], publish_timeout_s=3.0, **collector_bus)
        return core, collector, link

    yield start
    for n in started:
        n.stop()
    for p in proxies:
        p.close()


SOURCES = ("10.7.1.11", "10.7.1.12", "10.7.1.13")  # three cameras of district 7


def _events(src_ix: int, first: int, n: int) -> list[dict]:
    now = dt.datetime.now(dt.timezone.utc).isoformat()
    return [{"@timestamp": now, "message": f"cam {SOURCES[src_ix]} frame {seq}",
             "event": {"dataset": "spoolprobe"}, "source": {"ip": SOURCES[src_ix]},
             "labels": {"src": src_ix, "seq": seq}} for seq in range(first, first + n)]


class Sender:
    """Sends batches round-robin over the sources; remembers what the collector acknowledged."""

    def __init__(self, node: ServeProcess, per_batch: int = 10):
        self.client = httpx.Client(base_url=node.url, timeout=30,
                                   headers={"Authorization": f"ApiKey {node.api_key('ingest')}"})
        self.per_batch = per_batch
        self.next = [0] * len(SOURCES)
        self.sent = 0
        self.acked: set[tuple[int, int]] = set()
        self.refused: set[tuple[int, int]] = set()
        self.failures = 0
        self.slowest = 0.0

    def send_one(self, src: int) -> None:
        evs = _events(src, self.next[src], self.per_batch)
        self.next[src] += self.per_batch
        t0 = time.monotonic()
        r = self.client.post("/api/v1/ingest", content=b"".join(json.dumps(e).encode() + b"\n" for e in evs))
        self.slowest = max(self.slowest, time.monotonic() - t0)
        self.sent += len(evs)
        keys = [(src, e["labels"]["seq"]) for e in evs]
        if r.status_code != 200:
            self.failures += 1
            self.refused.update(keys)
            return
        bad = {e["index"] for e in r.json()["errors"]}
        for i, k in enumerate(keys):
            (self.refused if i in bad else self.acked).add(k)

    def run_for(self, seconds: float, pause: float = 0.05) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            for s in range(len(SOURCES)):
                self.send_one(s)
            time.sleep(pause)


def _metric(node: ServeProcess, key: str, name: str) -> float:
    text = httpx.get(f"{node.url}/metrics", headers={"Authorization": f"ApiKey {key}"}, timeout=10).text
    for line in text.splitlines():
        if line.startswith(f"citysoc_bus_{name} "):
            return float(line.split()[1])
    raise AssertionError(f"citysoc_bus_{name} not on /metrics: {text[-1500:]}")


def _stream_records(urls: list[str], stream: str) -> list[tuple[int, int]]:
    """(source, seq) of every probe record on the stream, in stream order (all partitions)."""

    async def read() -> list[tuple[int, int]]:
        nc = await nats.connect(servers=urls)
        try:
            js = nc.jetstream()
            last = (await js.stream_info(stream)).state.last_seq
            out = []
            for seq in range(1, last + 1):
                msg = await js.get_msg(stream, seq)
                ev = json.loads(msg.data)["ev"]
                if ev.get("event", {}).get("dataset") == "spoolprobe":
                    out.append((ev["labels"]["src"], ev["labels"]["seq"]))
            return out
        finally:
            await nc.close()

    return asyncio.run(read())


def _alerts(node: ServeProcess, key: str, rule: str) -> list[dict]:
    r = node.get(key, "/api/v1/alerts", rule_id=rule, size=100)
    r.raise_for_status()
    return r.json()["items"]


def test_a_60s_outage_loses_nothing_and_delivers_in_order_per_source(district, core_cluster: NatsCluster,
                                                                      stream_name: str) -> None:
    core, collector, link = district()
    viewer, admin = core.api_key("viewer"), collector.api_key("admin")
    sender = Sender(collector)
    sender.run_for(5)  # link up: straight to JetStream
    assert _metric(collector, admin, "spool_appended_total") == 0
    link.cut()
    t_cut = time.monotonic()
    sender.run_for(60)
    assert sender.failures == 0 and not sender.refused, (sender.failures, collector.log_tail())
    spooled = _metric(collector, admin, "spool_events")
    assert spooled > 0 and _metric(collector, admin, "spool_bytes") > 0 and _metric(collector, admin, "spool_active") == 1
    # Every acknowledged event is in the core or in the spool (the batch in flight at the
    # cut may be in both: JetStream stored it, the confirmation did not come back).
    in_core = core.count(viewer, "event.dataset:spoolprobe")
    assert len(sender.acked) <= in_core + spooled <= len(sender.acked) + 3 * sender.per_batch, (in_core, spooled)
    link.restore()
    t_restore = time.monotonic()
    sender.run_for(5)  # new events while the spool drains: they queue behind it
    total = len(sender.acked)
    assert total == sender.sent and not sender.refused
    got = wait_for(lambda: core.count(viewer, "event.dataset:spoolprobe") >= total, timeout=120)
    assert got, (core.count(viewer, "event.dataset:spoolprobe"), total, collector.log_tail(4000))
    assert wait_for(lambda: _metric(collector, admin, "spool_events") == 0, timeout=30)
    assert _metric(collector, admin, "spool_active") == 0 and _metric(collector, admin, "spool_dropped_total") == 0
    time.sleep(1)
    assert core.count(viewer, "event.dataset:spoolprobe") == total  # none twice in the store
    on_stream = _stream_records(core_cluster.urls, stream_name)
    assert len(on_stream) == len(set(on_stream)) == total, "duplicates on the stream"
    assert set(on_stream) == sender.acked
    for s in range(len(SOURCES)):  # one source = one partition: its order on the stream is its order
        seqs = [q for src, q in on_stream if src == s]
        assert seqs == sorted(seqs), f"source {s} out of order"
    print(f"\noutage {t_restore - t_cut:.0f} s: sent {sender.sent}, spooled {int(spooled)}, "
          f"drain {_metric(collector, admin, 'spool_last_drain_events_per_s'):.0f} ev/s, "
          f"slowest ack {sender.slowest:.2f} s")


def test_a_full_spool_refuses_the_newest_counts_them_and_alerts_once(district, core_cluster: NatsCluster) -> None:
    core, collector, link = district(spool_max_bytes=16384)
    viewer, admin = core.api_key("viewer"), collector.api_key("admin")
    sender = Sender(collector, per_batch=10)
    sender.run_for(1)
    link.pause()  # this time the link goes silent (no reset): found by the publish timeout
    for _ in range(40):  # 40 x 3 x 10 events of ~300 bytes: far more than 16 KiB
        for s in range(len(SOURCES)):
            sender.send_one(s)
    assert sender.refused, "the spool should have filled"
    assert sender.slowest >= 2.5, sender.slowest  # the first batch waited out publish_timeout_s (3 s), then spooled
    assert _metric(collector, admin, "spool_outages_total") == 1
    assert _metric(collector, admin, "spool_dropped_total") == len(sender.refused)
    assert _metric(collector, admin, "spool_bytes") <= 16384
    local = _alerts(collector, collector.api_key("viewer"), "bus:spool_full")
    assert len(local) == 1, local  # one alert for the episode, however many events it refused
    link.restore()
    assert wait_for(lambda: _metric(collector, admin, "spool_events") == 0, timeout=60)
    sender.run_for(1)  # after the episode: accepted again
    acked = len(sender.acked)
    assert sender.sent == acked + len(sender.refused)
    assert wait_for(lambda: core.count(viewer, "event.dataset:spoolprobe") >= acked, timeout=60)
    time.sleep(1)
    assert core.count(viewer, "event.dataset:spoolprobe") == acked
    queued = wait_for(lambda: _alerts(core, viewer, "bus:spool_full"), timeout=30)
    assert len(queued) == 1 and "district-7" in queued[0]["rule_title"], queued
    assert _metric(collector, admin, "spool_dropped_total") == len(sender.refused)


# -- the spool on its own (real files, no NATS) ----------------------------------------
def _records(first: int, n: int, src: str = "cam-1") -> list[BusRecord]:
    return [BusRecord(id=f"{src}-{i}", partition=i % 4, source=src,
                      event={"message": f"frame {i} " + "x" * 200, "labels": {"seq": i}}) for i in range(first, first + n)]


def _drain(spool: SegmentSpool, step: int = 7) -> list[int]:
    out = []
    while True:
        recs, mark = spool.peek(step)
        if not recs:
            return out
        out += [r.event["labels"]["seq"] for r in recs]
        spool.commit(mark)


def test_spool_refuses_the_newest_within_its_bound_and_counts_them(tmp_path: Path) -> None:
    spool = SegmentSpool(tmp_path / "spool", max_bytes=20_000, segment_bytes=4096)
    accepted = sum(spool.append(_records(i, 10)) for i in range(0, 300, 10))
    assert 0 < accepted < 300 and spool.dropped == 300 - accepted and spool.appended == accepted
    on_disk = sum(p.stat().st_size for p in (tmp_path / "spool").glob("seg-*.log"))
    assert on_disk == spool.bytes <= 20_000
    assert _drain(spool) == list(range(accepted))  # the oldest kept, in order: the newest were refused
    assert spool.events == 0 and spool.bytes == 0 and not list((tmp_path / "spool").glob("seg-*.log"))
    assert spool.append(_records(1000, 10)) == 10  # room again once forwarded


def test_spool_survives_a_restart_and_cuts_a_torn_write(tmp_path: Path) -> None:
    folder = tmp_path / "spool"
    spool = SegmentSpool(folder, max_bytes=1 << 20, segment_bytes=4096)
    for i in range(0, 100, 10):
        spool.append(_records(i, 10))
    _recs, mark = spool.peek(35)
    spool.commit(mark)  # 35 forwarded before the restart
    spool.close()
    last = sorted(folder.glob("seg-*.log"))[-1]
    with open(last, "ab") as f:  # a crash in the middle of writing a frame (never acknowledged)
        f.write(b"\x40\x00\x00\x00\x01\x02\x03\x04{\"id\": \"half")
    again = SegmentSpool(folder, max_bytes=1 << 20, segment_bytes=4096)
    assert again.events == 65
    again.append(_records(100, 5))
    assert _drain(again) == list(range(35, 105))
