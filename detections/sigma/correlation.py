"""Sigma correlation rules, in the stream: event_count, value_count, temporal, temporal_ordered.

A correlation rule watches the matches of the rules it references, keyed by its
``group-by`` fields, within a sliding ``timespan``. Time is the events' own
``@timestamp`` (so an offline hunt over old files correlates as the events happened).

State is bounded twice: each correlation keeps at most ``max_groups`` group keys, and
each group keeps only what its condition can need (timestamps inside the window; at most ``max_values`` distinct
values). When a correlation fires, its group's state is cleared so one burst gives one
detection, not one per further event.

Conditions ``gt``/``gte``/``eq`` are natural in a stream; ``lt``/``lte``/``neq`` are
checked, like the others, when a referenced rule matches (an absence of events cannot
be seen without a timer: that is the scheduled engine's job).

**An attacker cannot flush the state.** Group keys come from log content (a spoofed
source address per line costs nothing), so a plain LRU would let 10,000 forged sources
push a real brute force out of the window before it fires. When a correlation is full,
the victim is chosen among the ``_EVICT_SAMPLE`` least recently touched groups as the one
*furthest from firing* (fewest events, values or chain steps; the oldest of equals), so
groups close to their threshold stay. Every eviction is counted (``evicted``) and, at most
once per ``timespan`` of event time, the correlation raises an ``overflow`` detection
(level medium, ``extra.overflow``): the analyst learns that the state was under pressure
instead of silently missing an attack.
"""
from __future__ import annotations

import datetime as _dt
from collections import OrderedDict, deque
from itertools import islice
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from core.detectors import IdleSweep
from core.events import event_seconds
from core.protocols import Detection

__all__ = ["CorrelationSpec", "CorrelationState", "CORRELATION_TYPES"]

CORRELATION_TYPES = ("event_count", "value_count", "temporal", "temporal_ordered")

_EVICT_SAMPLE = 64
"""How many of the least recently touched groups are weighed when one must go."""

_OPS: dict[str, Callable[[int, int], bool]] = {
    "gt": lambda a, b: a > b,
    "gte": lambda a, b: a >= b,
    "lt": lambda a, b: a < b,
    "lte": lambda a, b: a <= b,
    "eq": lambda a, b: a == b,
    "neq": lambda a, b: a != b,
}


@dataclass
class CorrelationSpec:
    """What a correlation rule says, as plain data (picklable, no pySigma objects)."""

    type: str
    rules: list[str]
    """References (id or name) of the rules whose matches are correlated, in order."""
    timespan: float
    group_by: list[str] = field(default_factory=list)
    op: str = "gte"
    count: int = 1
    value_field: str | None = None
    aliases: dict[str, dict[str, str]] = field(default_factory=dict)
    """alias -> {rule reference -> that rule's field name}."""
    generate: bool = False


def _ts(event: dict[str, Any]) -> float:
    """The event's epoch seconds as the edge carries it; the wall clock if it has none."""
    t = event_seconds(event)
    return _dt.datetime.now(_dt.timezone.utc).timestamp() if t is None else t


