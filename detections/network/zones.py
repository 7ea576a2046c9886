"""Which network zone an address belongs to, so thresholds can differ per zone.

A camera VLAN where nothing but RTSP to the NVR should ever happen deserves tighter
thresholds than the SOC's own subnet, where the vulnerability scanner lives. The zone
of the entity a detector keys on (the scanning source, the camera, the querying
client) is decided in this order, first answer wins:

1. the **CIDR -> zone table** of the detector settings (longest prefix wins): the
   network team's truth, and it works on raw captures with no inventory at all;
2. ``citysoc.asset.zone`` set by asset enrichment, but only when the asset was matched
   on that same address (``citysoc.asset.matched`` names the field): a flow from an
   outside scanner to a camera is enriched with the *camera's* asset, whose zone says
   nothing about the scanner;
3. ``network.name`` (ECS: the name given to the network, e.g. by the capture sensor);
4. ``default``.

Example::

    >>> zm = ZoneMap({"10.20.0.0/16": "camera-lan", "10.10.0.0/24": "soc"})
    >>> zm.zone_of({"source": {"ip": "10.20.1.15"}}, "source")
    'camera-lan'
"""
from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any

from detections.network._common import BoundedMap, field

__all__ = ["ZoneMap", "DEFAULT_ZONE"]

DEFAULT_ZONE = "default"


class ZoneMap:
    """CIDR table plus event fields -> zone name (see the module docstring for the order)."""

    def __init__(self, cidrs: Mapping[str, str] | None = None, *, cache_size: int = 65_536) -> None:
        self._nets: dict[int, list[tuple[int, dict[int, str]]]] = {4: [], 6: []}
        by_len: dict[tuple[int, int], dict[int, str]] = {}
        for cidr, zone in (cidrs or {}).items():
            try:
                net = ipaddress.ip_network(str(cidr), strict=False)
            except ValueError as exc:
                raise ValueError(f"zone table: {cidr!r} is not a network or address ({exc}); "
                                 "write e.g. 10.20.0.0/16: camera-lan") from exc
            by_len.setdefault((net.version, net.prefixlen), {})[int(net.network_address)] = str(zone)
        for (version, plen), table in sorted(by_len.items(), key=lambda kv: -kv[0][1]):
            self._nets[version].append((plen, table))
        self._cache: BoundedMap[str, str | None] = BoundedMap(cache_size)
        self.empty = not by_len
        self._last: tuple[Mapping[str, Any], str, str] | None = None

    def lookup_ip(self, ip: str) -> str | None:
        """The zone of ``ip`` in the CIDR table, or None (results are cached per address)."""
        if self.empty or not isinstance(ip, str):
            return None
        if ip in self._cache:
            return self._cache[ip]
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            zone = None
        else:
            n, bits, zone = int(addr), addr.max_prefixlen, None
            for plen, table in self._nets[addr.version]:
                hit = table.get(n >> (bits - plen) << (bits - plen) if plen else 0)
                if hit is not None:
                    zone = hit
                    break
        self._cache[ip] = zone
        if len(self._cache) > self._cache.max_keys:
            self._cache.popitem(last=False)
        return zone

    def zone_of(self, event: Mapping[str, Any], side: str = "source") -> str:
        """The zone of the ``side`` (``source`` or ``destination``) of ``event``.

        The answer for the last event asked about is remembered: several detectors ask
        for the same event in a row."""
        last = self._last
        if last is not None and last[0] is event and last[1] == side:
            return last[2]
        zone = self._zone_of(event, side)
        self._last = (event, side, zone)  # a reference, so the identity check cannot be fooled by id reuse
        return zone

    def _zone_of(self, event: Mapping[str, Any], side: str) -> str:
        ip = field(event, side, "ip")
        if ip is not None:
            z = self.lookup_ip(ip)
            if z is not None:
                return z
        asset = field(event, "citysoc", "asset")
        if isinstance(asset, dict) and asset.get("zone"):
            matched = asset.get("matched")
            if matched is None or matched == f"{side}.ip":
                return str(asset["zone"])
        name = field(event, "network", "name")
        if isinstance(name, str) and name:
            return name
        return DEFAULT_ZONE
