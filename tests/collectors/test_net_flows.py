"""Flow table behaviour (bounds, timeouts, orientation), Community ID vectors, corrupt files."""
from __future__ import annotations

import ipaddress
import struct
from pathlib import Path

import pytest
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether
from scapy.packet import Raw
from scapy.utils import PcapNgWriter, wrpcap

from collectors.network import NetworkDecoder, PcapFormatError, community_id, pcap_events, read_frames
from collectors.network.community_id import icmp_port_equivalents

T0 = 1_764_000_000.0

# Vectors from the Community ID spec's baseline (corelight/community-id-spec, baseline_deflt.json):
# (proto, saddr, daddr, sport, dport, expected); ICMP ports are the type and its mapped counterpart.
SPEC_VECTORS = [
    (6, "128.232.110.120", "66.35.250.204", 34855, 80, "1:LQU9qZlK+B5F3KDmev6m5PMibrg="),
    (6, "66.35.250.204", "128.232.110.120", 80, 34855, "1:LQU9qZlK+B5F3KDmev6m5PMibrg="),
    (17, "192.168.1.52", "8.8.8.8", 54585, 53, "1:d/FP5EW3wiY1vCndhwleRRKHowQ="),
    (17, "8.8.8.8", "192.168.1.52", 53, 54585, "1:d/FP5EW3wiY1vCndhwleRRKHowQ="),
    (6, "2001:470:e5bf:dead:4957:2174:e82c:4887", "2607:f8b0:400c:c03::1a", 63943, 25,
     "1:/qFaeAR+gFe1KYjMzVDsMv+wgU4="),
    (132, "192.168.170.8", "192.168.170.56", 7, 7, "1:MP2EtRCAUIZvTw6MxJHLV7N7JDs="),
    (132, "192.168.170.56", "192.168.170.8", 7, 7, "1:MP2EtRCAUIZvTw6MxJHLV7N7JDs="),
    (46, "10.1.12.1", "10.1.12.2", 0, 0, "1:KHlLkgoJW7ifUTyTSgyVfkFHzKw="),
    (46, "10.1.12.2", "10.1.12.1", 0, 0, "1:KHlLkgoJW7ifUTyTSgyVfkFHzKw="),
]
# ICMP as (proto, saddr, daddr, type, code, expected)
SPEC_ICMP = [
    (1, "192.168.0.89", "192.168.0.1", 8, 0, "1:X0snYXpgwiv9TZtqg64sgzUn6Dk="),
    (1, "192.168.0.1", "192.168.0.89", 0, 0, "1:X0snYXpgwiv9TZtqg64sgzUn6Dk="),
    (1, "10.0.0.1", "10.0.0.2", 11, 0, "1:YHxtAirCG//0OzkcVAukqKQN9xM="),
    (58, "fe80::200:86ff:fe05:80da", "fe80::260:97ff:fe07:69ea", 135, 0, "1:dGHyGvjMfljg6Bppwm3bg0LO8TY="),
    (58, "fe80::260:97ff:fe07:69ea", "fe80::200:86ff:fe05:80da", 136, 0, "1:dGHyGvjMfljg6Bppwm3bg0LO8TY="),
    (58, "3ffe:501:1800:2345::2", "3ffe:507:0:1:200:86ff:fe05:80da", 3, 0, "1:2ObVBgIn28oZvibYZhZMBgh7WdQ="),
    (58, "fe80::200:86ff:fe05:80da", "ff02::2", 133, 0, "1:hO+sN4H+MG5MY/8hIrXPqc4ZQz0="),
]


@pytest.mark.parametrize("proto,saddr,daddr,sport,dport,expected", SPEC_VECTORS)
def test_net_community_id_spec_vectors(proto: int, saddr: str, daddr: str, sport: int, dport: int,
                                       expected: str) -> None:
    a, b = ipaddress.ip_address(saddr).packed, ipaddress.ip_address(daddr).packed
    assert community_id(a, b, proto, sport, dport) == expected


