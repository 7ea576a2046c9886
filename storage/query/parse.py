"""Parse the analysts' Lucene (Kibana) query text into the backend-neutral AST.

The grammar is luqum's (a PLY parser for Lucene syntax); this module is the only place
that knows it. Everything a backend needs is in :mod:`storage.query.ast`, so the SQL and
Elasticsearch translators cannot disagree on what a query means.

What is understood, as Kibana's Lucene mode understands it::

    host.name:cam-01                 exact value (Term)
    host.name:cam-*   user.name:a?c  wildcards: * any run, ? one character (Wildcard)
    message:"failed password"        phrase (Phrase)
    destination.port:[1 TO 1024]     ranges, [] inclusive, {} exclusive, * open (Range)
    destination.port:>=1024          >, >=, <, <= (Range with one open end)
    _exists_:user.name  user.name:*  field present (Exists)
    a AND b, a OR b, NOT a, -a, +a   boolean logic; terms side by side mean AND
    host.name:(cam-01 OR cam-02)     a field applied to a group
    failed  "bad password"           bare words and phrases: free text
    *                                everything (MatchAll)

Escapes: ``\\`` before a special character makes it literal. In a Wildcard pattern the
escapes ``\\*``, ``\\?`` and ``\\\\`` are kept (they mean a literal ``*``, ``?``, ``\\``),
which is also the syntax of Elasticsearch's wildcard query; every other escape is
resolved. Term, Phrase and Range values carry no escapes.

Bad input raises :class:`core.protocols.QueryError` with a 0-based ``position``.
Queries are bounded (length, node count, nesting depth) because they come from a web
form and every node becomes SQL or DSL the store must run.

Example::

    >>> parse_query('host.name:cam-* AND NOT event.outcome:success')
    And(children=(Wildcard(field='host.name', pattern='cam-*'), Not(child=Term(field='event.outcome', value='success'))))
"""
from __future__ import annotations

import re
import threading
from typing import Any

from luqum import tree as lt
from luqum.exceptions import IllegalCharacterError, ParseError, ParseSyntaxError
from luqum.parser import lexer as _base_lexer
from luqum.parser import parser as _parser

from core.protocols import QueryError
from storage.query import ast

__all__ = [
    "parse_query",
    "validate_field",
    "FIELD_RE",
    "MAX_QUERY_LENGTH",
    "MAX_NODES",
    "MAX_DEPTH",
]

FIELD_RE = re.compile(r"^[A-Za-z0-9_@.]+$")
"""What a field name may contain. Anything else is refused before it reaches a backend."""

MAX_QUERY_LENGTH = 10_000
MAX_NODES = 200
MAX_DEPTH = 20

# PLY keeps parse state in the lexer and the parser objects; one lock keeps parses from
# different threads (the server runs queries in asyncio.to_thread) from mixing.
_LOCK = threading.Lock()
_LEXER = _base_lexer.clone()

_POS_RE = re.compile(r"position (\d+)")
_WILDCARD_RE = re.compile(r"(?<!\\)(?:\\\\)*[*?]")


def validate_field(name: str, position: int | None = None, query: str | None = None) -> str:
    """Return ``name`` if it is a usable field name, else raise :class:`QueryError`."""
    if not name or not FIELD_RE.match(name) or name.startswith(".") or name.endswith(".") or ".." in name:
        raise QueryError(
            f"invalid field name {name!r}: use letters, digits, '_', '@' and single dots (e.g. host.name)",
            position,
            query,
        )
    return name


def parse_query(text: str) -> ast.Node:
    """Parse Lucene query ``text`` into an :mod:`storage.query.ast` tree.

    An empty or blank query means everything (``MatchAll``).
    """
    if text is None:
        return ast.MatchAll()
    if not isinstance(text, str):
        raise QueryError(f"a query must be text, not {type(text).__name__}")
    if len(text) > MAX_QUERY_LENGTH:
        raise QueryError(f"query is {len(text)} characters long; the limit is {MAX_QUERY_LENGTH}", MAX_QUERY_LENGTH, text)
    if not text.strip():
        return ast.MatchAll()
    _check_nesting(text)
    try:
        with _LOCK:
            tree = _parser.parse(text, lexer=_LEXER)
    except IllegalCharacterError as exc:
        raise QueryError(f"illegal character: {exc}", _error_position(exc, text), text) from None
    except ParseSyntaxError as exc:
        pos = _error_position(exc, text)
        what = "unexpected end of query (unbalanced parenthesis, bracket or quote?)" if pos >= len(text) else f"unexpected {text[pos:pos + 10]!r}"
        raise QueryError(f"syntax error: {what}", pos, text) from None
    except (ParseError, RecursionError, ValueError, ArithmeticError) as exc:  # luqum raises a few others (decimal.InvalidOperation for "x^.")
        raise QueryError(f"cannot parse query: {exc}", 0, text) from None
    _check_size(tree, text)
    return _Converter(text).convert(tree, None)


def _error_position(exc: Exception, text: str) -> int:
    m = _POS_RE.search(str(exc))
    return int(m.group(1)) if m else len(text)


def _check_nesting(text: str) -> None:
    """Refuse deep parenthesis nesting before PLY and our recursion see it."""
    depth = 0
    in_quote = False
    escaped = False
    for i, ch in enumerate(text):
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == '"':
            in_quote = not in_quote
        elif not in_quote and ch == "(":
            depth += 1
            if depth > MAX_DEPTH:
                raise QueryError(f"query is nested more than {MAX_DEPTH} levels deep; simplify it", i, text)
        elif not in_quote and ch == ")":
            depth = max(0, depth - 1)


