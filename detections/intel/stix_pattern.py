"""A parser for the STIX 2.1 patterning language, and the reduction of a parsed pattern
to plain IOCs.

The whole grammar is parsed (observation operators, qualifiers, every comparison
operator, object paths with quoted and list-index steps, string/int/float/bool/
timestamp/hex/binary literals), so a feed that uses syntax we cannot turn into an IOC
gets a precise "unsupported" message rather than a misleading syntax error.
What becomes an IOC: ``=`` and ``IN`` tests (and ``ISSUBSET`` on an address, a CIDR) on
``ipv4-addr:value``, ``ipv6-addr:value``, ``domain-name:value``, ``url:value``,
``file:hashes.<MD5|SHA-1|SHA-256>`` and ``network-traffic:(src|dst)_ref.value``,
combined with ``OR`` (inside or between observations). ``AND`` is reduced only when one
side is a file hash (the hash identifies the file; the other tests only narrow it).

Example::

    >>> pattern_iocs("[ipv4-addr:value = '198.51.100.7' OR domain-name:value = 'evil.example']")
    [('ip', '198.51.100.7'), ('domain', 'evil.example')]
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

__all__ = ["StixPatternError", "UnsupportedPattern", "parse_pattern", "pattern_iocs", "MAX_NESTING"]

MAX_NESTING = 64
"""Parentheses nested deeper than this are refused (no real pattern comes close)."""


class StixPatternError(ValueError):
    """The pattern is not valid STIX patterning syntax; ``position`` is a 0-based offset."""

    def __init__(self, message: str, position: int):
        self.message = message
        self.position = position
        super().__init__(f"pattern syntax error at position {position}: {message}")


class UnsupportedPattern(ValueError):
    """Valid syntax that cannot be expressed as single-value IOCs (says what and why)."""


# -- tokens -------------------------------------------------------------------------------
_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<str>'(?:[^'\\]|\\.)*')
  | (?P<ts>t'[^']*')
  | (?P<hex>h'[0-9a-fA-F]*')
  | (?P<bin>b'[A-Za-z0-9+/=]*')
  | (?P<num>[+-]?\d+(?:\.\d+)?)
  | (?P<op><=|>=|!=|<>|==|=|<|>)
  | (?P<punct>[\[\]():,.*])
  | (?P<word>[A-Za-z_][A-Za-z0-9_-]*)
""", re.X)

_KEYWORDS = {"AND", "OR", "NOT", "FOLLOWEDBY", "IN", "LIKE", "MATCHES", "ISSUBSET", "ISSUPERSET", "EXISTS",
             "WITHIN", "SECONDS", "REPEATS", "TIMES", "START", "STOP", "true", "false"}


@dataclass(frozen=True, slots=True)
class _Tok:
    kind: str
    text: str
    pos: int


def _tokenize(src: str) -> list[_Tok]:
    toks: list[_Tok] = []
    i = 0
    while i < len(src):
        m = _TOKEN.match(src, i)
        if not m:
            raise StixPatternError(f"unexpected character {src[i]!r}", i)
        kind = m.lastgroup or ""
        if kind != "ws":
            text = m.group()
            if kind == "word" and text.upper() in _KEYWORDS and text not in ("true", "false"):
                kind, text = "kw", text.upper()
            elif kind == "word" and text in ("true", "false"):
                kind = "bool"
            toks.append(_Tok(kind, text, i))
        i = m.end()
    toks.append(_Tok("eof", "", len(src)))
    return toks


# -- AST ----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Path:
    object_type: str
    steps: tuple[str | int, ...]  # property names, quoted names, list indexes ('*' -> -1)

    def dotted(self) -> str:
        return ".".join(str(s) for s in self.steps)


@dataclass(frozen=True, slots=True)
class Comparison:
    path: Path
    op: str  # '=', '!=', '<', 'IN', 'LIKE', 'MATCHES', 'ISSUBSET', 'ISSUPERSET', 'EXISTS'
    value: Any
    negated: bool = False
    pos: int = 0


