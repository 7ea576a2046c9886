"""SigmaHQ's rules/network (zeek, dns, firewall) load and fire on our parsed events, through the field mapping.

The events are built from Elastic's pipeline-test logs in ``shared/corpora/ecs-parity``
(a Zeek DNS record, an EdgeOS iptables line), parsed by our parsers, with only the value
the rule looks for changed; the unchanged corpus events must not fire. ``product: zeek``
rules see only Zeek events (routing by ``event.module``), so their ``not selection``
conditions cannot match a firewall or camera line.
"""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from collectors.parsers import parse_record
from core.protocols import RawRecord
from detections.sigma import SigmaEngine, load_rules
from citysoc.testing import corpora_dir

NOW = dt.datetime(2026, 11, 25, 12, 0, 0, tzinfo=dt.timezone.utc)


def _shared() -> Path:
    base = corpora_dir()
    if (base / "sigma" / "rules" / "network").is_dir() and (base / "ecs-parity").is_dir():
        return base
    pytest.skip(f"{base} (sigma, ecs-parity) not found: set CITYSOC_CORPORA or put shared/corpora beside the repo")


@pytest.fixture(scope="module")
def engine(tmp_path_factory) -> SigmaEngine:
    net = _shared() / "sigma" / "rules" / "network"
    rs = load_rules([net / "zeek", net / "dns", net / "firewall"], cache_dir=tmp_path_factory.mktemp("plans"))
    # Every rule of the three folders loads (a failure names the file and the reason).
    assert not rs.failures, [f"{f.path}: {f.reason}" for f in rs.failures]
    assert rs.files == 29 and len(rs.rules) == 29  # 21 zeek + 7 dns + 1 firewall at the pinned SigmaHQ commit
    return SigmaEngine(rs.rules)


def _titles(engine: SigmaEngine, ev: dict) -> set[str]:
    return {d.title for d in engine.process(ev)}


def _zeek_dns(query: str) -> dict:
    line = (_shared() / "ecs-parity" / "zeek.dns" / "test-dns.log").read_text().splitlines()[0]
    doc = json.loads(line)
    doc["query"] = query
    return parse_record(RawRecord(json.dumps(doc).encode(), format="zeek"), now=NOW)


def test_zeek_product_rule_fires_on_a_zeek_dns_event(engine) -> None:
    assert "DNS TOR Proxies" in _titles(engine, _zeek_dns("abcdefgh.onion.ly"))


def test_dns_category_rules_fire_through_ecs_names(engine) -> None:
    titles = _titles(engine, _zeek_dns("aGVsbG8gd29ybGQ==.exfil.example.com"))
    assert "Suspicious DNS Query with B64 Encoded String" in titles
    assert _titles(engine, _zeek_dns("portal.example.com.vn")) == set()


def test_firewall_category_rule_fires_on_an_iptables_accept(engine) -> None:
    lines = (_shared() / "ecs-parity" / "iptables.log" / "test-ubiquiti.log").read_text().splitlines()
    accept_443 = lines[1]  # [WAN_OUT-2000-A] ... DPT=443
    assert "DPT=443 " in accept_443
    ev = parse_record(RawRecord(accept_443.encode(), format="netfilter"), now=NOW)
    assert "Cleartext Protocol Usage" not in _titles(engine, ev)
    telnet = parse_record(RawRecord(accept_443.replace("DPT=443 ", "DPT=23 ").encode(), format="netfilter"), now=NOW)
    assert (telnet["event"]["action"], telnet["destination"]["port"]) == ("accept", 23)
    assert "Cleartext Protocol Usage" in _titles(engine, telnet)
    dropped = lines[2].replace("DPT=1443 ", "DPT=23 ")  # [source-dest-default-D]: a drop, not cleartext use
    assert "Cleartext Protocol Usage" not in _titles(
        engine, parse_record(RawRecord(dropped.encode(), format="netfilter"), now=NOW))


