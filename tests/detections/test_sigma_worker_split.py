"""Sigma split across processes: ``match_ids`` (the parse workers) then ``apply`` (the
server's engine) gives exactly the detections of ``process`` in one engine, correlations
included, and rule toggles made on the server's engine hold without telling the workers.

Events: our pack's rule test events (raw device lines through our parsers) and every line
of Elastic's pipeline-test logs for Linux auth and syslog (``shared/corpora/ecs-parity``),
checked against our pack plus SigmaHQ's ``rules/linux`` and ``rules/network``.
"""
from __future__ import annotations


import pytest

from core.events import matched_rules, stamp
from detections.packs import SIGMA_PACK
from detections.sigma import SigmaEngine, load_rules
from citysoc.testing import corpora_dir, pack_test_events, parity_syslog_events


def _key(dets) -> list[tuple[str, str, int]]:
    return [(d.rule_id, d.title, len(d.events)) for d in dets]


@pytest.fixture(scope="module")
def rules(tmp_path_factory):
    base = corpora_dir()
    folders = [SIGMA_PACK]
    if base is not None and (base / "sigma" / "rules" / "linux").is_dir():
        folders += [base / "sigma" / "rules" / "linux", base / "sigma" / "rules" / "network"]
    rs = load_rules(folders, cache_dir=tmp_path_factory.mktemp("plans"))
    assert len(rs.rules) > 40
    return rs.rules


def _events() -> list[dict]:
    return [stamp(ev) for ev in pack_test_events() + parity_syslog_events()]


def test_match_then_apply_equals_process(rules) -> None:
    one, worker, server = SigmaEngine(rules), SigmaEngine(rules, include_events=False), SigmaEngine(rules)
    events = _events()
    # Repeat the stream: correlations (brute force counts) need several matching events.
    events = events * 6
    expected, got = [], []
    for ev in events:
        expected.append(_key(one.process(ev)))
        copy = stamp(dict(ev), ev.ts_ms)
        copy.matched = worker.match_ids(copy)
        assert matched_rules(copy) == copy.matched
        got.append(_key(server.process(copy)))
    assert got == expected
    fired = {rid for dets in expected for rid, _, _ in dets}
    assert len(fired) >= 10, fired  # the comparison saw real detections, correlations among them
    assert any(s.correlation is not None and s.id in fired for s in rules)
    assert server.hits == one.hits and server.events_seen == one.events_seen


def test_toggle_on_the_server_engine_holds_for_worker_matches(rules) -> None:
    worker, server = SigmaEngine(rules), SigmaEngine(rules)
    ev, rid = next((ev, d.rule_id) for ev in _events() for d in SigmaEngine(rules).process(ev))
    server.disable(rid)
    copy = stamp(dict(ev), ev.ts_ms)
    copy.matched = worker.match_ids(copy)
    assert rid in copy.matched  # the worker matched it: toggles are not the worker's business
    assert rid not in {d.rule_id for d in server.process(copy)}
    server.enable(rid)
    assert rid in {d.rule_id for d in server.process(copy)}


def test_an_event_without_worker_matches_is_matched_here(rules) -> None:
    engine = SigmaEngine(rules)
    ev = _events()[0]
    assert matched_rules(ev) is None
    assert _key(engine.process(ev)) == _key(SigmaEngine(rules).process(ev))
