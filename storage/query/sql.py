"""Translate the query AST into a parameterized SQLite ``WHERE`` fragment.

Nothing the analyst typed is ever spliced into SQL text. Field names are checked against
:data:`storage.query.parse.FIELD_RE` and become either one of our own promoted column
names (from :data:`PROMOTED`) or a JSON path passed as a parameter
(``json_extract(doc, ?)``); values are always parameters. The only identifier the
fragment leaves open is the name of the partition's full-text table, written as
``{fts}``; the store substitutes its own generated name (:meth:`SqlFragment.bind`).

Meaning, kept equal to what Elasticsearch does with ECS mappings, so one contract suite
passes on both stores:

* ``field:value`` is exact and case-sensitive (keyword semantics). It matches a scalar
  equal to the value, or any element of an array. ``port:22`` matches the number 22 and
  the string ``"22"``; ``flag:true`` matches JSON ``true``.
* ``message`` and ``event.original`` are full-text fields: ``message:word`` and
  ``message:"a phrase"`` use the FTS5 index, like a ``match`` query on a text field.
* Bare words and phrases are free text over ``message`` and ``event.original``.
* Wildcards become ``GLOB`` (case-sensitive, like a keyword wildcard query), with
  ``[``, ``*``, ``?`` escaped so only the analyst's wildcards are wild.
* Host names (:data:`storage.query.ast.CASELESS_FIELDS`: ``host.name``...) match in any
  case, in terms and wildcards: ``host.name:cam-*`` finds ``CAM-Q7-0001``.
* Ranges compare numerically when the bounds are numbers, as text otherwise; on
  ``@timestamp`` bounds are ISO dates, epoch numbers or date math (``now-1h``,
  ``2024-01-01||+1d``, ``now/d``).
* Fields whose last part is ``ip`` (``source.ip``, ``related.ip``...) are addresses, as
  in the ECS mapping: ``source.ip:10.0.0.0/8`` is a CIDR match and ranges compare
  addresses, not text (``10.0.0.9`` < ``10.0.0.10``). These use SQL functions that
  :func:`register_functions` adds to a connection.
* ``NOT x`` matches every event that ``x`` does not match, including events without the
  field (SQL's NULL logic is folded to false first).

Example::

    frag = compile_query(parse_query("host.name:cam-* AND NOT event.outcome:success"))
    frag.where   # '((lower(host_name) GLOB ? OR (host_name = ? AND EXISTS (...))) AND NOT coalesce(...))'
    frag.params  # ('cam-*', '\x1f*multi*', '$."host"."name"', 'cam-*', ...)
"""
from __future__ import annotations

import calendar
import datetime as _dt
import functools
import ipaddress
import re
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from core.events import TimestampError, parse_timestamp, to_utc_iso
from core.protocols import QueryError
from storage.query import ast
from storage.query.parse import FIELD_RE

__all__ = [
    "Column",
    "PROMOTED",
    "TEXT_FIELDS",
    "MULTI",
    "SqlFragment",
    "compile_query",
    "json_path",
    "resolve_datemath",
    "DateRangeError",
    "lucene_wildcard_to_glob",
    "register_functions",
    "is_ip_field",
    "epoch_ms",
]


@dataclass(frozen=True, slots=True)
class Column:
    """A promoted ECS field: its SQL column name and how its values compare."""

    name: str
    kind: Literal["text", "int", "ts"]


PROMOTED: dict[str, Column] = {
    "@timestamp": Column("ts", "ts"),
    "event.dataset": Column("event_dataset", "text"),
    "event.category": Column("event_category", "text"),
    "event.action": Column("event_action", "text"),
    "event.outcome": Column("event_outcome", "text"),
    "host.name": Column("host_name", "text"),
    "host.ip": Column("host_ip", "text"),
    "source.ip": Column("source_ip", "text"),
    "destination.ip": Column("destination_ip", "text"),
    "destination.port": Column("destination_port", "int"),
    "user.name": Column("user_name", "text"),
    "citysoc.asset.id": Column("asset_id", "text"),
    "citysoc.center": Column("center", "text"),
    "log.level": Column("log_level", "text"),
}
"""ECS fields stored in their own indexed column (filtered and aggregated most often).

``@timestamp`` is stored as epoch milliseconds. Every other field is read from the
JSON document.
"""