def test_zeek_rules_do_not_see_other_sources(engine) -> None:
    # zeek_rdp_public_listener is "not selection": without routing by event.module it would fire on anything.
    line = (_shared() / "ecs-parity" / "iptables.log" / "test-ubiquiti.log").read_text().splitlines()[1]
    ev = parse_record(RawRecord(line.encode(), format="netfilter"), now=NOW)
    assert not any("Zeek" in d.title or d.rule_id.startswith("zeek") for d in engine.process(ev))
    fired = {d.title for d in engine.process(ev)}
    assert all("RDP" not in t for t in fired)


def _corpus_events(*streams: str) -> list[dict]:
    """Every line of these ecs-parity streams, parsed as serve would parse it."""
    fmt = {"system.auth": "syslog", "system.syslog": "syslog", "auditd.log": "auditd"}
    out = []
    for stream in streams:
        for log in sorted((_shared() / "ecs-parity" / stream).glob("*.log")):
            for line in log.read_text().splitlines():
                if line.strip():
                    out.append(parse_record(RawRecord(line.encode(), format=fmt[stream]), now=NOW))
    return out


@pytest.fixture(scope="module")
def appliance_engine(tmp_path_factory) -> SigmaEngine:
    net = _shared() / "sigma" / "rules" / "network"
    rs = load_rules([net / "cisco", net / "juniper", net / "huawei"], cache_dir=tmp_path_factory.mktemp("plans"))
    assert not rs.failures and len(rs.rules) >= 15
    return SigmaEngine(rs.rules)


def test_appliance_product_rules_do_not_see_linux_logs(appliance_engine) -> None:
    # SigmaHQ's cisco/aaa keyword rules ("erase", "delete", "format") fired on every Linux
    # syslog line, whose severity name "informational" contains "format": 60,000 alerts
    # for 60,000 sshd lines before product: cisco was routed to cisco_* modules only.
    events = _corpus_events("system.auth", "system.syslog", "auditd.log")
    with_pri = b"<38>1 2026-12-02T10:00:00Z srv-01 sshd 4242 - - Failed password for invalid user u0 from 10.0.0.1 port 1024 ssh2"
    events.append(parse_record(RawRecord(with_pri, format="syslog"), now=NOW))
    assert len(events) > 30
    assert "informational" in json.dumps(events[-1])
    fired = [(d.title, ev["event"].get("dataset")) for ev in events for d in appliance_engine.process(ev)]
    assert fired == []


def test_cisco_rule_still_fires_on_a_cisco_event(appliance_engine) -> None:
    line = (_shared() / "ecs-parity" / "cisco_asa.log" / "test-repeat-deny.log").read_text().splitlines()[0]
    ev = parse_record(RawRecord(line.encode(), format="cisco_asa"), now=NOW)
    assert ev["event"]["module"] == "cisco_asa"
    assert "Cisco File Deletion" not in {d.title for d in appliance_engine.process(ev)}
    cmd = "<165>Dec 02 2026 10:12:01: %ASA-5-111008: User 'admin' executed the 'delete /noconfirm flash:/asa.bin' command."
    ev = parse_record(RawRecord(cmd.encode(), format="cisco_asa"), now=NOW)
    assert "Cisco File Deletion" in {d.title for d in appliance_engine.process(ev)}


def test_auditd_service_rules_see_auditd_events_only() -> None:
    from detections.sigma.logsources import event_route_key, route_for

    route, warnings = route_for("linux", None, "auditd")
    assert warnings == []
    auditd = _corpus_events("auditd.log")
    sshd = _corpus_events("system.auth")
    assert all(route.accepts(event_route_key(ev)) for ev in auditd)
    assert not any(route.accepts(event_route_key(ev)) for ev in sshd)
    # A service without a module of its own (sshd is the 'system' module) is not narrowed.
    assert all(route_for("linux", None, "sshd")[0].accepts(event_route_key(ev)) for ev in sshd)
