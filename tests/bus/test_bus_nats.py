"""The NATS bus against a real R3 cluster: durable publish, ordered per-partition consume
with ack after the handler, ownership split and moved, checkpoints."""
from __future__ import annotations

import asyncio

from bus.nats import NatsBus, owner_of
from bus.servers import NatsCluster
from core.bus import Batch, BusRecord, EventBus


async def _until(cond, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not cond():
        if loop.time() > end:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)


def _records(n: int, partitions: int, src: str = "c1") -> list[BusRecord]:
    return [BusRecord(id=f"{src}-{i}", partition=i % partitions, event={"message": f"m{i}", "n": i}, source=src)
            for i in range(n)]


def test_rendezvous_owner_is_stable_and_moves_only_what_must() -> None:
    before = {p: owner_of(p, ["a", "b"]) for p in range(64)}
    after = {p: owner_of(p, ["a", "b", "c"]) for p in range(64)}
    assert set(before.values()) == {"a", "b"}
    moved = [p for p in range(64) if before[p] != after[p]]
    assert moved and all(after[p] == "c" for p in moved)


def test_publish_then_consume_in_order_with_ack(nats_cluster: NatsCluster, stream_name: str) -> None:
    async def main() -> None:
        bus = await NatsBus.connect(nats_cluster.urls, partitions=4, replicas=3, stream=stream_name, subject_prefix=stream_name.lower(), lease_s=2.0)
        assert isinstance(bus, EventBus)
        recs = _records(2000, 4)
        await bus.publish(recs)
        await bus.publish(recs[:100])  # a collector's retry: stored once (Nats-Msg-Id)
        seen: dict[int, list[int]] = {p: [] for p in range(4)}

        async def handle(batch: Batch) -> None:
            seen[batch.partition].extend(r.event["n"] for r in batch.records)

        m = await bus.join("writer", "w1", handle)
        await _until(lambda: sum(len(v) for v in seen.values()) >= 2000)
        await asyncio.sleep(0.5)
        assert m.owned == frozenset(range(4))
        for p, ns in seen.items():
            assert ns == [i for i in range(2000) if i % 4 == p]  # all, once, in publish order
        lag = await bus.consumer_lag("writer")
        assert all(v["pending"] == 0 and v["ack_pending"] == 0 for v in lag.values())
        await bus.close()

    asyncio.run(main())


def test_failed_handler_gets_the_batch_again(nats_cluster: NatsCluster, stream_name: str) -> None:
    async def main() -> None:
        bus = await NatsBus.connect(nats_cluster.urls, partitions=1, replicas=3, stream=stream_name, subject_prefix=stream_name.lower(), lease_s=2.0)
        await bus.publish(_records(10, 1))
        calls: list[tuple[bool, list[int]]] = []

        async def handle(batch: Batch) -> None:
            calls.append((batch.redelivered, [r.event["n"] for r in batch.records]))
            if len(calls) == 1:
                raise RuntimeError("store down")

        await bus.join("writer", "w1", handle)
        await _until(lambda: len(calls) >= 2)
        assert calls[0] == (False, list(range(10)))
        assert calls[1] == (True, list(range(10)))
        await bus.close()

    asyncio.run(main())


def test_partitions_split_and_move_when_a_member_leaves(nats_cluster: NatsCluster, stream_name: str) -> None:
    async def main() -> None:
        bus_a = await NatsBus.connect(nats_cluster.urls, partitions=8, replicas=3, stream=stream_name, subject_prefix=stream_name.lower(), lease_s=1.0)
        bus_b = await NatsBus.connect(nats_cluster.urls, partitions=8, replicas=3, stream=stream_name, subject_prefix=stream_name.lower(), lease_s=1.0)
        got: dict[str, list[str]] = {"a": [], "b": []}
        changes: list[tuple[str, frozenset[int], frozenset[int]]] = []

        def handler(name: str):  # type: ignore[no-untyped-def]
            async def handle(batch: Batch) -> None:
                got[name].extend(r.id for r in batch.records)
            return handle

        def owner_cb(name: str):  # type: ignore[no-untyped-def]
            async def cb(assigned: frozenset[int], revoked: frozenset[int]) -> None:
                changes.append((name, assigned, revoked))
            return cb

        ma = await bus_a.join("detector", "a", handler("a"), owner_cb("a"))
        mb = await bus_b.join("detector", "b", handler("b"), owner_cb("b"))
        want_b = {p for p in range(8) if owner_of(p, ["a", "b"]) == "b"}
        await _until(lambda: mb.owned == want_b and ma.owned == set(range(8)) - want_b)
        await bus_a.publish(_records(400, 8))
        await _until(lambda: len(got["a"]) + len(got["b"]) >= 400)
        assert len(set(got["a"]) | set(got["b"])) == 400 and not set(got["a"]) & set(got["b"])
        await mb.leave()
        await _until(lambda: ma.owned == frozenset(range(8)))
        assert any(name == "a" and assigned == want_b for name, assigned, _ in changes)
        await bus_a.publish(_records(400, 8, src="c2"))
        await _until(lambda: sum(1 for i in got["a"] if i.startswith("c2")) >= 400)
        owners = await bus_a.partition_owners("detector")
        assert owners == dict.fromkeys(range(8), "a")
        await bus_a.save_checkpoint("detector", 3, b"seq=17")
        assert await bus_b.load_checkpoint("detector", 3) == b"seq=17"
        assert await bus_b.load_checkpoint("detector", 4) is None
        await bus_a.close()
        await bus_b.close()

    asyncio.run(main())


