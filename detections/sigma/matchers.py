"""Plans become Python closures that check one event; the event is seen through a view.

The view (:class:`EventView`) resolves a field key once per event and remembers it, in
two forms: the raw value (for numbers, cased strings, regexes, CIDR) and a lower-cased
string form (Sigma compares case-insensitively by default, so the lower-casing is done
once per field and event, not once per rule). Every matcher is ``f(view) -> bool``.

Semantics chosen where Sigma leaves room (tests pin each):

* A field holding a list matches when any element matches.
* ``null`` matches a field that is absent, null or the empty string (Windows logs write
  an empty element where other sources omit the field).
* ``exists: true`` holds for any present, non-null value (the empty string included).
* Numbers match numerically or by their decimal text (``EventID: 4624`` matches "4624").
* Keywords (values without a field) search every string value of the event, including
  ``message`` and ``event.original`` when present.
* ``re`` is an unanchored search, case-sensitive unless the ``i`` flag is given.
"""
from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from typing import Any

import ahocorasick

from core.events import path_parts, parse_timestamp

from detections.sigma.fields import WINDOWS_EVENT_ALIASES

__all__ = ["EventView", "Matcher", "compile_plan", "MISSING"]

Matcher = Callable[["EventView"], bool]


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


def _nav(event: Mapping[str, Any], path: str) -> Any:
    """Nested lookup of a dotted path; literal dotted keys are honoured at any level."""
    if path in event:
        return event[path]
    node: Any = event
    parts = path_parts(path)
    i = 0
    n = len(parts)
    while i < n:
        if type(node) is not dict and not isinstance(node, Mapping):
            return MISSING
        part = parts[i]
        if part in node:
            node = node[part]
            i += 1
            continue
        for j in range(n, i + 1, -1):
            key = ".".join(parts[i:j])
            if key in node:
                node = node[key]
                i = j
                break
        else:
            return MISSING
    return node


def _lower(value: Any) -> Any:
    if value.__class__ is str:
        return value.lower()
    if value is MISSING or value is None:
        return None
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, (list, tuple)):
        return tuple(x for x in (_lower(v) for v in value) if isinstance(x, str))
    return None  # objects: present, but no string form to compare


class _Raw(dict):  # type: ignore[type-arg]
    __slots__ = ("view",)

    def __missing__(self, key: str) -> Any:
        v = self.view.resolve(key)
        self[key] = v
        return v


class _Low(dict):  # type: ignore[type-arg]
    __slots__ = ("view",)

    def __missing__(self, key: str) -> Any:
        v = _lower(self.view.raw[key])
        self[key] = v
        return v


class EventView:
    """One event as the matchers see it. Build one per event; it caches field lookups."""

    __slots__ = ("event", "raw", "low", "event_data", "user_data", "aliases", "_strings", "_squeezed", "_haystack")

    def __init__(self, event: Mapping[str, Any], route_key: tuple[Any, ...] | None = None):
        self.event = event
        self.raw = _Raw()
        self.raw.view = self
        self.low = _Low()
        self.low.view = self
        winlog = event.get("winlog")
        if isinstance(winlog, Mapping):
            ed = winlog.get("event_data")
            ud = winlog.get("user_data")
            self.event_data = ed if isinstance(ed, Mapping) else None
            self.user_data = ud if isinstance(ud, Mapping) else None
        else:
            self.event_data = self.user_data = None
        self.aliases = WINDOWS_EVENT_ALIASES.get(route_key[1:3]) if route_key and route_key[0] == "win" else None
        self._strings: tuple[str, ...] | None = None
        self._squeezed: dict[str, Any] | None = None
        self._haystack: str | None = None

    def resolve(self, key: str) -> Any:
        if key[0] == "@" and key != "@timestamp":  # "@Name": a Windows event-data field
            name = key[1:]
            if self.aliases and name in self.aliases:
                name = self.aliases[name]
            if self.event_data is not None and name in self.event_data:
                return self.event_data[name]
            if self.user_data is not None and name in self.user_data:
                return self.user_data[name]
            if self.event_data:
                # Some providers (Windows Defender) name fields with spaces ("Source Name");
                # Sigma rules write them without ("SourceName").
                if self._squeezed is None:
                    self._squeezed = {k.replace(" ", ""): v for k, v in self.event_data.items() if " " in k}
                if name in self._squeezed:
                    return self._squeezed[name]
            return MISSING
        if "|" in key:
            for alt in key.split("|"):
                v = _nav(self.event, alt)
                if v is not MISSING:
                    return v
            return MISSING
        return _nav(self.event, key)

    def haystack(self) -> str:
        """Every string (and number) value of the event, lower-cased, joined by NUL: the
        keyword haystack. One ``lower()`` over the joined text instead of one per value."""
        if self._haystack is None:
            out: list[str] = []
            _collect(self.event, out.append)
            self._haystack = "\x00".join(out).lower()
        return self._haystack

    def strings(self) -> tuple[str, ...]:
        """The haystack's values one by one (for keyword tests that anchor on a value)."""
        if self._strings is None:
            self._strings = tuple(self.haystack().split("\x00"))
        return self._strings