def _check_size(tree: lt.Item, text: str) -> None:
    count = 0
    stack: list[tuple[lt.Item, int]] = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        count += 1
        if count > MAX_NODES:
            raise QueryError(f"query has more than {MAX_NODES} parts; split it or simplify it", _pos(node), text)
        if depth > MAX_DEPTH:
            raise QueryError(f"query is nested more than {MAX_DEPTH} levels deep; simplify it", _pos(node), text)
        for child in node.children:
            stack.append((child, depth + 1))


def _pos(node: Any) -> int:
    return getattr(node, "pos", None) or 0


def _unescape(value: str, keep: str = "") -> str:
    """Resolve backslash escapes, keeping ``\\x`` for x in ``keep`` (and ``\\\\`` then)."""
    out: list[str] = []
    i = 0
    while i < len(value):
        ch = value[i]
        if ch == "\\" and i + 1 < len(value):
            nxt = value[i + 1]
            if nxt in keep or (keep and nxt == "\\"):
                out.append(ch + nxt)
            else:
                out.append(nxt)
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


class _Converter:
    def __init__(self, text: str):
        self.text = text

    def error(self, message: str, node: Any) -> QueryError:
        return QueryError(message, _pos(node), self.text)

    def convert(self, node: lt.Item, field: str | None) -> ast.Node:
        if isinstance(node, lt.SearchField):
            if field is not None:
                raise self.error(f"field {node.name!r} inside the group of field {field!r}: use one field per value", node)
            name = node.name
            if name == "_exists_":
                return self._exists(node.expr)
            validate_field(name, _pos(node), self.text)
            return self.convert(node.expr, name)
        if isinstance(node, (lt.Group, lt.FieldGroup)):
            return self.convert(node.expr, field)
        if isinstance(node, lt.AndOperation):
            return self._flat(ast.And, [self.convert(c, field) for c in node.children])
        if isinstance(node, lt.OrOperation):
            return self._flat(ast.Or, [self.convert(c, field) for c in node.children])
        if isinstance(node, lt.UnknownOperation):  # terms side by side: AND, as in Kibana
            for c in node.children:
                if isinstance(c, lt.Word) and c.value in ("&&", "||"):
                    raise self.error(f"{c.value!r} is not supported: write AND / OR", c)
            return self._flat(ast.And, [self.convert(c, field) for c in node.children])
        if isinstance(node, (lt.Not, lt.Prohibit)):
            return ast.Not(self.convert(node.a, field))
        if isinstance(node, lt.Plus):
            return self.convert(node.a, field)
        if isinstance(node, lt.Boost):  # scores do not exist here; the boosted part still filters
            return self.convert(node.expr, field)
        if isinstance(node, lt.Range):
            return self._range(node, field)
        if isinstance(node, lt.From):
            return self._half_range(node, field, low=True)
        if isinstance(node, lt.To):
            return self._half_range(node, field, low=False)
        if isinstance(node, lt.Phrase):
            return ast.Phrase(field, _unescape(node.value[1:-1]))
        if isinstance(node, lt.Regex):
            raise self.error("regular expressions are not supported: use wildcards (* and ?)", node)
        if isinstance(node, lt.Proximity):
            raise self.error("proximity search (\"...\"~N) is not supported: use a phrase or AND", node)
        if isinstance(node, lt.Fuzzy):
            raise self.error("fuzzy search (word~) is not supported: use wildcards (* and ?)", node)
        if isinstance(node, lt.Word):
            return self._word(node, field)
        raise self.error(f"unsupported query element {type(node).__name__}", node)

    @staticmethod
    def _flat(kind: type, children: list[ast.Node]) -> ast.Node:
        out: list[ast.Node] = []
        for c in children:
            if isinstance(c, kind):
                out.extend(c.children)  # type: ignore[union-attr]
            else:
                out.append(c)
        return out[0] if len(out) == 1 else kind(tuple(out))

    def _exists(self, expr: lt.Item) -> ast.Node:
        if isinstance(expr, lt.Word):
            return ast.Exists(validate_field(_unescape(expr.value), _pos(expr), self.text))
        if isinstance(expr, lt.Phrase):
            return ast.Exists(validate_field(expr.value[1:-1], _pos(expr), self.text))
        raise self.error("_exists_ takes one field name, e.g. _exists_:user.name", expr)

    def _word(self, node: lt.Word, field: str | None) -> ast.Node:
        raw = node.value
        if raw == "*":
            return ast.MatchAll() if field is None else ast.Exists(field)
        if raw.startswith("!") and len(raw) > 1:
            raise self.error("'!' is not supported as negation: write NOT or -", node)
        if _WILDCARD_RE.search(raw):
            return ast.Wildcard(field, _unescape(raw, keep="*?"))
        return ast.Term(field, _unescape(raw))

    def _bound(self, node: lt.Item) -> str | None:
        if isinstance(node, lt.Word):
            return None if node.value == "*" else _unescape(node.value)
        if isinstance(node, lt.Phrase):
            return _unescape(node.value[1:-1])
        raise self.error("a range bound must be a value, a quoted value or *", node)

    def _range(self, node: lt.Range, field: str | None) -> ast.Node:
        if field is None:
            raise self.error("a range needs a field, e.g. destination.port:[1 TO 1024]", node)
        low, high = self._bound(node.low), self._bound(node.high)
        if low is None and high is None:
            return ast.Exists(field)
        return ast.Range(field, low, high, bool(node.include_low), bool(node.include_high))

    def _half_range(self, node: lt.Item, field: str | None, *, low: bool) -> ast.Node:
        if field is None:
            raise self.error("a comparison needs a field, e.g. destination.port:>=1024", node)
        value = self._bound(node.a)
        if value is None:
            return ast.Exists(field)
        include = bool(node.include)
        if low:
            return ast.Range(field, value, None, include_low=include)
        return ast.Range(field, None, value, include_high=include)
