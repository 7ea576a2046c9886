"""Port scans: one source touching many ports of one host (vertical) or many hosts (horizontal).

Input: every flow summary (``network_flow``) and ``connection_attempt`` the network
collector emits; both name the (destination host, port) a source tried. Per source we
keep the (host, port) pairs seen within the window in an ordered map (oldest first, so
expiry pops from the front) plus two running counts (ports per host, distinct hosts),
so each probe costs O(1) however wide the scan. Memory is bounded by ``max_keys``
sources and ``max_probes_per_source`` pairs each.

One detection per (source, kind[, host]) per window: a 65,535-port scan is one alert.
Rule id ``net:port_scan``; ATT&CK T1046 (Network Service Discovery).
"""
from __future__ import annotations

import operator
from collections import OrderedDict
from typing import Any

from core.detectors import DetectorSpec
from core.events import Event
from core.protocols import Detection
from detections.network._common import EMPTY, BoundedMap, event_time, idle_after
from detections.network.base import NetworkDetector
from detections.network.settings import PortScanSettings
from detections.network.zones import ZoneMap

__all__ = ["PortScanDetector"]

_ACTIONS = frozenset({"network_flow", "connection_attempt"})
_SAMPLE = 50


_LAST = operator.attrgetter("last")  # an entry's newest event time, what idle expiry reads

class _Source:
    __slots__ = ("probes", "ports_per_host", "fired", "last")

    def __init__(self) -> None:
        self.probes: OrderedDict[tuple[str, Any], float] = OrderedDict()
        self.ports_per_host: dict[str, int] = {}
        self.fired: dict[tuple[str, str | None], float] = {}
        self.last = float("-inf")
        """The newest event time this source was seen at (what idle expiry reads)."""


class PortScanDetector(NetworkDetector):
    """``core.protocols.Detector``: vertical and horizontal scans from one source."""

    spec = DetectorSpec(
        rule_id="net:port_scan",
        title="Port scan (vertical or horizontal) from one source",
        title_vi="Quét cổng (dọc hoặc ngang) từ một nguồn",
        level="medium",
        tags=("attack.discovery", "attack.t1046"),
        consumes=("network_flow", "connection_attempt"),
        settings_key="port_scan",
        settings=PortScanSettings,
    )

    def __init__(self, settings: PortScanSettings | None = None, zones: ZoneMap | None = None) -> None:
        self.settings = settings or PortScanSettings()
        self.zones = zones or ZoneMap()
        self.sources: BoundedMap[str, _Source] = BoundedMap(self.settings.max_keys)
        self._zones, self._default = self.settings.table()
        self._max_probes = self.settings.max_probes_per_source
        self._idle_s = idle_after(self._default, self._zones)

    def state_sizes(self) -> dict[str, int]:
        return {"sources": len(self.sources)}

    def check(self, event: Any) -> list[Detection]:
        if (event.get("event") or EMPTY).get("action") not in _ACTIONS:
            return []
        src = (event.get("source") or EMPTY).get("ip")
        d = event.get("destination") or EMPTY
        dst = d.get("ip")
        if src is None or dst is None:
            return []
        th = self._zones.get(self.zones.zone_of(event, "source"), self._default)
        if not th.enabled:
            return []
        port = d.get("port")
        if port is None:
            port = (event.get("network") or EMPTY).get("transport") or "ip"
        now = event_time(event)
        self.sources.expire_idle(now, self._idle_s, _LAST)
        st = self.sources.touch(src, _Source)
        if now > st.last:
            st.last = now
        probes, per_host = st.probes, st.ports_per_host
        horizon = now - th.window_s
        if probes and next(iter(probes.values())) < horizon:
            while probes:
                (h, _p), t = next(iter(probes.items()))
                if t >= horizon:
                    break
                probes.popitem(last=False)
                left = per_host[h] - 1
                if left:
                    per_host[h] = left
                else:
                    del per_host[h]
        key = (dst, port)
        if key in probes:
            probes.move_to_end(key)
        else:
            per_host[dst] = per_host.get(dst, 0) + 1
            if len(probes) >= self._max_probes:
                (h, _p), _t = probes.popitem(last=False)
                left = per_host[h] - 1
                if left:
                    per_host[h] = left
                else:
                    del per_host[h]
        probes[key] = now
        out: list[Detection] = []
        if per_host[dst] >= th.distinct_ports and self._arm(st, ("vertical", dst), now, th.window_s):
            ports = _sorted({p for (h, p) in probes if h == dst})
            out.append(self._detection(event, src, th.level, "vertical", dst, ports, [dst], now, th.window_s))
        if len(per_host) >= th.distinct_hosts and self._arm(st, ("horizontal", None), now, th.window_s):
            hosts = list(per_host)
            ports = _sorted({p for (_h, p) in probes})
            out.append(self._detection(event, src, th.level, "horizontal", None, ports, hosts, now, th.window_s))
        return out

    @staticmethod
    def _arm(st: _Source, key: tuple[str, str | None], now: float, window: float) -> bool:
        last = st.fired.get(key)
        if last is not None and now - last < window:
            return False
        if len(st.fired) > 256:
            st.fired = {k: t for k, t in st.fired.items() if now - t < window}
        st.fired[key] = now
        return True

    def _detection(self, event: Event, src: str, level: str, kind: str, dst: str | None, ports: list[Any],
                   hosts: list[str], now: float, window: float) -> Detection:
        what = f"{len(ports)} ports on {dst}" if kind == "vertical" else f"{len(hosts)} hosts"
        group = f"source.ip={src}|kind={kind}" + (f"|destination.ip={dst}" if dst else "")
        return Detection(
            rule_id=self.rule_id,
            title=(f"Port scan of {dst} from {src}: {len(ports)} ports" if kind == "vertical"
                   else f"Port scan of {len(hosts)} hosts from {src}"),
            level=level,
            events=[event],
            tags=list(self.spec.tags),
            engine="network",
            description=f"{src} touched {what} within {window:g} s. Triage: is the source an "
                        "authorised scanner (add its zone override)? Otherwise isolate it and look "
                        "for what it reached next.",
            group_key=group,
            extra={
                "kind": kind,
                "source.ip": src,
                "destination.ip": dst,
                "distinct_ports": len(ports) if kind == "vertical" else None,
                "distinct_hosts": len(hosts),
                "ports": ports[:_SAMPLE],
                "hosts": hosts[:_SAMPLE],
                "window_s": window,
                "zone": self.zones.zone_of(event, "source"),
            },
        )


def _sorted(ports: set[Any]) -> list[Any]:
    """Numbers first in numeric order, then port-less transports (``icmp``)."""
    return sorted(ports, key=lambda p: (0, p, "") if isinstance(p, int) else (1, 0, str(p)))
