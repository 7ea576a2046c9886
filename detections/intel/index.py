"""The lookup structure: O(1) dictionaries for exact values, a suffix walk for subdomains,
and one dictionary per prefix length for CIDRs.

CIDR lookup masks the address with each prefix length present in the feeds (rarely more
than a handful: /8, /16, /24, /32 ...) and looks the network up in that length's
dictionary, most specific first. That is exact for overlapping networks, costs
O(number of distinct prefix lengths), and needs no third-party radix tree.
An index is immutable once built, so a refresh builds a new one and swaps the reference.
"""
from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from functools import lru_cache

from detections.intel.indicators import Indicator, normalize_url

__all__ = ["IocIndex"]


@lru_cache(maxsize=131072)
def _parse_ip(value: str) -> tuple[int, int, str] | None:
    """(version, integer, canonical text) for an address, or None."""
    try:
        if ":" in value:
            packed = socket.inet_pton(socket.AF_INET6, value.split("%", 1)[0])
            return 6, int.from_bytes(packed, "big"), socket.inet_ntop(socket.AF_INET6, packed)
        packed = socket.inet_pton(socket.AF_INET, value)
        return 4, int.from_bytes(packed, "big"), value
    except (OSError, ValueError):
        return None


class IocIndex:
    """All indicators of all feeds, ready for lookups. Build with :meth:`build`."""

    __slots__ = ("ips", "nets4", "nets6", "prefixes4", "prefixes6", "domains", "urls", "hashes", "counts", "feeds")

    def __init__(self) -> None:
        self.ips: dict[str, tuple[Indicator, ...]] = {}
        self.nets4: dict[int, dict[int, tuple[Indicator, ...]]] = {}
        self.nets6: dict[int, dict[int, tuple[Indicator, ...]]] = {}
        self.prefixes4: tuple[int, ...] = ()
        self.prefixes6: tuple[int, ...] = ()
        self.domains: dict[str, tuple[Indicator, ...]] = {}
        self.urls: dict[str, tuple[Indicator, ...]] = {}
        self.hashes: dict[str, tuple[Indicator, ...]] = {}
        self.counts: dict[str, int] = {}
        self.feeds: tuple[str, ...] = ()

    @classmethod
    def build(cls, indicators: Iterable[Indicator]) -> "IocIndex":
        idx = cls()
        tmp: dict[str, dict] = {"ip": {}, "domain": {}, "url": {}, "hash": {}}
        nets: dict[tuple[int, int], dict[int, list[Indicator]]] = {}
        counts: dict[str, int] = {}
        feeds: set[str] = set()
        for ind in indicators:
            feeds.add(ind.feed)
            counts[ind.type] = counts.get(ind.type, 0) + 1
            if ind.type == "ip":
                tmp["ip"].setdefault(ind.value, []).append(ind)
            elif ind.type == "cidr":
                net = ipaddress.ip_network(ind.value)
                bucket = nets.setdefault((net.version, net.prefixlen), {})
                bucket.setdefault(int(net.network_address), []).append(ind)
            elif ind.type == "domain":
                tmp["domain"].setdefault(ind.value, []).append(ind)
            elif ind.type == "url":
                tmp["url"].setdefault(ind.value, []).append(ind)
            elif ind.type in ("md5", "sha1", "sha256"):
                tmp["hash"].setdefault(ind.value, []).append(ind)
            else:
                raise ValueError(f"unknown indicator type {ind.type!r} ({ind.id or ind.value})")
        idx.ips = {k: tuple(v) for k, v in tmp["ip"].items()}
        idx.domains = {k: tuple(v) for k, v in tmp["domain"].items()}
        idx.urls = {k: tuple(v) for k, v in tmp["url"].items()}
        idx.hashes = {k: tuple(v) for k, v in tmp["hash"].items()}
        for (version, plen), bucket in nets.items():
            target = idx.nets4 if version == 4 else idx.nets6
            target[plen] = {k: tuple(v) for k, v in bucket.items()}
        idx.prefixes4 = tuple(sorted(idx.nets4, reverse=True))
        idx.prefixes6 = tuple(sorted(idx.nets6, reverse=True))
        idx.counts = counts
        idx.feeds = tuple(sorted(feeds))
        return idx

    def __len__(self) -> int:
        return sum(self.counts.values())

    # -- lookups: each returns the indicators matched (most specific first) or () -------
    def lookup_ip(self, value: str) -> tuple[Indicator, ...]:
        hit = self.ips.get(value)
        if hit:
            return hit
        if not (self.prefixes4 or self.prefixes6 or ":" in value):
            return ()
        parsed = _parse_ip(value)
        if parsed is None:
            return ()
        version, n, canon = parsed
        if version == 6 and canon != value:
            hit = self.ips.get(canon)
            if hit:
                return hit
        if version == 4:
            for plen in self.prefixes4:
                bucket = self.nets4[plen].get(n & ((0xFFFFFFFF << (32 - plen)) & 0xFFFFFFFF))
                if bucket:
                    return bucket
        else:
            full = (1 << 128) - 1
            for plen in self.prefixes6:
                bucket = self.nets6[plen].get(n & ((full << (128 - plen)) & full))
                if bucket:
                    return bucket
        return ()

    def lookup_domain(self, value: str) -> tuple[Indicator, ...]:
        """The name itself or its closest listed parent (``a.b.evil.com`` -> ``evil.com``)."""
        d = value.lower()
        if d.endswith("."):
            d = d[:-1]
        domains = self.domains
        while True:
            hit = domains.get(d)
            if hit:
                return hit
            i = d.find(".")
            if i < 0:
                return ()
            d = d[i + 1:]

    def lookup_url(self, value: str) -> tuple[Indicator, ...]:
        hit = self.urls.get(value)
        if hit:
            return hit
        try:
            return self.urls.get(normalize_url(value), ())
        except ValueError:
            return ()

    def lookup_hash(self, value: str) -> tuple[Indicator, ...]:
        return self.hashes.get(value) or self.hashes.get(value.lower(), ())