TEXT_FIELDS: dict[str, str] = {"message": "message", "event.original": "original"}
"""Full-text fields and the FTS5 column that indexes each."""

MULTI = "\x1f*multi*"
"""Stored in a promoted column when the document holds several values (an array);
queries then check the JSON array itself for those rows."""

_INT_RE = re.compile(r"^[+-]?\d{1,18}$")
_FLOAT_RE = re.compile(r"^[+-]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?$")


def _number(value: str) -> int | float | None:
    if _INT_RE.match(value):
        return int(value)
    if _FLOAT_RE.match(value):
        f = float(value)
        return f if f == f and f not in (float("inf"), float("-inf")) else None
    return None


def json_path(field: str) -> str:
    """The SQLite JSON path of an ECS dotted field: ``host.name`` -> ``$."host"."name"``."""
    if not FIELD_RE.match(field):
        raise QueryError(f"invalid field name {field!r}")
    return "$" + "".join(f'."{part}"' for part in field.split("."))


@dataclass(frozen=True, slots=True)
class SqlFragment:
    """A ``WHERE`` condition with ``?`` parameters; ``{fts}`` names the FTS5 table."""

    where: str
    params: tuple[Any, ...]
    uses_fts: bool = False

    def bind(self, fts_table: str, ev_table: str | None = None) -> str:
        """The condition for one partition, whose full-text table is ``fts_table`` and
        whose event table is ``ev_table`` (needed when compiled with ``intersect``).

        Both must be the store's own generated identifiers.
        """
        for name in (fts_table, ev_table):
            if name is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
                raise ValueError(f"not an identifier: {name!r}")
        if "{ev}" in self.where and ev_table is None:
            raise ValueError("this fragment reads the event table: pass ev_table")
        where = self.where.replace("{fts}", fts_table)
        return where.replace("{ev}", ev_table) if ev_table else where


def compile_query(
    node: ast.Node,
    *,
    now: _dt.datetime | None = None,
    columns: Mapping[str, Column] = PROMOTED,
    tokenizer: str = "unicode61",
    multi_columns: frozenset[str] | None = None,
    intersect: bool = False,
) -> SqlFragment:
    """Compile ``node`` into a :class:`SqlFragment` over a partition table.

    The table must have the :data:`PROMOTED` columns, ``id`` (the rowid also used by the
    FTS table) and ``doc`` (the JSON document). ``now`` anchors date math (default: the
    current UTC time). ``tokenizer`` is the FTS5 tokenizer of the store (``unicode61``
    or ``trigram``): trigram cannot match terms shorter than three characters, so those
    fall back to a scan. ``multi_columns`` names the promoted columns that hold
    :data:`MULTI` markers in this partition (None: assume all may); leaving the others
    out lets SQLite walk their ``(column, ts)`` index in time order with no sort.
    ``intersect`` (for counts and aggregations, with ``multi_columns`` given): several
    equality conditions on promoted columns under one AND become an ``INTERSECT`` of
    index-only id lists, instead of one index plus a table lookup per candidate row
    (SQLite has no index intersection of its own). Not for fetching hits in time order,
    where walking one ``(column, ts)`` index and stopping at the limit is cheaper.
    """
    c = _Compiler(now or _dt.datetime.now(_dt.timezone.utc), columns, tokenizer, multi_columns)
    c.intersect = intersect and multi_columns is not None
    where = c.node(node)
    return SqlFragment(where, tuple(c.params), c.uses_fts)


