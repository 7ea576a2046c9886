"""Every Sigma modifier and value form: a rule and an event in, match or no match out."""
from __future__ import annotations

import base64

import pytest
from sigma_rule_kit import rule_compiler


@pytest.fixture
def compile_rule(tmp_path):
    """compile_rule(yaml_text) -> SigmaEngine with that one rule."""
    return rule_compiler(tmp_path)

RULE = """
title: t
id: 11111111-1111-1111-1111-111111111111
status: test
level: high
tags: [attack.execution, attack.t1059.001]
logsource:
  category: test_generic
detection:
  sel:
    {field}: {value}
  condition: sel
"""


def ev(**fields):
    out: dict = {}
    for k, v in fields.items():
        node = out
        parts = k.split("__")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = v
    return out


CASES = [
    # (field expression, YAML value, event fields, expected)
    ("msg", "'Hello World'", {"msg": "hello world"}, True),  # case-insensitive by default
    ("msg", "'Hello World'", {"msg": "hello world!"}, False),
    ("msg|cased", "'Hello'", {"msg": "Hello"}, True),
    ("msg|cased", "'Hello'", {"msg": "hello"}, False),
    ("msg|contains", "'lo Wo'", {"msg": "HELLO WORLD"}, True),
    ("msg|contains", "'xyz'", {"msg": "hello"}, False),
    ("msg|contains|cased", "'lo Wo'", {"msg": "HELLO WORLD"}, False),
    ("msg|startswith", "'hel'", {"msg": "Hello"}, True),
    ("msg|startswith", "'ell'", {"msg": "Hello"}, False),
    ("msg|endswith", "'.EXE'", {"msg": "c:\\x\\a.exe"}, True),
    ("msg|endswith", "'.exe'", {"msg": "a.exe.txt"}, False),
    ("msg", "'a*c'", {"msg": "abbbc"}, True),
    ("msg", "'a?c'", {"msg": "abc"}, True),
    ("msg", "'a?c'", {"msg": "abbc"}, False),
    ("msg", "'a\\*c'", {"msg": "a*c"}, True),  # escaped wildcard is literal
    ("msg", "'a\\*c'", {"msg": "abc"}, False),
    ("msg", "'*'", {"msg": "anything"}, True),
    ("msg", "'*'", {"other": 1}, False),
    ("msg|contains|all", "['foo', 'bar']", {"msg": "bar then foo"}, True),
    ("msg|contains|all", "['foo', 'bar']", {"msg": "only foo"}, False),
    ("msg|contains", "['foo', 'bar']", {"msg": "only bar"}, True),
    ("msg|re", "'^ab+c$'", {"msg": "abbbc"}, True),
    ("msg|re", "'^AB+C$'", {"msg": "abbbc"}, False),  # re is case-sensitive
    ("msg|re|i", "'^AB+C$'", {"msg": "abbbc"}, True),
    ("msg|re|m", "'^second$'", {"msg": "first\nsecond\nthird"}, True),
    ("msg|re", "'^second$'", {"msg": "first\nsecond\nthird"}, False),
    ("msg|re|s", "'first.second'", {"msg": "first\nsecond"}, True),
    ("msg|re", "'first.second'", {"msg": "first\nsecond"}, False),
    ("ip|cidr", "'10.0.0.0/8'", {"ip": "10.20.30.40"}, True),
    ("ip|cidr", "'10.0.0.0/8'", {"ip": "11.0.0.1"}, False),
    ("ip|cidr", "'fe80::/10'", {"ip": "fe80::1"}, True),
    ("ip|cidr", "['192.168.0.0/16', '172.16.0.0/12']", {"ip": "172.20.1.1"}, True),
    ("ip|cidr", "'10.0.0.0/8'", {"ip": "not an ip"}, False),
    ("msg|base64", "'secret'", {"msg": base64.b64encode(b"secret").decode()}, True),
    ("msg|base64|contains", "'secret'", {"msg": "xx " + base64.b64encode(b"secret").decode() + " yy"}, True),
    ("msg|base64offset|contains", "'http://'", {"msg": base64.b64encode(b"ab http://x").decode()}, True),
    ("msg|base64offset|contains", "'http://'", {"msg": base64.b64encode(b"a http://x").decode()}, True),
    ("msg|base64offset|contains", "'http://'", {"msg": base64.b64encode(b"https://x").decode()}, False),
    ("msg|wide|base64offset|contains", "'cmd'", {"msg": base64.b64encode("run cmd".encode("utf-16-le")).decode()}, True),
    ("msg|utf16le|base64offset|contains", "'cmd'", {"msg": base64.b64encode("x cmd".encode("utf-16-le")).decode()}, True),
    ("msg|wide|base64offset|contains", "'cmd'", {"msg": base64.b64encode("xcmd".encode("utf-16-le")).decode()}, True),
    ("msg|utf16be|base64", "'ab'", {"msg": base64.b64encode("ab".encode("utf-16-be")).decode()}, True),
    ("msg|windash|contains", "' -enc '", {"msg": "powershell /enc abc"}, True),
    ("msg|windash|contains", "' -enc '", {"msg": "powershell \u2013enc abc"}, True),
    ("msg|windash|contains", "' -enc '", {"msg": "powershell -enc abc"}, True),
    ("msg|windash|contains", "' -enc '", {"msg": "powershell enc abc"}, False),
    ("n|gt", "5", {"n": 6}, True),
    ("n|gt", "5", {"n": "5"}, False),
    ("n|gte", "5", {"n": "5"}, True),
    ("n|lt", "5", {"n": 4.5}, True),
    ("n|lte", "5", {"n": 6}, False),
    ("n", "4624", {"n": "4624"}, True),  # number against its text
    ("n", "4624", {"n": 4624}, True),
    ("n", "4624", {"n": "46240"}, False),
    ("flag", "true", {"flag": True}, True),
    ("flag", "true", {"flag": False}, False),
    ("gone", "null", {"other": 1}, True),
    ("gone", "null", {"gone": ""}, True),
    ("gone", "null", {"gone": "x"}, False),
    ("f|exists", "true", {"f": ""}, True),
    ("f|exists", "true", {"g": "x"}, False),
    ("f|exists", "false", {"g": "x"}, True),
    ("a|fieldref", "b", {"a": "Same", "b": "same"}, True),
    ("a|fieldref", "b", {"a": "x", "b": "y"}, False),
    ("list", "'b'", {"list": ["a", "B"]}, True),  # list field: any element
    ("list", "'c'", {"list": ["a", "b"]}, False),
    ("host.name|startswith", "'cam-'", {"host__name": "CAM-01"}, True),  # ECS path, nested event
    ("event.action", "'login'", {"event.action": "login"}, True),  # literal dotted key in event
    ("ts|hour", "13", {"ts": "2024-05-01T13:20:00Z"}, True),
    ("ts|hour", "14", {"ts": "2024-05-01T13:20:00Z"}, False),
]


