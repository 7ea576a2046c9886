"""Indicators of compromise and the normalisation that makes them comparable.

Feeds and events spell the same thing many ways (``EVIL.com.``, ``http://evil.com:80``,
``2001:DB8::1`` vs ``2001:db8:0:0::1``, upper-case hashes). Everything is normalised once
on the way in (feeds) and cheaply on the way through (event values), so matching is a
dictionary lookup.
"""
from __future__ import annotations

import datetime as _dt
import ipaddress
import re
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import urlsplit, urlunsplit

__all__ = [
    "IOC_TYPES",
    "HASH_TYPES",
    "Indicator",
    "FeedProblem",
    "IocValueError",
    "normalize_ip_or_cidr",
    "normalize_domain",
    "normalize_url",
    "normalize_hash",
    "url_host",
    "confidence_level",
]

HASH_TYPES = {32: "md5", 40: "sha1", 64: "sha256"}
IOC_TYPES = ("ip", "cidr", "domain", "url", "md5", "sha1", "sha256")


class IocValueError(ValueError):
    """An indicator value that cannot be used (the message says why)."""


@dataclass(frozen=True, slots=True)
class Indicator:
    """One normalised IOC and where it came from."""

    type: str
    """One of :data:`IOC_TYPES`."""
    value: str
    feed: str
    source: str = ""
    """Who published it (MISP org, STIX ``created_by_ref``, CSV ``source`` column)."""
    confidence: int | None = None
    """0-100 as STIX defines it; None when the feed says nothing."""
    expires: _dt.datetime | None = None
    id: str = ""
    """Where to find it in the feed: STIX id, MISP attribute uuid, ``file.csv:12``."""
    description: str = ""
    labels: tuple[str, ...] = ()

    def expired(self, now: _dt.datetime) -> bool:
        return self.expires is not None and self.expires <= now

    def to_dict(self) -> dict:
        return {
            "type": self.type,
            "value": self.value,
            "feed": self.feed,
            "source": self.source,
            "confidence": self.confidence,
            "expires": self.expires.isoformat() if self.expires else None,
            "id": self.id,
            "description": self.description,
            "labels": list(self.labels),
        }


@dataclass(frozen=True, slots=True)
class FeedProblem:
    """Something in a feed that was not loaded: ``where`` names file and indicator/line."""

    where: str
    message: str
    severity: str = "error"
    """``error`` for malformed input, ``warning`` for valid input we do not support."""

    def __str__(self) -> str:
        return f"{self.where}: {self.severity}: {self.message}"


def normalize_ip_or_cidr(value: str) -> tuple[str, str]:
    """``("ip", "10.0.0.1")`` or ``("cidr", "10.0.0.0/8")``; host-length prefixes become ips."""
    v = value.strip()
    try:
        if "/" in v:
            net = ipaddress.ip_network(v, strict=False)
            if net.prefixlen == net.max_prefixlen:
                return "ip", str(net.network_address)
            if net.prefixlen == 0:
                raise IocValueError(f"refusing {v!r}: a /0 network matches every address")
            return "cidr", str(net)
        return "ip", str(ipaddress.ip_address(v))
    except ValueError as exc:
        if isinstance(exc, IocValueError):
            raise
        raise IocValueError(f"not an IP address or CIDR: {value!r}") from None


_LABEL = re.compile(r"^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$")


def normalize_domain(value: str) -> str:
    """Lower-case, no trailing dot, no leading ``*.``, IDNA (punycode) for non-ASCII names."""
    v = value.strip().lower().rstrip(".")
    if v.startswith("*."):
        v = v[2:]
    if not v.isascii():
        try:
            v = v.encode("idna").decode("ascii")
        except UnicodeError:
            raise IocValueError(f"not a valid internationalised domain name: {value!r}") from None
    labels = v.split(".")
    if len(labels) < 2:
        raise IocValueError(f"refusing single-label domain {value!r}: it would match every name below it")
    if len(v) > 253 or not all(_LABEL.match(label) for label in labels):
        raise IocValueError(f"not a domain name: {value!r}")
    return v


_DEFAULT_PORTS = {"http": 80, "https": 443, "ftp": 21, "ws": 80, "wss": 443}


@lru_cache(maxsize=65536)
def normalize_url(value: str) -> str:
    """Scheme and host lower-cased, default port and fragment dropped, empty path as ``/``.

    A value without a scheme is taken as ``http://``.
    """
    v = value.strip()
    if "://" not in v:
        v = "http://" + v
    try:
        parts = urlsplit(v)
        port = parts.port
    except ValueError:
        raise IocValueError(f"not a URL: {value!r}") from None
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise IocValueError(f"URL without a host: {value!r}")
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            raise IocValueError(f"URL with an invalid host: {value!r}") from None
    scheme = parts.scheme.lower()
    if ":" in host:
        host = f"[{host}]"
    netloc = host if port is None or _DEFAULT_PORTS.get(scheme) == port else f"{host}:{port}"
    if parts.username:
        netloc = f"{parts.username}{':' + parts.password if parts.password else ''}@{netloc}"
    return urlunsplit((scheme, netloc, parts.path or "/", parts.query, ""))


def url_host(value: str) -> str | None:
    """The host of a URL (lower-case, no brackets), or None when there is none."""
    try:
        host = urlsplit(value if "://" in value else "http://" + value).hostname
    except ValueError:
        return None
    return host.rstrip(".") if host else None


_HEX = re.compile(r"^[0-9a-f]+$")


def normalize_hash(value: str, expected: str | None = None) -> tuple[str, str]:
    """``(type, lower-hex)``; the type comes from the length (32 md5, 40 sha1, 64 sha256)."""
    v = value.strip().lower()
    kind = HASH_TYPES.get(len(v))
    if kind is None or not _HEX.match(v):
        raise IocValueError(f"not an MD5/SHA-1/SHA-256 hex digest: {value!r}")
    if expected and expected != kind:
        raise IocValueError(f"{value!r} is a {kind} by its length, but the feed says {expected}")
    return kind, v


def confidence_level(confidence: int | None) -> str:
    """Detection level from STIX-style confidence: unknown -> high (a feed entry is a claim
    someone curated); 0-29 low, 30-69 medium, 70-89 high, 90-100 critical."""
    if confidence is None:
        return "high"
    if confidence >= 90:
        return "critical"
    if confidence >= 70:
        return "high"
    if confidence >= 30:
        return "medium"
    return "low"


