"""IocIndex CIDR intervals against a brute-force reference: nested, adjacent and duplicate
networks, IPv4 and IPv6, most specific network wins."""
from __future__ import annotations

import ipaddress
import random

from detections.intel import IocIndex
from detections.intel.feedload import make_indicator


def _reference(nets: list[ipaddress._BaseNetwork], addr: str) -> str | None:
    a = ipaddress.ip_address(addr)
    covering = [n for n in nets if a.version == n.version and a in n]
    return str(max(covering, key=lambda n: n.prefixlen)) if covering else None


def test_random_nested_cidrs_match_the_brute_force_answer():
    rng = random.Random(5)
    nets: set[ipaddress._BaseNetwork] = set()
    for _ in range(300):
        base = ipaddress.IPv4Address(rng.choice([0x0A000000, 0xC0A80000, 0xC6336400]) + rng.getrandbits(16))
        nets.add(ipaddress.ip_network(f"{base}/{rng.randint(8, 31)}", strict=False))
    for _ in range(50):
        base = ipaddress.IPv6Address((0x20010DB8 << 96) + (rng.getrandbits(32) << 64))
        nets.add(ipaddress.ip_network(f"{base}/{rng.randint(32, 127)}", strict=False))
    netlist = sorted(nets, key=lambda n: (n.version, n))
    idx = IocIndex.build(make_indicator("cidr", str(n), feed="f") for n in netlist)
    probes = []
    for n in netlist:
        probes += [str(n.network_address), str(n.broadcast_address),
                   str(n.network_address - 1) if int(n.network_address) > 0 else "0.0.0.0",
                   str(n.broadcast_address + 1) if n.version == 4 and int(n.broadcast_address) < 2**32 - 1 else "::1"]
    probes += [str(ipaddress.IPv4Address(rng.getrandbits(32))) for _ in range(500)]
    for p in probes:
        got = idx.lookup_ip(p)
        want = _reference(netlist, p)
        assert (got[0].value if got else None) == want, p


def test_same_network_from_two_feeds_returns_both():
    idx = IocIndex.build([make_indicator("cidr", "10.0.0.0/8", feed="a"),
                          make_indicator("cidr", "10.0.0.0/8", feed="b"),
                          make_indicator("cidr", "10.1.0.0/16", feed="c")])
    assert {i.feed for i in idx.lookup_ip("10.2.0.1")} == {"a", "b"}
    assert {i.feed for i in idx.lookup_ip("10.1.0.1")} == {"c"}
    assert idx.lookup_ip("11.0.0.0") == ()
    assert idx.counts == {"cidr": 3} and idx.feeds == ("a", "b", "c")