@pytest.mark.parametrize("proto,saddr,daddr,itype,icode,expected", SPEC_ICMP)
def test_net_community_id_icmp_vectors(proto: int, saddr: str, daddr: str, itype: int, icode: int,
                                       expected: str) -> None:
    sport, dport, one_way = icmp_port_equivalents(proto, itype, icode)
    a, b = ipaddress.ip_address(saddr).packed, ipaddress.ip_address(daddr).packed
    assert community_id(a, b, proto, sport, dport, one_way=one_way) == expected


def _udp_frame(i: int, sport: int = 40000, dport: int = 47808) -> bytes:
    return bytes(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
                 / IP(src=f"10.1.{i // 250}.{i % 250 + 1}", dst="10.2.0.1") / UDP(sport=sport, dport=dport)
                 / Raw(b"x"))


def test_net_flow_table_bound_evicts_least_recently_active() -> None:
    dec = NetworkDecoder(max_flows=10)
    out = []
    for i in range(25):
        out += dec.feed(T0 + i * 0.01, 1, _udp_frame(i))
    # Flow 0 is touched again just before the table fills up, so it is not the oldest.
    c = dec.counters()
    assert c["flows_active"] == 10 and c["flows_evicted"] == 15 and c["flows_created"] == 25
    evicted = [e for e in out if e["citysoc"]["network"]["flow_end_reason"] == "evicted"]
    assert [e["source"]["ip"] for e in evicted] == [f"10.1.0.{i + 1}" for i in range(15)]
    rest = dec.flush()
    assert len(rest) == 10 and dec.counters()["flows_active"] == 0


def test_net_flow_table_eviction_prefers_idle_over_busy() -> None:
    dec = NetworkDecoder(max_flows=3)
    for i in range(3):
        dec.feed(T0 + i, 1, _udp_frame(i))
    dec.feed(T0 + 3, 1, _udp_frame(0))  # flow 0 becomes the most recently active
    (evicted,) = dec.feed(T0 + 4, 1, _udp_frame(3))
    assert evicted["source"]["ip"] == "10.1.0.2"


def test_net_idle_timeout_and_expire() -> None:
    dec = NetworkDecoder(udp_idle=5.0)
    assert dec.feed(T0, 1, _udp_frame(1)) == []
    assert dec.expire(T0 + 4.0) == []
    (flow,) = dec.expire(T0 + 6.0)
    assert flow["citysoc"]["network"]["flow_end_reason"] == "idle_timeout"
    assert flow["event"]["duration"] == 0 and flow["network"]["packets"] == 1


def test_net_active_timeout_reports_long_flows_periodically() -> None:
    dec = NetworkDecoder(active_timeout=60.0, udp_idle=1000.0)
    out = []
    for s in range(0, 181, 10):  # a camera stream: one packet every 10 s for 3 minutes
        out += dec.feed(T0 + s, 1, _udp_frame(1, 5004, 5006))
    reports = [e for e in out if e["citysoc"]["network"]["flow_end_reason"] == "active_timeout"]
    assert len(reports) == 3
    assert [e["network"]["packets"] for e in reports] == [7, 6, 6]
    assert len({e["network"]["community_id"] for e in reports}) == 1


def test_net_tcp_orientation_from_synack_when_syn_missing() -> None:
    dec = NetworkDecoder()
    eth = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    dec.feed(T0, 1, bytes(eth / IP(src="10.0.0.2", dst="10.0.0.1") / TCP(sport=554, dport=50000, flags="SA")))
    dec.feed(T0 + 0.1, 1, bytes(eth / IP(src="10.0.0.1", dst="10.0.0.2") / TCP(sport=50000, dport=554, flags="A")))
    (flow,) = dec.flush()
    assert flow["source"] == {"ip": "10.0.0.1", "port": 50000, "bytes": 40, "packets": 1}
    assert flow["destination"]["port"] == 554 and flow["network"]["protocol"] == "rtsp"


