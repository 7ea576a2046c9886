"""Literal prefilter: skip the rules an event cannot match, with one Aho-Corasick pass per field.

Routing leaves a Sysmon process creation event facing over a thousand rules; evaluating
each costs microseconds. But nearly every rule *requires* some literals to occur in some
fields (``Image`` ends with ``\\whoami.exe`` => ``Image`` contains ``\\whoami.exe``). From a
rule's plan we derive a small CNF of such (field, literal) atoms: up to three groups that
must all hold, each holding when any of its atoms does. Per route, all atoms of one field
go into one automaton; an event's field values are scanned once and bitsets say which
rules had every group hit. Only those (plus rules with no derivable requirement) are
evaluated. The prefilter only removes rules that cannot match, so results are unchanged
(a test compares both ways over the corpora).

Derivation (``requirement``): a string check gives its literal (regexes and globs the
longest literal every match contains); ``or`` needs the union of one group per branch
(and gives nothing if a branch has none); ``and`` keeps its children's most selective
groups; ``not`` gives nothing. Values and literals are compared lower-cased, which keeps
case-sensitive checks sound too.
"""
from __future__ import annotations

from typing import Any

import ahocorasick

from detections.sigma.matchers import EventView

__all__ = ["requirement", "RouteIndex"]

Atom = tuple[str, str]


def _spec_atoms(key: str, spec: tuple[Any, ...]) -> list[Atom] | None:
    kind = spec[0]
    if kind == "str":
        _, mode, text, _cased = spec
        if mode in ("eq", "contains", "startswith", "endswith") and text:
            return [(key, text.lower())]
        return None
    if kind == "strs":
        texts = [t for t in spec[2] if t]
        return [(key, t.lower()) for t in texts] if len(texts) == len(spec[2]) else None
    if kind == "re":
        lits = regex_literals(spec[1], spec[2])
        return [(key, t) for t in lits] if lits else None
    if kind == "glob":
        lits = regex_literals(spec[1], 0)
        return [(key, t) for t in lits] if lits else None
    # Numbers give no atom: 0x10 and 16 are equal numbers but share no literal.
    if kind == "any":
        out: list[Atom] = []
        for s in spec[1]:
            sub = _spec_atoms(key, s)
            if sub is None:
                return None
            out.extend(sub)
        return out
    return None


_MIN_LITERAL = 3


def _seq_literal(items: Any) -> str | None:
    """The longest literal run that every match of this parsed sequence contains."""
    best = ""
    run: list[str] = []

    def flush() -> None:
        nonlocal best, run
        if len(run) > len(best):
            best = "".join(run)
        run = []

    for op, arg in items:
        name = str(op)
        if name == "LITERAL":
            run.append(chr(arg))
            continue
        flush()
        if name == "SUBPATTERN":
            sub = arg[-1]
            inner = _branches_literal(sub)
            if inner and len(inner) == 1 and len(inner[0]) > len(best):
                best = inner[0]
        elif name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            lo, _hi, body = arg
            if lo >= 1:
                inner = _branches_literal(body)
                if inner and len(inner) == 1 and len(inner[0]) > len(best):
                    best = inner[0]
    flush()
    return best if len(best) >= _MIN_LITERAL else None


def _branches_literal(parsed: Any) -> list[str] | None:
    """One required literal per top-level alternative, or None if some has none."""
    items = list(parsed)
    if len(items) == 1 and str(items[0][0]) == "BRANCH":
        out = []
        for branch in items[0][1][1]:
            lit = _seq_literal(list(branch))
            if lit is None:
                return None
            out.append(lit)
        return out
    lit = _seq_literal(items)
    return [lit] if lit else None


def regex_literals(pattern: str, flags: int) -> list[str] | None:
    """Lower-cased literals one of which every match of ``pattern`` contains, or None.

    Sound for the prefilter because values are lower-cased before the scan: a literal the
    regex requires (case-sensitively or not) is then present in lower case too.
    """
    try:
        import re._parser as sre_parse  # type: ignore[import-not-found]
    except ImportError:  # Python < 3.11
        import sre_parse  # type: ignore[no-redef]
    try:
        parsed = sre_parse.parse(pattern, flags)
    except Exception:
        return None
    lits = _branches_literal(parsed)
    if not lits or not all(x.isascii() for x in lits):
        return None  # Unicode case folding (e.g. long s vs s) is not worth reasoning about
    return [x.lower() for x in lits]


def _score(atoms: list[Atom]) -> float:
    """Higher is more selective: long literals, few alternatives, not the event id."""
    shortest = min(len(t) for _, t in atoms)
    penalty = 0.0 if not any(k in ("winlog.event_id", "winlog.channel", "winlog.provider_name") for k, _ in atoms) else 100.0
    return shortest * 4 - len(atoms) * 0.1 - penalty


KEYWORDS = "\x00keywords"
"""The pseudo-field of keyword atoms: scanned over every string value of the event."""


MAX_GROUPS = 3
"""At most this many AND-ed atom groups are kept per rule (the most selective ones)."""

