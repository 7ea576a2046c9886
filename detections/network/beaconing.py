"""Beaconing: connections to one destination at regular intervals (implant check-ins).

For each (source, destination, port) we keep the start times of the last
``min_connections`` flows. Once that many are known, the intervals between them are
judged by their **coefficient of variation** (standard deviation / mean): a human or
a browser gives a CV near or above 1, a timer-driven implant gives a CV near 0 even with
a few percent of jitter. Intervals whose mean is below ``min_interval_s`` are bursts
(a download, a retry loop), not beacons.

Bounded: ``max_keys`` (source, destination, port) triples (least recently active
forgotten first), each at most ``min_connections`` timestamps. After a detection the
triple is quiet for ``cooldown_s``. DNS/NTP ports and ``ignore_destinations`` are
skipped: they are periodic by design; so are the periodic ``active_timeout`` summaries
of one long flow, which are not new connections.

Rule id ``net:beaconing``; ATT&CK T1071 (Application Layer Protocol) and T1573
(Encrypted Channel) when the flow is TLS.
"""
from __future__ import annotations

import math
from collections import deque
from typing import Any

from core.detectors import DetectorSpec
from core.protocols import Detection
from detections.network._common import EMPTY, BoundedMap, event_time, field
from detections.network.addrset import AddrSet
from detections.network.base import NetworkDetector
from detections.network.settings import BeaconingSettings
from detections.network.zones import ZoneMap
import itertools

__all__ = ["BeaconingDetector", "interval_stats"]


def interval_stats(starts: list[float]) -> tuple[list[float], float, float]:
    """(intervals, mean, coefficient of variation) of sorted start times."""
    ts = sorted(starts)
    intervals = [b - a for a, b in itertools.pairwise(ts)]
    mean = sum(intervals) / len(intervals)
    if mean <= 0:
        return intervals, mean, math.inf
    var = sum((x - mean) ** 2 for x in intervals) / len(intervals)
    return intervals, mean, math.sqrt(var) / mean


class _Pair:
    __slots__ = ("starts", "quiet_until")

    def __init__(self, n: int) -> None:
        self.starts: deque[float] = deque(maxlen=n)
        self.quiet_until = float("-inf")


class BeaconingDetector(NetworkDetector):
    """``core.protocols.Detector`` for low-jitter periodic connections."""

    spec = DetectorSpec(
        rule_id="net:beaconing",
        title="Beaconing: low-jitter periodic connections to one destination",
        title_vi="Beaconing: kết nối định kỳ đều đặn tới một đích",
        level="medium",
        tags=("attack.command-and-control", "attack.t1071", "attack.t1573"),
        consumes=("network_flow",),
        settings_key="beaconing",
        settings=BeaconingSettings,
    )

    def __init__(self, settings: BeaconingSettings | None = None, zones: ZoneMap | None = None) -> None:
        self.settings = settings or BeaconingSettings()
        self.zones = zones or ZoneMap()
        self.ignore_ports = frozenset(self.settings.ignore_ports)
        self.ignore_dst = AddrSet(self.settings.ignore_destinations, what="beaconing.ignore_destinations")
        self.pairs: BoundedMap[tuple[str, str, Any], _Pair] = BoundedMap(self.settings.max_keys)
        self._zones, self._default = self.settings.table()

    def state_sizes(self) -> dict[str, int]:
        return {"pairs": len(self.pairs)}

    def check(self, event: Any) -> list[Detection]:
        e = event.get("event") or EMPTY
        if e.get("action") != "network_flow" or e.get("reason") == "active_timeout":
            # An active-timeout summary continues a long flow (a camera stream reported every
            # 30 min): its "start" is the report period, not a new connection.
            return []
        d = event.get("destination") or EMPTY
        port = d.get("port")
        if port in self.ignore_ports:
            return []
        src = (event.get("source") or EMPTY).get("ip")
        dst = d.get("ip")
        if src is None or dst is None or dst in self.ignore_dst:
            return []
        th = self._zones.get(self.zones.zone_of(event, "source"), self._default)
        if not th.enabled:
            return []
        n = th.min_connections
        key = (src, dst, port)
        pair = self.pairs.get(key)
        if pair is None or pair.starts.maxlen != n:
            pair = _Pair(n)
            self.pairs.put(key, pair)
        else:
            self.pairs.move_to_end(key)
        start = event_time(event, start=True)
        pair.starts.append(start)
        if len(pair.starts) < n or start < pair.quiet_until:
            return []
        intervals, mean, cv = interval_stats(list(pair.starts))
        if not (th.min_interval_s <= mean <= th.max_interval_s) or cv >= th.max_cv:
            return []
        pair.quiet_until = start + th.cooldown_s
        proto = field(event, "network", "protocol")
        tags = ["attack.command-and-control", "attack.t1071"]
        if proto == "tls":
            tags.append("attack.t1573")
        return [Detection(
            rule_id=self.rule_id,
            title=f"Beaconing from {src} to {dst}:{port} every {mean:.0f} s",
            level=th.level,
            events=[event],
            tags=tags,
            engine="network",
            description=f"{n} connections from {src} to {dst}:{port} at a {mean:.1f} s rhythm "
                        f"(coefficient of variation {cv:.3f} < {th.max_cv}). Triage: is it a known "
                        "poller (monitoring, NVR keep-alive: add it to ignore_destinations)? Otherwise "
                        "find the process on the source host and check the destination's reputation.",
            group_key=f"source.ip={src}|destination.ip={dst}|destination.port={port}",
            extra={"source.ip": src, "destination.ip": dst, "destination.port": port, "connections": n,
                   "mean_interval_s": round(mean, 3), "cv": round(cv, 4),
                   "intervals_s": [round(x, 3) for x in intervals], "network.protocol": proto,
                   "zone": self.zones.zone_of(event, "source")},
        )]
