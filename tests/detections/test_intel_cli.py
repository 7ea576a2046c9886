"""``citysoc intel check`` and ``citysoc intel match``: output and exit codes."""
from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from citysoc.commands.intel import intel

FIX = Path(__file__).parent / "fixtures_intel"


def _run(*args: str):
    return CliRunner().invoke(intel, list(args), catch_exceptions=False)


def test_check_counts_per_type_and_exit_0_for_clean_feeds():
    r = _run("check", str(FIX / "misp_feed"), str(FIX / "partner_iocs.csv"), "--json")
    assert r.exit_code == 0, r.output
    docs = {d["feed"]: d for d in map(json.loads, r.stdout.splitlines())}
    assert docs["misp_feed"]["counts"] == {"ip": 2, "cidr": 1, "domain": 2, "sha256": 1, "md5": 1, "url": 1}
    assert docs["misp_feed"]["ignored"] == {"email-src": 1}
    assert docs["partner_iocs"]["counts"] == {"ip": 1, "cidr": 1, "domain": 1, "url": 1, "sha1": 1}
    assert docs["partner_iocs"]["expired"] == 1
    table = _run("check", str(FIX / "cert_bundle.json"))
    assert table.exit_code == 0 and "cert_bundle" in table.output and "indicator--snort: warning" in table.output


def test_check_exit_1_lists_rejected_indicators():
    r = _run("check", str(FIX / "broken.csv"), str(FIX / "broken_bundle.json"))
    assert r.exit_code == 1
    assert f"{FIX / 'broken.csv'}:2: error: not an IP address" in r.output
    assert "indicator--unclosed: error: pattern syntax error at position 29" in r.output


def test_check_exit_2_when_a_feed_cannot_be_loaded(tmp_path: Path):
    bad = tmp_path / "x.json"
    bad.write_text("{nope")
    r = _run("check", str(bad), str(FIX / "partner_iocs.csv"))
    assert r.exit_code == 2
    assert f"error: feed x: {bad}: invalid JSON" in r.stderr


def test_match_ndjson_events_offline():
    r = _run("match", str(FIX / "events.ndjson"), "--feed", f"circl={FIX / 'misp_feed'}", "--json")
    assert r.exit_code == 1, r.output
    hits = [json.loads(x) for x in r.stdout.splitlines()]
    assert [(h["line"], h["field"], h["indicator"]["value"]) for h in hits] == [
        (1, "destination.ip", "203.0.113.77"),
        (2, "dns.question.name", "cnc.botnet.example"),
        (5, "file.hash.sha256", "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"),
    ]
    assert all(h["rule_id"] == "intel:circl" and h["level"] == "critical" for h in hits)
    assert "events.ndjson:4: invalid JSON" in r.stderr


def test_match_without_hits_exits_0_and_prints_a_table():
    r = _run("match", str(FIX / "events.ndjson"), "--feed", str(FIX / "partner_iocs.csv"))
    assert r.exit_code == 0
    assert "4 events, 0 matches (5 indicators)" in r.stdout
