"""pcap -> ECS network events, in packets per second, against scapy's own readers.

The capture (mixed HTTP, TLS, DNS and UDP media traffic, 200k packets; 20k with
``--quick``) is generated once with scapy-built frames and cached in
``bench/results/``. In the same run, over the same file, three readers are timed:

* ``scapy_pcapreader``: ``PcapReader`` with full dissection (the slow path we avoid);
* ``scapy_rawpcapreader``: ``RawPcapReader`` that only reads records (the ceiling);
* ``citysoc_pcap_events``: our ``pcap_events`` (raw read, header decoding, flow table,
  app decoders, event dicts).

The figure that matters is ``ratio_vs_pcapreader`` (goal: >= 10).
"""
from __future__ import annotations

import struct
import time
from pathlib import Path

__all__ = ["run"]

HERE = Path(__file__).resolve().parent
T0 = 1_764_000_000.0


def _templates() -> dict[str, list[tuple[str, bytes]]]:
    """Frame templates per session kind, built with scapy once: (direction, frame)."""
    from scapy.layers.dns import DNS, DNSQR, DNSRR
    from scapy.layers.inet import IP, TCP, UDP
    from scapy.layers.l2 import Ether
    from scapy.packet import Raw

    eth = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    c, s = "10.0.0.1", "10.9.0.1"

    def tcp(d: str, flags: str, payload: bytes = b"", sport: int = 40000, dport: int = 80) -> tuple[str, bytes]:
        if d == "c":
            p = eth / IP(src=c, dst=s) / TCP(sport=sport, dport=dport, flags=flags)
        else:
            p = eth / IP(src=s, dst=c) / TCP(sport=dport, dport=sport, flags=flags)
        return d, bytes(p / Raw(payload)) if payload else bytes(p)

    def session(dport: int, c2s: bytes, s2c: bytes, data_segments: int) -> list[tuple[str, bytes]]:
        seq = [tcp("c", "S", dport=dport), tcp("s", "SA", dport=dport), tcp("c", "A", dport=dport),
               tcp("c", "PA", c2s, dport=dport), tcp("s", "PA", s2c, dport=dport)]
        seq += [tcp("s", "A", b"\xab" * 1400, dport=dport) for _ in range(data_segments)]
        seq += [tcp("c", "A", dport=dport), tcp("c", "FA", dport=dport), tcp("s", "FA", dport=dport),
                tcp("c", "A", dport=dport)]
        return seq

    http_req = (b"GET /cgi-bin/snapshot.cgi?channel=1 HTTP/1.1\r\nHost: cam.hcmc.example\r\n"
                b"User-Agent: VMS/2.1\r\nAccept: */*\r\n\r\n")
    http_resp = b"HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\nContent-Length: 14000\r\n\r\n"
    hello = (b"\x16\x03\x01\x00\x45\x01\x00\x00\x41\x03\x03" + b"\x11" * 32 + b"\x00\x00\x04\x13\x01\xc0\x2f"
             b"\x01\x00\x00\x14\x00\x00\x00\x10\x00\x0e\x00\x00\x0bnvr.example")
    q = DNS(id=1, rd=1, qd=DNSQR(qname="nvr.hcmc.example", qtype="A"))
    a = DNS(id=1, qr=1, rd=1, ra=1, qd=DNSQR(qname="nvr.hcmc.example", qtype="A"),
            an=[DNSRR(rrname="nvr.hcmc.example", type="A", ttl=60, rdata="10.9.0.5")])
    dns = [("c", bytes(eth / IP(src=c, dst=s) / UDP(sport=40000, dport=53) / Raw(bytes(q)))),
           ("s", bytes(eth / IP(src=s, dst=c) / UDP(sport=53, dport=40000) / Raw(bytes(a))))]
    media = [("s", bytes(eth / IP(src=s, dst=c) / UDP(sport=5004, dport=40000) / Raw(b"\x80\x60" + b"\x00" * 1000)))
             for _ in range(20)]
    return {
        "http": session(80, http_req, http_resp, 10),
        "tls": session(443, hello, b"\x16\x03\x03\x00\x02\x02\x00", 10),
        "dns": dns,
        "media": media,
    }


