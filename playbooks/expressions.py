"""A small, safe expression language for ``if:`` conditions and ``{{ }}`` templates.

Parsed once when a playbook loads (so a typo is a load error with its position), then
evaluated against a plain-data context. There is no ``eval``, no attribute access on
Python objects (only dict keys and list indexes), no loops and no way to call anything
but the functions in :data:`FUNCTIONS`: a playbook author cannot reach the process.

Syntax::

    alert.level in ['high', 'critical'] and not inputs.dry
    steps.lookup.output.asset.type == 'camera'
    len(alert.tags) > 2 or glob(alert.rule_id, 'cam-*')
    in_cidr(alert.entities.source_ip, '10.0.0.0/8')

Paths that do not exist evaluate to ``null`` (so ``if: alert.entities.user`` is a
presence test); comparing ``null`` with ``<``/``>`` is false rather than an error.
"""
from __future__ import annotations

import fnmatch
import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Expression", "ExpressionError", "compile_expression", "FUNCTIONS", "ROOTS"]

ROOTS: frozenset[str] = frozenset({"alert", "inputs", "steps", "run", "trigger", "env"})
"""Names an expression may start with."""


class ExpressionError(ValueError):
    """An expression that cannot be parsed or evaluated; ``position`` is a 0-based offset."""

    def __init__(self, message: str, position: int | None = None, source: str = ""):
        self.message = message
        self.position = position
        self.source = source
        where = f" at position {position}" if position is not None else ""
        super().__init__(f"{message}{where} in {source!r}" if source else f"{message}{where}")


def _in_cidr(ip: Any, net: Any) -> bool:
    try:
        return ipaddress.ip_address(str(ip)) in ipaddress.ip_network(str(net), strict=False)
    except ValueError:
        return False


def _is_ip(v: Any) -> bool:
    try:
        ipaddress.ip_address(str(v))
        return True
    except ValueError:
        return False


def _glob(v: Any, pattern: Any) -> bool:
    return v is not None and fnmatch.fnmatchcase(str(v), str(pattern))


def _default(v: Any, fallback: Any) -> Any:
    return fallback if v is None or v == "" else v


def _join(v: Any, sep: Any = ", ") -> str:
    return str(sep).join(str(x) for x in v) if isinstance(v, (list, tuple)) else str(v)


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "len": lambda v: len(v) if isinstance(v, (str, list, dict, tuple)) else 0,
    "lower": lambda v: str(v).lower() if v is not None else None,
    "upper": lambda v: str(v).upper() if v is not None else None,
    "str": lambda v: "" if v is None else str(v),
    "int": lambda v: int(v),
    "glob": _glob,
    "in_cidr": _in_cidr,
    "is_ip": _is_ip,
    "default": _default,
    "join": _join,
    "first": lambda v: (v[0] if v else None) if isinstance(v, (list, tuple)) else v,
    "startswith": lambda v, p: isinstance(v, str) and v.startswith(str(p)),
    "endswith": lambda v, p: isinstance(v, str) and v.endswith(str(p)),
    "contains": lambda v, p: v is not None and p in v,
}