def test_net_ipv6_flow_with_fragment_header() -> None:
    dec = NetworkDecoder()
    from scapy.layers.inet6 import IPv6ExtHdrFragment
    eth = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    first = eth / IPv6(src="fd00::1", dst="fd00::2") / IPv6ExtHdrFragment(offset=0, m=1, id=9) / UDP(
        sport=5353, dport=5353) / Raw(b"\x00" * 8)
    later = eth / IPv6(src="fd00::1", dst="fd00::2", nh=44) / IPv6ExtHdrFragment(offset=2, m=0, id=9, nh=17) / Raw(b"y" * 8)
    dec.feed(T0, 1, bytes(first))
    dec.feed(T0, 1, bytes(later))
    assert dec.counters()["fragments"] == 1
    flows = dec.flush()
    assert {(f["source"].get("port"), f["network"]["packets"]) for f in flows} == {(5353, 1), (0, 1)}


def test_net_rejects_bad_max_flows() -> None:
    with pytest.raises(ValueError, match="max_flows"):
        NetworkDecoder(max_flows=0)


# ---------------------------------------------------------------- corrupt files
def _sample_pcap(path: Path, n: int = 5) -> None:
    pk = []
    for i in range(n):
        p = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(
            sport=1000 + i, dport=53) / Raw(b"\x00" * 20)
        p.time = T0 + i
        pk.append(p)
    wrpcap(str(path), pk)


def test_net_truncated_record_keeps_earlier_events(tmp_path: Path) -> None:
    path = tmp_path / "cut.pcap"
    _sample_pcap(path)
    data = path.read_bytes()
    rec = 16 + 62  # record header + frame
    cut = 24 + 3 * rec + 16 + 10  # inside the fourth record's data
    path.write_bytes(data[:cut])
    got = []
    with pytest.raises(PcapFormatError) as info:
        for ev in pcap_events(path):
            got.append(ev)
    assert info.value.offset == 24 + 3 * rec and info.value.packets == 3
    assert "byte offset 258" in str(info.value) and "truncated" in str(info.value)
    flows = [e for e in got if e["event"]["action"] == "network_flow"]
    assert len(flows) == 3, "flows before the corruption are kept"


def test_net_truncated_record_header(tmp_path: Path) -> None:
    path = tmp_path / "cut.pcap"
    _sample_pcap(path)
    path.write_bytes(path.read_bytes()[:24 + 2 * 78 + 7])
    with pytest.raises(PcapFormatError, match="truncated record header") as info:
        list(read_frames(path))
    assert info.value.offset == 24 + 2 * 78 and info.value.packets == 2


def test_net_garbage_is_not_a_capture(tmp_path: Path) -> None:
    path = tmp_path / "notes.pcap"
    path.write_bytes(b"this is a text file, not a capture\n" * 3)
    with pytest.raises(PcapFormatError, match="not a pcap or pcapng") as info:
        list(pcap_events(path))
    assert info.value.offset == 0


def test_net_empty_and_missing_files(tmp_path: Path) -> None:
    empty = tmp_path / "empty.pcap"
    empty.write_bytes(b"")
    with pytest.raises(PcapFormatError):
        list(read_frames(empty))
    with pytest.raises(FileNotFoundError, match="no such capture file"):
        list(read_frames(tmp_path / "missing.pcap"))


def _sample_pcapng(path: Path) -> None:
    w = PcapNgWriter(str(path))
    for i in range(4):
        p = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / IPv6(src="fd00::1", dst="fd00::2") / UDP(
            sport=2000 + i, dport=53) / Raw(b"\x01" * 12)
        p.time = T0 + i
        w.write(p)
    w.close()


def test_net_pcapng_truncated_block(tmp_path: Path) -> None:
    path = tmp_path / "cut.pcapng"
    _sample_pcapng(path)
    good = list(read_frames(path))
    assert len(good) == 4 and [round(ts) for ts, _, _ in good] == [int(T0) + i for i in range(4)]
    data = path.read_bytes()
    path.write_bytes(data[:-30])  # cut inside the last enhanced packet block
    with pytest.raises(PcapFormatError, match="pcapng block") as info:
        list(read_frames(path))
    assert info.value.packets == 3 and 0 < info.value.offset < len(data) - 30