@dataclass(frozen=True, slots=True)
class BoolExpr:
    op: str  # 'AND' | 'OR'
    items: tuple[CompExpr, ...]


CompExpr = Comparison | BoolExpr


@dataclass(frozen=True, slots=True)
class Observation:
    expr: CompExpr
    qualifiers: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True, slots=True)
class ObsExpr:
    op: str  # 'AND' | 'OR' | 'FOLLOWEDBY'
    items: tuple[ObsNode, ...]
    qualifiers: tuple[tuple[str, Any], ...] = ()


ObsNode = Observation | ObsExpr


class _Parser:
    def __init__(self, src: str):
        self.src = src
        self.toks = _tokenize(src)
        self.i = 0
        self.depth = 0

    def nest(self, pos: int) -> None:
        """Bound parenthesis nesting: feeds come from outside, recursion must not blow up."""
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise StixPatternError(f"nested deeper than {MAX_NESTING} levels", pos)

    def peek(self, ahead: int = 0) -> _Tok:
        return self.toks[min(self.i + ahead, len(self.toks) - 1)]

    def take(self) -> _Tok:
        t = self.toks[self.i]
        self.i += 1
        return t

    def expect(self, kind: str, text: str | None = None) -> _Tok:
        t = self.peek()
        if t.kind != kind or (text is not None and t.text != text):
            want = repr(text) if text else kind
            got = repr(t.text) if t.text else "end of pattern"
            raise StixPatternError(f"expected {want}, found {got}", t.pos)
        return self.take()

    def is_(self, kind: str, text: str | None = None) -> bool:
        t = self.peek()
        return t.kind == kind and (text is None or t.text == text)

    # pattern := obs_followed EOF
    def pattern(self) -> ObsNode:
        node = self.obs_binary(("FOLLOWEDBY", "OR", "AND"))
        if not self.is_("eof"):
            t = self.peek()
            raise StixPatternError(f"unexpected {t.text!r} after a complete pattern", t.pos)
        return node

    def obs_binary(self, ops: tuple[str, ...]) -> ObsNode:
        op, rest = ops[0], ops[1:]
        first = self.obs_binary(rest) if rest else self.obs_atom()
        items = [first]
        while self.is_("kw", op):
            self.take()
            items.append(self.obs_binary(rest) if rest else self.obs_atom())
        return first if len(items) == 1 else ObsExpr(op, tuple(items))

    def obs_atom(self) -> ObsNode:
        if self.is_("punct", "["):
            self.take()
            if self.is_("punct", "]"):
                raise StixPatternError("empty observation expression", self.peek().pos)
            expr = self.comp_or()
            self.expect("punct", "]")
            return Observation(expr, self.qualifiers())
        if self.is_("punct", "("):
            self.nest(self.take().pos)
            inner = self.obs_binary(("FOLLOWEDBY", "OR", "AND"))
            self.expect("punct", ")")
            self.depth -= 1
            quals = self.qualifiers()
            if quals:
                if isinstance(inner, Observation):
                    return Observation(inner.expr, inner.qualifiers + quals)
                return ObsExpr(inner.op, inner.items, inner.qualifiers + quals)
            return inner
        t = self.peek()
        raise StixPatternError(f"expected '[' to start an observation, found {t.text or 'end of pattern'!r}", t.pos)

    def qualifiers(self) -> tuple[tuple[str, Any], ...]:
        out = []
        while self.is_("kw") and self.peek().text in ("WITHIN", "REPEATS", "START"):
            kw = self.take().text
            if kw == "WITHIN":
                n = self.expect("num")
                self.expect("kw", "SECONDS")
                out.append(("WITHIN", float(n.text)))
            elif kw == "REPEATS":
                n = self.expect("num")
                self.expect("kw", "TIMES")
                out.append(("REPEATS", int(float(n.text))))
            else:
                start = self.expect("ts")
                self.expect("kw", "STOP")
                stop = self.expect("ts")
                out.append(("START", (start.text[2:-1], stop.text[2:-1])))
        return tuple(out)

    def comp_or(self) -> CompExpr:
        items = [self.comp_and()]
        while self.is_("kw", "OR"):
            self.take()
            items.append(self.comp_and())
        return items[0] if len(items) == 1 else BoolExpr("OR", tuple(items))

    def comp_and(self) -> CompExpr:
        items = [self.comp_atom()]
        while self.is_("kw", "AND"):
            self.take()
            items.append(self.comp_atom())
        return items[0] if len(items) == 1 else BoolExpr("AND", tuple(items))

    def comp_atom(self) -> CompExpr:
        if self.is_("punct", "("):
            self.nest(self.take().pos)
            e = self.comp_or()
            self.expect("punct", ")")
            self.depth -= 1
            return e
        if self.is_("kw", "EXISTS"):
            pos = self.take().pos
            return Comparison(self.path(), "EXISTS", None, False, pos)
        pos = self.peek().pos
        path = self.path()
        negated = False
        if self.is_("kw", "NOT"):
            self.take()
            negated = True
        t = self.peek()
        if t.kind == "op":
            self.take()
            op = {"==": "=", "<>": "!="}.get(t.text, t.text)
            return Comparison(path, op, self.literal(), negated, pos)
        if t.kind == "kw" and t.text in ("LIKE", "MATCHES", "ISSUBSET", "ISSUPERSET"):
            self.take()
            lit = self.peek()
            if lit.kind != "str":
                raise StixPatternError(f"{t.text} needs a quoted string", lit.pos)
            return Comparison(path, t.text, self.literal(), negated, pos)
        if t.kind == "kw" and t.text == "IN":
            self.take()
            self.expect("punct", "(")
            values = [self.literal()]
            while self.is_("punct", ","):
                self.take()
                values.append(self.literal())
            self.expect("punct", ")")
            return Comparison(path, "IN", tuple(values), negated, pos)
        raise StixPatternError(f"expected a comparison operator after {path.object_type}:{path.dotted()}, "
                               f"found {t.text or 'end of pattern'!r}", t.pos)

    def path(self) -> Path:
        t = self.peek()
        if t.kind != "word":
            raise StixPatternError(f"expected an object path like ipv4-addr:value, found {t.text or 'end of pattern'!r}",
                                   t.pos)
        obj = self.take().text
        self.expect("punct", ":")
        steps: list[str | int] = [self._step()]
        while True:
            if self.is_("punct", "."):
                self.take()
                steps.append(self._step())
            elif self.is_("punct", "[") and (self.peek(1).kind == "num" or self.peek(1).text == "*") \
                    and self.peek(2).text == "]":
                self.take()
                idx = self.take()
                self.take()
                steps.append(-1 if idx.text == "*" else int(idx.text))
            else:
                return Path(obj, tuple(steps))

    def _step(self) -> str:
        t = self.peek()
        if t.kind == "word" or t.kind == "kw":
            self.take()
            return t.text if t.kind == "word" else self.src[t.pos:t.pos + len(t.text)]
        if t.kind == "str":
            self.take()
            return _unquote(t.text)
        raise StixPatternError(f"expected a property name, found {t.text or 'end of pattern'!r}", t.pos)

    def literal(self) -> Any:
        t = self.take()
        if t.kind == "str":
            return _unquote(t.text)
        if t.kind == "num":
            return float(t.text) if "." in t.text else int(t.text)
        if t.kind == "bool":
            return t.text == "true"
        if t.kind in ("ts", "hex", "bin"):
            return (t.kind, t.text[2:-1])
        raise StixPatternError(f"expected a value, found {t.text or 'end of pattern'!r}", t.pos)


