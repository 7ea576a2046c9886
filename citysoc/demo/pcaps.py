"""Camera-network captures written with scapy: ordinary RTSP to the recorders, and the
packets of each network scenario (telnet guessing, a scan, a new outside destination,
an unmanaged device). Read back by ``collectors.network`` like any capture."""
from __future__ import annotations

import random
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from typing import Any

from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether
from scapy.utils import RawPcapWriter

from citysoc.demo.city import VMS_IP, City

__all__ = ["write_pcap", "flow_packets", "normal_flows"]

_MAC_A = "00:0c:29:aa:00:01"
_MAC_B = "00:0c:29:bb:00:02"


@lru_cache(maxsize=65536)
def _frame(src: str, dst: str, sport: int, dport: int, flags: str, seq: int, ack: int, payload: bytes) -> bytes:
    """The frame's bytes, built by scapy once per distinct packet (a week repeats the same
    conversations; building each copy with scapy would dominate the demo's run time)."""
    p = Ether(src=_MAC_A, dst=_MAC_B) / IP(src=src, dst=dst) / TCP(sport=sport, dport=dport, flags=flags, seq=seq,
                                                                    ack=ack)
    if payload:
        p = p / payload
    return bytes(p)


def _pkt(ts: float, src: str, dst: str, sport: int, dport: int, flags: str, seq: int = 0, ack: int = 0,
         payload: bytes = b"") -> tuple[float, bytes]:
    return ts, _frame(src, dst, sport, dport, flags, seq, ack, payload)


def _session(ts: float, src: str, dst: str, sport: int, dport: int, request: bytes, reply: bytes,
             *, close: str = "F") -> list[Any]:
    """A complete small TCP conversation (handshake, one request and reply, close)."""
    c, s = 1000, 5000
    out = [_pkt(ts, src, dst, sport, dport, "S", c),
           _pkt(ts + 0.001, dst, src, dport, sport, "SA", s, c + 1),
           _pkt(ts + 0.002, src, dst, sport, dport, "A", c + 1, s + 1)]
    out.append(_pkt(ts + 0.01, src, dst, sport, dport, "PA", c + 1, s + 1, request))
    out.append(_pkt(ts + 0.02, dst, src, dport, sport, "PA", s + 1, c + 1 + len(request), reply))
    end_c, end_s = c + 1 + len(request), s + 1 + len(reply)
    if close == "R":
        out.append(_pkt(ts + 0.5, src, dst, sport, dport, "R", end_c))
    else:
        out += [_pkt(ts + 0.5, src, dst, sport, dport, "FA", end_c, end_s),
                _pkt(ts + 0.501, dst, src, dport, sport, "FA", end_s, end_c + 1),
                _pkt(ts + 0.502, src, dst, sport, dport, "A", end_c + 1, end_s + 1)]
    return out


def flow_packets(recipe: dict[str, Any], rnd: random.Random) -> list[Any]:
    """Packets for one recipe of :class:`citysoc.demo.scenarios.Scenario.flows`."""
    kind, t = recipe["kind"], float(recipe["start"])
    out: list[Any] = []
    if kind == "telnet_guess":
        for i in range(recipe["count"]):
            out += _session(t + i * 3.0, recipe["src"], recipe["dst"], 40000 + i, 23, b"admin\r\nxc3511\r\n",
                            b"Login incorrect\r\nlogin: ", close="R")
    elif kind == "scan":
        n = 0
        for h in range(recipe["hosts"]):
            dst = f"{recipe['dst_net']}{20 + h}"
            for p in range(recipe["ports"]):
                port = [21, 22, 23, 80, 81, 443, 554, 2323, 5555, 7547, 8000, 8080, 8443, 8888, 37777][p % 15] + \
                    (p // 15) * 1000
                ts = t + n * 0.02
                out += [_pkt(ts, recipe["src"], dst, 50000 + n % 10000, port, "S", 7),
                        _pkt(ts + 0.001, dst, recipe["src"], port, 50000 + n % 10000, "RA", 0, 8)]
                n += 1
    elif kind == "egress":
        for i in range(recipe["count"]):
            out += _session(t + i * 300.0 + rnd.uniform(0, 5), recipe["src"], recipe["dst"], 45000 + i,
                            recipe["port"], b"\x16\x03\x01\x00\x05hello", b"\x16\x03\x03\x00\x02ok")
    elif kind == "rtsp":
        for i in range(recipe["count"]):
            out += _session(t + i * 60.0, recipe["src"], recipe["dst"], 46000 + i, 554,
                            b"OPTIONS rtsp://%s/ RTSP/1.0\r\nCSeq: 1\r\n\r\n" % recipe["dst"].encode(),
                            b"RTSP/1.0 200 OK\r\nCSeq: 1\r\n\r\n")
    else:
        raise ValueError(f"unknown flow recipe {kind!r}")
    return out


def normal_flows(city: City, start: float, end: float, *, cameras: int = 12, seed: int = 7
                 ) -> list[dict[str, Any]]:
    """Ordinary camera-network conversations: the VMS polling a sample of cameras (RTSP)
    when an operator opens a view, irregularly, a few times an hour at most."""
    rnd = random.Random(seed)
    out = []
    for cam in city.cameras[:cameras]:
        t = start + rnd.uniform(60, 1800)
        while t < end:
            out.append({"kind": "rtsp", "src": VMS_IP, "dst": cam.ips[0], "start": t, "count": 1})
            t += rnd.expovariate(1 / 2400.0) + 120
    return out


def write_pcap(path: Path, recipes: Iterable[dict[str, Any]], *, seed: int = 7) -> int:
    """Write the recipes' packets, in time order, to ``path``; returns the packet count."""
    rnd = random.Random(seed)
    pkts: list[tuple[float, bytes]] = []
    for r in recipes:
        pkts += flow_packets(r, rnd)
    pkts.sort(key=lambda p: p[0])
    path.parent.mkdir(parents=True, exist_ok=True)
    with RawPcapWriter(str(path), linktype=1, sync=False) as w:
        w.write_header(None)
        for ts, frame in pkts:
            sec = int(ts)
            w.write_packet(frame, sec=sec, usec=round((ts - sec) * 1e6) % 1_000_000)
    return len(pkts)
