"""External truth: SigmaHQ's own rules and regression samples.

* every SigmaHQ rule file is loaded; the load rate must exceed 99 % and every failure
  must carry a reason;
* ``regression_data/``: each rule is paired with real ``.evtx`` samples that must match.
  The samples are parsed by ``collectors.evtx`` and run through the engine. Every miss is
  listed with its reason. (SigmaHQ's ``match_count`` is checked as "at least one": some
  samples hold several records that all legitimately match.)
"""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from collectors.evtx import EvtxReader
from detections.sigma import SigmaEngine
from citysoc.testing import corpora_dir

SIGMA = corpora_dir() / "sigma"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def sigmahq_ruleset():
    """All SigmaHQ rules loaded once (about 7 s), or skip when the corpus is absent."""
    from detections.sigma import load_rules

    dirs = [SIGMA / "rules", SIGMA / "rules-emerging-threats", SIGMA / "rules-threat-hunting"]
    if not all(d.is_dir() for d in dirs):
        pytest.skip(f"SigmaHQ corpus not found under {SIGMA}")
    return load_rules(dirs)


def test_sigma_sigmahq_load_rate_over_99_percent(sigmahq_ruleset) -> None:
    rs = sigmahq_ruleset
    assert rs.total > 3700
    assert rs.load_rate > 0.99, [(f.path, f.reason) for f in rs.failures]
    assert all(f.reason for f in rs.failures)
    eng = SigmaEngine(rs.rules)
    assert not eng.failures, [(f.path, f.reason) for f in eng.failures[:10]]


def _regression_cases() -> list[tuple[str, str, Path, int]]:
    root = SIGMA / "regression_data"
    if not root.is_dir():
        return []
    cases = []
    for info in sorted(root.rglob("info.yml")):
        d = yaml.safe_load(info.read_text(encoding="utf-8"))
        rid = d["rule_metadata"][0]["id"]
        for t in d.get("regression_tests_info") or []:
            if t.get("type") == "evtx":
                cases.append((rid, d["rule_metadata"][0].get("title", ""), SIGMA / t["path"], int(t.get("match_count", 1))))
    return cases


def test_sigma_sigmahq_regression_samples_all_match(sigmahq_ruleset) -> None:
    cases = _regression_cases()
    if not cases:
        pytest.skip(f"SigmaHQ regression_data not found under {SIGMA}")
    by_id = {r.id: r for r in sigmahq_ruleset.rules}
    failed = {f.rule_id: f.reason for f in sigmahq_ruleset.failures}
    misses = []
    matched = 0
    for rid, title, path, _count in cases:
        if rid not in by_id:
            misses.append(f"{rid} {title}: rule not loaded: {failed.get(rid, 'not found in the rule folders')}")
            continue
        eng = SigmaEngine([by_id[rid]])
        reader = EvtxReader(path)
        n = sum(len(eng.matches(ev)) for ev in reader)
        if reader.report.failed:
            misses.append(f"{rid} {title}: {reader.report.failed} records failed to parse: {reader.report.failures[:2]}")
        elif n == 0:
            misses.append(f"{rid} {title}: no record of {path.name} matched")
        else:
            matched += 1
    assert len(cases) >= 200
    assert not misses, f"{matched}/{len(cases)} matched; misses:\n" + "\n".join(misses)


def test_sigma_sigmahq_regression_samples_do_not_trip_unrelated_windows_rules(sigmahq_ruleset) -> None:
    """A sanity bound on false positives: over all regression samples, the whole Windows
    rule set produces far fewer hits than rules x events would allow."""
    cases = _regression_cases()
    if not cases:
        pytest.skip("no regression data")
    win = [r for r in sigmahq_ruleset.rules if (r.product or "") == "windows"]
    eng = SigmaEngine(win)
    events = [ev for _, _, path, _ in cases for ev in EvtxReader(path)]
    hits = sum(len(eng.process(ev)) for ev in events)
    assert hits >= len(cases)  # at least the paired rules
    assert hits < 10 * len(events)


def test_sigma_prefilter_changes_no_result(sigmahq_ruleset) -> None:
    """The literal prefilter may only skip rules that cannot match: over the whole EVTX
    corpus and all Windows rules, prefiltered results equal evaluating every routed rule."""
    evtx_dir = SIGMA.parent / "evtx"
    if not evtx_dir.is_dir():
        pytest.skip(f"EVTX corpus not found at {evtx_dir}")
    from detections.sigma.logsources import event_route_key
    from detections.sigma.matchers import EventView

    win = [r for r in sigmahq_ruleset.rules if (r.product or "") == "windows"]
    eng = SigmaEngine(win, include_events=False)
    events = [ev for f in sorted(evtx_dir.rglob("*.evtx")) for ev in EvtxReader(f)]
    events += [ev for _, _, path, _ in _regression_cases() for ev in EvtxReader(path)]
    differences = []
    total = 0
    for ev in events:
        fast = sorted(d.rule_id for d in eng.process(ev))
        key = event_route_key(ev)
        view = EventView(ev, key)
        full = sorted(r.spec.id for r in eng.rules_for(key) if r.match(view))
        total += len(full)
        if fast != full:
            differences.append((ev["winlog"]["channel"], ev["winlog"]["record_id"], set(full) ^ set(fast)))
    assert total > 500
    assert not differences, differences[:5]


def test_sigma_sigmahq_regression_json_samples_match_too(sigmahq_ruleset) -> None:
    """The same samples as JSON (EVTX records as JSON objects, several per file for some):
    read by `citysoc detect`'s JSON reader, they must match as their .evtx twins do."""
    from citysoc.commands.detect import iter_events

    cases = _regression_cases()
    if not cases:
        pytest.skip("no regression data")
    by_id = {r.id: r for r in sigmahq_ruleset.rules}
    misses = []
    checked = 0
    for rid, title, path, _count in cases:
        jpath = path.with_suffix(".json")
        if rid not in by_id or not jpath.is_file():
            continue
        problems: list[str] = []
        events = list(iter_events(jpath, problems))
        eng = SigmaEngine([by_id[rid]])
        n = sum(len(eng.matches(ev)) for ev in events)
        checked += 1
        if problems or n == 0:
            misses.append(f"{rid} {title}: {n} matches, problems: {problems[:2]}")
    assert checked >= 190
    assert not misses, "\n".join(misses)
