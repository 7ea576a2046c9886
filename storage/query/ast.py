"""The small, backend-neutral tree a Lucene query is parsed into.

Translators (SQL, Elasticsearch DSL) walk this tree and nothing else, so the parser is
the only code that knows Lucene's grammar and the backends cannot disagree on meaning.
Field names are ECS dotted paths; ``field=None`` means free text (any field / full text).
"""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Node", "MatchAll", "Term", "Phrase", "Wildcard", "Range", "Exists", "And", "Or", "Not", "CASELESS_FIELDS"]

CASELESS_FIELDS: frozenset[str] = frozenset({"host.name", "host.hostname", "observer.hostname"})
"""Host names compare case-insensitively in ``field:value`` and wildcards, as in DNS
(RFC 4343) and as Elasticsearch's ``case_insensitive`` term/wildcard option does.

Why here and not by lowercasing at parse time (ECS recommends lowercase ``host.name``):
devices write their names as they are configured (``CAM-Q7-0001``, ``NVR-D3-02``), the
asset inventory, alerts and the console show those exact spellings, and events already
stored keep theirs; a query-side rule finds ``host.name:cam-*`` over old and new data
alike without rewriting anything. In SQLite a wildcard compares ``lower(host_name)`` (a
scan of the column over the time range's day tables, not of the JSON), and a term matches
the value as written, in lower case or in upper case (an ``IN`` list that keeps the
column index; a stored mixed-case name like ``Cam-01`` matches a term only as written).
Elasticsearch gets ``case_insensitive: true`` on both.
"""


@dataclass(frozen=True, slots=True)
class MatchAll:
    """``*`` or an empty query."""


@dataclass(frozen=True, slots=True)
class Term:
    """``field:value`` (exact, case-sensitive on keyword fields) or a bare word (free text)."""

    field: str | None
    value: str


@dataclass(frozen=True, slots=True)
class Phrase:
    """``field:"a b"`` or a bare ``"a b"``: the exact string (free text: the phrase)."""

    field: str | None
    value: str


@dataclass(frozen=True, slots=True)
class Wildcard:
    """``field:cam-*`` / ``field:ca?``: ``*`` any run, ``?`` one character."""

    field: str | None
    pattern: str


@dataclass(frozen=True, slots=True)
class Range:
    """``field:[a TO b]``, ``{a TO b}``, ``field:>=a``; ``None`` bound = open."""

    field: str
    low: str | None
    high: str | None
    include_low: bool = True
    include_high: bool = True


@dataclass(frozen=True, slots=True)
class Exists:
    """``_exists_:field``."""

    field: str


@dataclass(frozen=True, slots=True)
class And:
    children: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Or:
    children: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Not:
    child: Node


Node = MatchAll | Term | Phrase | Wildcard | Range | Exists | And | Or | Not
