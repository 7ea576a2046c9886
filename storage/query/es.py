"""Translate the query AST into Elasticsearch Query DSL.

The analyst's Lucene text is parsed once (``storage.query.parse``) into the small tree of
``storage.query.ast``; this module walks that tree and nothing else. It never hands user
text to ``query_string`` (nor to ``simple_query_string``): both re-parse their input as
a query language, so a value the parser already decided was a literal (``cam-01``,
``a+b``, ``C:\\Windows``) could be read again as operators, and a crafted value could
widen a search. Every leaf becomes a structured query whose value is data:

==========================  ==============================================================
AST                         Query DSL
==========================  ==============================================================
``MatchAll``                ``match_all``
``Term`` keyword/ip/number  ``term`` (exact, case-sensitive, as in Kibana on keyword)
``Term`` on a text field    ``match_phrase``: the value's tokens, in order (see below)
``Term`` free text          ``multi_match`` of ``type: phrase`` over :data:`FREE_TEXT_FIELDS`
``Phrase`` on a text field  ``match_phrase``
``Phrase`` on other fields  ``term``: the exact string (``match_phrase`` would analyze it
                            into a one-token phrase on keyword, and fails on ``ip``/numbers)
``Phrase`` free text        ``multi_match`` of ``type: phrase``
``Wildcard``                ``wildcard`` (the AST pattern is already in its syntax: ``\\*``,
                            ``\\?``, ``\\\\`` escaped); ``field:*`` becomes ``exists``;
                            on text fields and free text it is case-insensitive, since
                            text fields hold lower-cased tokens
``Range``                   ``range`` with ``gte``/``gt``/``lte``/``lt``; values pass
                            through, so date math (``now-1h``) works on ``@timestamp``
``Exists``                  ``exists``
``And`` / ``Or`` / ``Not``  ``bool`` (``filter`` + ``must_not`` / ``should`` with
                            ``minimum_should_match: 1`` / ``must_not``)
==========================  ==============================================================

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

from collections.abc import Collection
from typing import Any

from storage.es_mappings import FREE_TEXT_FIELDS, TEXT_FIELDS
from storage.query import ast

__all__ = ["to_es_query", "FREE_TEXT_FIELDS"]


def to_es_query(
    node: ast.Node,
    *,
    text_fields: Collection[str] = TEXT_FIELDS,
    free_text_fields: Collection[str] = FREE_TEXT_FIELDS,
) -> dict[str, Any]:
    """Return the Query DSL (the value of a request's ``query`` key) for ``node``.

    ``text_fields`` names the fields mapped as analyzed text (they get ``match`` and
    ``match_phrase``); ``free_text_fields`` are searched by bare words and phrases.
    The defaults come from the index template in :mod:`storage.es_mappings`, so the
    translation matches the mappings citysoc installs.
    """
    return _Translator(frozenset(text_fields), tuple(free_text_fields)).visit(node)


class _Translator:
    def __init__(self, text_fields: frozenset[str], free_text_fields: tuple[str, ...]):
        self.text_fields = text_fields
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

    def _Term(self, node: ast.Term) -> dict[str, Any]:
        if node.field is None:
            return {"multi_match": {"query": node.value, "fields": self.free, "type": "phrase"}}
        if node.field in self.text_fields:
            return {"match_phrase": {node.field: node.value}}
        return {"term": {node.field: node.value}}

    def _Phrase(self, node: ast.Phrase) -> dict[str, Any]:
        if node.field is None:
            return {"multi_match": {"query": node.value, "fields": self.free, "type": "phrase"}}
        if node.field in self.text_fields:
            return {"match_phrase": {node.field: node.value}}
        return {"term": {node.field: node.value}}

    def _Wildcard(self, node: ast.Wildcard) -> dict[str, Any]:
        if node.field is not None and node.pattern.strip("*") == "" and node.pattern:
            return {"exists": {"field": node.field}}
        # The parser keeps \*, \? and \\ escaped in patterns: that is ES wildcard syntax.
        value = node.pattern
        if node.field is None:
            if node.pattern.strip("*") == "":
                return {"match_all": {}}
            clauses = [{"wildcard": {f: {"value": value, "case_insensitive": True}}} for f in self.free]
            return clauses[0] if len(clauses) == 1 else {"bool": {"should": clauses, "minimum_should_match": 1}}
        if node.field in self.text_fields:
            return {"wildcard": {node.field: {"value": value, "case_insensitive": True}}}
        return {"wildcard": {node.field: {"value": value}}}

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
