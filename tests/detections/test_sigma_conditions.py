"""Condition forms (and/or/not, 1 of/all of with wildcards and them, nested, keywords),
Windows field mapping, and routing by log source."""
from __future__ import annotations

import pytest
from sigma_rule_kit import rule_compiler


@pytest.fixture
def compile_rule(tmp_path):
    """compile_rule(yaml_text) -> SigmaEngine with that one rule."""
    return rule_compiler(tmp_path)

COND_RULE = """
title: cond
id: 22222222-2222-2222-2222-222222222222
level: medium
logsource:
  category: test_generic
detection:
  sel_a:
    a: 1
  sel_b:
    b: 1
  filter_c:
    c: 1
  condition: {condition}
"""

EVENTS = {
    "a": {"a": 1},
    "b": {"b": 1},
    "ab": {"a": 1, "b": 1},
    "ac": {"a": 1, "c": 1},
    "abc": {"a": 1, "b": 1, "c": 1},
    "c": {"c": 1},
    "none": {"z": 1},
}

CONDITIONS = [
    ("sel_a", {"a", "ab", "ac", "abc"}),
    ("sel_a and sel_b", {"ab", "abc"}),
    ("sel_a or sel_b", {"a", "b", "ab", "ac", "abc"}),
    ("sel_a and not filter_c", {"a", "ab"}),
    ("not sel_a", {"b", "c", "none"}),
    ("1 of sel_*", {"a", "b", "ab", "ac", "abc"}),
    ("any of sel_*", {"a", "b", "ab", "ac", "abc"}),
    ("all of sel_*", {"ab", "abc"}),
    ("all of sel_* and not 1 of filter*", {"ab"}),
    ("1 of them", {"a", "b", "ab", "ac", "abc", "c"}),
    ("all of them", {"abc"}),
    ("(sel_a or sel_b) and not (filter_c and sel_b)", {"a", "b", "ab", "ac"}),
    ("sel_a and (sel_b or filter_c)", {"ab", "ac", "abc"}),
    ("not (sel_a or sel_b or filter_c)", {"none"}),
]


@pytest.mark.parametrize("condition,expected", CONDITIONS, ids=[c[0] for c in CONDITIONS])
def test_sigma_condition(compile_rule, condition, expected) -> None:
    eng = compile_rule(COND_RULE.format(condition=condition))
    got = {name for name, ev in EVENTS.items() if eng.process(ev)}
    assert got == expected


def test_sigma_and_of_maps_and_or_of_values(compile_rule) -> None:
    eng = compile_rule(
        """
        title: m
        logsource: {category: test_generic}
        detection:
          sel:
            - a: x
              b: y
            - c: z
          condition: sel
        """
    )
    assert eng.process({"a": "x", "b": "y"})
    assert not eng.process({"a": "x"})
    assert eng.process({"c": "z"})


def test_sigma_keywords_search_all_string_values(compile_rule) -> None:
    eng = compile_rule(
        """
        title: kw
        logsource: {product: linux}
        detection:
          keywords:
            - 'Failed password'
            - 'authentication failure'
          condition: keywords
        """
    )
    assert eng.process({"message": "sshd[1]: FAILED password for root"})
    assert eng.process({"event": {"original": "pam: Authentication failure for bob"}})
    assert eng.process({"deep": {"list": ["x", "failed password"]}})
    assert not eng.process({"message": "Accepted password"})


def test_sigma_keywords_with_field_selection(compile_rule) -> None:
    eng = compile_rule(
        """
        title: kw2
        logsource: {product: linux, service: auth}
        detection:
          keywords: ['*sudo*root*']
          sel: {user.name: alice}
          condition: keywords and sel
        """
    )
    assert eng.process({"message": "x sudo: alice to ROOT", "user": {"name": "alice"}})
    assert not eng.process({"message": "x sudo: alice to ROOT", "user": {"name": "bob"}})