def test_a_failed_take_over_gives_the_partitions_back_and_they_are_read(nats_cluster: NatsCluster,
                                                                        stream_name: str) -> None:
    """A member whose ownership callback fails (the replay fetch timed out under load) must
    not keep the locks without consuming: the partitions come back in a later round and
    every record is read."""
    async def main() -> None:
        kw = {"partitions": 4, "replicas": 3, "stream": stream_name, "subject_prefix": stream_name.lower(),
              "lease_s": 1.0}
        bus_a, bus_b = await NatsBus.connect(nats_cluster.urls, **kw), await NatsBus.connect(nats_cluster.urls, **kw)
        calls: list[frozenset[int]] = []
        got: list[str] = []

        async def on_own(assigned: frozenset[int], revoked: frozenset[int]) -> None:
            if assigned:
                calls.append(assigned)
                if len(calls) == 2:  # the take-over after b leaves fails once
                    raise RuntimeError("replay fetch failed")

        async def handle(batch: Batch) -> None:
            got.extend(r.id for r in batch.records)

        async def nothing(batch: Batch) -> None:
            pass

        ma = await bus_a.join("detector", "a", handle, on_own)
        mb = await bus_b.join("detector", "b", nothing)
        want_b = {p for p in range(4) if owner_of(p, ["a", "b"]) == "b"}
        await _until(lambda: mb.owned == want_b and ma.owned == set(range(4)) - want_b)
        await mb.leave()
        await _until(lambda: len(calls) >= 3 and ma.owned == frozenset(range(4)))
        assert calls[1] == calls[2] == want_b  # failed once, taken again
        await bus_a.publish(_records(40, 4))
        await _until(lambda: len(got) >= 40)
        assert sorted(got) == sorted(f"c1-{i}" for i in range(40))
        assert await bus_a.partition_owners("detector") == dict.fromkeys(range(4), "a")
        await bus_a.close()
        await bus_b.close()

    asyncio.run(main())


def test_connect_waits_for_a_replica_peer_still_joining(tmp_path, stream_name: str) -> None:
    """Nodes started together with their cluster (compose, CI): an R3 stream is set up once
    the late third server of a new cluster joins, instead of failing the start. The exact
    answer a CI run got meanwhile ("no suitable peers for placement, peer offline", and
    ``serve`` exited on it) did not come on demand here; its classification is pinned by
    the next test."""
    import threading
    import time

    cluster = NatsCluster(tmp_path / "nats", nodes=3)
    first, late = cluster.nodes[:2], cluster.nodes[2]
    for n in first:
        n.start(cluster.binary)
    timer = threading.Timer(4.0, late.start, args=(cluster.binary,))
    timer.start()

    async def go() -> float:
        t0 = time.monotonic()
        bus = await NatsBus.connect([n.url for n in first], replicas=3, stream=stream_name, partitions=2,
                                    setup_timeout_s=60)
        waited = time.monotonic() - t0
        await bus.close()
        return waited

    try:
        waited = asyncio.run(go())
    finally:
        timer.join()
        cluster.stop()
    assert waited >= 3.0  # it waited for the late peer instead of giving up


def test_placement_pending_is_transient_other_bad_requests_are_not() -> None:
    import nats.js.errors

    from bus.nats import _placement_pending

    seen_in_ci = nats.js.errors.BadRequestError(code=400, err_code=10005,
                                                description="no suitable peers for placement, peer offline")
    assert _placement_pending(seen_in_ci)
    refused = nats.js.errors.BadRequestError(code=400, err_code=10058,
                                             description="stream name already in use with a different configuration")
    assert not _placement_pending(refused)
