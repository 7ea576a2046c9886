"""Asset attribution: which inventory asset (and which center) an event belongs to.

The inventory is a YAML or CSV file listing the city's assets (cameras, NVRs, servers,
gateways, databases) with their addresses and names. :meth:`AssetIndex.enrich` sets

``citysoc.asset.id``, ``.name``, ``.type``, ``.criticality``, ``.subsystem``, ``.zone``,
``.matched`` (which event field matched) and ``citysoc.center``.

**Precedence: the device that reported the log first.** The event is about its
reporter far more often than about a peer named in it, so fields are tried in this
order and the first that belongs to an asset wins:

1. ``observer.ip``, ``observer.hostname`` (cameras and NVRs reporting about themselves)
2. ``host.name``, ``host.hostname``, ``host.ip`` (the host that wrote the log)
3. ``log.source.address`` (the syslog sender's address; may be a relay)
4. ``source.ip``, then ``destination.ip`` (a peer named in the log: a last resort, and
   ``citysoc.asset.matched`` says so, e.g. an outside login attempt against a camera
   whose own log never reached us)

Lookups are O(1): addresses and host names are dict keys; networks (``10.20.0.0/16``)
are grouped by prefix length, and the longest prefix present wins with one dict
lookup per distinct prefix length.

The inventory is :class:`core.assets.Asset` (one model for the file, the asset store, the
API and this index): :meth:`AssetIndex.load` reads the file with
:func:`core.assets.load_inventory_file`, and the server builds its live index from the
asset store (``citysoc.wiring.AssetRuntime``), so what the API and CLI edit attributes
events too. ``citysoc.asset.criticality`` is the word (``low``..``critical``) of the
asset's 1-5 level.
"""
from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from core.assets import CRIT_WORDS, Asset, AssetError, load_inventory_file
from core.events import Event, get_field, set_field

__all__ = ["AssetIndex", "PRECEDENCE"]

PRECEDENCE = ("observer.ip", "observer.hostname", "host.name", "host.hostname", "host.ip", "log.source.address",
              "source.ip", "destination.ip")
_HOST_FIELDS = frozenset({"observer.hostname", "host.name", "host.hostname"})

_NO = object()


def _ip_of(value: Any) -> str | None:
    """The IP in ``value`` (``10.0.0.1``, ``10.0.0.1:514``, ``[fe80::1]:514``)."""
    if not isinstance(value, str) or not value:
        return None
    v = value.strip()
    if v.startswith("["):
        v = v[1:].split("]", 1)[0]
    elif v.count(":") == 1:
        v = v.split(":", 1)[0]
    try:
        return str(ipaddress.ip_address(v))
    except ValueError:
        return None