def test_net_pcapng_bad_block_length(tmp_path: Path) -> None:
    path = tmp_path / "bad.pcapng"
    _sample_pcapng(path)
    data = bytearray(path.read_bytes())
    # Find the second EPB (type 6) and break its length field.
    pos = [i for i in range(0, len(data) - 4, 4) if struct.unpack_from("<I", data, i)[0] == 6]
    second = pos[1]
    struct.pack_into("<I", data, second + 4, 7)
    path.write_bytes(bytes(data))
    with pytest.raises(PcapFormatError) as info:
        list(read_frames(path))
    assert info.value.offset == second and info.value.packets == 1


def test_net_hostile_bytes_never_stop_the_decoder() -> None:
    """Mutated and cut frames of every decoded protocol, on every link type: no exception,
    every event serialisable, memory bounded."""
    import random

    import orjson

    rnd = random.Random(20261125)
    eth = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    ip = IP(src="10.0.0.1", dst="10.0.0.2")
    tcp_payloads = ((80, b"GET / HTTP/1.1\r\nHost: a:\xb2\xb2\r\n\r\n"), (554, b"DESCRIBE rtsp://u:p@[::1:554/x RTSP/1.0\r\n\r\n"),
                    (443, b"\x16\x03\x01\x00\x30\x01\x00\x00\x2c\x03\x03" + b"\x00" * 40),
                    (389, b"0\x0c\x02\x01\x01`\x07\x02\x01\x03\x04\x00\x80\x00"), (53, b"\x00\x10" + b"\x00" * 16),
                    (21, b"USER \xff\xfe\r\n"), (22, b"SSH-\xff\r\n"))
    udp_payloads = ((53, b"\x12\x34\x81\x80\x00\x01\x00\x01\x00\x00\x00\x00\xc0\x0c"),
                    (3702, b"<a:Envelope xmlns:a='x'><a:Action>x/Probe</a:Action></a:Envelope>"),
                    (37810, struct.pack("<I4sIIIIII", 32, b"DHIP", 0, 0, 5, 0, 5, 0) + b"[1,2]"))
    bases = [bytes(eth / ip / TCP(sport=1000, dport=p, flags="PA") / Raw(pl)) for p, pl in tcp_payloads]
    bases += [bytes(eth / ip / UDP(sport=1000, dport=p) / Raw(pl)) for p, pl in udp_payloads]
    dec = NetworkDecoder(max_flows=200)
    events = []
    for i in range(6000):
        b = bytearray(rnd.choice(bases))
        for _ in range(rnd.randint(0, 6)):
            b[rnd.randrange(len(b))] = rnd.randrange(256)
        if rnd.random() < 0.3:
            b = b[:rnd.randrange(len(b) + 1)]
        events += dec.feed(T0 + i * 0.001, rnd.choice([1, 1, 1, 0, 101, 113, 276, 228, 229, 108]), bytes(b))
        assert dec.counters()["flows_active"] <= 200
    events += dec.flush()
    c = dec.counters()
    assert c["packets"] == 6000 and c["app_errors"] > 0 and c["app_events"] > 0
    assert c["flows_created"] == c["flows_ended"]
    for ev in events:
        orjson.dumps(ev)


def test_net_unsupported_link_type_is_named(tmp_path: Path) -> None:
    from scapy.utils import RawPcapWriter

    path = tmp_path / "wifi.pcap"
    w = RawPcapWriter(str(path), linktype=105, sync=True)  # 802.11 without radiotap
    w.write_header(None)
    w.write_packet(b"\x08\x00" + b"\x00" * 30, sec=int(T0), usec=0)
    w.close()
    with pytest.raises(PcapFormatError, match=r"unsupported link type\(s\) \[105\]"):
        list(pcap_events(path))
