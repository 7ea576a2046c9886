"""``citysoc detect`` and ``citysoc rules ...`` end to end, through click, on real files."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from citysoc.commands.detect import detect
from citysoc.commands.rules import rules
from citysoc.testing import corpora_dir

CORPORA = corpora_dir()

RULE = """title: Camera admin login failed
id: dddddddd-0000-0000-0000-000000000001
status: test
level: medium
tags: [attack.credential-access, attack.t1110]
logsource: {product: citysoc, category: authentication}
detection:
  sel:
    event.action: login
    event.outcome: failure
    host.name|startswith: cam-
  condition: sel
"""

TESTS_OK = """match:
  - {event.action: login, event.outcome: failure, host.name: cam-07}
nomatch:
  - {event.action: login, event.outcome: success, host.name: cam-07}
  - {event.action: login, event.outcome: failure, host.name: nvr-01}
"""


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("CITYSOC_DATA", str(tmp_path / "data"))
    monkeypatch.delenv("CITYSOC_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_sigma_rules_test_passes_and_fails(env) -> None:
    pack = env / "pack"
    pack.mkdir()
    (pack / "cam_login.yml").write_text(RULE)
    (pack / "cam_login.tests.yml").write_text(TESTS_OK)
    res = CliRunner().invoke(rules, ["test", str(pack)])
    assert res.exit_code == 0, res.output
    assert "1 passed, 0 failed" in res.output
    (pack / "cam_login.tests.yml").write_text(TESTS_OK.replace("host.name: nvr-01", "host.name: cam-02"))
    res = CliRunner().invoke(rules, ["test", str(pack)])
    assert res.exit_code == 1 and "nomatch[1] matched" in res.output


def test_sigma_rules_check_exit_code_and_json(env) -> None:
    pack = env / "pack"
    pack.mkdir()
    (pack / "ok.yml").write_text(RULE)
    res = CliRunner().invoke(rules, ["check", str(pack)])
    assert res.exit_code == 0, res.output
    (pack / "bad.yml").write_text(RULE.replace("dddddddd-0000-0000-0000-000000000001", "dddddddd-0000-0000-0000-000000000002")
                                  .replace("condition: sel", "condition: sel and missing_sel"))
    res = CliRunner().invoke(rules, ["check", str(pack), "--json"])
    assert res.exit_code == 1
    report = json.loads(res.output)
    assert report["failed"] == 1 and "missing_sel" in report["failures"][0]["reason"]
    assert report["failures"][0]["path"].endswith("bad.yml")


def test_sigma_rules_coverage_and_list(env) -> None:
    pack = env / "pack"
    pack.mkdir()
    (pack / "ok.yml").write_text(RULE)
    res = CliRunner().invoke(rules, ["coverage", str(pack), "--json"])
    assert res.exit_code == 0, res.output
    cov = json.loads(res.output)
    assert cov["techniques"] == {"T1110": ["dddddddd-0000-0000-0000-000000000001"]}
    assert cov["tactics"] == {"credential-access": 1}
    res = CliRunner().invoke(rules, ["list", str(pack), "--json"])
    assert json.loads(res.output.splitlines()[0])["title"] == "Camera admin login failed"


def test_sigma_detect_over_ndjson_writes_json_lines(env) -> None:
    pack = env / "pack"
    pack.mkdir()
    (pack / "cam_login.yml").write_text(RULE)
    logs = env / "logs"
    logs.mkdir()
    lines = [
        {"@timestamp": "2024-01-01T00:00:00Z", "event.action": "login", "event.outcome": "failure", "host.name": "cam-01"},
        {"@timestamp": "2024-01-01T00:00:01Z", "event.action": "login", "event.outcome": "success", "host.name": "cam-01"},
    ]
    (logs / "a.ndjson").write_text("\n".join(json.dumps(x) for x in lines) + "\nnot json\n")
    out = env / "hits.ndjson"
    res = CliRunner().invoke(detect, [str(logs), "--rules", str(pack), "--json", str(out)])
    assert res.exit_code == 0, res.output
    hits = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(hits) == 1
    assert hits[0]["rule_id"] == "dddddddd-0000-0000-0000-000000000001"
    assert hits[0]["event"]["host"]["name"] == "cam-01" and hits[0]["tags"] == ["attack.credential-access", "attack.t1110"]
    assert "Camera admin login failed" in res.output


def test_sigma_detect_without_rules_says_what_to_do(env, monkeypatch) -> None:
    import citysoc.commands.detect as d

    monkeypatch.setattr(d, "PACK_DIR", env / "empty-pack")
    logs = env / "l.ndjson"
    logs.write_text("{}\n")
    res = CliRunner().invoke(detect, [str(logs)])
    assert res.exit_code != 0 and "--rules" in res.output


@pytest.mark.skipif(not (CORPORA / "evtx").is_dir() or not (CORPORA / "sigma").is_dir(), reason="corpora absent")
def test_sigma_detect_over_evtx_with_sigmahq_rules(env) -> None:
    rules_dir = CORPORA / "sigma" / "rules" / "windows" / "builtin" / "security"
    evtx = CORPORA / "evtx" / "Credential Access"
    out = env / "hits.ndjson"
    res = CliRunner().invoke(detect, [str(evtx), "--rules", str(rules_dir), "--json", str(out)])
    assert res.exit_code == 0, res.output
    hits = [json.loads(x) for x in out.read_text().splitlines()]
    assert hits, "expected SigmaHQ security rules to fire on the credential-access samples"
    assert all(h["event"]["winlog"]["channel"] == "Security" for h in hits)
    # second run starts from the compiled-rule cache
    res2 = CliRunner().invoke(detect, [str(evtx), "--rules", str(rules_dir)])
    assert "files from cache" in res2.output


@pytest.mark.skipif(not (CORPORA / "sigma" / "rules").is_dir(), reason="SigmaHQ corpus absent")
def test_sigma_rules_check_over_all_sigmahq_rules(env) -> None:
    """`citysoc rules check` over every SigmaHQ rule: > 99 % load, each failure with a reason."""
    dirs = [str(CORPORA / "sigma" / d) for d in ("rules", "rules-emerging-threats", "rules-threat-hunting")]
    res = CliRunner().invoke(rules, ["check", *dirs, "--json"])
    report = json.loads(res.output)
    assert report["files"] > 3700
    assert report["load_rate"] > 0.99
    assert res.exit_code == (1 if report["failed"] else 0)
    assert all(f["reason"] and f["path"] for f in report["failures"])


CORR = """title: Camera login brute force
id: dddddddd-0000-0000-0000-0000000000c1
level: high
correlation:
  type: event_count
  rules: [dddddddd-0000-0000-0000-000000000001]
  group-by: [source.ip]
  timespan: 1m
  condition: {gte: 3}