class AssetIndex:
    """Asset lookups by IP, network and host name, and event enrichment."""

    def __init__(self, assets: Iterable[Asset]) -> None:
        self.assets: dict[str, Asset] = {}
        self._by_ip: dict[str, Asset] = {}
        self._by_host: dict[str, Asset] = {}  # full names as listed
        self._by_short: dict[str, Asset] = {}  # first label of each listed name (cam-01.city.local -> cam-01)
        self._ip_cache: dict[str, Any] = {}  # raw address string -> Asset or _NO (see lookup_ip)
        # version -> prefix length -> network address (int) -> asset
        self._nets: dict[int, dict[int, dict[int, Asset]]] = {4: {}, 6: {}}
        self._prefixes: dict[int, list[int]] = {4: [], 6: []}
        errors: list[str] = []
        for a in assets:
            if a.id in self.assets:
                errors.append(f"asset {a.id!r}: duplicate id")
                continue
            self.assets[a.id] = a
            for ip in a.ips:
                try:
                    net = ipaddress.ip_network(ip, strict=False)
                except ValueError:
                    errors.append(f"asset {a.id!r}: {ip!r} is not an IP address or network")
                    continue
                if net.num_addresses == 1:
                    key = str(net.network_address)
                    other = self._by_ip.get(key)
                    if other is not None and other.id != a.id:
                        errors.append(f"asset {a.id!r}: address {key} already belongs to {other.id!r}")
                    self._by_ip[key] = a
                else:
                    by_len = self._nets[net.version].setdefault(net.prefixlen, {})
                    other = by_len.get(int(net.network_address))
                    if other is not None and other.id != a.id:
                        errors.append(f"asset {a.id!r}: network {net} already belongs to {other.id!r}")
                    by_len[int(net.network_address)] = a
            for name in a.hostnames:
                full = name.strip().lower().rstrip(".")
                other = self._by_host.get(full)
                if other is not None and other.id != a.id:
                    errors.append(f"asset {a.id!r}: host name {name!r} already belongs to {other.id!r}")
                self._by_host[full] = a
                self._by_short.setdefault(full.split(".", 1)[0], a)
        if errors:
            raise AssetError("inventory has problems:\n  " + "\n  ".join(errors))
        for v in (4, 6):
            self._prefixes[v] = sorted(self._nets[v], reverse=True)

    def __len__(self) -> int:
        return len(self.assets)

    # -- loading ---------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | Path) -> AssetIndex:
        """Index a ``.yml``/``.yaml`` or ``.csv`` inventory file; raises :class:`core.assets.AssetError`
        listing every bad row."""
        assets = load_inventory_file(path)
        try:
            return cls(assets)
        except AssetError as exc:
            raise AssetError(f"{path}: {exc}") from None

    # -- lookups ---------------------------------------------------------------------
    _CACHE_MAX = 65_536

    def lookup_ip(self, value: str) -> Asset | None:
        """The asset owning this address: an exact address first, else the longest network.

        Answers are cached by the raw string (hits and misses; an index never changes after
        it is built, a changed inventory builds a new one): parsing an address costs more
        than everything else here, and a city's devices repeat the same few thousand."""
        cache = self._ip_cache
        hit = cache.get(value)
        if hit is not None:
            return None if hit is _NO else hit
        if len(cache) >= self._CACHE_MAX:
            cache.clear()
        found = self._lookup_ip(value)
        cache[value] = _NO if found is None else found
        return found

    def _lookup_ip(self, value: str) -> Asset | None:
        ip = _ip_of(value)
        if ip is None:
            return None
        hit = self._by_ip.get(ip)
        if hit is not None:
            return hit
        addr = ipaddress.ip_address(ip)
        bits = addr.max_prefixlen
        n = int(addr)
        for plen in self._prefixes[addr.version]:
            key = n >> (bits - plen) << (bits - plen) if plen else 0
            hit = self._nets[addr.version][plen].get(key)
            if hit is not None:
                return hit
        return None

    def lookup_host(self, name: str) -> Asset | None:
        """The asset with this host name (case-insensitive; ``cam-01.city.local`` also finds ``cam-01``)."""
        if not isinstance(name, str) or not name:
            return None
        full = name.strip().lower().rstrip(".")
        short = full.split(".", 1)[0]
        return self._by_host.get(full) or self._by_host.get(short) or self._by_short.get(short)

    def match(self, event: Event) -> tuple[Asset, str] | None:
        """The asset this event is attributed to and the field that matched (see precedence)."""
        if not self.assets:  # no inventory (yet): nothing to look up, for any event
            return None
        for path in PRECEDENCE:
            value = get_field(event, path)
            if value is None:
                continue
            for v in value if isinstance(value, list) else (value,):
                if not isinstance(v, str):
                    continue
                if path in _HOST_FIELDS:
                    hit = self.lookup_host(v) or self.lookup_ip(v)
                else:
                    hit = self.lookup_ip(v)
                if hit is not None:
                    return hit, path
        return None

    def enrich(self, event: Event) -> None:
        """Set ``citysoc.asset.*`` and ``citysoc.center`` when the event belongs to an asset."""
        found = self.match(event)
        if found is None:
            return
        a, path = found
        info: dict[str, Any] = {"id": a.id, "name": a.name, "type": a.type, "matched": path}
        info["criticality"] = CRIT_WORDS.get(a.criticality, "medium")
        if a.subsystem:
            info["subsystem"] = a.subsystem
        if a.zone:
            info["zone"] = a.zone
        set_field(event, "citysoc.asset", info)
        if a.center:
            set_field(event, "citysoc.center", a.center)
