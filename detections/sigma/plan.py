"""Turn a pySigma rule into a *plan*: plain tuples that say what to check, nothing else.

Why a plan between pySigma and the matcher closures: a plan is data, so it pickles
(the rule cache stores plans, and a cached start needs no pySigma at all), it can be
inspected in tests, and optimisations (grouping a value list into one set lookup) are
made once, here, not in every matcher.

Plan nodes::

    ("and", (node, ...))    ("or", (node, ...))    ("not", node)    ("const", bool)
    ("f", key, spec)        a field check; key from fields.resolve_field
    ("kw", spec)            a keyword: any string value of the event

Value specs::

    ("str", mode, text, cased)     mode: eq | contains | startswith | endswith | present
    ("strs", mode, (text, ...))    several case-insensitive strings, any of them
    ("glob", regex, cased)         wildcards in the middle: an anchored regex
    ("re", pattern, flags)         the ``re`` modifier (case-sensitive unless ``i``)
    ("cidr", network)              ("num", n)    ("bool", b)    ("null",)    ("exists", b)
    ("cmp", op, n)                 lt | lte | gt | gte | neq
    ("fieldref", key, mode)        mode: eq | startswith | endswith | contains
    ("any", (spec, ...))           an expansion (windash, base64offset...): any of them
    ("ts", part, n)                minute | hour | day | week | month | year of a timestamp
"""
from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

__all__ = ["PlanError", "build_plan", "plan_fields", "PLAN_VERSION"]

PLAN_VERSION = 6
"""Bumped whenever the plan format or its meaning changes (invalidates rule caches)."""


class PlanError(ValueError):
    """A rule uses something the engine cannot match; the message says what and why."""


def _string_spec(value: Any, placeholders: Mapping[str, Sequence[str]] | None) -> tuple[Any, ...]:
    from sigma.types import Placeholder, SigmaCasedString, SpecialChars, SigmaString

    if value.contains_placeholder():
        names = sorted({p.name for p in value.s if isinstance(p, Placeholder)})
        missing = [n for n in names if not placeholders or n not in placeholders]
        if missing:
            raise PlanError(
                "unresolved placeholder " + ", ".join(f"%{n}%" for n in missing)
                + ": give its values with --placeholder NAME=VALUE[,VALUE] (or a placeholders file)"
            )

        def cb(p: Placeholder) -> Any:
            yield from (placeholders or {})[p.name]

        expanded = value.replace_placeholders(cb)
        return ("any", tuple(_string_spec(SigmaString(str(v)) if not isinstance(v, SigmaString) else v, None) for v in expanded))
    cased = isinstance(value, SigmaCasedString)
    parts = list(value.s)
    multi, single = SpecialChars.WILDCARD_MULTI, SpecialChars.WILDCARD_SINGLE
    if not parts:
        return ("str", "eq", "", cased)
    if all(p is multi for p in parts):
        return ("str", "present", "", cased)
    if single not in parts:
        inner = parts
        lead = inner[0] is multi
        trail = inner[-1] is multi
        core = inner[1 if lead else 0: len(inner) - 1 if trail else len(inner)]
        if all(isinstance(p, str) for p in core):
            text = "".join(core)
            mode = "contains" if lead and trail else "endswith" if lead else "startswith" if trail else "eq"
            return ("str", mode, text if cased else text.lower(), cased)
    rx = []
    for p in parts:
        if p is multi:
            rx.append(".*")
        elif p is single:
            rx.append(".")
        else:
            rx.append(re.escape(p if cased else p.lower()))
    return ("glob", "".join(rx), cased)


_TS_PARTS = {"MINUTE": "minute", "HOUR": "hour", "DAY": "day", "WEEK": "week", "MONTH": "month", "YEAR": "year"}


def _value_spec(value: Any, resolve: Callable[[str], str], placeholders: Mapping[str, Sequence[str]] | None) -> tuple[Any, ...]:
    from sigma import types as T

    if isinstance(value, T.SigmaString):
        return _string_spec(value, placeholders)
    if isinstance(value, T.SigmaTimestampPart):
        return ("ts", _TS_PARTS[value.timestamp_part.name], value.number)
    if isinstance(value, T.SigmaBool):
        return ("bool", bool(value.boolean))
    if isinstance(value, T.SigmaNumber):
        return ("num", value.number)
    if isinstance(value, T.SigmaNull):
        return ("null",)
    if isinstance(value, T.SigmaExists):
        return ("exists", bool(value.exists))
    if isinstance(value, T.SigmaRegularExpression):
        flags = 0
        for f in value.flags:
            flags |= T.SigmaRegularExpression.sigma_to_python_flags[f]
        if value.regexp.contains_placeholder():
            raise PlanError("placeholders inside a regular expression are not supported")
        pattern = str(value.regexp)
        try:
            re.compile(pattern, flags)
        except re.error as exc:
            raise PlanError(f"regular expression {pattern!r} does not compile in Python: {exc}") from exc
        return ("re", pattern, int(flags))
    if isinstance(value, T.SigmaCIDRExpression):
        return ("cidr", str(value.network))
    if isinstance(value, T.SigmaCompareExpression):
        return ("cmp", value.op.name.lower(), value.number.number)
    if isinstance(value, T.SigmaFieldReference):
        mode = "eq"
        if getattr(value, "starts_with", False) and getattr(value, "ends_with", False):
            mode = "contains"
        elif getattr(value, "starts_with", False):
            mode = "startswith"
        elif getattr(value, "ends_with", False):
            mode = "endswith"
        return ("fieldref", resolve(value.field), mode)
    if isinstance(value, T.SigmaExpansion):
        return ("any", tuple(_value_spec(v, resolve, placeholders) for v in value.values))
    raise PlanError(f"value type {type(value).__name__} is not supported by the streaming engine")