_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<num>\d+(?:\.\d+)?)
  | (?P<str>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
  | (?P<name>[A-Za-z_][A-Za-z0-9_\-]*)
  | (?P<op>==|!=|<=|>=|[<>+\-.\[\](),])
""", re.VERBOSE)
_KEYWORDS = {"and", "or", "not", "in", "true", "false", "null"}
_ESCAPES = {"n": "\n", "t": "\t", "\\": "\\", "'": "'", '"': '"'}


@dataclass(slots=True)
class _Tok:
    kind: str
    value: Any
    pos: int


def _tokenize(src: str) -> list[_Tok]:
    toks: list[_Tok] = []
    i = 0
    while i < len(src):
        m = _TOKEN.match(src, i)
        if not m:
            raise ExpressionError(f"unexpected character {src[i]!r}", i, src)
        kind = m.lastgroup or ""
        text = m.group()
        if kind == "num":
            toks.append(_Tok("lit", float(text) if "." in text else int(text), i))
        elif kind == "str":
            body = text[1:-1]
            toks.append(_Tok("lit", re.sub(r"\\(.)", lambda e: _ESCAPES.get(e.group(1), e.group(1)), body), i))
        elif kind == "name":
            if text in ("true", "false", "null"):
                toks.append(_Tok("lit", {"true": True, "false": False, "null": None}[text], i))
            elif text in _KEYWORDS:
                toks.append(_Tok("kw", text, i))
            else:
                toks.append(_Tok("name", text, i))
        elif kind == "op":
            toks.append(_Tok("op", text, i))
        i = m.end()
    toks.append(_Tok("end", None, len(src)))
    return toks


# AST nodes are tuples: ("lit", v) ("path", root, [segments...]) ("call", name, [args])
# ("not", x) ("and", a, b) ("or", a, b) ("cmp", op, a, b) ("bin", op, a, b) ("neg", x) ("list", [items])
# A path segment is ("key", str) or ("index", node).


class _Parser:
    def __init__(self, src: str):
        self.src = src
        self.toks = _tokenize(src)
        self.i = 0

    def peek(self) -> _Tok:
        return self.toks[self.i]

    def take(self) -> _Tok:
        t = self.toks[self.i]
        self.i += 1
        return t

    def expect(self, kind: str, value: Any = None) -> _Tok:
        t = self.take()
        if t.kind != kind or (value is not None and t.value != value):
            want = repr(value) if value is not None else kind
            got = "the end" if t.kind == "end" else repr(t.value)
            raise ExpressionError(f"expected {want}, found {got}", t.pos, self.src)
        return t

    def parse(self) -> tuple:
        if self.peek().kind == "end":
            raise ExpressionError("empty expression", 0, self.src)
        node = self.or_()
        t = self.peek()
        if t.kind != "end":
            raise ExpressionError(f"unexpected {t.value!r}", t.pos, self.src)
        return node

    def or_(self) -> tuple:
        node = self.and_()
        while self.peek().kind == "kw" and self.peek().value == "or":
            self.take()
            node = ("or", node, self.and_())
        return node

    def and_(self) -> tuple:
        node = self.not_()
        while self.peek().kind == "kw" and self.peek().value == "and":
            self.take()
            node = ("and", node, self.not_())
        return node

    def not_(self) -> tuple:
        if self.peek().kind == "kw" and self.peek().value == "not":
            self.take()
            return ("not", self.not_())
        return self.cmp()

    def cmp(self) -> tuple:
        left = self.sum()
        t = self.peek()
        if t.kind == "op" and t.value in ("==", "!=", "<", "<=", ">", ">="):
            self.take()
            return ("cmp", t.value, left, self.sum())
        if t.kind == "kw" and t.value == "in":
            self.take()
            return ("cmp", "in", left, self.sum())
        if t.kind == "kw" and t.value == "not" and self.toks[self.i + 1].kind == "kw" and self.toks[self.i + 1].value == "in":
            self.i += 2
            return ("not", ("cmp", "in", left, self.sum()))
        return left

    def sum(self) -> tuple:
        node = self.unary()
        while self.peek().kind == "op" and self.peek().value in ("+", "-"):
            op = self.take().value
            node = ("bin", op, node, self.unary())
        return node

    def unary(self) -> tuple:
        if self.peek().kind == "op" and self.peek().value == "-":
            self.take()
            return ("neg", self.unary())
        return self.postfix()

    def segments(self) -> list[tuple]:
        segs: list[tuple] = []
        while self.peek().kind == "op" and self.peek().value in (".", "["):
            if self.take().value == ".":
                nt = self.take()
                if nt.kind not in ("name", "kw") and not (nt.kind == "lit" and isinstance(nt.value, int)):
                    raise ExpressionError("expected a field name after '.'", nt.pos, self.src)
                segs.append(("key", str(nt.value)))
            else:
                segs.append(("index", self.or_()))
                self.expect("op", "]")
        return segs

    def postfix(self) -> tuple:
        t = self.take()
        if t.kind == "lit":
            node: tuple = ("lit", t.value)
        elif t.kind == "op" and t.value == "(":
            node = self.or_()
            self.expect("op", ")")
        elif t.kind == "op" and t.value == "[":
            items = []
            if not (self.peek().kind == "op" and self.peek().value == "]"):
                items.append(self.or_())
                while self.peek().kind == "op" and self.peek().value == ",":
                    self.take()
                    items.append(self.or_())
            self.expect("op", "]")
            node = ("list", items)
        elif t.kind == "name":
            if self.peek().kind == "op" and self.peek().value == "(":
                if t.value not in FUNCTIONS:
                    raise ExpressionError(f"unknown function {t.value!r}; known: {', '.join(sorted(FUNCTIONS))}",
                                          t.pos, self.src)
                self.take()
                args = []
                if not (self.peek().kind == "op" and self.peek().value == ")"):
                    args.append(self.or_())
                    while self.peek().kind == "op" and self.peek().value == ",":
                        self.take()
                        args.append(self.or_())
                self.expect("op", ")")
                call = ("call", t.value, args, t.pos)
                segs = self.segments()
                return ("sub", call, segs) if segs else call
            if t.value not in ROOTS:
                raise ExpressionError(f"unknown name {t.value!r}; expressions start with one of "
                                      f"{', '.join(sorted(ROOTS))} (strings need quotes)", t.pos, self.src)
            return ("path", t.value, self.segments(), t.pos)
        else:
            got = "the end" if t.kind == "end" else repr(t.value)
            raise ExpressionError(f"unexpected {got}", t.pos, self.src)
        return node


def _get(obj: Any, key: Any) -> Any:
    if isinstance(obj, Mapping):
        if key in obj:
            return obj[key]
        # dotted ECS keys stored flat ("source.ip") are reachable too
        return obj.get(str(key))
    if isinstance(obj, (list, tuple)) and isinstance(key, int) and not isinstance(key, bool):
        return obj[key] if -len(obj) <= key < len(obj) else None
    return None


def _compare(op: str, a: Any, b: Any) -> bool:
    if op == "==":
        return a == b
    if op == "!=":
        return a != b
    if op == "in":
        if b is None:
            return False
        if isinstance(b, str):
            return a is not None and str(a) in b
        return a in b
    if a is None or b is None:
        return False
    try:
        return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]
    except TypeError:
        raise ExpressionError(f"cannot compare {type(a).__name__} with {type(b).__name__} using {op}") from None


def _eval(node: tuple, ctx: Mapping[str, Any], src: str) -> Any:
    kind = node[0]
    if kind == "lit":
        return node[1]
    if kind == "path":
        cur = ctx.get(node[1])
        for seg in node[2]:
            key = seg[1] if seg[0] == "key" else _eval(seg[1], ctx, src)
            cur = _get(cur, key)
            if cur is None:
                return None
        return cur
    if kind == "sub":
        cur = _eval(node[1], ctx, src)
        for seg in node[2]:
            key = seg[1] if seg[0] == "key" else _eval(seg[1], ctx, src)
            cur = _get(cur, key)
            if cur is None:
                return None
        return cur
    if kind == "and":
        return bool(_eval(node[1], ctx, src)) and bool(_eval(node[2], ctx, src))
    if kind == "or":
        return bool(_eval(node[1], ctx, src)) or bool(_eval(node[2], ctx, src))
    if kind == "not":
        return not _eval(node[1], ctx, src)
    if kind == "cmp":
        return _compare(node[1], _eval(node[2], ctx, src), _eval(node[3], ctx, src))
    if kind == "neg":
        v = _eval(node[1], ctx, src)
        if not isinstance(v, (int, float)) or isinstance(v, bool):
            raise ExpressionError(f"cannot negate {type(v).__name__}", source=src)
        return -v
    if kind == "bin":
        a, b = _eval(node[2], ctx, src), _eval(node[3], ctx, src)
        if node[1] == "+" and (isinstance(a, str) or isinstance(b, str)):
            return f"{'' if a is None else a}{'' if b is None else b}"
        if isinstance(a, (int, float)) and isinstance(b, (int, float)):
            return a + b if node[1] == "+" else a - b
        if node[1] == "+" and isinstance(a, list) and isinstance(b, list):
            return a + b
        raise ExpressionError(f"cannot apply {node[1]} to {type(a).__name__} and {type(b).__name__}", source=src)
    if kind == "list":
        return [_eval(x, ctx, src) for x in node[1]]
    if kind == "call":
        args = [_eval(a, ctx, src) for a in node[2]]
        try:
            return FUNCTIONS[node[1]](*args)
        except ExpressionError:
            raise
        except (TypeError, ValueError) as exc:
            raise ExpressionError(f"{node[1]}() failed: {exc}", node[3], src) from None
    raise ExpressionError(f"internal: unknown node {kind}", source=src)  # pragma: no cover


def _refs(node: Any, out: list[tuple[str, list[str]]]) -> None:
    if not isinstance(node, tuple) or not node:
        return
    if node[0] == "path":
        keys = [s[1] for s in node[2] if s[0] == "key"]
        out.append((node[1], keys))
        for s in node[2]:
            if s[0] == "index":
                _refs(s[1], out)
        return
    if node[0] == "sub":
        _refs(node[1], out)
        for s in node[2]:
            if s[0] == "index":
                _refs(s[1], out)
        return
    for part in node[1:]:
        if isinstance(part, tuple):
            _refs(part, out)
        elif isinstance(part, list):
            for p in part:
                _refs(p, out)


@dataclass(slots=True)
class Expression:
    """A parsed expression; :meth:`evaluate` it as often as needed."""

    source: str
    tree: tuple
    refs: list[tuple[str, list[str]]] = field(default_factory=list)
    """Every path it reads: (root, leading keys), e.g. ("steps", ["block", "output", "ok"])."""

    def evaluate(self, ctx: Mapping[str, Any]) -> Any:
        return _eval(self.tree, ctx, self.source)

    def step_refs(self) -> set[str]:
        """Names of the steps whose results this expression reads."""
        return {keys[0] for root, keys in self.refs if root == "steps" and keys}


def compile_expression(src: str) -> Expression:
    """Parse ``src``; raises :class:`ExpressionError` naming the position of the problem."""
    if not isinstance(src, str):
        raise ExpressionError(f"an expression must be a string, not {type(src).__name__}")
    if len(src) > 4000:
        raise ExpressionError("expression longer than 4000 characters")
    tree = _Parser(src).parse()
    refs: list[tuple[str, list[str]]] = []
    _refs(tree, refs)
    return Expression(src, tree, refs)
