"""IntelMatcher on ECS events: every IOC type, CIDRs (overlapping), subdomains, IPv6
spellings, URL normalisation, hashes, list fields, dotted keys, detections' shape."""
from __future__ import annotations

import datetime as _dt

import pytest

from core.protocols import Detector
from detections.intel import FIELDS, IntelMatcher, IocIndex
from detections.intel.feedload import make_indicator


def _ind(kind: str, value: str, feed: str = "city", **kw):
    return make_indicator(kind, value, feed=feed, **kw)


@pytest.fixture(scope="module")
def matcher() -> IntelMatcher:
    idx = IocIndex.build([
        _ind("ip", "203.0.113.50", confidence=95, source="VNCERT/CC", id="indicator--a1"),
        _ind("ip", "2001:db8::66"),
        _ind("cidr", "198.51.100.0/24", confidence=40),
        _ind("cidr", "10.0.0.0/8", feed="wide", confidence=10),
        _ind("cidr", "10.20.0.0/16", feed="narrow"),
        _ind("cidr", "2001:db8:bad::/48", feed="v6net"),
        _ind("domain", "botnet.example"),
        _ind("url", "http://weather-feed.example/dl/agent.sh"),
        _ind("md5", "098F6BCD4621D373CADE4E832627B4F6"),
        _ind("sha1", "a94a8fe5ccb19ba61c4c0873d391e987982fbbd3"),
        _ind("sha256", "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"),
        _ind("ip", "192.0.2.7", feed="old", expires=_dt.datetime(2026, 1, 1, tzinfo=_dt.timezone.utc)),
    ])
    return IntelMatcher(idx)


def _one(matcher: IntelMatcher, event: dict):
    dets = matcher.process(event)
    assert len(dets) == 1, dets
    return dets[0]


def test_is_a_detector(matcher: IntelMatcher):
    assert isinstance(matcher, Detector) and matcher.name == "intel"


def test_exact_ip_detection_shape(matcher: IntelMatcher):
    ev = {"source": {"ip": "10.9.9.9"}, "destination": {"ip": "203.0.113.50", "port": 23}}
    # 10.9.9.9 is in the "wide" feed's 10/8 as well
    dets = {d.rule_id: d for d in matcher.process(ev)}
    d = dets["intel:city"]
    assert d.engine == "intel" and d.level == "critical" and d.events == [ev]
    assert d.extra["field"] == "destination.ip" and d.extra["matched_value"] == "203.0.113.50"
    assert d.extra["feed"] == "city" and d.extra["source"] == "VNCERT/CC"
    assert d.extra["indicator"]["id"] == "indicator--a1" and d.extra["indicator"]["type"] == "ip"
    assert "intel.ip" in d.tags
    assert dets["intel:wide"].level == "low" and dets["intel:wide"].extra["indicator"]["value"] == "10.0.0.0/8"


def test_cidr_most_specific_network_wins_and_edges(matcher: IntelMatcher):
    assert _one(matcher, {"client": {"ip": "10.20.3.4"}}).rule_id == "intel:narrow"
    assert _one(matcher, {"client": {"ip": "198.51.100.0"}}).extra["indicator"]["value"] == "198.51.100.0/24"
    assert _one(matcher, {"client": {"ip": "198.51.100.255"}}).level == "medium"
    assert matcher.process({"client": {"ip": "198.51.101.0"}}) == []
    assert matcher.process({"client": {"ip": "11.0.0.1"}}) == []
    assert _one(matcher, {"server": {"ip": "2001:db8:bad:ffff::1"}}).rule_id == "intel:v6net"


def test_ipv6_spellings_and_list_fields(matcher: IntelMatcher):
    assert _one(matcher, {"host": {"ip": ["127.0.0.1", "2001:DB8:0:0:0:0:0:66"]}}).extra["field"] == "host.ip"
    assert matcher.process({"host": {"ip": ["not-an-ip", "", "::1"]}}) == []


