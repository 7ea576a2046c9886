"""Sigma -> Lucene for scheduled rules: our pack and the SigmaHQ Windows corpus, run on
the real SQLite store through our query parser."""
from __future__ import annotations

import datetime as _dt
from pathlib import Path

import pytest
import yaml

from detections.scheduled import ConversionFailure, ScheduledQuery, convert_file, convert_files
from detections.sigma.loader import rule_files
from storage.query.parse import parse_query
from storage.sqlite import SQLiteEventStore
from citysoc.testing import corpora_dir

PACK = Path(__file__).resolve().parents[2] / "detections" / "rules" / "sigma"
CORPUS = corpora_dir() / "sigma" / "rules" / "windows"
PROBE = _dt.datetime(2000, 1, 1, tzinfo=_dt.timezone.utc)

TELNET_RULE = PACK / "camera" / "camera_telnet_enabled.yml"


@pytest.fixture
def store(tmp_path):
    s = SQLiteEventStore(tmp_path / "events.db")
    yield s
    s.close()


def _accepted(store: SQLiteEventStore, q: ScheduledQuery) -> str | None:
    for b in q.branches:
        try:
            store.count(b.query, start=PROBE, end=PROBE)
        except Exception as exc:
            return str(exc)
    return None


def test_pack_converts_except_correlations_and_every_refusal_names_its_reason(store):
    rules, failures = convert_files([PACK])
    assert len(rules) >= 30
    assert failures and all("correlation rule" in f.reason or "time-part modifier" in f.reason for f in failures)
    refused = {q.id: _accepted(store, q) for q in rules}
    refused = {k: v for k, v in refused.items() if v}
    # Every refusal is a regular expression (our Lucene dialect has none), said as such.
    assert refused and all("regular expressions are not supported" in v for v in refused.values())


def _diverging(store: SQLiteEventStore, *, case_variants: bool) -> tuple[int, set[str]]:
    """(rules checked, ids of rules whose query misses a match event of their tests file);
    a nomatch event found fails at once."""
    rules, _ = convert_files([PACK], case_variants=case_variants)
    checked = 0
    diverging = set()
    for q in rules:
        if _accepted(store, q):
            continue
        tests = Path(q.path).with_suffix(".tests.yml")
        doc = yaml.safe_load(tests.read_text()) if tests.exists() else {}
        if not doc:
            continue
        for kind in ("match", "nomatch"):
            for i, ev in enumerate(doc.get(kind) or []):
                tag = f"{q.id}-{kind}-{i}-{case_variants}"
                store.ingest([{**ev, "labels": {"case": tag}}])
        for kind, want in (("match", True), ("nomatch", False)):
            for i, _ev in enumerate(doc.get(kind) or []):
                tag = f"{q.id}-{kind}-{i}-{case_variants}"
                found = any(store.count(f'labels.case:"{tag}" AND ({b.query})') for b in q.branches)
                if found != want:
                    assert want, f"{q.path}: a nomatch event is found by {q.branches[0].query}"
                    diverging.add(q.id)
        checked += 1
    return checked, diverging


def test_pack_queries_find_their_match_events_and_not_their_nomatch_events(store):
    checked, diverging = _diverging(store, case_variants=True)
    assert checked >= 20
    assert diverging == set()


def test_without_case_variants_case_sensitive_stores_miss_what_sigma_matches(store):
    # *telnet* vs "Telnet Service", *ntp* vs "NTP": why values are expanded by default.
    _checked, diverging = _diverging(store, case_variants=False)
    assert {"dc6f987d-bbb1-4b10-97fb-cead3bec1e91", "1288a74e-3cf0-4eee-8191-e03c6b2a21a5"} <= diverging


