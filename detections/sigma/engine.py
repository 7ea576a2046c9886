"""The streaming Sigma engine: every event checked against the rules its log source allows.

Example::

    ruleset = load_rules(["rules/windows"], cache_dir="data/cache")
    engine = SigmaEngine(ruleset.rules)
    for event in events:
        for det in engine.process(event):
            print(det.rule_id, det.title, det.level)

How an event is checked: its route key (Windows channel + event id, or ECS OS +
categories) picks, from a per-key cache, the rules whose log source can match it; a
single :class:`~detections.sigma.matchers.EventView` is built for the event and shared
by those rules, so each field is looked up and lower-cased once. A match feeds the
correlation rules that reference the rule; a referenced rule emits its own detection
only when the correlation says ``generate: true`` (Sigma's rule), or when no
correlation references it.
"""
from __future__ import annotations

import contextlib
import gc
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from core.events import Event, StampedEvent, matched_rules
from core.protocols import Detection

from detections.sigma.correlation import CorrelationState
from detections.sigma.loader import RuleFailure, RuleSpec
from detections.sigma.logsources import Route, event_route_key, route_for
from detections.sigma.matchers import MISSING, EventView, Matcher, compile_plan
from detections.sigma.prefilter import Requirement, RouteIndex, requirement

__all__ = ["SigmaEngine", "CompiledRule"]


@dataclass
class CompiledRule:
    spec: RuleSpec
    match: Matcher | None
    """None until the rule first meets a route (compiling is lazy: a start pays only for
    the rules its events need)."""
    route: Route
    emit: bool = True
    required: Requirement | None = None
    """Literal atom groups that all hold whenever the rule matches (None: always evaluate)."""
    correlations: list[tuple[CorrelationState, str]] = field(default_factory=list)
    """(state, the reference this rule is known by in that correlation)."""