class _Compiler:
    def __init__(
        self, now: _dt.datetime, columns: Mapping[str, Column], tokenizer: str, multi_columns: frozenset[str] | None
    ):
        self.multi_columns = multi_columns
        self.intersect = False
        self.now = now
        self.columns = columns
        self.tokenizer = tokenizer
        self.params: list[Any] = []
        self.uses_fts = False

    def p(self, value: Any) -> str:
        self.params.append(value)
        return "?"

    # -- tree -------------------------------------------------------------------------
    def node(self, n: ast.Node) -> str:
        if isinstance(n, ast.MatchAll):
            return "1"
        if isinstance(n, (ast.And, ast.Or)):
            return self.boolean(n)
        if isinstance(n, ast.Not):
            return f"NOT coalesce({self.node(n.child)}, 0)"
        if isinstance(n, ast.Exists):
            return self.exists(n.field)
        if isinstance(n, (ast.Term, ast.Phrase)):
            if n.field is None or n.field in TEXT_FIELDS:
                return self.fulltext(n.field, n.value, phrase=isinstance(n, ast.Phrase))
            return self.term(n.field, n.value)
        if isinstance(n, ast.Wildcard):
            if n.field is None or n.field in TEXT_FIELDS:
                return self.fulltext_wildcard(n.field, n.pattern)
            return self.wildcard(n.field, n.pattern)
        if isinstance(n, ast.Range):
            return self.range(n)
        raise QueryError(f"unsupported query node {type(n).__name__}")

    # -- field access -------------------------------------------------------------------
    def _field(self, field: str) -> tuple[Column | None, str]:
        if not FIELD_RE.match(field):
            raise QueryError(f"invalid field name {field!r}: use letters, digits, '_', '@' and dots")
        return self.columns.get(field), json_path(field)

    def _render(self, template: str, x_sql: str, x_params: list[Any], args: list[Any]) -> str:
        """Fill ``template``: each ``{x}`` becomes ``x_sql`` (with its own parameters) and
        each ``?`` takes the next of ``args``, keeping parameters in textual order."""
        out: list[str] = []
        it = iter(args)
        for i, piece in enumerate(template.split("{x}")):
            if i:
                out.append(x_sql)
                self.params.extend(x_params)
            for j, chunk in enumerate(piece.split("?")):
                if j:
                    out.append("?")
                    self.params.append(next(it))
                out.append(chunk)
        return "".join(out)

    def _json_pred(self, path: str, op: str, args: list[Any]) -> str:
        """``op`` (SQL with ``{x}`` for the value and ``?`` for args) on a JSON field,
        true when the scalar matches or any element of an array does."""
        scalar = self._render(op, "json_extract(doc, ?)", [path], args)
        arr = self.p(path)
        element = self._render(op, "value", [], args)
        return f"({scalar} OR EXISTS (SELECT 1 FROM json_each(doc, {arr}) WHERE {element}))"

    def _column_pred(self, col: Column, path: str, op: str, args: list[Any]) -> str:
        direct = self._render(op, col.name, [], args)
        if self.multi_columns is not None and col.name not in self.multi_columns:
            return direct
        multi = self.p(MULTI)
        arr = self.p(path)
        element = self._render(op, "value", [], args)
        return f"({direct} OR ({col.name} = {multi} AND EXISTS (SELECT 1 FROM json_each(doc, {arr}) WHERE {element})))"

    # -- leaves -------------------------------------------------------------------------
    def exists(self, field: str) -> str:
        col, path = self._field(field)
        if field in TEXT_FIELDS or col is None:
            return f"coalesce(json_type(doc, {self.p(path)}), 'null') != 'null'"
        return f"{col.name} IS NOT NULL"

    def term(self, field: str, value: str) -> str:
        col, path = self._field(field)
        num = _number(value)
        if col is not None and col.kind == "ts":
            return f"ts = {self.p(self._epoch_ms(value, field))}"
        if is_ip_field(field) and "/" in value:
            try:
                ipaddress.ip_network(value, strict=False)
            except ValueError:
                raise QueryError(f"{field}: {value!r} is not an address block: write e.g. 10.0.0.0/8") from None
            if col is not None:
                return self._column_pred(col, path, "citysoc_cidr({x}, ?)", [value])
            return self._json_pred(path, "citysoc_cidr({x}, ?)", [value])
        if col is not None and col.kind == "int":
            if num is None:
                return "0"  # an integer column holds no such value
            return self._column_pred(col, path, "{x} = ?", [num])
        if field in ast.CASELESS_FIELDS:  # host names: any case (see ast.CASELESS_FIELDS)
            # As written, lower case or upper case (how devices write their names): an IN list
            # keeps the column index; a mixed-case stored name matches only as written.
            variants = list(dict.fromkeys((value, value.lower(), value.upper())))
            marks = ", ".join("?" * len(variants))
            if col is not None:
                return self._column_pred(col, path, f"{{x}} IN ({marks})", variants)
            return self._json_pred(path, f"{{x}} IN ({marks})", variants)
        if col is not None:
            return self._column_pred(col, path, "{x} = ?", [value])
        if value in ("true", "false"):
            scalar = f"json_type(doc, {self.p(path)}) = {self.p(value)}"
            element = f"EXISTS (SELECT 1 FROM json_each(doc, {self.p(path)}) WHERE type = {self.p(value)})"
            return f"({scalar} OR {element})"
        if num is not None:
            return self._json_pred(path, "({x} = ? OR {x} = ?)", [value, num])
        return self._json_pred(path, "{x} = ?", [value])

    def wildcard(self, field: str, pattern: str) -> str:
        col, path = self._field(field)
        glob = lucene_wildcard_to_glob(pattern)
        if col is not None and col.kind == "ts":
            raise QueryError("wildcards do not apply to @timestamp: use a range, e.g. @timestamp:[now-1h TO now]")
        if col is not None and col.kind == "int":
            return self._column_pred(col, path, "CAST({x} AS TEXT) GLOB ?", [glob])
        if field in ast.CASELESS_FIELDS:  # host names: any case; lower() of an escape like [*] is itself
            if col is not None:
                return self._column_pred(col, path, "lower({x}) GLOB ?", [glob.lower()])
            return self._json_pred(path, "(typeof({x}) = 'text' AND lower({x}) GLOB ?)", [glob.lower()])
        if col is not None:
            return self._column_pred(col, path, "{x} GLOB ?", [glob])
        return self._json_pred(path, "(typeof({x}) = 'text' AND {x} GLOB ?)", [glob])

    def range(self, n: ast.Range) -> str:
        col, path = self._field(n.field)
        lo_op = ">=" if n.include_low else ">"
        hi_op = "<=" if n.include_high else "<"
        if col is not None and col.kind == "ts":
            parts = []
            if n.low is not None:
                parts.append(f"ts {lo_op} {self.p(self._epoch_ms(n.low, n.field, round_up=not n.include_low))}")
            if n.high is not None:
                parts.append(f"ts {hi_op} {self.p(self._epoch_ms(n.high, n.field, round_up=n.include_high))}")
            return "(" + " AND ".join(parts) + ")"
        bounds = [b for b in (n.low, n.high) if b is not None]
        if is_ip_field(n.field) and all(_ip_key(b) is not None for b in bounds):
            ip_ops: list[str] = []
            keys = []
            if n.low is not None:
                ip_ops.append(f"citysoc_ip_key({{x}}) {lo_op} ?")
                keys.append(_ip_key(n.low))
            if n.high is not None:
                ip_ops.append(f"citysoc_ip_key({{x}}) {hi_op} ?")
                keys.append(_ip_key(n.high))
            if col is not None:
                return self._column_pred(col, path, "(" + " AND ".join(ip_ops) + ")", keys)
            return self._json_pred(path, "(" + " AND ".join(ip_ops) + ")", keys)
        numeric = all(_number(b) is not None for b in bounds)
        conv: list[Any] = []
        ops: list[str] = []
        for bound, op, up in ((n.low, lo_op, not n.include_low), (n.high, hi_op, n.include_high)):
            if bound is None:
                continue
            if numeric:
                conv.append(_number(bound))
            elif _is_datemath(bound):
                conv.append(to_utc_iso(self._datemath(bound, n.field, round_up=up)))
            else:
                conv.append(bound)
            ops.append(f"{{x}} {op} ?")
        cond = " AND ".join(ops)
        if col is not None and col.kind == "int":
            if not numeric:
                raise QueryError(f"{n.field} holds numbers: give numeric range bounds")
            return self._column_pred(col, path, f"({cond})", conv)
        if col is not None:  # a TEXT column: compare as text, skipping multi-value markers
            text_bounds = [b for b in (n.low, n.high) if b is not None]
            text_args = [to_utc_iso(self._datemath(b, n.field)) if _is_datemath(b) else b for b in text_bounds]
            return self._column_pred(col, path, f"({cond} AND {{x}} != ?)", [*text_args, MULTI])
        guard = "typeof({x}) IN ('integer', 'real')" if numeric else "typeof({x}) = 'text'"
        return self._json_pred(path, f"({guard} AND {cond})", conv)

    # -- full text ----------------------------------------------------------------------
    def _fts_expr(self, n: ast.Node) -> str | None:
        """The FTS5 expression for a full-text leaf, or None when it needs a scan."""
        if not isinstance(n, (ast.Term, ast.Phrase, ast.Wildcard)) or not (n.field is None or n.field in TEXT_FIELDS):
            return None
        fts_col = TEXT_FIELDS.get(n.field) if n.field else None
        if isinstance(n, ast.Wildcard):
            m = re.fullmatch(r"([^\W_]+)\*", n.pattern)
            if not (m and self.tokenizer == "unicode61"):
                return None
            expr = f'"{m.group(1)}" *'
        else:
            if not n.value.strip() or (self.tokenizer == "trigram" and len(n.value) < 3):
                return None
            expr = '"' + n.value.replace('"', '""') + '"'
        return f"{fts_col} : {expr}" if fts_col else expr

    def _match(self, expr: str) -> str:
        self.uses_fts = True
        return f"id IN (SELECT rowid FROM {{fts}} WHERE {{fts}} MATCH {self.p(expr)})"

    def boolean(self, n: ast.And | ast.Or) -> str:
        """AND/OR; full-text children are merged into one FTS5 query (one index walk)."""
        op = " AND " if isinstance(n, ast.And) else " OR "
        fts = [e for e in (self._fts_expr(c) for c in n.children) if e is not None]
        parts: list[str] = []
        if len(fts) >= 2:
            parts.append(self._match(op.join(f"({e})" for e in fts)))
            rest = [c for c in n.children if self._fts_expr(c) is None]
        else:
            rest = list(n.children)
        if self.intersect and isinstance(n, ast.And):
            eq = [c for c in rest if self._plain_equality(c)]
            if len(eq) >= 2:
                selects = " INTERSECT ".join(f"SELECT id FROM {{ev}} WHERE {self.node(c)}" for c in eq)
                parts.append(f"id IN ({selects})")
                rest = [c for c in rest if not self._plain_equality(c)]
        parts.extend(self.node(c) for c in rest)
        return "(" + op.join(parts) + ")"

    def _plain_equality(self, n: ast.Node) -> bool:
        """``column = ?`` on a promoted column with no arrays in this partition."""
        if not isinstance(n, (ast.Term, ast.Phrase)) or n.field is None:
            return False
        col = self.columns.get(n.field)
        if col is None or col.kind == "ts" or self.multi_columns is None or col.name in self.multi_columns:
            return False
        if col.kind == "int":
            return _number(n.value) is not None
        return not (is_ip_field(n.field) and "/" in n.value)

    def fulltext(self, field: str | None, value: str, *, phrase: bool) -> str:
        if not value.strip():
            return "0"
        node = ast.Phrase(field, value) if phrase else ast.Term(field, value)
        expr = self._fts_expr(node)
        if expr is None:  # trigram cannot index fewer than three characters
            return self._scan_like(field, "%" + _like_escape(value) + "%")
        return self._match(expr)

    def fulltext_wildcard(self, field: str | None, pattern: str) -> str:
        expr = self._fts_expr(ast.Wildcard(field, pattern))
        if expr is None:
            return self._scan_like(field, _lucene_wildcard_to_like(pattern))
        return self._match(expr)

    def _scan_like(self, field: str | None, like: str) -> str:
        fields = [field] if field else list(TEXT_FIELDS)
        parts = [f"json_extract(doc, {self.p(json_path(f))}) LIKE {self.p(like)} ESCAPE '\\'" for f in fields]
        return "(" + " OR ".join(parts) + ")"

    # -- time ---------------------------------------------------------------------------
    def _datemath(self, value: str, field: str, round_up: bool = False) -> _dt.datetime:
        try:
            return resolve_datemath(value, self.now, round_up=round_up)
        except DateRangeError as exc:
            raise QueryError(f"{field}: {value!r} is outside the dates citysoc can represent (years 1-9999); "
                             "use a smaller offset, e.g. now-30d") from exc

    def _epoch_ms(self, value: str, field: str, round_up: bool = False) -> int:
        try:
            ts = resolve_datemath(value, self.now, round_up=round_up)
        except (DateRangeError, OverflowError) as exc:  # now-9999999999d: before year 1 (or after 9999)
            raise QueryError(f"{field}: {value!r} is outside the dates citysoc can represent (years 1-9999); "
                             "use a smaller offset, e.g. now-30d") from exc
        except (TimestampError, ValueError) as exc:
            raise QueryError(
                f"{field}: {value!r} is not a date: use ISO 8601 (2024-05-01T10:00:00Z), epoch millis or now-1h"
            ) from exc
        return epoch_ms(ts)


