"""The zone of a sender's zone-less timestamps, chosen by its address (issue 13 item 6).

RFC 3164 syslog carries no offset, and the city's cameras and NVRs are set by whoever
installed them: one district's cameras on local time, a vendor-managed group on UTC. A
listener therefore takes, besides its own zone, groups of sender networks with a zone
each (``syslog.timezones`` in ``citysoc.yml``); a message from an address inside a group
is read in that group's zone (the most specific network wins), any other in the
listener's zone (``syslog.timezone``, else ``site.timezone``, else Asia/Ho_Chi_Minh).
Zone names and networks are checked when settings load.

Example::

    >>> z = PeerZones([("cameras-d7", ["10.27.0.0/16"], "UTC")], default="Asia/Ho_Chi_Minh")
    >>> z.zone_for("10.27.3.4"), z.zone_for("10.1.1.1")
    ('UTC', 'Asia/Ho_Chi_Minh')
"""
from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

__all__ = ["PeerZones", "Zone"]

_Net = ipaddress.IPv4Network | ipaddress.IPv6Network
_CACHE_MAX = 4096


class PeerZones:
    """Sender address -> zone name: the most specific group network holding it, else ``default``."""

    def __init__(self, groups: Iterable[tuple[str, Sequence[str], str]], default: str | None) -> None:
        nets: list[tuple[_Net, str, str]] = []
        for name, networks, zone in groups:
            for net in networks:
                nets.append((ipaddress.ip_network(str(net), strict=False), zone, name))
        nets.sort(key=lambda n: -n[0].prefixlen)
        self._nets = nets
        self.default = default
        self._cache: dict[str, str | None] = {}

    def zone_for(self, host: object) -> str | None:
        """The zone for a sender address (text as the socket gives it; anything else: ``default``)."""
        key = str(host)
        hit = self._cache.get(key, self)
        if hit is not self:
            return hit  # type: ignore[return-value]
        zone = self.default
        try:
            addr = ipaddress.ip_address(key.split("%", 1)[0])
        except ValueError:
            addr = None
        if addr is not None:
            mapped = getattr(addr, "ipv4_mapped", None)
            addr = mapped or addr
            for net, z, _name in self._nets:
                if addr.version == net.version and addr in net:
                    zone = z
                    break
        if len(self._cache) >= _CACHE_MAX:
            self._cache.clear()
        self._cache[key] = zone
        return zone


Zone = str | PeerZones | None
"""What a listener's ``timezone`` is: one zone name, per-sender zones, or none (UTC)."""