def _collect(node: Any, add: Callable[[str], None]) -> None:
    tn = type(node)
    for v in node.values() if tn is dict else node if (tn is list or tn is tuple) else node.values():
        t = type(v)
        if t is str:
            add(v)
        elif t is dict or t is list or t is tuple:
            _collect(v, add)
        elif t is int or t is float:
            add(str(v))
        elif v is None or t is bool:
            continue
        elif isinstance(v, Mapping):
            _collect(v, add)


# --- value tests: (value) -> bool on one scalar ---------------------------------------

def _str_test(mode: str, text: str) -> Callable[[str], bool]:
    if mode == "eq":
        return text.__eq__
    if mode == "contains":
        return lambda v: text in v
    if mode == "startswith":
        return lambda v: v.startswith(text)
    if mode == "endswith":
        return lambda v: v.endswith(text)
    if mode == "present":
        return lambda v: True
    raise ValueError(f"unknown string mode {mode}")


def _strs_test(mode: str, texts: tuple[str, ...]) -> Callable[[str], bool]:
    if mode == "eq":
        s = frozenset(texts)
        return s.__contains__
    if mode == "startswith":
        return lambda v: v.startswith(texts)
    if mode == "endswith":
        return lambda v: v.endswith(texts)
    if mode == "contains":
        if len(texts) <= 4:
            return lambda v: any(t in v for t in texts)
        # Many literals: one Aho-Corasick pass (builds far faster than a big regex).
        auto = ahocorasick.Automaton()
        for t in texts:
            auto.add_word(t, t)
        auto.make_automaton()
        it = auto.iter

        def contains_any(v: str) -> bool:
            for _ in it(v):
                return True
            return False

        return contains_any
    raise ValueError(f"unknown string mode {mode}")


def _on_low(key: str, test: Callable[[str], bool]) -> Matcher:
    def m(view: EventView) -> bool:
        v = view.low[key]
        if v.__class__ is str:
            return test(v)
        if v is None:
            return False
        for x in v:
            if test(x):
                return True
        return False

    return m


def _on_raw_str(key: str, test: Callable[[str], bool]) -> Matcher:
    def m(view: EventView) -> bool:
        v = view.raw[key]
        if v.__class__ is str:
            return test(v)
        if isinstance(v, (list, tuple)):
            return any(test(x) for x in v if isinstance(x, str))
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return test(str(v))
        return False

    return m


def _on_haystack(test: Callable[[str], bool]) -> Matcher:
    """For substring tests: one test over the joined haystack (values are NUL-separated
    and keyword literals never contain NUL, so no match can span two values)."""
    return lambda view: test(view.haystack())


def _on_strings(test: Callable[[str], bool]) -> Matcher:
    def m(view: EventView) -> bool:
        for s in view.strings():
            if test(s):
                return True
        return False

    return m


def _num_value(v: Any) -> float | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, (int, float)):
        return float(v)
    if isinstance(v, str):
        s = v.strip()
        try:
            return float(int(s, 16)) if s.lower().startswith("0x") else float(s)
        except ValueError:
            return None
    return None


