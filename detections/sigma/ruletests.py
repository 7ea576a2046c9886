"""Rule test events: every rule of ours carries events that must match and must not.

Convention: a rule file ``X.yml`` may have a sibling ``X.tests.yml``::

    match:            # each must match the rule(s) of X.yml
      - {event.action: login, event.outcome: failure, source.ip: 10.0.0.5}
    nomatch:          # none may match
      - {event.action: login, event.outcome: success}

Events are ECS, nested or with dotted keys. For a correlation rule in ``X.yml`` the
``match`` events are fed in order to a fresh engine and the correlation must fire;
the ``nomatch`` events, fed likewise, must not make it fire. A sibling file (not a
custom key inside the rule) keeps rule files valid Sigma for every other tool.
"""
from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from core.events import expand_dots

from detections.sigma.engine import SigmaEngine
from detections.sigma.loader import RuleSet, load_rules

__all__ = ["RuleTestResult", "tests_path", "run_rule_tests"]


@dataclass
class RuleTestResult:
    path: str
    rule_ids: list[str]
    tests_file: str | None
    problems: list[str] = field(default_factory=list)
    matched: int = 0
    nomatched: int = 0

    @property
    def status(self) -> str:
        if self.tests_file is None:
            return "no tests"
        return "fail" if self.problems else "pass"


def tests_path(rule_path: Path) -> Path:
    return rule_path.with_name(rule_path.name.rsplit(".", 1)[0] + ".tests.yml")


def _load_tests(p: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[str]]:
    problems: list[str] = []
    try:
        doc = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        return [], [], [f"{p}: cannot read tests: {exc}"]
    if not isinstance(doc, dict) or not set(doc) <= {"match", "nomatch"}:
        return [], [], [f"{p}: a tests file holds only 'match' and 'nomatch' lists of events"]
    out = []
    for key in ("match", "nomatch"):
        events = doc.get(key) or []
        if not isinstance(events, list) or not all(isinstance(e, dict) for e in events):
            problems.append(f"{p}: '{key}' must be a list of events (mappings)")
            events = []
        out.append([expand_dots(e) for e in events])
    return out[0], out[1], problems


def run_rule_tests(paths: Iterable[str | os.PathLike[str]], ruleset: RuleSet | None = None) -> list[RuleTestResult]:
    """Run the test events of every rule file under ``paths``; one result per rule file."""
    rs = ruleset or load_rules(paths)
    by_path: dict[str, list[Any]] = {}
    for spec in rs.rules:
        by_path.setdefault(spec.path, []).append(spec)
    failed_paths = {f.path for f in rs.failures}
    results: list[RuleTestResult] = []
    for path in sorted(set(by_path) | failed_paths):
        specs = by_path.get(path, [])
        tp = tests_path(Path(path))
        res = RuleTestResult(path, [s.id for s in specs], str(tp) if tp.is_file() else None)
        if path in failed_paths:
            res.problems.extend(f"rule does not load: {f.reason}" for f in rs.failures if f.path == path)
            if res.tests_file is None:
                res.tests_file = "(none)"
            results.append(res)
            continue
        if res.tests_file is None:
            results.append(res)
            continue
        match, nomatch, problems = _load_tests(tp)
        res.problems.extend(problems)
        if not match:
            res.problems.append(f"{tp}: no 'match' events: every rule needs at least one event that must match")
        # Correlations need the rules they reference, which may live in other files.
        engine_specs = [s for s in rs.rules if s.path == path or s.correlation is None]
        own = {s.id for s in specs}
        corr = {s.id for s in specs if s.correlation is not None}
        if corr:
            for label, events, want in (("match", match, True), ("nomatch", nomatch, False)):
                if not events:
                    continue
                eng = SigmaEngine(engine_specs)
                fired = {d.rule_id for ev in events for d in eng.process(ev)} & corr
                if want and fired != corr:
                    res.problems.append(f"{label} events did not make {sorted(corr - fired)} fire")
                if not want and fired:
                    res.problems.append(f"{label} events made {sorted(fired)} fire")
        plain = own - corr
        if plain:
            eng = SigmaEngine([s for s in specs if s.correlation is None])
            for i, ev in enumerate(match):
                if eng.matches(ev):
                    res.matched += 1
                else:
                    res.problems.append(f"match[{i}] did not match: {ev}")
            for i, ev in enumerate(nomatch):
                hit = eng.matches(ev)
                if hit:
                    res.problems.append(f"nomatch[{i}] matched {hit}: {ev}")
                else:
                    res.nomatched += 1
        results.append(res)
    return results