"""


def test_sigma_rules_test_runs_correlation_tests(env) -> None:
    pack = env / "pack"
    pack.mkdir()
    (pack / "cam_login.yml").write_text(RULE)
    (pack / "cam_bruteforce.yml").write_text(CORR)
    ev = "{{'@timestamp': '2024-01-01T00:00:0{s}Z', event.action: login, event.outcome: failure, host.name: cam-1, source.ip: {ip}}}"
    match = "\n".join(f"  - {ev.format(s=s, ip='10.0.0.9')}" for s in (1, 2, 3))
    nomatch = "\n".join(f"  - {ev.format(s=s, ip=ip)}" for s, ip in ((1, "10.0.0.1"), (2, "10.0.0.2"), (3, "10.0.0.3")))
    (pack / "cam_bruteforce.tests.yml").write_text(f"match:\n{match}\nnomatch:\n{nomatch}\n")
    res = CliRunner().invoke(rules, ["test", str(pack)])
    assert res.exit_code == 0, res.output
    assert "1 passed, 0 failed, 1 without tests" in res.output
    (pack / "cam_bruteforce.tests.yml").write_text(f"match:\n{nomatch}\n")
    res = CliRunner().invoke(rules, ["test", str(pack)])
    assert res.exit_code == 1 and "did not make" in res.output
