"""Link, IP and transport headers read with ``struct`` straight from captured bytes.

Full scapy dissection builds a Python object per layer and runs at a few thousand
packets a second; a flow monitor needs only addresses, ports, TCP flags and where the
payload starts. :func:`dissect` finds those in one pass over the raw frame, for the
link types captures actually come in (Ethernet with VLAN/QinQ/PPPoE, Linux cooked
SLL and SLL2, raw IP, BSD loopback/null), and returns ``None`` for anything that is not
IPv4/IPv6 (ARP, LLDP, ...) so the caller can count it.

The payload is bounded by the IP length, never by the frame length: Ethernet pads
short frames and that padding must not be mistaken for application data.
"""
from __future__ import annotations

import struct
from typing import NamedTuple

__all__ = [
    "Packet",
    "dissect",
    "dissect_tuple",
    "LINKTYPE_ETHERNET",
    "LINKTYPE_RAW",
    "LINKTYPE_LINUX_SLL",
    "LINKTYPE_LINUX_SLL2",
    "LINKTYPE_NULL",
    "LINKTYPE_LOOP",
    "LINKTYPE_IPV4",
    "LINKTYPE_IPV6",
    "SUPPORTED_LINKTYPES",
    "TCP",
    "UDP",
    "ICMP",
    "ICMPV6",
]

LINKTYPE_NULL = 0
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
LINKTYPE_LOOP = 108
LINKTYPE_LINUX_SLL = 113
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
LINKTYPE_LINUX_SLL2 = 276
# DLT_RAW has the values 12 (most BSDs) and 14 (OpenBSD) in files written there.
SUPPORTED_LINKTYPES = frozenset({0, 1, 12, 14, 101, 108, 113, 228, 229, 276})

TCP, UDP, ICMP, ICMPV6 = 6, 17, 1, 58

_ETH_IPV4, _ETH_IPV6 = 0x0800, 0x86DD
_VLAN_TAGS = frozenset({0x8100, 0x88A8, 0x9100})
_PPPOE_SESSION = 0x8864
_IPV6_EXT = frozenset({0, 43, 60, 51, 135, 139, 140, 253, 254})  # 44 (fragment) handled apart
_BSD_AF_INET6 = frozenset({10, 24, 28, 30})

_u16 = struct.Struct("!H").unpack_from
_u16x2 = struct.Struct("!HH").unpack_from


class Packet(NamedTuple):
    """The facts of one IP packet the flow table and app decoders need.

    ``src``/``dst`` are packed addresses (4 or 16 bytes); ``sport``/``dport`` are ports,
    or ICMP type/code; ``payload`` is the transport payload (empty when none or when the
    packet is a non-first fragment, ``fragment`` then True).
    """

    version: int
    src: bytes
    dst: bytes
    proto: int
    sport: int
    dport: int
    tcp_flags: int
    ip_len: int
    payload: bytes
    fragment: bool


def _network_offset(linktype: int, data: bytes) -> tuple[int, int]:
    """Return (offset of the IP header, IP version hint 4/6/0) for a frame, (-1, 0) if not IP."""
    n = len(data)
    if linktype == LINKTYPE_ETHERNET:
        if n < 14:
            return -1, 0
        off = 12
        etype = _u16(data, off)[0]
        while etype in _VLAN_TAGS and off + 6 <= n:
            off += 4
            etype = _u16(data, off)[0]
        off += 2
        if etype == _PPPOE_SESSION:
            if off + 8 > n:
                return -1, 0
            ppp = _u16(data, off + 6)[0]
            off += 8
            etype = _ETH_IPV4 if ppp == 0x0021 else _ETH_IPV6 if ppp == 0x0057 else 0
        if etype == _ETH_IPV4:
            return off, 4
        if etype == _ETH_IPV6:
            return off, 6
        return -1, 0
    if linktype == LINKTYPE_LINUX_SLL:
        if n < 16:
            return -1, 0
        etype = _u16(data, 14)[0]
        return (16, 4) if etype == _ETH_IPV4 else (16, 6) if etype == _ETH_IPV6 else (-1, 0)
    if linktype == LINKTYPE_LINUX_SLL2:
        if n < 20:
            return -1, 0
        etype = _u16(data, 0)[0]
        return (20, 4) if etype == _ETH_IPV4 else (20, 6) if etype == _ETH_IPV6 else (-1, 0)
    if linktype in (LINKTYPE_RAW, 12, 14):
        return 0, 0
    if linktype == LINKTYPE_IPV4:
        return 0, 4
    if linktype == LINKTYPE_IPV6:
        return 0, 6
    if linktype in (LINKTYPE_NULL, LINKTYPE_LOOP):
        if n < 4:
            return -1, 0
        # The family is in the writer's byte order: the non-zero end byte holds it.
        fam = data[0] or data[3]
        if fam == 2:
            return 4, 4
        if fam in _BSD_AF_INET6:
            return 4, 6
        return -1, 0
    return -1, 0


