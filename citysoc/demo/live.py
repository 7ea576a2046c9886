"""The served demo keeps its city talking: ordinary device lines, live, while serving.

The recorded week ends when ``citysoc demo`` ran. Without more logs every asset with a
log interval (cameras, NVRs, warehouse databases) would go silent once its interval had
passed, and ``asset:silent`` alerts would bury the injected attacks (issue 16: 136 of them
in 40 minutes). :class:`LiveCity` schedules, per asset of the inventory, the same kind of
line the generator (:mod:`citysoc.demo.normal`) writes for it, at the generator's pace and
always well inside the asset's expected interval; ``serve`` submits what fell due every
``demo.background_interval_s`` (:func:`feed_forever`).

Assets that were already silent when the recording ended (the silent-database scenario)
stay silent: the demo's story is kept, and only that one alert stands.
"""
from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any

from citysoc.demo.city import SOC_IP
from citysoc.demo.normal import access, dahua, hik, pg, sshd
from core.assets import Asset, AssetHealth, expected_interval
from core.protocols import RawRecord

__all__ = ["LiveCity", "feed_forever", "PACE"]

log = logging.getLogger("citysoc.demo")

PACE: dict[str, tuple[float, float]] = {
    "camera": (1200.0, 2400.0), "nvr": (300.0, 900.0), "db_node": (120.0, 400.0), "api_gateway": (60.0, 180.0),
    "server": (900.0, 2400.0), "vms": (900.0, 2400.0), "model_store": (900.0, 2400.0),
}
"""Seconds between two ordinary lines of a type (as in :mod:`citysoc.demo.normal`); capped
at 60 % of the asset's expected interval so a live asset never looks silent."""


def _line(asset: Asset, t: float, rnd: random.Random) -> tuple[str, str | None] | None:
    """(text, sender address or None) of one ordinary line of ``asset`` at ``t``."""
    host = asset.hostnames[0] if asset.hostnames else asset.id
    vendor = asset.tags[0] if asset.tags else ""
    if asset.type == "camera":
        return (hik(t, host, "Alarm, Minor Type: Motion Detection Started, Channel No.: 1") if vendor == "hikvision"
                else dahua(t, host, "[Event] Motion Detect Start. Channel: 1")), None
    if asset.type == "nvr":
        ch = rnd.randint(1, 16)
        return (hik(t, host, f"Alarm, Minor Type: Motion Detection Started, Channel No.: {ch}")
                if vendor == "hikvision" else dahua(t, host, f"[Event] Motion Detect Start. Channel: {ch}")), None
    if not asset.ips:
        return None
    if asset.type == "db_node":
        return pg(t, "etl_svc@warehouse", "LOG:  connection authorized: user=etl_svc database=warehouse "
                                          "application_name=loader", rnd.randint(4000, 9000)), asset.ips[0]
    if asset.type == "api_gateway":
        return access(t, "10.40.0.12", "GET /api/v1/air/latest", 200, rnd.randint(400, 9000)), asset.ips[0]
    if asset.type in ("server", "vms", "model_store"):
        return sshd(t, host, f"Accepted publickey for ops from {SOC_IP} port {rnd.randint(40000, 60000)} ssh2: "
                             "RSA SHA256:Yw8H2QOJm0mNTvw0E6Xr5oZcJ1mM7ugkYlS2eQ6oZ8c", rnd.randint(2000, 30000)), None
    return None


class LiveCity:
    """Per-asset schedule of ordinary lines from ``now`` on.

    ``assets`` and ``health`` are the server's inventory and stored health; an asset whose
    last line is older than its interval at the newest time any asset was heard (it was
    silent when the recording ended) gets no lines. Every fed asset has a line due at
    once, so the first :meth:`due` call makes the city heard again."""

    def __init__(self, assets: Iterable[Asset], health: Mapping[str, AssetHealth], now: float, *, seed: int = 7):
        self.rnd = random.Random(seed)
        seen = [h.last_seen for h in health.values() if h.last_seen is not None]
        newest = max(seen) if seen else now
        self.quiet: list[str] = []
        self.assets: dict[str, Asset] = {}
        self.next_at: dict[str, float] = {}
        for a in assets:
            if a.type not in PACE:
                continue
            h = health.get(a.id)
            if h is not None and h.last_seen is not None and newest - h.last_seen > expected_interval(a):
                self.quiet.append(a.id)
                continue
            self.assets[a.id] = a
            self.next_at[a.id] = now - self.rnd.uniform(0, 5)

    def _gap(self, a: Asset) -> float:
        lo, hi = PACE[a.type]
        cap = 0.6 * expected_interval(a)
        return self.rnd.uniform(min(lo, cap / 2), min(hi, cap))

    def due(self, now: float) -> list[tuple[float, RawRecord]]:
        """The lines due up to ``now`` (each at its own time), in time order."""
        out: list[tuple[float, RawRecord]] = []
        for aid, a in self.assets.items():
            t = self.next_at[aid]
            while t <= now:
                made = _line(a, t, self.rnd)
                if made is not None:
                    text, addr = made
                    meta: dict[str, Any] = {"log.source.address": addr} if addr else {}
                    out.append((t, RawRecord(text.encode(), format="auto", source="demo-live", meta=meta)))
                t += self._gap(a)
            self.next_at[aid] = t
        out.sort(key=lambda r: r[0])
        return out


async def feed_forever(live: LiveCity, submit: Callable[[Sequence[RawRecord]], Awaitable[Any]],
                       interval_s: float, *, clock: Callable[[], float] = time.time) -> None:
    """Every ``interval_s``: submit the lines that fell due (the served demo's scheduler task)."""
    while True:
        await asyncio.sleep(interval_s)
        try:
            recs = [r for _t, r in live.due(clock())]
            if recs:
                await submit(recs)
        except Exception:
            log.exception("demo background logs: a feed failed; will retry")