def _any_raw(key: str, test: Callable[[Any], bool]) -> Matcher:
    def m(view: EventView) -> bool:
        v = view.raw[key]
        if isinstance(v, (list, tuple)):
            return any(test(x) for x in v)
        return test(v)

    return m


_CMP: dict[str, Callable[[float, float], bool]] = {
    "lt": lambda a, b: a < b,
    "lte": lambda a, b: a <= b,
    "gt": lambda a, b: a > b,
    "gte": lambda a, b: a >= b,
    "neq": lambda a, b: a != b,
}


def _ip(v: Any) -> Any:
    if not isinstance(v, str):
        return None
    s = v.strip()
    if s.startswith("::ffff:") and "." in s:
        s = s[7:]
    if "%" in s:
        s = s.split("%", 1)[0]
    try:
        return ipaddress.ip_address(s)
    except ValueError:
        return None


def _ts_part(part: str, v: Any) -> int | None:
    try:
        ts = parse_timestamp(v)
    except (ValueError, TypeError):
        return None
    if part == "week":
        return ts.isocalendar()[1]
    return int(getattr(ts, part))


def _lazy_regex(pattern: str, flags: int, *, full: bool) -> Callable[[str], bool]:
    """A regex test compiled on first use: most rules are never evaluated (the prefilter
    skips them), and compiling thousands of patterns up front dominated start time."""
    rx: Any = None

    def test(v: str) -> bool:
        nonlocal rx
        if rx is None:
            rx = re.compile(pattern, flags)
        return (rx.fullmatch(v) if full else rx.search(v)) is not None

    return test


def _field_matcher(key: str, spec: tuple[Any, ...]) -> Matcher:
    kind = spec[0]
    if kind == "str":
        _, mode, text, cased = spec
        if mode == "present":
            return lambda view: view.low[key] is not None or isinstance(view.raw[key], (dict, list))
        return _on_raw_str(key, _str_test(mode, text)) if cased else _on_low(key, _str_test(mode, text))
    if kind == "strs":
        return _on_low(key, _strs_test(spec[1], spec[2]))
    if kind == "glob":
        test = _lazy_regex(spec[1], re.S, full=True)
        return _on_raw_str(key, test) if spec[2] else _on_low(key, test)
    if kind == "re":
        return _on_raw_str(key, _lazy_regex(spec[1], spec[2], full=False))
    if kind == "num":
        n = spec[1]
        text = str(n)
        int_text = isinstance(n, int) and text.isdigit() and text[:1] != "0"

        def num_test(v: Any) -> bool:
            if isinstance(v, bool):
                return False
            if isinstance(v, (int, float)):
                return v == n
            if isinstance(v, str):
                if v == text:
                    return True
                if v.isdigit() and v[:1] != "0" and int_text:
                    return False  # both canonical decimal integers, and different
                f = _num_value(v)
                return f is not None and f == n
            return False

        return _any_raw(key, num_test)
    if kind == "bool":
        b = spec[1]
        target = "true" if b else "false"
        return _any_raw(key, lambda v: v is b or (isinstance(v, str) and v.lower() == target))
    if kind == "null":
        return lambda view: view.raw[key] is MISSING or view.raw[key] is None or view.raw[key] == ""
    if kind == "exists":
        want = spec[1]
        return lambda view: (view.raw[key] is not MISSING and view.raw[key] is not None) == want
    if kind == "cmp":
        op = _CMP[spec[1]]
        n = float(spec[2])

        def cmp_test(v: Any) -> bool:
            f = _num_value(v)
            return f is not None and op(f, n)

        return _any_raw(key, cmp_test)
    if kind == "cidr":
        net = ipaddress.ip_network(spec[1], strict=False)

        def cidr_test(v: Any) -> bool:
            ip = _ip(v)
            return ip is not None and ip.version == net.version and ip in net

        return _any_raw(key, cidr_test)
    if kind == "fieldref":
        other, mode = spec[1], spec[2]

        def ref(view: EventView) -> bool:
            a = view.low[key]
            b = view.low[other]
            if not isinstance(b, str):
                return False
            vals = (a,) if isinstance(a, str) else (a or ())
            for x in vals:
                if (mode == "eq" and x == b) or (mode == "startswith" and x.startswith(b)) or (
                    mode == "endswith" and x.endswith(b)
                ) or (mode == "contains" and b in x):
                    return True
            return False

        return ref
    if kind == "any":
        parts = [_field_matcher(key, s) for s in spec[1]]
        return lambda view: any(p(view) for p in parts)
    if kind == "ts":
        part, n = spec[1], spec[2]
        return _any_raw(key, lambda v: _ts_part(part, v) == n)
    raise ValueError(f"unknown value spec {kind}")


