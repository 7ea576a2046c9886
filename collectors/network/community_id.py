"""Community ID v1 flow hash, computed here from the published spec.

Zeek, Suricata, Arkime, Wireshark and Elastic all compute the same string for the same
flow, so an analyst can pivot from one of our flow events to another tool's records by
``network.community_id`` alone. The spec (corelight/community-id-spec): SHA-1 over the
2-byte seed, both addresses, the IP protocol, one pad byte and both ports (ICMP: type
and its counterpart or code), endpoints ordered so the smaller (address, port) comes
first, base64, prefixed ``1:``.

Example::

    >>> community_id(bytes([128,232,110,120]), bytes([66,35,250,204]), 6, 34855, 80)
    '1:LQU9qZlK+B5F3KDmev6m5PMibrg='
"""
from __future__ import annotations

import base64
import hashlib
import struct

__all__ = ["community_id", "icmp_port_equivalents"]

_PORTED = frozenset({6, 17, 132, 1, 58})  # tcp, udp, sctp, icmp, icmpv6

# Request/reply pairs (Zeek's ICMP4_counterpart / ICMP6_counterpart); other types are
# one-way and keep (type, code) without reordering.
_ICMP4 = {8: 0, 0: 8, 13: 14, 14: 13, 15: 16, 16: 15, 10: 9, 17: 18, 18: 17}
_ICMP6 = {128: 129, 129: 128, 133: 134, 134: 133, 135: 136, 136: 135, 130: 131, 131: 130,
          139: 140, 140: 139, 144: 145, 145: 144}


def icmp_port_equivalents(proto: int, icmp_type: int, icmp_code: int) -> tuple[int, int, bool]:
    """Map an ICMP type/code to the (sport, dport, one_way) the spec hashes."""
    table = _ICMP6 if proto == 58 else _ICMP4
    if icmp_type in table:
        return icmp_type, table[icmp_type], False
    return icmp_type, icmp_code, True


def community_id(
    saddr: bytes, daddr: bytes, proto: int, sport: int = 0, dport: int = 0, *, seed: int = 0,
    one_way: bool = False,
) -> str:
    """The v1 Community ID of a flow; addresses are packed (4 or 16 bytes).

    For ICMP pass the already-mapped ports from :func:`icmp_port_equivalents` and its
    ``one_way`` flag: one-way ICMP messages are hashed in the order seen.
    """
    ported = proto in _PORTED
    if not one_way:
        if not (saddr < daddr or (saddr == daddr and (not ported or sport < dport))):
            saddr, daddr, sport, dport = daddr, saddr, dport, sport
    data = struct.pack("!H", seed & 0xFFFF) + saddr + daddr + struct.pack("!BB", proto, 0)
    if ported:
        data += struct.pack("!HH", sport, dport)
    return "1:" + base64.b64encode(hashlib.sha1(data).digest()).decode("ascii")