_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)
_ONE_MS = _dt.timedelta(milliseconds=1)


def epoch_ms(ts: _dt.datetime) -> int:
    """Milliseconds since the epoch, in integers (no float rounding); naive means UTC."""
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=_dt.timezone.utc)
    return (ts - _EPOCH) // _ONE_MS


def is_ip_field(field: str) -> bool:
    """ECS address fields: the last part of the name is ``ip``."""
    return field == "ip" or field.endswith(".ip")


def _ip_key(value: object) -> bytes | None:
    """16 bytes that sort like the address (IPv4 as IPv4-mapped IPv6), or None."""
    if not isinstance(value, str):
        return None
    try:
        ip = ipaddress.ip_address(value.strip())
    except ValueError:
        return None
    if ip.version == 4:
        return b"\x00" * 10 + b"\xff\xff" + ip.packed
    return ip.packed


@functools.lru_cache(maxsize=256)
def _network(cidr: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        return ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        return None


def _cidr_match(value: object, cidr: str) -> int:
    if not isinstance(value, str):
        return 0
    net = _network(cidr)
    try:
        ip = ipaddress.ip_address(value.strip())
    except ValueError:
        return 0
    return int(net is not None and ip.version == net.version and ip in net)


def register_functions(conn: sqlite3.Connection) -> None:
    """Add the SQL functions compiled queries may call (address matching) to ``conn``."""
    conn.create_function("citysoc_cidr", 2, _cidr_match, deterministic=True)
    conn.create_function("citysoc_ip_key", 1, _ip_key, deterministic=True)


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _iter_wildcard(pattern: str):
    """Yield ('lit', ch) / ('any', '*') / ('one', '?') from a Lucene wildcard pattern."""
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            yield "lit", pattern[i + 1]
            i += 2
            continue
        if ch == "*":
            yield "any", ch
        elif ch == "?":
            yield "one", ch
        else:
            yield "lit", ch
        i += 1


def lucene_wildcard_to_glob(pattern: str) -> str:
    """``cam-\\*x*`` -> ``cam-[*]x*``: only unescaped ``*``/``?`` stay wild."""
    out = []
    for kind, ch in _iter_wildcard(pattern):
        if kind == "any":
            out.append("*")
        elif kind == "one":
            out.append("?")
        elif ch in "*?[":
            out.append(f"[{ch}]")
        else:
            out.append(ch)
    return "".join(out)


def _lucene_wildcard_to_like(pattern: str) -> str:
    out = ["%"]
    for kind, ch in _iter_wildcard(pattern):
        out.append("%" if kind == "any" else "_" if kind == "one" else _like_escape(ch))
    out.append("%")
    return "".join(out)


_DATEMATH_RE = re.compile(r"^(?P<anchor>now|.+?\|\|)(?P<ops>(?:[+-]\d+[yMwdhHms])*)(?:/(?P<round>[yMwdhHms]))?$")
_OP_RE = re.compile(r"([+-])(\d+)([yMwdhHms])")


class DateRangeError(ValueError):
    """Date math that leaves the years 1-9999 (``now-9999999999d``). A ``ValueError``, so
    callers that skip unusable bounds keep skipping; the compiler turns it into a
    :class:`QueryError` (400)."""


def _is_datemath(text: str) -> bool:
    return text.startswith("now") or "||" in text


def resolve_datemath(text: str, now: _dt.datetime, *, round_up: bool = False) -> _dt.datetime:
    """Resolve ``now-1h``, ``now/d``, ``2024-05-01||+1M/d`` or a plain date to UTC.

    Units as Elasticsearch: y M w d h H m s. Rounding (``/d``) goes down, or up to the
    last millisecond of the unit when ``round_up`` (used for ``<=`` and ``>`` bounds,
    as Elasticsearch does).
    """
    text = text.strip()
    m = _DATEMATH_RE.match(text)
    if not m:
        return parse_timestamp(text)
    anchor = m.group("anchor")
    ts = now if anchor == "now" else parse_timestamp(anchor[:-2])
    ts = ts.astimezone(_dt.timezone.utc) if ts.tzinfo else ts.replace(tzinfo=_dt.timezone.utc)
    try:
        for sign, num, unit in _OP_RE.findall(m.group("ops") or ""):
            if len(num) > 9:
                raise OverflowError
            ts = _shift(ts, int(num) * (1 if sign == "+" else -1), unit)
        unit = m.group("round")
        if unit:
            floor = _floor(ts, unit)
            ts = _shift(floor, 1, unit) - _dt.timedelta(milliseconds=1) if round_up else floor
    except (OverflowError, ValueError) as exc:
        # ``now-9999999999d``: past year 1 or 9999; one error type for callers (QueryError
        # 400 in the stores, skipped by partition pruning), never a 500.
        raise DateRangeError(f"date math {text[:80]!r} leaves the representable range (years 1-9999)") from exc
    return ts


def _shift(ts: _dt.datetime, n: int, unit: str) -> _dt.datetime:
    if unit in "yM":
        months = n * 12 if unit == "y" else n
        total = ts.year * 12 + (ts.month - 1) + months
        year, month = divmod(total, 12)
        day = min(ts.day, calendar.monthrange(year, month + 1)[1])
        return ts.replace(year=year, month=month + 1, day=day)
    seconds = {"w": 604800, "d": 86400, "h": 3600, "H": 3600, "m": 60, "s": 1}[unit]
    return ts + _dt.timedelta(seconds=n * seconds)


def _floor(ts: _dt.datetime, unit: str) -> _dt.datetime:
    if unit == "y":
        return ts.replace(month=1, day=1, hour=0, minute=0, second=0, microsecond=0)
    if unit == "M":
        return ts.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    if unit == "w":
        day = ts.replace(hour=0, minute=0, second=0, microsecond=0)
        return day - _dt.timedelta(days=day.weekday())
    if unit == "d":
        return ts.replace(hour=0, minute=0, second=0, microsecond=0)
    if unit in "hH":
        return ts.replace(minute=0, second=0, microsecond=0)
    if unit == "m":
        return ts.replace(second=0, microsecond=0)
    return ts.replace(microsecond=0)