def test_process_creation_runs_for_sysmon_and_for_security_4688_with_its_own_field_names(tmp_path, store):
    rule = tmp_path / "whoami.yml"
    rule.write_text(
        "title: whoami\nid: 11111111-2222-3333-4444-555555555555\nlogsource: {product: windows, category: process_creation}\n"
        "detection:\n  sel: {Image|endswith: '\\whoami.exe'}\n  condition: sel\nlevel: low\n"
    )
    [q] = convert_file(rule)
    assert isinstance(q, ScheduledQuery) and len(q.branches) == 2
    store.ingest([
        {"@timestamp": "2026-11-25T10:00:00Z", "winlog": {"channel": "Microsoft-Windows-Sysmon/Operational",
                                                           "event_id": 1, "event_data": {"Image": "C:\\Windows\\System32\\whoami.exe"}}},
        {"@timestamp": "2026-11-25T10:00:01Z", "winlog": {"channel": "Security", "event_id": 4688,
                                                           "event_data": {"NewProcessName": "C:\\Windows\\System32\\whoami.exe"}}},
        {"@timestamp": "2026-11-25T10:00:02Z", "winlog": {"channel": "Security", "event_id": 4624,
                                                           "event_data": {"NewProcessName": "C:\\Windows\\System32\\whoami.exe"}}},
    ])
    assert [store.count(b.query) for b in q.branches] == [1, 1]


def test_correlation_and_unreadable_files_are_reported_not_skipped(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text("title: [unclosed\n")
    [f] = convert_file(bad)
    assert isinstance(f, ConversionFailure) and "cannot read rule file" in f.reason
    out = convert_file(PACK / "camera" / "camera_login_brute_force.yml")
    assert [type(o).__name__ for o in out] == ["ScheduledQuery", "ConversionFailure"]
    assert "streaming engine" in out[1].reason


@pytest.mark.skipif(not CORPUS.is_dir(), reason="SigmaHQ corpus not present")
def test_sigmahq_windows_slice_converts_and_runs_on_our_parser():
    files = rule_files([CORPUS / "process_creation"])[:200]
    converted = parsed = 0
    reasons: dict[str, int] = {}
    for f in files:
        for r in convert_file(f):
            if isinstance(r, ConversionFailure):
                reasons[r.reason[:40]] = reasons.get(r.reason[:40], 0) + 1
                continue
            converted += 1
            try:
                for b in r.branches:
                    parse_query(b.query)
                parsed += 1
            except Exception as exc:
                key = str(exc).split(":")[0][:40]
                reasons[key] = reasons.get(key, 0) + 1
    assert converted >= 195, reasons
    assert parsed >= 185, reasons
    known = ("regular expressions are not supported", "query has more than", "query is ", "pySigma: ES Lucene backend")
    assert all(r.startswith(known) for r in reasons), reasons


def test_case_variants_leave_all_lists_and_keywords_as_written(tmp_path):
    rule = tmp_path / "r.yml"
    rule.write_text(
        "title: r\nid: 22222222-2222-3333-4444-555555555555\nlogsource: {product: cctv}\n"
        "detection:\n  a: {f1: one, f2|contains|all: [ab, cd]}\n  kw: [needle]\n"
        "  condition: a and kw\nlevel: low\n"
    )
    [q] = convert_file(rule)
    text = q.branches[0].condition
    assert "f1:(one OR ONE OR One)" in text
    assert "f2:*ab* AND f2:*cd*" in text and "*AB*" not in text
    assert "NEEDLE" not in text
    [plain] = convert_file(rule, case_variants=False)
    assert "ONE" not in plain.branches[0].condition
    # pySigma's Lucene backend has no case-sensitive match: |cased rules are reported.
    rule.write_text(rule.read_text().replace("f1: one", "f1|cased: One"))
    [failed] = convert_file(rule)
    assert isinstance(failed, ConversionFailure) and "Case-sensitive string matching" in failed.reason


def test_a_rule_too_large_with_case_variants_runs_case_sensitively_instead(tmp_path, store):
    from detections.scheduled import validate_queries

    values = ", ".join(f"tool{i}.exe" for i in range(80))  # 3 spellings each: over the 200-part limit
    rule = tmp_path / "many.yml"
    rule.write_text("title: many\nid: 33333333-2222-3333-4444-555555555555\nlogsource: {product: cctv}\n"
                    f"detection:\n  sel: {{process.name: [{values}]}}\n  condition: sel\nlevel: low\n")
    [q] = convert_file(rule)
    assert q.case_variants
    ok, bad = validate_queries(store, [q])
    assert bad == [] and [r.case_variants for r in ok] == [False]
    store.ingest([{"@timestamp": "2026-11-25T10:00:00Z", "process": {"name": "tool42.exe"}}])
    assert store.count(ok[0].branches[0].query) == 1