WIN_RULE = """
title: win
id: 33333333-3333-3333-3333-333333333333
logsource:
  product: windows
  category: process_creation
detection:
  sel:
    Image|endswith: '\\whoami.exe'
    User|contains: 'admin'
  condition: sel
"""


def _sysmon1(image: str, user: str = "CORP\\admin") -> dict:
    return {
        "winlog": {
            "channel": "Microsoft-Windows-Sysmon/Operational",
            "event_id": "1",
            "event_data": {"Image": image, "User": user},
        }
    }


def test_sigma_windows_fields_resolve_to_event_data(compile_rule) -> None:
    eng = compile_rule(WIN_RULE)
    assert eng.process(_sysmon1("C:\\Windows\\System32\\whoami.exe"))
    assert not eng.process(_sysmon1("C:\\Windows\\System32\\whoami.exe", user="CORP\\bob"))


def test_sigma_routing_by_logsource(compile_rule) -> None:
    eng = compile_rule(WIN_RULE)
    wrong_eid = _sysmon1("C:\\w\\whoami.exe")
    wrong_eid["winlog"]["event_id"] = "3"  # a network connection: not process_creation
    assert not eng.process(wrong_eid)
    # The same fields outside Windows (no winlog.channel) never meet a Windows rule.
    assert not eng.process({"winlog": {"event_data": {"Image": "x\\whoami.exe", "User": "admin"}}})


def test_sigma_security_4688_is_process_creation_with_aliases(compile_rule) -> None:
    eng = compile_rule(WIN_RULE)
    ev = {
        "winlog": {
            "channel": "Security",
            "event_id": "4688",
            "event_data": {"NewProcessName": "C:\\Windows\\System32\\whoami.exe", "SubjectUserName": "admin1"},
        }
    }
    assert eng.process(ev)


def test_sigma_system_fields_and_service_routing(compile_rule) -> None:
    eng = compile_rule(
        """
        title: sec
        logsource: {product: windows, service: security}
        detection:
          sel:
            EventID: [4624, 4625]
            Provider_Name: Microsoft-Windows-Security-Auditing
            TargetUserName|startswith: adm
          condition: sel
        """
    )
    base = {
        "winlog": {
            "channel": "Security",
            "event_id": "4625",
            "provider_name": "Microsoft-Windows-Security-Auditing",
            "event_data": {"TargetUserName": "Administrator"},
        }
    }
    assert eng.process(base)
    other_channel = {**base, "winlog": {**base["winlog"], "channel": "System"}}
    assert not eng.process(other_channel)


def test_sigma_generic_names_map_to_ecs(compile_rule) -> None:
    eng = compile_rule(
        """
        title: web
        logsource: {category: webserver}
        detection:
          sel:
            cs-method: POST
            cs-uri-query|contains: 'cmd='
            sc-status: 200
          condition: sel
        """
    )
    ecs = {"http": {"request": {"method": "POST"}, "response": {"status_code": 200}}, "url": {"query": "a=1&cmd=id"}}
    assert eng.process(ecs)
    raw_names = {"cs-method": "post", "cs-uri-query": "cmd=ls", "sc-status": "200"}
    assert eng.process(raw_names)  # NDJSON that kept the web server's own names
    assert not eng.process({**ecs, "event": {"category": ["authentication"]}})  # routed away


def test_sigma_disable_and_enable_by_id(compile_rule) -> None:
    eng = compile_rule(WIN_RULE)
    ev = _sysmon1("C:\\w\\whoami.exe")
    assert eng.process(ev)
    eng.disable("33333333-3333-3333-3333-333333333333")
    assert not eng.process(ev)
    eng.enable("33333333-3333-3333-3333-333333333333")
    assert eng.process(ev)


