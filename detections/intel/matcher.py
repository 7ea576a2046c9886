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

from core.events import Event
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

_Hits = dict[tuple[str, str, str], tuple[Indicator, str, str]]


def _add(found: tuple[Indicator, ...], fname: str, value: str, hits: _Hits) -> None:
    for ind in found:
        key = (ind.feed, ind.type, ind.value)
        if key not in hits:
            hits[key] = (ind, fname, value)


def _host_lookup(idx: IocIndex, host: str) -> tuple[Indicator, ...]:
    found = idx.lookup_domain(host) if idx.domains else ()
    if not found and (host[:1].isdigit() or ":" in host):
        found = idx.lookup_ip(host)
    return found


def _check_ip(idx: IocIndex, value: str, fname: str, hits: _Hits) -> None:
    found = idx.lookup_ip(value)
    if found:
        _add(found, fname, value, hits)


def _check_hash(idx: IocIndex, value: str, fname: str, hits: _Hits) -> None:
    if idx.hashes:
        found = idx.lookup_hash(value)
        if found:
            _add(found, fname, value, hits)


def _check_domain(idx: IocIndex, value: str, fname: str, hits: _Hits) -> None:
    if idx.domains:
        found = idx.lookup_domain(value)
        if found:
            _add(found, fname, value, hits)


def _check_host(idx: IocIndex, value: str, fname: str, hits: _Hits) -> None:
    if value.startswith("["):  # [2001:db8::1]:443
        host = value[1:].split("]", 1)[0]
    else:
        host = value.rsplit(":", 1)[0] if value.count(":") == 1 else value
    found = _host_lookup(idx, host)
    if found:
        _add(found, fname, value, hits)


def _check_url(idx: IocIndex, value: str, fname: str, hits: _Hits) -> None:
    found: tuple[Indicator, ...] = idx.lookup_url(value) if idx.urls else ()
    if not found and (idx.domains or idx.has_addresses):
        host = url_host(value)
        if host:
            found = _host_lookup(idx, host)
    if found:
        _add(found, fname, value, hits)


def _check_email(idx: IocIndex, value: str, fname: str, hits: _Hits) -> None:
    if idx.domains and "@" in value:
        found = idx.lookup_domain(value.rsplit("@", 1)[1])
        if found:
            _add(found, fname, value, hits)


_CHECKERS: dict[str, Callable[[IocIndex, str, str, _Hits], None]] = {
    "ip": _check_ip, "hash": _check_hash, "domain": _check_domain, "host": _check_host, "url": _check_url,
    "email": _check_email,
}

# A trie over field names: key -> (leaf (checker, field name) or None, sub-trie or None).
_Trie = dict[str, tuple[Any, Any]]


def _compile(fields: Mapping[str, str]) -> _Trie:
    root: dict[str, list] = {}
    for name, kind in fields.items():
        if kind not in _KINDS:
            raise ValueError(f"intel field {name!r}: unknown kind {kind!r} (use one of {', '.join(_KINDS)})")
        node = root
        parts = name.split(".")
        for i, part in enumerate(parts):
            entry = node.setdefault(part, [None, None])
            if i == len(parts) - 1:
                entry[0] = (_CHECKERS[kind], name)
            else:
                if entry[1] is None:
                    entry[1] = {}
                node = entry[1]

    def freeze(n: dict[str, list]) -> _Trie:
        return {k: (leaf, freeze(sub) if sub is not None else None) for k, (leaf, sub) in n.items()}

    return freeze(root)


def _resolve(trie: _Trie, dotted: str) -> tuple[Any, Any] | None:
    """The trie entry for a literal dotted key such as ``"source.ip"`` (shippers send those)."""
    entry = None
    node: _Trie | None = trie
    for part in dotted.split("."):
        if node is None:
            return None
        entry = node.get(part)
        if entry is None:
            return None
        node = entry[1]
    return entry


def _visit(obj: Mapping[str, Any], trie: _Trie, idx: IocIndex, hits: _Hits) -> None:
    for k, v in obj.items():
        entry = trie.get(k)
        if entry is None:
            if "." not in k:
                continue
            entry = _resolve(trie, k)
            if entry is None:
                continue
        leaf, sub = entry
        if leaf is not None:
            if type(v) is str:
                leaf[0](idx, v, leaf[1], hits)
            elif type(v) is list or type(v) is tuple:
                for x in v:
                    if type(x) is str:
                        leaf[0](idx, x, leaf[1], hits)
        if sub is not None and type(v) is dict:
            _visit(v, sub, idx, hits)


class IntelMatcher:
    """``core.protocols.Detector`` for IOC matches.

    ``index`` is an :class:`IocIndex`, or a callable returning the current one (a
    :class:`~detections.intel.manager.FeedManager`'s ``current``), so feed refreshes
    take effect on the next event without rebuilding the matcher.
    One detection per (feed, indicator) per event: rule id ``intel:<feed>``.
    Fields are walked as a trie over the event's own keys, so an event pays only for the
    objects it has; literal dotted keys (``{"source.ip": ...}``) are understood too.
    """

    name = "intel"

    def __init__(self, index: IocIndex | Callable[[], IocIndex], fields: Mapping[str, str] | None = None):
        self._index = index if callable(index) else (lambda: index)
        self._trie = _compile(fields if fields is not None else FIELDS)
        self.counters = {"events": 0, "detections": 0}

    def process(self, event: Event) -> list[Detection]:
        self.counters["events"] += 1
        hits: _Hits = {}
        idx = self._index()
        _visit(event, self._trie, idx, hits)
        if idx.urls:
            url = event.get("url")
            if type(url) is dict and "full" not in url:
                self._check_split_url(url, idx, hits)
        if not hits:
            return []
        return self._detections(event, hits)

    @staticmethod
    def _check_split_url(url: dict, idx: IocIndex, hits: _Hits) -> None:
        """HTTP parsers put the request target in ``url.original`` (``/dl/agent.sh``) and the
        Host header in ``url.domain``: rebuild the URL so URL indicators still match."""
        original, domain = url.get("original"), url.get("domain")
        if type(original) is not str or type(domain) is not str or not original.startswith("/"):
            return
        scheme = url.get("scheme") if type(url.get("scheme")) is str else "http"
        port = url.get("port")
        host = f"[{domain}]" if ":" in domain else domain
        full = f"{scheme}://{host}{':' + str(port) if isinstance(port, int) else ''}{original}"
        found = idx.lookup_url(full)
        if found:
            _add(found, "url.domain+url.original", full, hits)

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
