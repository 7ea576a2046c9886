"""The small, backend-neutral tree a Lucene query is parsed into.

Translators (SQL, Elasticsearch DSL) walk this tree and nothing else, so the parser is
the only code that knows Lucene's grammar and the backends cannot disagree on meaning.
Field names are ECS dotted paths; ``field=None`` means free text (any field / full text).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Union

__all__ = ["Node", "MatchAll", "Term", "Phrase", "Wildcard", "Range", "Exists", "And", "Or", "Not"]


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
    children: tuple["Node", ...]


@dataclass(frozen=True, slots=True)
class Or:
    children: tuple["Node", ...]


@dataclass(frozen=True, slots=True)
class Not:
    child: "Node"


Node = Union[MatchAll, Term, Phrase, Wildcard, Range, Exists, And, Or, Not]
