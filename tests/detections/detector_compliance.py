"""The compliance check every streaming detector passes (the detector spec, enforced).

``check_detector`` drives a fresh detector three times, through its public
``process`` only:

1. **fires on the attack**: the attack events give at least one detection, each with the
   detector's ``rule_id``, the level it says it alerts at, tags from its spec and at least
   one event as evidence;
2. **quiet on look-alike traffic**: benign traffic of the same shape gives none;
3. **bounded state**: a flood of distinct keys (firing or not) ten times the bound leaves every
   ``state_sizes()`` entry at or under ``max_keys`` (and at least one entry non-empty,
   so the flood did reach the state);

and during each run its ``counters()`` move: ``events`` by the events offered,
``detections`` by the detections returned.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from core.protocols import Detector

__all__ = ["Scenario", "check_detector"]


@dataclass
class Scenario:
    """What one detector is checked with. ``make(max_keys)`` builds a fresh detector
    (``max_keys`` None: the scenario's thresholds, unbounded enough for the attack)."""

    make: Callable[[int | None], Any]
    attack: Callable[[], Iterable[dict[str, Any]]]
    lookalike: Callable[[], Iterable[dict[str, Any]]]
    flood: Callable[[int], Iterable[dict[str, Any]]]
    """``flood(n)``: events with ``n`` distinct state keys (they may fire: what is
    checked is memory)."""


def _run(det: Any, events: Iterable[dict[str, Any]]) -> tuple[list[Any], int]:
    before = det.counters()
    found: list[Any] = []
    n = 0
    for ev in events:
        found.extend(det.process(ev))
        n += 1
    after = det.counters()
    assert after["events"] - before["events"] == n, f"{det.name}: counters()['events'] did not count every event"
    assert after["detections"] - before["detections"] == len(found), f"{det.name}: counters()['detections'] is off"
    return found, n


def check_detector(spec: Any, scenario: Scenario, *, bound: int = 16) -> list[Any]:
    """Run the three checks; returns the attack's detections for further asserts."""
    det = scenario.make(None)
    assert isinstance(det, Detector) and det.name and type(det).spec is spec

    found, n = _run(det, scenario.attack())
    assert n and found, f"{spec.rule_id}: the attack ({n} events) gave no detection"
    for d in found:
        assert d.rule_id == spec.rule_id
        assert d.level == det.level, f"{spec.rule_id}: alerts at {d.level}, declares {det.level}"
        assert d.tags and set(d.tags) <= set(spec.tags), f"{spec.rule_id}: tags {d.tags} not in its spec {spec.tags}"
        assert d.events, f"{spec.rule_id}: a detection without evidence"
        assert d.title and d.group_key

    quiet = scenario.make(None)
    benign, n = _run(quiet, scenario.lookalike())
    assert n and benign == [], f"{spec.rule_id}: look-alike traffic fired: {[d.title for d in benign]}"

    small = scenario.make(bound)
    _run(small, scenario.flood(bound * 10))
    sizes = small.state_sizes()
    assert sizes and max(sizes.values()) > 0, f"{spec.rule_id}: the flood never reached the state {sizes}"
    assert all(v <= bound for v in sizes.values()), f"{spec.rule_id}: state {sizes} over max_keys={bound}"
    return found