class SigmaEngine:
    """Implements ``core.protocols.Detector`` over loaded :class:`RuleSpec` s.

    One engine belongs to one pipeline stage (one thread): route caches and correlation
    state are not locked. Run several engines for several threads; correlation state is
    per engine, so partition events by the correlations' group-by keys.
    """

    name = "sigma"

    def __init__(
        self,
        specs: Iterable[RuleSpec],
        *,
        disabled: Iterable[str] = (),
        max_groups: int = 10_000,
        include_events: bool = True,
        correlate: bool = True,
    ):
        self.correlate = correlate
        """False in a server whose correlations run in detector processes
        (``core.detector_processes``): base rules emit here, and each correlation group is
        fed in the process its key hashes to (:meth:`apply` with ``base=False``)."""
        self.failures: list[RuleFailure] = []
        self.rules: list[CompiledRule] = []
        self.correlations: list[tuple[RuleSpec, CorrelationState]] = []
        self.disabled: set[str] = set(disabled)
        self.hits: Counter[str] = Counter()
        self.events_seen = 0
        self.include_events = include_events
        self._routes: dict[tuple[Any, ...], RouteIndex] = {}
        self._indexes: dict[tuple[int, ...], RouteIndex] = {}
        self._by_id: dict[str, CompiledRule] = {}
        by_ref: dict[str, CompiledRule] = {}
        corr_specs: list[RuleSpec] = []
        seen_ids: set[str] = set()
        for spec in specs:
            if spec.id in seen_ids:
                self.failures.append(RuleFailure(spec.path, f"duplicate rule id {spec.id}: only the first is used", spec.id, spec.title))
                continue
            seen_ids.add(spec.id)
            if spec.correlation is not None:
                corr_specs.append(spec)
                continue
            route, _ = route_for(spec.product, spec.category, spec.service)
            cr = CompiledRule(spec, None, route)
            self.rules.append(cr)
            self._by_id[spec.id] = cr
            by_ref[spec.id] = cr
            if spec.name:
                by_ref[spec.name] = cr
        for spec in corr_specs:
            cspec = spec.correlation
            assert cspec is not None
            missing = [r for r in cspec.rules if r not in by_ref]
            if missing:
                self.failures.append(
                    RuleFailure(
                        spec.path,
                        "correlation references rules that are not loaded: " + ", ".join(missing)
                        + " (load the folder holding them too)",
                        spec.id,
                        spec.title,
                    )
                )
                continue
            state = CorrelationState(
                spec.id, spec.title, spec.level, spec.tags, cspec, max_groups=max_groups, description=spec.description
            )
            self.correlations.append((spec, state))
            for ref in cspec.rules:
                base = by_ref[ref]
                base.correlations.append((state, ref))
                if not cspec.generate:
                    base.emit = False

    # --- rule management ---------------------------------------------------------

    @property
    def rule_ids(self) -> list[str]:
        return [r.spec.id for r in self.rules] + [s.id for s, _ in self.correlations]

    def disable(self, rule_id: str) -> None:
        self.disabled.add(rule_id)
        self._routes.clear()
        self._indexes.clear()

    def enable(self, rule_id: str) -> None:
        self.disabled.discard(rule_id)
        self._routes.clear()
        self._indexes.clear()

    def state_sizes(self) -> dict[str, int]:
        """Open correlation groups, all rules together (each rule keeps at most its
        ``max_groups``): the state the operator sees grow on ``/metrics``."""
        return {"correlation_groups": sum(len(state.groups) for _, state in self.correlations)}

    def set_disabled(self, rule_ids: Iterable[str]) -> None:
        """Make exactly ``rule_ids`` (those of this engine) the disabled set: how a
        detector process takes the server's toggles (``core.detector_processes``)."""
        mine = set(self._by_id) | {s.id for s, _ in self.correlations}
        self.disabled = {r for r in rule_ids if r in mine}
        self._routes.clear()
        self._indexes.clear()

    def _compile(self, r: CompiledRule) -> bool:
        if r.match is not None:
            return True
        try:
            r.match = compile_plan(r.spec.plan)  # type: ignore[arg-type]
            r.required = requirement(r.spec.plan)  # type: ignore[arg-type]
            return True
        except (ValueError, TypeError, re.error) as exc:
            self.failures.append(RuleFailure(r.spec.path, f"cannot compile plan: {exc}", r.spec.id, r.spec.title))
            self.rules.remove(r)
            self._by_id.pop(r.spec.id, None)
            return False

    def compile_all(self) -> list[RuleFailure]:
        """Compile every rule now (``rules check`` does, to report every failure)."""
        with _gc_paused():
            for r in list(self.rules):
                self._compile(r)
        return self.failures

    def route_index(self, key: tuple[Any, ...]) -> RouteIndex:
        """The enabled rules an event with route ``key`` meets, indexed (cached per key)."""
        idx = self._routes.get(key)
        if idx is None:
            with _gc_paused():
                idx = self._build_index(key)
        return idx

    def _build_index(self, key: tuple[Any, ...]) -> RouteIndex:
        idx = self._routes.get(key)
        if idx is None:
            dis = self.disabled
            rules = tuple(
                r for r in list(self.rules) if r.spec.id not in dis and r.route.accepts(key) and self._compile(r)
            )
            sig = tuple(id(r) for r in rules)
            idx = self._indexes.get(sig)
            if idx is None:  # many route keys share one rule set (e.g. event ids no category names)
                idx = RouteIndex(rules, [r.required for r in rules])
                self._indexes[sig] = idx
            self._routes[key] = idx
        return idx

    def rules_for(self, key: tuple[Any, ...]) -> tuple[CompiledRule, ...]:
        return self.route_index(key).rules

    # --- matching ----------------------------------------------------------------

    def process(self, event: Event) -> list[Detection]:
        """Detections for one event. An event a worker process already matched
        (``core.events.matched_rules``) is only applied: the rules it matched emit and
        feed their correlations here, in this engine's order of events."""
        pre = matched_rules(event)
        if pre is not None:
            return self.apply(event, pre)
        self.events_seen += 1
        rules, view = self._matching(event)
        if not self.correlate and isinstance(event, StampedEvent) and any(r.correlations for r in rules):
            # Correlations run in detector processes: the server routes this event there
            # by the groups its matches feed, read from the matches (invariant 5).
            event.matched = tuple(r.spec.id for r in rules)
        out: list[Detection] = []
        for r in rules:
            self._emit(r, event, view, out)
        return out

    def match_ids(self, event: Event) -> tuple[str, ...]:
        """The ids of every base rule ``event`` matches, disabled ones included, in the order
        :meth:`process` would emit them: the stateless half of :meth:`process`, run in the
        parse workers (``citysoc.wiring.worker_stage``). Toggles and correlation state are
        applied by :meth:`apply` in the server process, so a toggle needs no message to the
        workers and correlations count in one place. (A worker's engine has no toggles, so
        "disabled ones included" holds there; this engine's own routes leave them out.)"""
        return tuple(r.spec.id for r in self._matching(event)[0])

    def _matching(self, event: Event) -> tuple[list[CompiledRule], EventView | None]:
        """The enabled base rules ``event`` matches, in rule order, and the view they
        matched through (None when its route has no rules): what both halves share."""
        key = event_route_key(event)
        idx = self._routes.get(key)
        if idx is None:
            idx = self.route_index(key)
        if not idx.rules:
            return [], None
        view = EventView(event, key)
        return [r for r in idx.candidates(view) if r.match(view)], view  # type: ignore[misc]

    def apply(self, event: Event, rule_ids: Iterable[str], *, base: bool = True,
              owns: Callable[[tuple[Any, ...]], bool] | None = None) -> list[Detection]:
        """What :meth:`process` returns for ``event`` when its matches are already known
        (:meth:`match_ids` in a worker): enabled rules emit and feed their correlations.

        In a detector process (``core.detector_processes``) ``base`` is False (the server
        emitted the base rules and counted their hits) and ``owns`` says which correlation
        groups this process keeps; the others are fed where their key hashes to."""
        if base:
            self.events_seen += 1
        out: list[Detection] = []
        view: EventView | None = None
        dis = self.disabled
        for rid in rule_ids:
            r = self._by_id.get(rid)
            if r is None or rid in dis:
                continue
            if r.correlations and view is None and self.correlate:
                view = self._view(event)
            self._emit(r, event, view, out, base, owns)
        return out

    @staticmethod
    def _view(event: Event) -> EventView:
        # The route key only picks Windows field aliases for the view: an event without
        # ``winlog`` cannot route as Windows, so its key is not needed.
        return EventView(event, event_route_key(event) if "winlog" in event else None)

    def correlation_keys(self, event: Event, rule_ids: Iterable[str]) -> list[tuple[Any, ...]]:
        """The group keys the enabled matches ``rule_ids`` feed, one per (rule, enabled
        correlation): what the server routes an event to detector processes by."""
        keys: list[tuple[Any, ...]] = []
        view: EventView | None = None
        dis = self.disabled
        for rid in rule_ids:
            r = self._by_id.get(rid)
            if r is None or rid in dis or not r.correlations:
                continue
            if view is None:
                view = self._view(event)
            value_of = _value_of(view, r.spec)
            keys.extend(state.group_key(ref, value_of) for state, ref in r.correlations if state.rule_id not in dis)
        return keys

    def _emit(self, r: CompiledRule, event: Event, view: EventView | None, out: list[Detection],
              base: bool = True, owns: Callable[[tuple[Any, ...]], bool] | None = None) -> None:
        spec = r.spec
        if base:
            self.hits[spec.id] += 1
            if r.emit:
                out.append(
                    Detection(
                        rule_id=spec.id,
                        title=spec.title,
                        level=spec.level,
                        events=[event] if self.include_events else [],
                        tags=list(spec.tags),
                        description=spec.description,
                    )
                )
        if not self.correlate:
            return
        for state, ref in r.correlations:
            if state.rule_id in self.disabled:
                continue
            assert view is not None
            det = state.feed(ref, event, _value_of(view, spec), owns)
            if det is not None:
                self.hits[state.rule_id] += 1
                out.append(det)
            over = state.take_overflow()
            if over is not None:
                out.append(over)

    def matches(self, event: Event) -> list[str]:
        """Ids of the (non-correlation) rules ``event`` matches, emitting or not; for tests."""
        key = event_route_key(event)
        view = EventView(event, key)
        return [r.spec.id for r in self.rules_for(key) if r.match(view)]  # type: ignore[misc]


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Compiling allocates many small objects; with thousands of loaded plans on the heap
    every cyclic collection walks them all, which made compiling several times slower."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _value_of(view: EventView, spec: RuleSpec) -> Any:
    def get(name: str) -> Any:
        v = view.raw[spec.resolve(name)]
        return None if v is MISSING else v

    return get