Requirement = list[list[Atom]]
"""Groups that must *all* hold; a group holds when any of its atoms does (a small CNF)."""


def requirement(node: tuple[Any, ...]) -> Requirement | None:
    """What must be true of the event's literals whenever ``node`` matches, or None."""
    kind = node[0]
    if kind == "f":
        atoms = _spec_atoms(node[1], node[2])
        return [atoms] if atoms else None
    if kind == "kw":
        spec = node[1]
        if spec[0] == "str" and spec[3]:
            return None  # cased keyword: scanned over raw strings, keep it simple
        atoms = _spec_atoms(KEYWORDS, spec)
        return [atoms] if atoms else None
    if kind == "or":
        union: list[Atom] = []
        for c in node[1]:
            sub = requirement(c)
            if sub is None:
                return None
            union.extend(max(sub, key=_score))  # each branch's most selective group
        return [union]
    if kind == "and":
        groups: list[list[Atom]] = []
        for c in node[1]:
            sub = requirement(c)
            if sub is not None:
                groups.extend(sub)
        if not groups:
            return None
        groups.sort(key=_score, reverse=True)
        return groups[:MAX_GROUPS]
    return None


class RouteIndex:
    """The rules of one route, with per-field automatons over their required literals.

    Bookkeeping is done with big-integer bitsets: bit ``4*i + g`` stands for group ``g``
    of rule ``i``; an automaton word's payload is the mask of the groups its literal
    satisfies. Per event the hit masks are OR-ed, and a handful of shifts and ANDs give
    the rules whose every group was hit (C-speed, whatever the number of rules).

    Windows event-data fields (``@Name`` keys) are scanned by walking the event's own
    ``event_data`` (only fields the event has cost anything); other keys are resolved
    through the view.
    """

    __slots__ = ("rules", "always", "first", "need2", "need3", "at_autos", "autos", "kw_auto")

    def __init__(self, rules: tuple[Any, ...], requirements: list[Requirement | None]):
        self.rules = rules
        always = first = need2 = need3 = 0
        words: dict[str, dict[str, int]] = {}
        for i, req in enumerate(requirements):
            base = 1 << (4 * i)
            if req is None:
                always |= base
                continue
            first |= base
            if len(req) < 2:
                need2 |= base  # "group 1 not needed": treated as hit
            if len(req) < 3:
                need3 |= base
            for g, group in enumerate(req):
                bit = base << g
                for key, text in group:
                    table = words.setdefault(key, {})
                    table[text] = table.get(text, 0) | bit
        self.always, self.first, self.need2, self.need3 = always, first, need2, need3
        at_autos: dict[str, Any] = {}
        autos = []
        self.kw_auto = None
        for key, table in words.items():
            a = ahocorasick.Automaton()
            for text, mask in table.items():
                a.add_word(text, mask)
            a.make_automaton()
            if key == KEYWORDS:
                self.kw_auto = a
            elif key[0] == "@" and key != "@timestamp":
                at_autos[key[1:]] = a
            else:
                autos.append((key, a))
        self.at_autos = at_autos
        self.autos = tuple(autos)

    def candidates(self, view: EventView) -> list[Any]:
        mask = 0
        low = view.low
        at = self.at_autos
        if at:
            ed = view.event_data
            if ed is not None and view.aliases is None:
                for name, value in ed.items():
                    a = at.get(name)
                    if a is None:
                        if " " in name:
                            a = at.get(name.replace(" ", ""))
                            if a is not None and value.__class__ is str:
                                for _, m in a.iter(value.lower()):
                                    mask |= m
                        continue
                    if value.__class__ is str:
                        lv = value.lower()
                        low["@" + name] = lv
                        for _, m in a.iter(lv):
                            mask |= m
                    else:  # numbers or lists from NDJSON shippers: the view's own lower-casing
                        lvs = low["@" + name]
                        for x in ((lvs,) if lvs.__class__ is str else (lvs or ())):
                            for _, m in a.iter(x):
                                mask |= m
                ud = view.user_data
                if ud is not None:
                    for name, value in ud.items():
                        a = at.get(name)
                        if a is not None and name not in ed and value.__class__ is str:
                            for _, m in a.iter(value.lower()):
                                mask |= m
            else:
                for name, a in at.items():
                    v = low["@" + name]
                    if v is None:
                        continue
                    for x in ((v,) if v.__class__ is str else v):
                        for _, m in a.iter(x):
                            mask |= m
        for key, auto in self.autos:
            v = low[key]
            if v is None:
                continue
            if v.__class__ is str:
                for _, m in auto.iter(v):
                    mask |= m
            else:
                for x in v:
                    for _, m in auto.iter(x):
                        mask |= m
        if self.kw_auto is not None:
            for _, m in self.kw_auto.iter(view.haystack()):
                mask |= m
        full = self.always
        if mask:
            full |= mask & self.first & ((mask >> 1) | self.need2) & ((mask >> 2) | self.need3)
        rules = self.rules
        out = []
        while full:
            lowbit = full & -full
            out.append(rules[(lowbit.bit_length() - 1) >> 2])
            full ^= lowbit
        return out
