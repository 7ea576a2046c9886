"""DNS messages (RFC 1035) to ECS ``dns.*`` fields.

Cameras and IoT controllers resolve few, stable names; a new name, a TXT-heavy
exchange or an NXDOMAIN burst is what a SOC wants to see. Names are decoded with
compression pointers followed under a jump limit, so a crafted packet cannot loop.
"""
from __future__ import annotations

import socket
import struct
from typing import Any

__all__ = ["parse_dns", "DNSError", "TYPE_NAMES"]

TYPE_NAMES = {
    1: "A", 2: "NS", 5: "CNAME", 6: "SOA", 12: "PTR", 13: "HINFO", 15: "MX", 16: "TXT",
    28: "AAAA", 33: "SRV", 35: "NAPTR", 39: "DNAME", 41: "OPT", 43: "DS", 46: "RRSIG",
    47: "NSEC", 48: "DNSKEY", 50: "NSEC3", 64: "SVCB", 65: "HTTPS", 99: "SPF", 251: "IXFR",
    252: "AXFR", 255: "ANY", 257: "CAA",
}
_CLASS_NAMES = {1: "IN", 3: "CH", 4: "HS", 254: "NONE", 255: "ANY"}
_RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED",
           6: "YXDOMAIN", 7: "YXRRSET", 8: "NXRRSET", 9: "NOTAUTH", 10: "NOTZONE"}
_OPCODES = {0: "QUERY", 1: "IQUERY", 2: "STATUS", 4: "NOTIFY", 5: "UPDATE"}
_MAX_RECORDS = 32
_MAX_DATA = 512

_hdr = struct.Struct("!HHHHHH").unpack_from
_rr = struct.Struct("!HHIH").unpack_from
_u16 = struct.Struct("!H").unpack_from


class DNSError(ValueError):
    """A message on a DNS port that is not a well-formed DNS message."""


def _name(msg: bytes, off: int) -> tuple[str, int]:
    labels: list[str] = []
    jumps = 0
    end = -1
    total = 0
    n = len(msg)
    while True:
        if off >= n:
            raise DNSError(f"name runs past the end of the message at byte {off}")
        ln = msg[off]
        if ln == 0:
            off += 1
            break
        if ln & 0xC0 == 0xC0:
            if off + 1 >= n:
                raise DNSError(f"truncated compression pointer at byte {off}")
            if end < 0:
                end = off + 2
            jumps += 1
            if jumps > 16:
                raise DNSError("compression pointer loop")
            off = ((ln & 0x3F) << 8) | msg[off + 1]
            continue
        if ln & 0xC0:
            raise DNSError(f"unsupported label type {ln:#x} at byte {off}")
        label = msg[off + 1:off + 1 + ln]
        if len(label) != ln:
            raise DNSError(f"label runs past the end of the message at byte {off}")
        total += ln + 1
        if total > 255:
            raise DNSError("name longer than 255 bytes")
        labels.append(label.decode("ascii", "backslashreplace"))
        off += 1 + ln
    return ".".join(labels), (end if end >= 0 else off)


def _rdata(msg: bytes, rtype: int, off: int, rdlen: int) -> str:
    raw = msg[off:off + rdlen]
    if rtype == 1 and rdlen == 4:
        return socket.inet_ntop(socket.AF_INET, raw)
    if rtype == 28 and rdlen == 16:
        return socket.inet_ntop(socket.AF_INET6, raw)
    if rtype in (2, 5, 12, 39):
        return _name(msg, off)[0]
    if rtype == 15 and rdlen >= 3:
        return f"{_u16(msg, off)[0]} {_name(msg, off + 2)[0]}"
    if rtype == 33 and rdlen >= 7:
        prio, weight, port = struct.unpack_from("!HHH", msg, off)
        return f"{prio} {weight} {port} {_name(msg, off + 6)[0]}"
    if rtype in (16, 99):
        parts = []
        i = 0
        while i < len(raw):
            ln = raw[i]
            parts.append(raw[i + 1:i + 1 + ln].decode("utf-8", "backslashreplace"))
            i += 1 + ln
        return " ".join(parts)[:_MAX_DATA]
    if rtype == 6:
        mname, o = _name(msg, off)
        rname, o = _name(msg, o)
        return f"{mname} {rname}"
    return raw[: _MAX_DATA // 2].hex()


def parse_dns(msg: bytes) -> dict[str, Any]:
    """Decode one DNS message into ECS ``dns`` fields; raises :class:`DNSError` if malformed."""
    if len(msg) < 12:
        raise DNSError(f"message of {len(msg)} bytes is shorter than the 12-byte header")
    ident, flags, qd, an, _ns, _ar = _hdr(msg, 0)
    is_response = bool(flags & 0x8000)
    dns: dict[str, Any] = {
        "id": ident,
        "type": "answer" if is_response else "query",
        "op_code": _OPCODES.get((flags >> 11) & 0xF, str((flags >> 11) & 0xF)),
    }
    hflags = [name for bit, name in ((0x400, "AA"), (0x200, "TC"), (0x100, "RD"), (0x80, "RA"),
                                     (0x20, "AD"), (0x10, "CD")) if flags & bit]
    if hflags:
        dns["header_flags"] = hflags
    if is_response:
        dns["response_code"] = _RCODES.get(flags & 0xF, str(flags & 0xF))
    off = 12
    if qd:
        name, off = _name(msg, off)
        if off + 4 > len(msg):
            raise DNSError("question runs past the end of the message")
        qtype, qclass = struct.unpack_from("!HH", msg, off)
        off += 4
        dns["question"] = {
            "name": name,
            "type": TYPE_NAMES.get(qtype, f"TYPE{qtype}"),
            "class": _CLASS_NAMES.get(qclass & 0x7FFF, f"CLASS{qclass}"),
        }
        for _ in range(min(qd, _MAX_RECORDS) - 1):  # rare: more than one question
            _, off = _name(msg, off)
            off += 4
    if is_response and an:
        answers: list[dict[str, Any]] = []
        resolved: list[str] = []
        for _ in range(min(an, _MAX_RECORDS)):
            name, off = _name(msg, off)
            if off + 10 > len(msg):
                raise DNSError("answer record runs past the end of the message")
            rtype, rclass, ttl, rdlen = _rr(msg, off)
            off += 10
            if off + rdlen > len(msg):
                raise DNSError("answer data runs past the end of the message")
            data = _rdata(msg, rtype, off, rdlen)
            off += rdlen
            tname = TYPE_NAMES.get(rtype, f"TYPE{rtype}")
            answers.append({"name": name, "type": tname, "class": _CLASS_NAMES.get(rclass, f"CLASS{rclass}"),
                            "ttl": ttl, "data": data})
            if rtype in (1, 28):
                resolved.append(data)
        dns["answers"] = answers
        if resolved:
            dns["resolved_ip"] = resolved
    return dns
