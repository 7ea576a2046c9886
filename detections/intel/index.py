"""The lookup structure: O(1) dictionaries for exact values, a suffix walk for subdomains,
and sorted disjoint intervals for CIDRs.

Two CIDR blocks are either nested or disjoint, so at build time the networks are swept
in (start, prefix length) order and flattened into disjoint intervals, each owned by the
most specific network covering it. A lookup is then one ``bisect`` over the interval
starts: O(log n), exact for overlapping networks, and no third-party radix tree.
An index is immutable once built, so a refresh builds a new one and swaps the reference.
"""
from __future__ import annotations

import ipaddress
import socket
from bisect import bisect_right
from collections.abc import Iterable

from detections.intel.indicators import Indicator, normalize_url

__all__ = ["IocIndex"]


_inet_pton = socket.inet_pton
_AF_INET = socket.AF_INET


def _parse_ip(value: str) -> tuple[int, int, str] | None:
    """(version, integer, canonical text) for an address, or None."""
    try:
        if ":" in value:
            packed = socket.inet_pton(socket.AF_INET6, value.split("%", 1)[0])
            return 6, int.from_bytes(packed, "big"), socket.inet_ntop(socket.AF_INET6, packed)
        return 4, int.from_bytes(socket.inet_pton(socket.AF_INET, value), "big"), value
    except (OSError, ValueError):
        return None


class _Intervals:
    """Disjoint [start, end] integer intervals, each with the indicators of the most
    specific network covering it."""

    __slots__ = ("starts", "ends", "owners")

    def __init__(self, nets: list[tuple[int, int, tuple[Indicator, ...]]]):
        # nets: (start, end, indicators); sort parents before the children they contain
        nets.sort(key=lambda n: (n[0], -n[1]))
        starts: list[int] = []
        ends: list[int] = []
        owners: list[tuple[Indicator, ...]] = []

        def emit(a: int, b: int, inds: tuple[Indicator, ...]) -> None:
            if a <= b:
                starts.append(a)
                ends.append(b)
                owners.append(inds)

        stack: list[tuple[int, tuple[Indicator, ...]]] = []
        pos = 0
        for start, end, inds in nets:
            while stack and stack[-1][0] < start:
                top_end, top_inds = stack.pop()
                emit(pos, top_end, top_inds)
                pos = top_end + 1
            if stack:
                emit(pos, start - 1, stack[-1][1])
            stack.append((end, inds))
            pos = start
        while stack:
            top_end, top_inds = stack.pop()
            emit(pos, top_end, top_inds)
            pos = top_end + 1
        self.starts, self.ends, self.owners = starts, ends, owners

    def find(self, n: int) -> tuple[Indicator, ...]:
        i = bisect_right(self.starts, n) - 1
        if i >= 0 and n <= self.ends[i]:
            return self.owners[i]
        return ()

    def __len__(self) -> int:
        return len(self.starts)


class IocIndex:
    """All indicators of all feeds, ready for lookups. Build with :meth:`build`."""

    __slots__ = ("ips", "nets4", "nets6", "domains", "urls", "hashes", "counts", "feeds")

    def __init__(self) -> None:
        self.ips: dict[str, tuple[Indicator, ...]] = {}
        self.nets4 = _Intervals([])
        self.nets6 = _Intervals([])
        self.domains: dict[str, tuple[Indicator, ...]] = {}
        self.urls: dict[str, tuple[Indicator, ...]] = {}
        self.hashes: dict[str, tuple[Indicator, ...]] = {}
        self.counts: dict[str, int] = {}
        self.feeds: tuple[str, ...] = ()

    @classmethod
    def build(cls, indicators: Iterable[Indicator]) -> IocIndex:
        idx = cls()
        tmp: dict[str, dict] = {"ip": {}, "domain": {}, "url": {}, "hash": {}}
        nets: dict[tuple[int, int, int], list[Indicator]] = {}
        counts: dict[str, int] = {}
        feeds: set[str] = set()
        for ind in indicators:
            feeds.add(ind.feed)
            counts[ind.type] = counts.get(ind.type, 0) + 1
            if ind.type == "ip":
                tmp["ip"].setdefault(ind.value, []).append(ind)
            elif ind.type == "cidr":
                net = ipaddress.ip_network(ind.value)
                key = (net.version, int(net.network_address), int(net.broadcast_address))
                nets.setdefault(key, []).append(ind)
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
        idx.nets4 = _Intervals([(a, b, tuple(v)) for (ver, a, b), v in nets.items() if ver == 4])
        idx.nets6 = _Intervals([(a, b, tuple(v)) for (ver, a, b), v in nets.items() if ver == 6])
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
        if ":" in value:
            return self._lookup_ip6(value)
        nets = self.nets4
        if not nets.starts:
            return ()
        # inlined: this runs for every address of every event
        try:
            n = int.from_bytes(_inet_pton(_AF_INET, value), "big")
        except (OSError, ValueError):
            return ()
        i = bisect_right(nets.starts, n) - 1
        if i >= 0 and n <= nets.ends[i]:
            return nets.owners[i]
        return ()

    def _lookup_ip6(self, value: str) -> tuple[Indicator, ...]:
        parsed = _parse_ip(value)
        if parsed is None or parsed[0] != 6:
            return ()
        _, n, canon = parsed
        if canon != value:
            hit = self.ips.get(canon)
            if hit:
                return hit
        return self.nets6.find(n) if self.nets6.starts else ()

    @property
    def has_addresses(self) -> bool:
        return bool(self.ips or self.nets4.starts or self.nets6.starts)

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