def _patch(frame: bytes, cli: bytes, srv: bytes, cport: int, direction: str) -> bytes:
    """Give a template frame its session's addresses and client port (checksums left stale)."""
    b = bytearray(frame)
    if direction == "c":
        b[26:30], b[30:34] = cli, srv
        struct.pack_into("!H", b, 34, cport)
    else:
        b[26:30], b[30:34] = srv, cli
        struct.pack_into("!H", b, 36, cport)
    return bytes(b)


def make_capture(path: Path, packets: int) -> None:
    """Write a pcap of ``packets`` frames: many interleaved sessions, like a busy uplink."""
    from scapy.utils import RawPcapWriter

    tpl = _templates()
    kinds = ["http", "tls", "dns", "dns", "media"]
    w = RawPcapWriter(str(path), linktype=1, sync=False)
    w.write_header(None)
    active: list[list] = []  # [frames, index, cli, srv, cport]
    written = 0
    session = 0
    t = T0
    while written < packets:
        while len(active) < 400:  # concurrent sessions
            kind = kinds[session % len(kinds)]
            cli = struct.pack("!I", 0x0A000000 + (session % 60000) + 2)
            srv = struct.pack("!I", 0x0A090000 + (session % 97) + 1)
            active.append([tpl[kind], 0, cli, srv, 1024 + session % 60000])
            session += 1
        i = written % len(active)
        sess = active[i]
        direction, frame = sess[0][sess[1]]
        t += 0.00002
        sec = int(t)
        w.write_packet(_patch(frame, sess[2], sess[3], sess[4], direction), sec=sec,
                       usec=round((t - sec) * 1e6) % 1_000_000)
        written += 1
        sess[1] += 1
        if sess[1] == len(sess[0]):
            active.pop(i)
    w.close()


def _time(fn) -> tuple[float, int]:
    t0 = time.perf_counter()
    n = fn()
    return time.perf_counter() - t0, n


def run(quick: bool) -> dict:
    from scapy.all import PcapReader, RawPcapReader

    from collectors.network import NetworkDecoder, pcap_events

    packets = 20_000 if quick else 200_000
    results = HERE / "results"
    results.mkdir(exist_ok=True)
    path = results / f"bench_pcap_{packets}.pcap"
    if not path.exists():
        t0 = time.perf_counter()
        make_capture(path, packets)
        print(f"   generated {path.name} ({path.stat().st_size // 1024} KiB) in {time.perf_counter() - t0:.1f} s")

    def full() -> int:
        n = 0
        with PcapReader(str(path)) as r:
            for _ in r:
                n += 1
        return n

    def raw() -> int:
        n = 0
        with RawPcapReader(str(path)) as r:
            for _ in r:
                n += 1
        return n

    dec = NetworkDecoder(max_flows=100_000)
    events = 0

    def ours() -> int:
        nonlocal events
        for _ in pcap_events(path, decoder=dec):
            events += 1
        return dec.counters()["packets"]

    t_raw, n_raw = _time(raw)
    t_ours, n_ours = _time(ours)
    t_full, n_full = _time(full)
    assert n_raw == n_ours == n_full == packets, (n_raw, n_ours, n_full)
    c = dec.counters()
    pps = {k: round(packets / t) for k, t in (("scapy_pcapreader", t_full), ("scapy_rawpcapreader", t_raw),
                                                ("citysoc_pcap_events", t_ours))}
    return {
        "packets": packets,
        "file_bytes": path.stat().st_size,
        "packets_per_s": pps,
        "seconds": {"scapy_pcapreader": round(t_full, 2), "scapy_rawpcapreader": round(t_raw, 2),
                    "citysoc_pcap_events": round(t_ours, 2)},
        "ratio_vs_pcapreader": round(pps["citysoc_pcap_events"] / pps["scapy_pcapreader"], 1),
        "fraction_of_rawpcapreader": round(pps["citysoc_pcap_events"] / pps["scapy_rawpcapreader"], 3),
        "events": events,
        "flows": c["flows_created"],
        "app_events": c["app_events"],
        "goal_ratio": 10,
    }
