"""``IntelMatcher``: every event's addresses, names, URLs and hashes against the IOC index.

Which event fields hold what is data (:data:`FIELDS`); the matcher walks only the
top-level objects an event has, so an event costs a handful of dictionary lookups.

Example::

    >>> m = IntelMatcher(IocIndex.build(load_feed_path(Path("feeds/c2.csv")).indicators))
    >>> m.process({"destination": {"ip": "203.0.113.9"}})[0].rule_id
    'intel:c2'
"""
from __future__ import annotations

import datetime as _dt
from collections.abc import Callable, Mapping
from typing import Any

from core.events import Event, expand_dots
from core.protocols import Detection
from detections.intel.index import IocIndex
from detections.intel.indicators import Indicator, confidence_level, url_host

__all__ = ["FIELDS", "IntelMatcher"]

FIELDS: dict[str, str] = {
    # addresses
    "source.ip": "ip", "destination.ip": "ip", "client.ip": "ip", "server.ip": "ip", "host.ip": "ip",
    "source.nat.ip": "ip", "destination.nat.ip": "ip", "related.ip": "ip", "dns.resolved_ip": "ip",
    # names (a "host" may be a name or an address)
    "dns.question.name": "domain", "url.domain": "host", "tls.client.server_name": "host",
    "destination.domain": "host", "source.domain": "host", "server.domain": "host", "client.domain": "host",
    "http.request.headers.host": "host", "related.hosts": "host", "email.from.address": "email",
    "email.sender.address": "email",
    # URLs
    "url.full": "url", "url.original": "url", "http.request.referrer": "url",
    # hashes
    "file.hash.md5": "hash", "file.hash.sha1": "hash", "file.hash.sha256": "hash",
    "process.hash.md5": "hash", "process.hash.sha1": "hash", "process.hash.sha256": "hash",
    "process.parent.hash.md5": "hash", "process.parent.hash.sha1": "hash", "process.parent.hash.sha256": "hash",
    "dll.hash.md5": "hash", "dll.hash.sha1": "hash", "dll.hash.sha256": "hash", "related.hash": "hash",
}
"""Event field -> kind of value: ip, domain, host (name or address), url, hash, email (domain part)."""

_KINDS = ("ip", "domain", "host", "url", "hash", "email")


def _compile(fields: Mapping[str, str]) -> dict[str, tuple[tuple[tuple[str, ...], str, str], ...]]:
    tree: dict[str, list[tuple[tuple[str, ...], str, str]]] = {}
    for name, kind in fields.items():
        if kind not in _KINDS:
            raise ValueError(f"intel field {name!r}: unknown kind {kind!r} (use one of {', '.join(_KINDS)})")
        top, *rest = name.split(".")
        tree.setdefault(top, []).append((tuple(rest), kind, name))
    return {k: tuple(v) for k, v in tree.items()}


class IntelMatcher:
    """``core.protocols.Detector`` for IOC matches.

    ``index`` is an :class:`IocIndex`, or a callable returning the current one (a
    :class:`~detections.intel.manager.FeedManager`'s ``current``), so feed refreshes
    take effect on the next event without rebuilding the matcher.
    One detection per (feed, indicator) per event: rule id ``intel:<feed>``.
    """

    name = "intel"

    def __init__(self, index: IocIndex | Callable[[], IocIndex], fields: Mapping[str, str] | None = None):
        self._index = index if callable(index) else (lambda: index)
        self._tree = _compile(fields if fields is not None else FIELDS)
        self.counters = {"events": 0, "detections": 0}

    def process(self, event: Event) -> list[Detection]:
        self.counters["events"] += 1
        idx = self._index()
        hits: dict[tuple[str, str, str], tuple[Indicator, str, str]] = {}
        tree = self._tree
        check = self._check
        for top, node in event.items():
            specs = tree.get(top)
            if specs is None:
                if "." in top:  # shipper sent dotted keys: match on the nested form instead
                    hits.clear()
                    self._walk(expand_dots(event), idx, hits)
                    break
                continue
            for rest, kind, fname in specs:
                value: Any = node
                for part in rest:
                    if type(value) is not dict:
                        value = None
                        break
                    value = value.get(part)
                    if value is None:
                        break
                if value is None:
                    continue
                if type(value) is str:
                    check(idx, kind, value, fname, hits)
                elif isinstance(value, (list, tuple)):
                    for v in value:
                        if isinstance(v, str):
                            check(idx, kind, v, fname, hits)
        if not hits:
            return []
        return self._detections(event, hits)

    def _walk(self, event: Mapping[str, Any], idx: IocIndex,
              hits: dict[tuple[str, str, str], tuple[Indicator, str, str]]) -> None:
        for top, node in event.items():
            for rest, kind, fname in self._tree.get(top, ()):
                value: Any = node
                for part in rest:
                    value = value.get(part) if isinstance(value, dict) else None
                if isinstance(value, str):
                    self._check(idx, kind, value, fname, hits)
                elif isinstance(value, (list, tuple)):
                    for v in value:
                        if isinstance(v, str):
                            self._check(idx, kind, v, fname, hits)

    @staticmethod
    def _check(idx: IocIndex, kind: str, value: str, fname: str,
               hits: dict[tuple[str, str, str], tuple[Indicator, str, str]]) -> None:
        found: tuple[Indicator, ...] = ()
        if kind == "ip":
            found = idx.lookup_ip(value)
        elif kind == "hash":
            if idx.hashes:
                found = idx.lookup_hash(value)
        elif kind == "domain":
            if idx.domains:
                found = idx.lookup_domain(value)
        elif kind == "host":
            if value.startswith("["):  # [2001:db8::1]:443
                host = value[1:].split("]", 1)[0]
            else:
                host = value.rsplit(":", 1)[0] if value.count(":") == 1 else value
            found = idx.lookup_domain(host) if idx.domains else ()
            if not found and (host[:1].isdigit() or ":" in host):
                found = idx.lookup_ip(host)
        elif kind == "url":
            if idx.urls:
                found = idx.lookup_url(value)
            if not found and (idx.domains or idx.has_addresses):
                host = url_host(value)
                if host:
                    found = idx.lookup_domain(host) if idx.domains else ()
                    if not found and (host[:1].isdigit() or ":" in host):
                        found = idx.lookup_ip(host)
        elif kind == "email":
            if idx.domains and "@" in value:
                found = idx.lookup_domain(value.rsplit("@", 1)[1])
        for ind in found:
            key = (ind.feed, ind.type, ind.value)
            if key not in hits:
                hits[key] = (ind, fname, value)

    def _detections(self, event: Event, hits: dict) -> list[Detection]:
        now = None
        out = []
        for ind, fname, value in hits.values():
            if ind.expires is not None:
                now = now or _dt.datetime.now(_dt.timezone.utc)
                if ind.expired(now):
                    continue
            out.append(Detection(
                rule_id=f"intel:{ind.feed}",
                title=f"Threat intel match: {ind.type} {ind.value} ({ind.feed})",
                level=confidence_level(ind.confidence),
                events=[event],
                tags=["intel", f"intel.{ind.type}", *ind.labels],
                engine="intel",
                description=ind.description,
                group_key=f"{ind.feed}:{ind.type}:{ind.value}",
                extra={"indicator": ind.to_dict(), "feed": ind.feed, "source": ind.source,
                       "field": fname, "matched_value": value},
            ))
        self.counters["detections"] += len(out)
        return out