@pytest.mark.parametrize("field,value,fields,expected", CASES, ids=[f"{c[0]}={c[1]}->{c[3]}" for c in CASES])
def test_sigma_modifier(compile_rule, field, value, fields, expected) -> None:
    eng = compile_rule(RULE.format(field=field, value=value))
    event = fields if "." in "".join(fields) else ev(**fields)
    assert bool(eng.process(event)) is expected


def test_sigma_detection_carries_rule_metadata(compile_rule) -> None:
    eng = compile_rule(RULE.format(field="msg", value="'x'"))
    (det,) = eng.process({"msg": "x"})
    assert det.rule_id == "11111111-1111-1111-1111-111111111111"
    assert det.title == "t" and det.level == "high"
    assert det.tags == ["attack.execution", "attack.t1059.001"]
    assert det.events == [{"msg": "x"}]


def test_sigma_expand_placeholder_needs_values(tmp_path) -> None:
    from detections.sigma import SigmaEngine, load_rules

    p = tmp_path / "r.yml"
    p.write_text(RULE.format(field="user|expand", value="'%admins%'"))
    rs = load_rules([p])
    assert not rs.rules and "unresolved placeholder %admins%" in rs.failures[0].reason
    rs = load_rules([p], placeholders={"admins": ["root", "Administrator"]})
    eng = SigmaEngine(rs.rules)
    assert eng.process({"user": "administrator"}) and not eng.process({"user": "bob"})


@pytest.mark.parametrize("logsource", ["category: test_generic", "product: windows\n  service: security"])
def test_sigma_timestamp_hour_reads_the_ecs_timestamp(compile_rule, logsource) -> None:
    """`@timestamp` is the ECS field, not a Windows event-data name (both log source kinds)."""
    eng = compile_rule(RULE.replace("category: test_generic", logsource).format(field="'@timestamp|hour'", value="[22, 23]"))
    base = {"winlog": {"channel": "Security", "event_id": 4624, "event_data": {}}} if "windows" in logsource else {}
    assert eng.process({**base, "@timestamp": "2026-11-25T22:15:00.000Z"})
    assert not eng.process({**base, "@timestamp": "2026-11-25T10:15:00.000Z"})
