"""What loading one feed produced: its indicators, the problems found, and counts."""
from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field

from core.events import TimestampError, parse_timestamp
from detections.intel.indicators import (
    FeedProblem,
    Indicator,
    IocValueError,
    normalize_domain,
    normalize_hash,
    normalize_ip_or_cidr,
    normalize_url,
)

__all__ = ["FeedLoad", "FeedError", "make_indicator", "parse_expiry"]


class FeedError(ValueError):
    """A feed that cannot be used at all (unreadable, not JSON, wrong layout); names the file."""


@dataclass(slots=True)
class FeedLoad:
    name: str
    format: str
    origin: str
    indicators: list[Indicator] = field(default_factory=list)
    problems: list[FeedProblem] = field(default_factory=list)
    skipped_expired: int = 0
    ignored: dict[str, int] = field(default_factory=dict)
    """Entries of types we do not match (MISP ``email-src``, STIX ``malware`` objects ...)."""

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for ind in self.indicators:
            out[ind.type] = out.get(ind.type, 0) + 1
        return out

    @property
    def errors(self) -> list[FeedProblem]:
        return [p for p in self.problems if p.severity == "error"]

    def ignore(self, what: str) -> None:
        self.ignored[what] = self.ignored.get(what, 0) + 1


def parse_expiry(value: object) -> _dt.datetime | None:
    if value in (None, ""):
        return None
    try:
        return parse_timestamp(value)
    except TimestampError as exc:
        raise IocValueError(f"bad expiry time: {exc}") from None


def make_indicator(kind: str, raw: str, *, feed: str, source: str = "", confidence: int | None = None,
                   expires: _dt.datetime | None = None, id: str = "", description: str = "",
                   labels: tuple[str, ...] = ()) -> Indicator:
    """Normalise ``raw`` as ``kind`` (ip | cidr | domain | url | md5 | sha1 | sha256 | hash)."""
    if not isinstance(raw, str) or not raw.strip():
        raise IocValueError(f"empty {kind} value")
    if kind in ("ip", "cidr"):
        kind, value = normalize_ip_or_cidr(raw)
    elif kind == "domain":
        value = normalize_domain(raw)
    elif kind == "url":
        value = normalize_url(raw)
    elif kind in ("md5", "sha1", "sha256", "hash"):
        kind, value = normalize_hash(raw, None if kind == "hash" else kind)
    else:
        raise IocValueError(f"unknown indicator type {kind!r}")
    if confidence is not None and not (0 <= confidence <= 100):
        raise IocValueError(f"confidence {confidence} is outside 0-100")
    return Indicator(kind, value, feed, source, confidence, expires, id, description, labels)
