"""Translate the query AST into Elasticsearch Query DSL.

The analyst's Lucene text is parsed once (``storage.query.parse``) into the small tree of
``storage.query.ast``; this module walks that tree and nothing else. It never hands user
text to ``query_string`` (nor to ``simple_query_string``): both re-parse their input as
a query language, so a value the parser already decided was a literal (``cam-01``,
``a+b``, ``C:\\Windows``) could be read again as operators, and a crafted value could
widen a search. Every leaf becomes a structured query whose value is data.

The translation knows the type each field has in citysoc's index template
(:data:`storage.es_mappings.FIELD_TYPES`), because the right query depends on it:

==============================  ==========================================================
AST                             Query DSL
==============================  ==========================================================
``MatchAll``                    ``match_all``
``Term``/``Phrase`` on keyword  ``term``: exact and case-sensitive, as in Kibana
``Term``/``Phrase`` on ``ip``   ``term`` for an address or CIDR block (``10.0.0.0/8``);
                                ``match_none`` for anything else, which no address equals
``Term``/``Phrase`` on numbers,  ``match`` with ``lenient: true``: the same exact match as
dates, booleans and fields the  ``term`` on keyword, numbers and dates, but a value of the
template does not name          wrong type (``port:abc``) matches nothing instead of
                                failing the whole search
``Term``/``Phrase`` on text     ``match_phrase``: the value's tokens, in order (see below)
bare word / bare phrase         ``multi_match`` of ``type: phrase`` over
                                :data:`FREE_TEXT_FIELDS`
``Wildcard``                    ``wildcard`` (the AST pattern is already in its syntax:
                                ``\\*``, ``\\?``, ``\\\\`` escaped); case-insensitive on
                                text fields and free text, which hold lower-cased tokens;
                                ``field:*`` becomes ``exists``
``Wildcard`` on ``ip``          whole-octet prefixes become CIDR terms (``10.0.1.*`` is
                                ``10.0.1.0/24``); other patterns are a :class:`QueryError`
                                (an ``ip`` field has no text to match characters in)
``Wildcard`` on numbers/dates   :class:`QueryError`: use a range
``Range``                       ``range`` with ``gte``/``gt``/``lte``/``lt``; values pass
                                through, so date math (``now-1h``, ``2026-05-02||+1d``)
                                works on ``@timestamp``
``Exists``                      ``exists``
``And`` / ``Or`` / ``Not``      ``bool``: ``filter`` + ``must_not`` / ``should`` with
                                ``minimum_should_match: 1`` / ``must_not``
==============================  ==========================================================

Why ``multi_match`` for free text: it analyzes the literal value with each field's own
analyzer and treats it purely as text, which is what a bare word means to an analyst
(``Failed`` finds ``sshd: failed password``). A bare word that analyzes to several
tokens (``cam-01``, ``10.0.0.5``) must match them adjacent and in order (``type:
phrase``), not scattered over the message: that is what the analyst typed, and it is
exactly what the SQLite store's FTS5 query does, so both stores pass one contract.
Filters use ``filter`` context (no scoring, cacheable): results are ordered by time, not
relevance.

Example::

    >>> from storage.query import ast
    >>> to_es_query(ast.And((ast.Term("host.name", "cam-01"), ast.Exists("user.name"))))
    {'bool': {'filter': [{'term': {'host.name': 'cam-01'}}, {'exists': {'field': 'user.name'}}]}}
"""
from __future__ import annotations

import ipaddress
import re
from collections.abc import Collection, Mapping
from typing import Any

from core.protocols import QueryError
from storage.es_mappings import FIELD_TYPES, FREE_TEXT_FIELDS
from storage.query import ast

__all__ = ["to_es_query", "FREE_TEXT_FIELDS"]

_TEXT = frozenset({"text", "match_only_text"})
_EXACT = frozenset({"keyword", "wildcard", "constant_keyword"})
_NO_WILDCARD = frozenset({"long", "integer", "short", "byte", "float", "double", "half_float", "scaled_float", "date", "date_nanos", "boolean"})
_OCTET_PREFIX = re.compile(r"^((?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){1,3})\*$")


def to_es_query(
    node: ast.Node,
    *,
    field_types: Mapping[str, str] = FIELD_TYPES,
    free_text_fields: Collection[str] = FREE_TEXT_FIELDS,
) -> dict[str, Any]:
    """Return the Query DSL (the value of a request's ``query`` key) for ``node``.

    ``field_types`` maps field names to their Elasticsearch types (fields it does not
    name are treated as dynamically mapped: keyword for strings, numbers otherwise);
    ``free_text_fields`` are searched by bare words and phrases. The defaults come from
    the index template in :mod:`storage.es_mappings`, so the translation matches the
    mappings citysoc installs. Raises :class:`QueryError` for a query that cannot mean
    anything on its field's type (a wildcard on a number).
    """
    return _Translator(field_types, tuple(free_text_fields)).visit(node)