def _unquote(s: str) -> str:
    body = s[1:-1]
    return re.sub(r"\\(.)", r"\1", body)


def parse_pattern(pattern: str) -> ObsNode:
    """Parse a STIX 2.1 pattern into its AST; raises :class:`StixPatternError`."""
    if not isinstance(pattern, str) or not pattern.strip():
        raise StixPatternError("empty pattern", 0)
    return _Parser(pattern).pattern()


# -- reduction to IOCs ----------------------------------------------------------------------
_HASH_NAMES = {"md5": "md5", "sha-1": "sha1", "sha1": "sha1", "sha-256": "sha256", "sha256": "sha256"}


def _ioc_kind(path: Path) -> str | None:
    """The IOC kind a path holds, or None when we do not map that path."""
    steps = tuple(str(s).lower() if isinstance(s, str) else s for s in path.steps)
    obj = path.object_type.lower()
    if obj in ("ipv4-addr", "ipv6-addr") and steps == ("value",):
        return "ip"
    if obj == "domain-name" and steps == ("value",):
        return "domain"
    if obj == "url" and steps == ("value",):
        return "url"
    if obj in ("file", "artifact") and len(steps) == 2 and steps[0] == "hashes" and steps[1] in _HASH_NAMES:
        return "hash:" + _HASH_NAMES[steps[1]]
    if obj == "network-traffic" and steps in (("dst_ref", "value"), ("src_ref", "value")):
        return "ip"
    return None


