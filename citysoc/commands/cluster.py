"""``citysoc cluster status``: the NATS JetStream deployment as the bus sees it.

Reads only the bus (stream state, the lease and checkpoint buckets, consumer info), so it
runs from any machine that reaches NATS, with the same ``bus:`` settings as the nodes.
"""
from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

import click
import orjson
from rich.table import Table

from citysoc.commands._common import config_option, load, out


async def _status(settings: Any) -> dict[str, Any]:
    from bus.nats import NatsBus
    from core.bus import BusUnavailable

    bs = settings.bus
    prefix = "citysoc.events" if bs.stream == "CITYSOC_EVENTS" else f"citysoc.{bs.stream}.events"
    try:
        bus = await NatsBus.connect(bs.servers, partitions=bs.partitions, replicas=bs.replicas, stream=bs.stream,
                                    lease_s=bs.lease_s, subject_prefix=prefix, setup_timeout_s=10.0,
                                    name="citysoc-cluster-status")
    except BusUnavailable as exc:
        raise click.ClickException(f"{exc}; check bus.servers in citysoc.yml and that NATS is up") from exc
    try:
        groups: dict[str, Any] = {}
        for group in ("detector", "writer"):
            members = await bus.live_members(group)
            owners = await bus.partition_owners(group)
            lag = await bus.consumer_lag(group)
            groups[group] = {
                "members": {m: {"owned": info.get("owned", []), "delivered": info.get("delivered", 0),
                                "redelivered": info.get("redelivered", 0), "acked": info.get("acked", 0),
                                "seen_s_ago": round(time.time() - float(info.get("time", 0)), 1)}
                            for m, info in sorted(members.items())},
                "partitions": {p: {"owner": owners.get(p), **lag.get(p, {})} for p in range(bus.partitions)},
            }
        return {"stream": bs.stream, "servers": bs.servers, "partitions": bus.partitions,
                "state": await bus.stream_state(), "groups": groups}
    finally:
        await bus.close()


@click.group()
def cluster() -> None:
    """The scale-out deployment on NATS JetStream (bus.backend: nats)."""


@cluster.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON document instead of tables.")
@config_option
def status(as_json: bool, config: str | None) -> None:
    """Nodes of each consumer group, every partition's owner and lag, and the stream's replicas."""
    settings = load(config)
    if settings.bus.backend != "nats":
        raise click.ClickException("bus.backend is 'embedded' (one machine, no cluster); "
                                   "set bus.backend: nats and bus.servers in citysoc.yml")
    st = asyncio.run(_status(settings))
    if as_json:
        sys.stdout.buffer.write(orjson.dumps(st, option=orjson.OPT_NON_STR_KEYS | orjson.OPT_INDENT_2) + b"\n")
        return
    s = st["state"]
    out.print(f"stream {st['stream']}: {s['messages']} messages, {s['bytes']} bytes, seq {s['first_seq']}..{s['last_seq']}, "
              f"leader {s['leader']}; replicas: "
              + (", ".join(f"{r['name']} ({'current' if r['current'] else 'behind'}, lag {r['lag']})"
                           for r in s["replicas"]) or "none"))
    for group, g in st["groups"].items():
        t = Table(title=f"{group} nodes")
        for col in ("node", "partitions", "delivered", "redelivered", "acked", "last heartbeat"):
            t.add_column(col)
        for m, info in g["members"].items():
            t.add_row(m, ",".join(map(str, info["owned"])) or "-", str(info["delivered"]), str(info["redelivered"]),
                      str(info["acked"]), f"{info['seen_s_ago']} s ago")
        if not g["members"]:
            t.add_row("(none alive)", "-", "-", "-", "-", "-")
        out.print(t)
        pt = Table(title=f"{group} partitions")
        for col in ("partition", "owner", "pending", "unacked", "redelivered", "acked seq"):
            pt.add_column(col)
        for p, info in g["partitions"].items():
            pt.add_row(str(p), info.get("owner") or "[red]none[/red]", str(info.get("pending", "-")),
                       str(info.get("ack_pending", "-")), str(info.get("redelivered", "-")),
                       str(info.get("acked_seq", "-")))
        out.print(pt)
