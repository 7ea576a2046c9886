"""The STIX pattern grammar subset: what becomes an IOC, what is refused and why, and
syntax errors with positions."""
from __future__ import annotations

import pytest

from detections.intel import StixPatternError, UnsupportedPattern, parse_pattern, pattern_iocs


@pytest.mark.parametrize("pattern, iocs", [
    ("[ipv4-addr:value = '1.2.3.4']", [("ip", "1.2.3.4")]),
    ("[ipv6-addr:value = '2001:db8::1']", [("ip", "2001:db8::1")]),
    ("[domain-name:value = 'evil.example' OR url:value = 'http://x.example/a']",
     [("domain", "evil.example"), ("url", "http://x.example/a")]),
    ("[ipv4-addr:value = '1.2.3.4'] OR [ipv4-addr:value = '5.6.7.8'] OR ([domain-name:value = 'a.example'])",
     [("ip", "1.2.3.4"), ("ip", "5.6.7.8"), ("domain", "a.example")]),
    ("[file:hashes.'SHA-256' = 'ab' AND file:size = 100]", [("hash:sha256", "ab")]),
    ("[file:hashes.MD5 = 'aa' OR file:hashes.'SHA-1' = 'bb']", [("hash:md5", "aa"), ("hash:sha1", "bb")]),
    ("[ipv4-addr:value ISSUBSET '10.0.0.0/8']", [("ip", "10.0.0.0/8")]),
    ("[domain-name:value IN ('a.example', 'b.example')]", [("domain", "a.example"), ("domain", "b.example")]),
    ("[url:value = 'http://x.example/it\\'s']", [("url", "http://x.example/it's")]),
    ("[network-traffic:dst_ref.value = '9.9.9.9']", [("ip", "9.9.9.9")]),
    ("[ipv4-addr:value = '1.2.3.4'] WITHIN 600 SECONDS", [("ip", "1.2.3.4")]),
    ("[ipv4-addr:value = '1.2.3.4'] START t'2026-01-01T00:00:00Z' STOP t'2027-01-01T00:00:00Z'", [("ip", "1.2.3.4")]),
    ("  [ domain-name:value='a.example' ]  ", [("domain", "a.example")]),
])
def test_patterns_that_become_iocs(pattern: str, iocs: list):
    assert pattern_iocs(pattern) == iocs


@pytest.mark.parametrize("pattern, why", [
    ("[ipv4-addr:value = '1.2.3.4'] FOLLOWEDBY [domain-name:value = 'a.example']", "FOLLOWEDBY"),
    ("[ipv4-addr:value = '1.2.3.4'] AND [domain-name:value = 'a.example']", "observation operator AND"),
    ("[ipv4-addr:value = '1.2.3.4' AND domain-name:value = 'a.example']", "AND of tests"),
    ("[ipv4-addr:value != '1.2.3.4']", "operator !="),
    ("[ipv4-addr:value NOT = '1.2.3.4']", "negated"),
    ("[domain-name:value LIKE '%.example']", "operator LIKE"),
    ("[process:name = 'busybox']", "object path process:name"),
    ("[ipv4-addr:value = '1.2.3.4'] REPEATS 5 TIMES", "REPEATS"),
    ("[file:size = 10]", "object path file:size"),
])
def test_valid_but_unsupported_patterns_say_why(pattern: str, why: str):
    parse_pattern(pattern)  # the syntax itself is valid
    with pytest.raises(UnsupportedPattern, match=why):
        pattern_iocs(pattern)


@pytest.mark.parametrize("pattern, position, message", [
    ("[ipv4-addr:value = '1.2.3.4'", 28, "expected ']'"),
    ("ipv4-addr:value = '1.2.3.4'", 0, "expected '['"),
    ("[ipv4-addr:value '1.2.3.4']", 17, "expected a comparison operator"),
    ("[ipv4-addr = '1.2.3.4']", 11, "expected ':'"),
    ("[]", 1, "empty observation"),
    ("[ipv4-addr:value = '1.2.3.4'] OR", 32, "expected '['"),
    ("[ipv4-addr:value = '1.2.3.4'] ]", 30, "after a complete pattern"),
    ("[ipv4-addr:value = '1.2.3.4] ", 19, "unexpected character"),
    ("", 0, "empty pattern"),
])
def test_syntax_errors_carry_positions(pattern: str, position: int, message: str):
    with pytest.raises(StixPatternError) as ei:
        pattern_iocs(pattern)
    assert ei.value.position == position and message in ei.value.message


def test_hostile_nesting_is_a_syntax_error_not_a_crash():
    deep = "(" * 5000 + "[ipv4-addr:value = '1.2.3.4']" + ")" * 5000
    with pytest.raises(StixPatternError, match="nested deeper than 64"):
        pattern_iocs(deep)
    inner = "[" + "(" * 5000 + "ipv4-addr:value = '1.2.3.4'" + ")" * 5000 + "]"
    with pytest.raises(StixPatternError, match="nested deeper"):
        pattern_iocs(inner)
    assert pattern_iocs("(" * 10 + "[ipv4-addr:value = '1.2.3.4']" + ")" * 10) == [("ip", "1.2.3.4")]