def dissect(linktype: int, data: bytes) -> Packet | None:
    """Read the IP and transport headers of one captured frame; ``None`` if not IP or too short."""
    t = dissect_tuple(linktype, data)
    return None if t is None else Packet(*t)


def dissect_tuple(linktype: int, data: bytes) -> tuple | None:
    """:func:`dissect` returning a plain tuple in :class:`Packet` field order (the hot path)."""
    if linktype == 1 and len(data) >= 34 and data[12] == 8 and data[13] == 0:  # Ethernet + IPv4
        off = 14
    else:
        off, _hint = _network_offset(linktype, data)
        if off < 0 or off >= len(data):
            return None
    vbyte = data[off]
    version = vbyte >> 4
    n = len(data)
    if version == 4:
        ihl = (vbyte & 0x0F) * 4
        if ihl < 20 or off + ihl > n:
            return None
        total = _u16(data, off + 2)[0]
        end = off + total
        if total < ihl:  # TSO captures write 0; fall back to what was captured
            end = n
            total = n - off
        elif end > n:
            end = n  # snaplen cut the packet: count the IP length, parse what is there
        frag = _u16(data, off + 6)[0]
        proto = data[off + 9]
        src = data[off + 12:off + 16]
        dst = data[off + 16:off + 20]
        l4 = off + ihl
        if frag & 0x1FFF:  # not the first fragment: no transport header here
            return (4, src, dst, proto, 0, 0, 0, total, b"", True)
    elif version == 6:
        if off + 40 > n:
            return None
        plen = _u16(data, off + 4)[0]
        total = plen + 40
        end = off + total
        if plen == 0:  # jumbogram or TSO: use what was captured
            end = n
            total = n - off
        elif end > n:
            end = n
        proto = data[off + 6]
        src = data[off + 8:off + 24]
        dst = data[off + 24:off + 40]
        l4 = off + 40
        for _ in range(8):
            if proto in _IPV6_EXT:
                if l4 + 2 > end:
                    return None
                nxt = data[l4]
                l4 += (data[l4 + 1] + 2) * 4 if proto == 51 else (data[l4 + 1] + 1) * 8
                proto = nxt
            elif proto == 44:
                if l4 + 8 > end:
                    return None
                nxt = data[l4]
                if _u16(data, l4 + 2)[0] & 0xFFF8:
                    return (6, src, dst, nxt, 0, 0, 0, total, b"", True)
                l4 += 8
                proto = nxt
            else:
                break
    else:
        return None
    if proto == TCP:
        if l4 + 20 > end:
            return (version, src, dst, proto, 0, 0, 0, total, b"", False)
        sport, dport = _u16x2(data, l4)
        doff = (data[l4 + 12] >> 4) * 4
        flags = data[l4 + 13] | ((data[l4 + 12] & 1) << 8)
        start = l4 + doff
        return (version, src, dst, proto, sport, dport, flags, total,
                      data[start:end] if start < end else b"", False)
    if proto == UDP:
        if l4 + 8 > end:
            return (version, src, dst, proto, 0, 0, 0, total, b"", False)
        sport, dport = _u16x2(data, l4)
        return (version, src, dst, proto, sport, dport, 0, total, data[l4 + 8:end], False)
    if proto == ICMP or proto == ICMPV6:
        if l4 + 2 > end:
            return (version, src, dst, proto, 0, 0, 0, total, b"", False)
        return (version, src, dst, proto, data[l4], data[l4 + 1], 0, total, b"", False)
    return (version, src, dst, proto, 0, 0, 0, total, b"", False)