def test_sigma_broken_rules_are_reported_with_reason(tmp_path) -> None:
    from detections.sigma import load_rules

    (tmp_path / "bad_yaml.yml").write_text("title: x\ndetection: [unclosed\n")
    (tmp_path / "bad_modifier.yml").write_text(
        "title: m\nlogsource: {product: x}\ndetection:\n  s:\n    a|nosuchmod: 1\n  condition: s\n"
    )
    (tmp_path / "bad_condition.yml").write_text(
        "title: c\nlogsource: {product: x}\ndetection:\n  s:\n    a: 1\n  condition: s and missing\n"
    )
    (tmp_path / "bad_regex.yml").write_text(
        "title: r\nlogsource: {product: x}\ndetection:\n  s:\n    a|re: '(unclosed'\n  condition: s\n"
    )
    (tmp_path / "ok.yml").write_text("title: ok\nlogsource: {product: x}\ndetection:\n  s:\n    a: 1\n  condition: s\n")
    (tmp_path / "ok.tests.yml").write_text("match: [{a: 1}]\n")  # a test file, not a rule
    rs = load_rules([tmp_path])
    assert [r.title for r in rs.rules] == ["ok"]
    by_file = {f.path.rsplit("/", 1)[-1]: f.reason for f in rs.failures}
    assert set(by_file) == {"bad_yaml.yml", "bad_modifier.yml", "bad_condition.yml", "bad_regex.yml"}
    assert "nosuchmod" in by_file["bad_modifier.yml"]
    assert "missing" in by_file["bad_condition.yml"]
    assert all(by_file.values())


def test_sigma_cache_is_used_and_invalidated(tmp_path) -> None:
    from detections.sigma import load_rules

    rules = tmp_path / "rules"
    rules.mkdir()
    r = rules / "r.yml"
    r.write_text("title: one\nlogsource: {product: x}\ndetection:\n  s:\n    a: 1\n  condition: s\n")
    cache = tmp_path / "cache"
    first = load_rules([rules], cache_dir=cache)
    assert first.cached_files == 0 and first.rules[0].title == "one"
    second = load_rules([rules], cache_dir=cache)
    assert second.cached_files == 1 and second.rules[0].plan == first.rules[0].plan
    r.write_text("title: two\nlogsource: {product: x}\ndetection:\n  s:\n    a: 2\n  condition: s\n")
    third = load_rules([rules], cache_dir=cache)
    assert third.cached_files == 0 and third.rules[0].title == "two"


def test_sigma_service_channels_cover_pysigmas_table() -> None:
    """Our routing table (kept as data to avoid importing pySigma at start) must know every
    Windows service pySigma's own pipeline knows, with the same channels."""
    from sigma.pipelines.common import windows_logsource_mapping

    from detections.sigma.logsources import SERVICE_CHANNELS

    for service, chans in windows_logsource_mapping.items():
        want = {c.lower() for c in ([chans] if isinstance(chans, str) else chans)}
        assert service in SERVICE_CHANNELS, service
        assert want <= SERVICE_CHANNELS[service], service


def test_sigma_non_windows_rules_never_see_windows_events(compile_rule) -> None:
    """Found on the ETW-derived samples (empty channel): a Cisco keyword rule and a
    product-less database rule must not fire on Windows events."""
    cisco = compile_rule(
        """
        title: cisco
        logsource: {product: cisco, service: aaa}
        detection:
          keywords: [delete]
          condition: keywords
        """
    )
    db = compile_rule(
        """
        title: db
        logsource: {category: database}
        detection:
          keywords: [dump]
          condition: keywords
        """
    )
    etw = {"winlog": {"channel": "", "provider_name": "Microsoft-Windows-RPC", "event_id": "5"}, "message": "delete dump"}
    assert not cisco.process(etw) and not db.process(etw)
    assert cisco.process({"message": "delete flash:x", "event": {"module": "cisco_ios"}})
    assert db.process({"message": "mysqldump all"})
    # product: cisco is routed to cisco_* modules: a Linux line never reaches it.
    assert not cisco.process({"message": "delete flash:x", "event": {"module": "system"}})


def test_sigma_engine_is_a_core_detector(compile_rule) -> None:
    from core.protocols import Detector

    eng = compile_rule(WIN_RULE)
    assert isinstance(eng, Detector) and eng.name == "sigma"