def _comparison_iocs(c: Comparison) -> list[tuple[str, str]]:
    where = f"{c.path.object_type}:{c.path.dotted()}"
    kind = _ioc_kind(c.path)
    if kind is None:
        raise UnsupportedPattern(f"object path {where} is not an IOC type we match (ip, domain, url, file hash)")
    if c.negated:
        raise UnsupportedPattern(f"negated test on {where} (NOT ...) cannot be an IOC")
    if c.op == "=":
        values: tuple[Any, ...] = (c.value,)
    elif c.op == "IN":
        values = c.value
    elif c.op == "ISSUBSET" and kind == "ip":
        values = (c.value,)
    else:
        raise UnsupportedPattern(f"operator {c.op} on {where}: only '=', IN and ISSUBSET (CIDR) become IOCs")
    out = []
    for v in values:
        if not isinstance(v, str):
            raise UnsupportedPattern(f"{where} compared with a non-string value {v!r}")
        out.append((kind, v))
    return out


def _expr_iocs(e: CompExpr) -> list[tuple[str, str]]:
    if isinstance(e, Comparison):
        return _comparison_iocs(e)
    if e.op == "OR":
        return [ioc for item in e.items for ioc in _expr_iocs(item)]
    # AND: a hash pins the file; the other tests (name, size) only narrow it.
    hashes = [item for item in e.items if isinstance(item, Comparison) and (_ioc_kind(item.path) or "").startswith("hash:")]
    if hashes:
        return [ioc for item in hashes for ioc in _comparison_iocs(item)]
    raise UnsupportedPattern("AND of tests that are not file hashes needs all of them on one event; "
                             "publish them as separate indicators or combine them with OR")


def _obs_iocs(node: ObsNode) -> list[tuple[str, str]]:
    for q, _ in node.qualifiers:
        if q == "REPEATS":
            raise UnsupportedPattern("REPEATS qualifier needs counting across events; not an IOC")
    if isinstance(node, Observation):
        return _expr_iocs(node.expr)
    if node.op == "OR":
        return [ioc for item in node.items for ioc in _obs_iocs(item)]
    raise UnsupportedPattern(f"observation operator {node.op} correlates several events; "
                             "use a correlation rule, not an IOC")


def pattern_iocs(pattern: str) -> list[tuple[str, str]]:
    """The (kind, raw value) pairs a pattern stands for; kind is ``ip`` (may be a CIDR),
    ``domain``, ``url`` or ``hash:<md5|sha1|sha256>``.

    Raises :class:`StixPatternError` for bad syntax, :class:`UnsupportedPattern` for
    patterns that are valid but not expressible as IOCs. WITHIN and START/STOP
    qualifiers do not change what a single observation matches and are accepted.
    """
    return _obs_iocs(parse_pattern(pattern))
