"""Which playbooks a new alert starts, decided from an index built once per catalog.

:meth:`playbooks.spec.AlertTrigger.matches` states the rule (every criterion given must
match; within one, any value; globs in ``rule_id``, ``tags``, ``center``, ``asset_type``,
compared lowercased). It ran ``fnmatch`` for every pattern of every trigger of every
playbook on every new alert, on the event loop: a third of serve's main thread under
load. :class:`TriggerIndex` gives the same answers with the patterns compiled once:

- literal values become sets, glob patterns one compiled regular expression per
  criterion (``fnmatch.translate``, which is what ``fnmatchcase`` uses);
- each trigger is filed under its literal rule ids, else its literal tags, so an alert
  only looks at the triggers that name its rule or one of its tags, plus the few that
  name neither literally (globs only, or level/center/asset criteria alone).

``tests/playbooks/test_playbook_triggers.py`` checks it against ``AlertTrigger.matches``
on the triggers of ``playbooks/library`` and on generated ones.

Example::

    index = TriggerIndex(catalog.playbooks.values())
    [pb.name for pb in index.matching(alert)]   # sorted by playbook name
"""
from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable
from dataclasses import dataclass

from core.alerts import Alert, level_number
from core.events import get_field
from playbooks.spec import AlertTrigger, Playbook

__all__ = ["TriggerIndex"]

_GLOB_CHARS = frozenset("*?[")


def _is_glob(pattern: str) -> bool:
    return not _GLOB_CHARS.isdisjoint(pattern)


@dataclass(frozen=True, slots=True)
class _Values:
    """One criterion's values, lowercased: literals in a set, globs in one regex."""

    literals: frozenset[str]
    globs: re.Pattern[str] | None

    @staticmethod
    def of(patterns: list[str]) -> _Values | None:
        if not patterns:
            return None
        low = [p.lower() for p in patterns]
        globs = [p for p in low if _is_glob(p)]
        rx = re.compile("|".join(fnmatch.translate(p) for p in globs)) if globs else None
        return _Values(frozenset(p for p in low if not _is_glob(p)), rx)

    def any(self, values: Iterable[str]) -> bool:
        for v in values:
            if v in self.literals or (self.globs is not None and self.globs.match(v)):
                return True
        return False


@dataclass(frozen=True, slots=True)
class _Compiled:
    """An :class:`AlertTrigger` with its patterns compiled; ``matches`` is the same test."""

    order: int
    playbook: Playbook
    rule_id: _Values | None
    tags: _Values | None
    level: frozenset[str] | None
    min_level: int | None
    center: _Values | None
    asset_type: _Values | None

    @staticmethod
    def of(order: int, pb: Playbook, t: AlertTrigger) -> _Compiled:
        return _Compiled(order, pb, _Values.of(t.rule_id), _Values.of(t.tags),
                         frozenset(t.level) if t.level else None,
                         level_number(t.min_level) if t.min_level else None,
                         _Values.of(t.center), _Values.of(t.asset_type))

    def matches(self, alert: Alert, rule_id: str, tags: list[str]) -> bool:
        if self.rule_id is not None and not self.rule_id.any((rule_id,)):
            return False
        if self.tags is not None and not self.tags.any(tags):
            return False
        if self.level is not None and alert.level not in self.level:
            return False
        if self.min_level is not None and level_number(alert.level) < self.min_level:
            return False
        if self.center is not None and not self.center.any(((alert.entities.center or "").lower(),)):
            return False
        if self.asset_type is not None:
            types = (get_field(e, "citysoc.asset.type") for e in alert.events)
            if not self.asset_type.any(t.lower() for t in types if isinstance(t, str)):
                return False
        return True


class TriggerIndex:
    """The alert triggers of a set of playbooks, compiled and filed by rule id and tag."""

    def __init__(self, playbooks: Iterable[Playbook]):
        by_name = sorted(playbooks, key=lambda p: p.name)
        self.playbooks: tuple[Playbook, ...] = tuple(by_name)
        self._by_rule: dict[str, list[_Compiled]] = {}
        self._by_tag: dict[str, list[_Compiled]] = {}
        self._scan: list[_Compiled] = []
        for order, pb in enumerate(by_name):
            for trig in pb.alert_triggers:
                c = _Compiled.of(order, pb, trig)
                if c.rule_id is not None and c.rule_id.globs is None:
                    for r in c.rule_id.literals:
                        self._by_rule.setdefault(r, []).append(c)
                elif c.tags is not None and c.tags.globs is None:
                    for t in c.tags.literals:
                        self._by_tag.setdefault(t, []).append(c)
                else:
                    self._scan.append(c)

    def matching(self, alert: Alert) -> list[Playbook]:
        """The playbooks with a trigger that ``alert`` matches, sorted by name."""
        rule_id = str(alert.rule_id).lower()
        tags = [str(t).lower() for t in alert.tags if t is not None]
        candidates: list[_Compiled] = list(self._by_rule.get(rule_id, ()))
        for t in tags:
            candidates.extend(self._by_tag.get(t, ()))
        candidates.extend(self._scan)
        hit: set[int] = set()
        for c in candidates:
            if c.order not in hit and c.matches(alert, rule_id, tags):
                hit.add(c.order)
        return [self.playbooks[i] for i in sorted(hit)]