class CorrelationState:
    """The live state of one correlation rule. ``feed`` is called on each referenced match."""

    def __init__(
        self,
        rule_id: str,
        title: str,
        level: str,
        tags: list[str],
        spec: CorrelationSpec,
        *,
        max_groups: int = 10_000,
        max_values: int = 10_000,
        max_events: int = 20,
        description: str = "",
    ):
        self.rule_id = rule_id
        self.title = title
        self.level = level
        self.tags = tags
        self.spec = spec
        self.max_groups = max_groups
        self.max_values = max_values
        self.max_events = max_events
        self.description = description
        self.groups: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
        self.evicted = 0
        self._sweep = IdleSweep()
        self._overflow_reported_at: float | None = None
        self._evicted_since_report = 0
        self._pending_overflow: Detection | None = None
        self._op = _OPS[spec.op]
        self.order = {ref: i for i, ref in enumerate(spec.rules)}

    def group_key(self, ref: str, value_of: Callable[[str], Any]) -> tuple[Any, ...]:
        """The group a match of ``ref`` feeds: its ``group-by`` values (aliases resolved per
        rule). Also what the server routes by when correlations run in detector processes."""
        out = []
        for name in self.spec.group_by:
            alias = self.spec.aliases.get(name)
            fname = alias.get(ref, name) if alias else name
            v = value_of(fname)
            if isinstance(v, list):
                v = tuple(v)
            out.append(v)
        return tuple(out)

    def _state(self, key: tuple[Any, ...], factory: Callable[[], Any], now: float | None = None) -> Any:
        st = self.groups.get(key)
        if st is None:
            if len(self.groups) >= self.max_groups:
                self._evict_one(now)
            st = factory()
            self.groups[key] = st
        else:
            self.groups.move_to_end(key)
        return st

    @staticmethod
    def _progress(st: Any) -> int:
        """How close a group is to firing: events, distinct values or completed steps held."""
        if isinstance(st, dict) and st and all(isinstance(k, int) for k in st):
            return max(st) + 1  # temporal_ordered chain: furthest completed step
        return len(st)

    def _evict_one(self, now: float | None) -> None:
        sample = list(islice(self.groups.items(), _EVICT_SAMPLE))
        victim = min(sample, key=lambda kv: self._progress(kv[1]))[0]  # min keeps the oldest of equals
        del self.groups[victim]
        self.evicted += 1
        self._evicted_since_report += 1
        t = now if now is not None else _dt.datetime.now(_dt.timezone.utc).timestamp()
        if self._overflow_reported_at is None or t - self._overflow_reported_at >= self.spec.timespan:
            self._overflow_reported_at = t
            self._pending_overflow = Detection(
                rule_id=self.rule_id,
                title=f"Correlation state full: {self.title}",
                level="medium",
                events=[],
                tags=list(self.tags),
                engine="sigma-correlation",
                description=(f"More than {self.max_groups} groups were open at once; {self._evicted_since_report} "
                             "groups furthest from firing were dropped. Many distinct sources in a short time "
                             "(a flood or spoofed addresses) can hide a real attack: look at the sources."),
                group_key="overflow",
                extra={"correlation": self.spec.type, "overflow": True, "evicted": self._evicted_since_report,
                       "evicted_total": self.evicted, "max_groups": self.max_groups},
            )
            self._evicted_since_report = 0

    def take_overflow(self) -> Detection | None:
        """The overflow detection raised since the last call, if any (at most one per timespan)."""
        det, self._pending_overflow = self._pending_overflow, None
        return det

    @property
    def expired(self) -> int:
        """Groups dropped for being idle (:meth:`_expire_idle`), not pushed out."""
        return self._sweep.expired

    def _expire_idle(self, now: float) -> None:
        """Drop the groups idle for two timespans of event time (:class:`core.detectors.IdleSweep`).

        A group whose newest entry is older than the window holds nothing its next event
        would keep, so dropping it changes no result; two timespans leave room for events
        that arrive up to one timespan late. Without it every source that failed one
        login kept its group (and its sample event) until 10,000 others pushed it out."""
        self._sweep(self.groups, now, 2 * self.spec.timespan, _newest_entry)

    def feed(self, ref: str, event: dict[str, Any], value_of: Callable[[str], Any],
             owns: Callable[[tuple[Any, ...]], bool] | None = None) -> Detection | None:
        """One event matched the referenced rule ``ref``; return a detection if it completes.

        ``owns``: in a detector process (``core.detector_processes``), whether this process
        keeps the group's state; a group it does not own is another process's business."""
        spec = self.spec
        key = self.group_key(ref, value_of)
        if owns is not None and not owns(key):
            return None
        now = _ts(event)
        self._expire_idle(now)
        horizon = now - spec.timespan
        if spec.type == "event_count":
            st: deque[tuple[float, dict[str, Any]]] = self._state(key, deque, now)
            st.append((now, event))
            while st and st[0][0] < horizon:
                st.popleft()
            # Only the newest count+1 entries can matter to any operator.
            while len(st) > max(spec.count + 1, 1):
                st.popleft()
            if self._op(len(st), spec.count):
                events = [e for _, e in st][-self.max_events:]
                n = len(st)
                del self.groups[key]
                return self._detection(key, events, {"count": n})
            return None
        if spec.type == "value_count":
            vals: OrderedDict[Any, tuple[float, dict[str, Any]]] = self._state(key, OrderedDict, now)
            field_name = spec.value_field or ""
            alias = spec.aliases.get(field_name)
            v = value_of(alias.get(ref, field_name) if alias else field_name)
            if v is None:
                return None
            v = tuple(v) if isinstance(v, list) else v
            vals[v] = (now, event)
            vals.move_to_end(v)
            for old in [k for k, (t, _) in vals.items() if t < horizon]:
                del vals[old]
            while len(vals) > self.max_values:
                vals.popitem(last=False)
            if self._op(len(vals), spec.count):
                events = [e for _, e in vals.values()][-self.max_events:]
                n = len(vals)
                del self.groups[key]
                return self._detection(key, events, {"distinct": n, "field": field_name})
            return None
        if spec.type == "temporal":
            seen: dict[str, tuple[float, dict[str, Any]]] = self._state(key, dict, now)
            seen[ref] = (now, event)
            for r in [r for r, (t, _) in seen.items() if t < horizon]:
                del seen[r]
            if self._op(len(seen), spec.count if spec.count > 1 else len(spec.rules)):
                events = [e for _, e in sorted(seen.values(), key=lambda p: p[0])]
                del self.groups[key]
                return self._detection(key, events, {"rules": sorted(seen)})
            return None
        if spec.type == "temporal_ordered":
            # chain[i] = (start time, events) of the latest chain that completed steps 0..i
            chain: dict[int, tuple[float, list[dict[str, Any]]]] = self._state(key, dict, now)
            idx = self.order.get(ref)
            if idx is None:
                return None
            if idx == 0:
                chain[0] = (now, [event])
            else:
                prev = chain.get(idx - 1)
                if prev is None or prev[0] < horizon:
                    return None
                chain[idx] = (prev[0], prev[1] + [event])
            for i in [i for i, (t, _) in chain.items() if t < horizon]:
                del chain[i]
            last = len(spec.rules) - 1
            if idx == last and last in chain:
                events = chain[last][1][-self.max_events:]
                del self.groups[key]
                return self._detection(key, events, {"rules": list(spec.rules)})
            return None
        return None

    def _detection(self, key: tuple[Any, ...], events: list[dict[str, Any]], extra: dict[str, Any]) -> Detection:
        group = dict(zip(self.spec.group_by, key))
        return Detection(
            rule_id=self.rule_id,
            title=self.title,
            level=self.level,
            events=events,
            tags=list(self.tags),
            engine="sigma-correlation",
            description=self.description,
            group_key="|".join(f"{k}={v}" for k, v in group.items()) or None,
            extra={"correlation": self.spec.type, "group": group, **extra},
        )


def _newest_entry(st: Any) -> float:
    """The newest event time a group holds: each state keeps ``(time, event)`` pairs, in a
    deque (event_count) or as dict values (value_count, temporal, temporal_ordered)."""
    if not st:
        return float("-inf")
    pairs = st if isinstance(st, deque) else st.values()
    return float(max(t for t, _ in pairs))  # not the last appended: a late event may be older