def _node(cond: Any, resolve: Callable[[str], str], placeholders: Mapping[str, Sequence[str]] | None) -> tuple[Any, ...]:
    from sigma.conditions import (
        ConditionAND,
        ConditionFieldEqualsValueExpression,
        ConditionNOT,
        ConditionOR,
        ConditionValueExpression,
    )

    if cond is None:
        raise PlanError("a detection is empty")
    if isinstance(cond, ConditionAND):
        return _simplify("and", tuple(_node(a, resolve, placeholders) for a in cond.args))
    if isinstance(cond, ConditionOR):
        return _simplify("or", tuple(_node(a, resolve, placeholders) for a in cond.args))
    if isinstance(cond, ConditionNOT):
        return ("not", _node(cond.args[0], resolve, placeholders))
    if isinstance(cond, ConditionFieldEqualsValueExpression):
        return ("f", resolve(cond.field), _value_spec(cond.value, resolve, placeholders))
    if isinstance(cond, ConditionValueExpression):
        spec = _value_spec(cond.value, resolve, placeholders)
        return ("kw", spec)
    raise PlanError(f"condition element {type(cond).__name__} is not supported")


def _simplify(op: str, children: tuple[tuple[Any, ...], ...]) -> tuple[Any, ...]:
    """Flatten nested and/or, and in an ``or`` merge case-insensitive string checks of one
    field and mode into one ``strs`` check (a value list becomes one set or tuple test)."""
    flat: list[tuple[Any, ...]] = []
    for c in children:
        if c[0] == op:
            flat.extend(c[1])
        else:
            flat.append(c)
    if op == "or":
        groups: dict[tuple[Any, ...], list[str]] = {}
        rest: list[tuple[Any, ...]] = []
        order: list[tuple[Any, ...]] = []
        for c in flat:
            if c[0] in ("f", "kw"):
                spec = c[-1]
                if spec[0] == "str" and not spec[3] and spec[1] in ("eq", "contains", "startswith", "endswith"):
                    gk = (c[0], c[1] if c[0] == "f" else None, spec[1])
                    if gk not in groups:
                        groups[gk] = []
                        order.append(gk)
                    groups[gk].append(spec[2])
                    continue
                if spec[0] == "strs":
                    gk = (c[0], c[1] if c[0] == "f" else None, spec[1])
                    if gk not in groups:
                        groups[gk] = []
                        order.append(gk)
                    groups[gk].extend(spec[2])
                    continue
            rest.append(c)
        merged: list[tuple[Any, ...]] = []
        for gk in order:
            texts = tuple(dict.fromkeys(groups[gk]))
            spec = ("str", gk[2], texts[0], False) if len(texts) == 1 else ("strs", gk[2], texts)
            merged.append(("f", gk[1], spec) if gk[0] == "f" else ("kw", spec))
        flat = merged + rest
    if len(flat) == 1:
        return flat[0]
    return (op, tuple(flat))


def build_plan(
    rule: Any,
    resolve: Callable[[str], str],
    placeholders: Mapping[str, Sequence[str]] | None = None,
) -> tuple[Any, ...]:
    """The plan of a pySigma ``SigmaRule``: its conditions OR-ed (Sigma allows several)."""
    try:
        trees = [c.parsed for c in rule.detection.parsed_condition]
    except Exception as exc:  # pySigma raises several types for a bad condition
        raise PlanError(f"condition cannot be parsed: {exc}") from exc
    nodes = tuple(_node(t, resolve, placeholders) for t in trees)
    return nodes[0] if len(nodes) == 1 else _simplify("or", nodes)


def plan_fields(node: tuple[Any, ...]) -> set[str]:
    """Every view key a plan reads (for tests and for explaining a rule)."""
    out: set[str] = set()
    kind = node[0]
    if kind in ("and", "or"):
        for c in node[1]:
            out |= plan_fields(c)
    elif kind == "not":
        out |= plan_fields(node[1])
    elif kind == "f":
        out.add(node[1])
        if node[2][0] == "fieldref":
            out.add(node[2][1])
    return out