def test_subdomains_match_their_listed_parent_but_not_lookalikes(matcher: IntelMatcher):
    d = _one(matcher, {"dns": {"question": {"name": "a.b.Botnet.Example."}}})
    assert d.extra["indicator"]["value"] == "botnet.example" and d.extra["field"] == "dns.question.name"
    assert _one(matcher, {"tls": {"client": {"server_name": "botnet.example"}}})
    assert matcher.process({"dns": {"question": {"name": "notbotnet.example"}}}) == []
    assert matcher.process({"dns": {"question": {"name": "botnet.example.com"}}}) == []


def test_hosts_with_ports_and_addresses_in_name_fields(matcher: IntelMatcher):
    assert _one(matcher, {"http": {"request": {"headers": {"host": "cdn.botnet.example:8080"}}}})
    assert _one(matcher, {"url": {"domain": "203.0.113.50"}}).extra["field"] == "url.domain"
    assert _one(matcher, {"destination": {"domain": "[2001:db8::66]:443"}})


def test_urls_are_normalised_and_their_hosts_checked(matcher: IntelMatcher):
    d = _one(matcher, {"url": {"full": "HTTP://Weather-Feed.example:80/dl/agent.sh#x"}})
    assert d.extra["indicator"]["type"] == "url"
    assert matcher.process({"url": {"original": "http://weather-feed.example/dl/other.sh"}}) == []
    d = _one(matcher, {"url": {"original": "https://x.botnet.example/payload"}})
    assert d.extra["indicator"]["type"] == "domain" and d.extra["field"] == "url.original"


def test_url_split_by_an_http_parser_is_rebuilt(matcher: IntelMatcher):
    ev = {"url": {"original": "/dl/agent.sh", "domain": "Weather-Feed.example", "port": 80, "scheme": "http"}}
    d = _one(matcher, ev)
    assert d.extra["field"] == "url.domain+url.original"
    assert d.extra["matched_value"] == "http://Weather-Feed.example:80/dl/agent.sh"
    assert matcher.process({"url": {"original": "/dl/agent.sh", "domain": "weather-feed.example", "port": 8080}}) == []


def test_hashes_any_case_in_file_and_process_fields(matcher: IntelMatcher):
    assert _one(matcher, {"file": {"hash": {"md5": "098f6bcd4621d373cade4e832627b4f6"}}}).extra["indicator"]["type"] == "md5"
    assert _one(matcher, {"process": {"hash": {"sha1": "A94A8FE5CCB19BA61C4C0873D391E987982FBBD3"}}})
    assert _one(matcher, {"process": {"parent": {"hash": {
        "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}}}})


def test_dotted_keys_are_understood(matcher: IntelMatcher):
    assert _one(matcher, {"destination.ip": "203.0.113.50"}).extra["field"] == "destination.ip"


def test_one_detection_per_indicator_per_event(matcher: IntelMatcher):
    ev = {"source": {"ip": "203.0.113.50"}, "related": {"ip": ["203.0.113.50"]}}
    assert _one(matcher, ev).extra["field"] == "source.ip"


def test_expired_indicators_do_not_match(matcher: IntelMatcher):
    assert matcher.process({"source": {"ip": "192.0.2.7"}}) == []


def test_field_map_is_data():
    idx = IocIndex.build([_ind("ip", "192.0.2.1")])
    m = IntelMatcher(idx, {"observer.ip": "ip"})
    assert m.process({"source": {"ip": "192.0.2.1"}}) == []
    assert len(m.process({"observer": {"ip": "192.0.2.1"}})) == 1
    assert FIELDS["dns.question.name"] == "domain"
    with pytest.raises(ValueError, match="unknown kind"):
        IntelMatcher(idx, {"x.y": "color"})


def test_matcher_follows_a_swapped_index():
    holder = {"idx": IocIndex.build([])}
    m = IntelMatcher(lambda: holder["idx"])
    ev = {"source": {"ip": "192.0.2.1"}}
    assert m.process(ev) == []
    holder["idx"] = IocIndex.build([_ind("ip", "192.0.2.1")])
    assert len(m.process(ev)) == 1