def _keyword_matcher(spec: tuple[Any, ...]) -> Matcher:
    kind = spec[0]
    if kind == "str":
        _, mode, text, cased = spec
        if cased:
            test = _str_test(mode, text)

            def cased_kw(view: EventView) -> bool:
                stack: list[Any] = [view.event]
                while stack:
                    node = stack.pop()
                    if isinstance(node, Mapping):
                        stack.extend(node.values())
                    elif isinstance(node, (list, tuple)):
                        stack.extend(node)
                    elif isinstance(node, str) and test(node):
                        return True
                return False

            return cased_kw
        if mode == "eq":  # a keyword without wildcards is a substring search, as in full-text search
            mode = "contains"
        if mode == "contains" and "\x00" not in text:
            return _on_haystack(_str_test(mode, text))
        return _on_strings(_str_test(mode, text))
    if kind == "strs":
        mode = "contains" if spec[1] == "eq" else spec[1]
        if mode == "contains" and not any("\x00" in t for t in spec[2]):
            return _on_haystack(_strs_test(mode, spec[2]))
        return _on_strings(_strs_test(mode, spec[2]))
    if kind == "glob":
        rx = re.compile(spec[1], re.S)
        return _on_strings(lambda v: rx.fullmatch(v) is not None)
    if kind == "re":
        rx = re.compile(spec[1], spec[2] | re.I)
        return _on_strings(lambda v: rx.search(v) is not None)
    if kind == "num":
        text = str(spec[1])
        return _on_strings(lambda v: text in v)
    if kind == "any":
        parts = [_keyword_matcher(s) for s in spec[1]]
        return lambda view: any(p(view) for p in parts)
    raise ValueError(f"keyword value {kind} is not supported")


def compile_plan(node: tuple[Any, ...]) -> Matcher:
    """A closure evaluating ``node`` on an :class:`EventView`."""
    kind = node[0]
    if kind == "f":
        return _field_matcher(node[1], node[2])
    if kind == "kw":
        return _keyword_matcher(node[1])
    if kind == "and":
        subs = tuple(compile_plan(c) for c in _cheap_first(node[1]))
        if len(subs) == 2:
            a, b = subs
            return lambda view: a(view) and b(view)

        def all_of(view: EventView) -> bool:
            for s in subs:
                if not s(view):
                    return False
            return True

        return all_of
    if kind == "or":
        subs = tuple(compile_plan(c) for c in _cheap_first(node[1]))
        if len(subs) == 2:
            a, b = subs
            return lambda view: a(view) or b(view)

        def any_of(view: EventView) -> bool:
            for s in subs:
                if s(view):
                    return True
            return False

        return any_of
    if kind == "not":
        inner = compile_plan(node[1])
        return lambda view: not inner(view)
    if kind == "const":
        value = bool(node[1])
        return lambda view: value
    raise ValueError(f"unknown plan node {kind}")


def _cost(node: tuple[Any, ...]) -> int:
    kind = node[0]
    if kind == "f":
        spec = node[2]
        return {"str": 1, "strs": 2, "num": 1, "bool": 1, "null": 1, "exists": 1}.get(spec[0], 5)
    if kind == "kw":
        return 20
    if kind == "not":
        return _cost(node[1]) + 1
    if kind in ("and", "or"):
        return sum(_cost(c) for c in node[1]) + 1
    return 0


def _cheap_first(children: tuple[tuple[Any, ...], ...]) -> list[tuple[Any, ...]]:
    """Order operands so cheap, selective checks run first (and/or short-circuit)."""
    return sorted(children, key=_cost)