class _Translator:
    def __init__(self, field_types: Mapping[str, str], free_text_fields: tuple[str, ...]):
        self.types = field_types
        self.free = list(free_text_fields)

    def visit(self, node: ast.Node) -> dict[str, Any]:
        method = getattr(self, "_" + type(node).__name__, None)
        if method is None:
            raise TypeError(
                f"cannot translate {type(node).__name__} to Elasticsearch DSL: "
                "not a storage.query.ast node"
            )
        return method(node)

    def _MatchAll(self, node: ast.MatchAll) -> dict[str, Any]:
        return {"match_all": {}}

    def _exact(self, field: str, value: str) -> dict[str, Any]:
        kind = self.types.get(field)
        if field in ast.CASELESS_FIELDS and kind not in _TEXT:
            return {"term": {field: {"value": value, "case_insensitive": True}}}
        if kind in _TEXT:
            return {"match_phrase": {field: value}}
        if kind in _EXACT:
            return {"term": {field: value}}
        if kind == "ip":
            try:
                ipaddress.ip_network(value, strict=False)
            except ValueError:
                return {"match_none": {}}
            return {"term": {field: value}}
        return {"match": {field: {"query": value, "lenient": True}}}

    def _Term(self, node: ast.Term) -> dict[str, Any]:
        if node.field is None:
            return {"multi_match": {"query": node.value, "fields": self.free, "type": "phrase"}}
        return self._exact(node.field, node.value)

    def _Phrase(self, node: ast.Phrase) -> dict[str, Any]:
        if node.field is None:
            return {"multi_match": {"query": node.value, "fields": self.free, "type": "phrase"}}
        return self._exact(node.field, node.value)

    def _Wildcard(self, node: ast.Wildcard) -> dict[str, Any]:
        pattern = node.pattern
        only_stars = pattern != "" and pattern.strip("*") == ""
        if node.field is None:
            if only_stars:
                return {"match_all": {}}
            clauses = [{"wildcard": {f: {"value": pattern, "case_insensitive": True}}} for f in self.free]
            return clauses[0] if len(clauses) == 1 else {"bool": {"should": clauses, "minimum_should_match": 1}}
        field = node.field
        if only_stars:
            return {"exists": {"field": field}}
        kind = self.types.get(field)
        if kind in _TEXT:
            return {"wildcard": {field: {"value": pattern, "case_insensitive": True}}}
        if kind == "ip":
            m = _OCTET_PREFIX.match(pattern)
            if not m:
                raise QueryError(
                    f"{field} holds IP addresses: wildcards work on whole octets (10.0.1.*); "
                    "otherwise use a CIDR block (10.0.0.0/8) or a range ([10.0.0.1 TO 10.0.0.99])"
                )
            octets = m.group(1).rstrip(".").split(".")
            return {"term": {field: ".".join(octets + ["0"] * (4 - len(octets))) + f"/{8 * len(octets)}"}}
        if kind in _NO_WILDCARD:
            raise QueryError(f"{field} holds {kind} values: wildcards apply to text; use a range, e.g. {field}:[a TO b]")
        # The parser keeps \*, \? and \\ escaped in patterns: that is ES wildcard syntax.
        if field in ast.CASELESS_FIELDS:
            return {"wildcard": {field: {"value": pattern, "case_insensitive": True}}}
        return {"wildcard": {field: {"value": pattern}}}

    def _Range(self, node: ast.Range) -> dict[str, Any]:
        bounds: dict[str, Any] = {}
        if node.low is not None:
            bounds["gte" if node.include_low else "gt"] = node.low
        if node.high is not None:
            bounds["lte" if node.include_high else "lt"] = node.high
        if not bounds:  # [* TO *]: any value at all
            return {"exists": {"field": node.field}}
        return {"range": {node.field: bounds}}

    def _Exists(self, node: ast.Exists) -> dict[str, Any]:
        return {"exists": {"field": node.field}}

    def _And(self, node: ast.And) -> dict[str, Any]:
        if len(node.children) == 1:
            return self.visit(node.children[0])
        must: list[dict[str, Any]] = []
        must_not: list[dict[str, Any]] = []
        for child in node.children:
            if isinstance(child, ast.Not):
                must_not.append(self.visit(child.child))
            elif isinstance(child, ast.MatchAll):
                continue
            else:
                must.append(self.visit(child))
        out: dict[str, Any] = {}
        if must:
            out["filter"] = must
        if must_not:
            out["must_not"] = must_not
        return {"bool": out} if out else {"match_all": {}}

    def _Or(self, node: ast.Or) -> dict[str, Any]:
        if len(node.children) == 1:
            return self.visit(node.children[0])
        return {"bool": {"should": [self.visit(c) for c in node.children], "minimum_should_match": 1}}

    def _Not(self, node: ast.Not) -> dict[str, Any]:
        if isinstance(node.child, ast.Not):
            return self.visit(node.child.child)
        return {"bool": {"must_not": [self.visit(node.child)]}}
