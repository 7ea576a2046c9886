"""What the firewall and IDS parsers share: network fields, community ids, key=value bodies.

Appliances describe one flow in a dozen layouts; these helpers make the ECS side one
layout: ``source``/``destination`` ``ip``/``port``/``address`` (and ``nat``),
``network.transport``/``iana_number``/``type``/``community_id``, ``related.ip``,
``observer.*`` and ``event.action`` verbs (``allow``, ``deny``, ``drop``...). The
``network.community_id`` follows the Community ID v1 spec (Corelight), so a FortiGate
line, a Suricata flow and a Zeek conn entry of one connection share one id.

``split_kv`` reads the ``key=value key="quoted \\" value"`` bodies of FortiGate and
netfilter and the LEEF/CEF-like extensions without regular expressions over the whole
line (a backslash escapes the next character inside quotes; an unterminated quote keeps
the rest of the line as the value and reports it, so the caller can tag the event).
"""
from __future__ import annotations

import base64
import datetime as _dt
import hashlib
import re
from typing import Any

from core.events import Event, set_field

from ._common import parse_ip
from ._syslog import _BSD_TS_RE, _ISO_TS_RE, _PRI_RE, SyslogHeader, _bsd_time, apply_header

__all__ = [
    "IANA",
    "community_id",
    "parse_ip",
    "set_endpoint",
    "set_transport",
    "add_related",
    "set_community_id",
    "split_kv",
    "split_envelope",
    "observer",
]

IANA: dict[str, int] = {"icmp": 1, "igmp": 2, "tcp": 6, "udp": 17, "gre": 47, "esp": 50, "ah": 51, "ipv6-icmp": 58,
                        "icmpv6": 58, "sctp": 132, "ospf": 89, "pim": 103, "vrrp": 112}
_BY_NUMBER = {v: k for k, v in IANA.items() if k != "icmpv6"}

_ICMP4_PAIRS = {8: 0, 0: 8, 13: 14, 14: 13, 15: 16, 16: 15, 10: 9, 9: 10, 17: 18, 18: 17}
_ICMP6_PAIRS = {128: 129, 129: 128, 133: 134, 134: 133, 135: 136, 136: 135, 130: 131, 131: 130, 144: 145, 145: 144}


def community_id(src: str, dst: str, sport: int | None, dport: int | None, proto: int, seed: int = 0) -> str | None:
    """Community ID v1 of a flow (``1:<base64 sha1>``), ``None`` when an address is not one.

    ICMP uses type/code as ports, mapped to the reply type for two-way message kinds,
    as the spec says; flows are ordered so both directions hash alike.
    """
    a, b = parse_ip(src), parse_ip(dst)
    if a is None or b is None or a.version != b.version:
        return None
    one_way = False
    if proto in (1, 58) and sport is not None:
        pairs = _ICMP4_PAIRS if proto == 1 else _ICMP6_PAIRS
        if sport in pairs:
            dport = pairs[sport]
        else:
            one_way = True
    if not 0 <= proto <= 255 or not 0 <= seed <= 65535:
        return None
    if any(p is not None and not 0 <= p <= 65535 for p in (sport, dport)):
        return None
    if proto in (6, 17, 132) and (sport is None or dport is None):
        return None  # a TCP/UDP/SCTP flow is its ports too: a hash without them would join other flows
    has_ports = proto in (1, 6, 17, 58, 132) and sport is not None and dport is not None
    ab, bb = a.packed, b.packed
    sp, dp = (sport or 0), (dport or 0)
    if not one_way and (ab, sp) > (bb, dp):
        ab, bb, sp, dp = bb, ab, dp, sp
    data = seed.to_bytes(2, "big") + ab + bb + bytes((proto, 0))
    if has_ports:
        data += sp.to_bytes(2, "big") + dp.to_bytes(2, "big")
    return "1:" + base64.b64encode(hashlib.sha1(data).digest()).decode("ascii")


def add_related(ev: Event, kind: str, value: Any) -> None:
    """Append ``value`` to ``related.<kind>`` once (``ip``, ``user``, ``hosts``, ``hash``)."""
    if value in (None, ""):
        return
    rel = ev.setdefault("related", {}).setdefault(kind, [])
    if value not in rel:
        rel.append(value)


def set_endpoint(ev: Event, side: str, ip: Any = None, port: Any = None, *, address: bool = False) -> None:
    """``<side>.ip``/``port`` (and ``address`` when asked) from loose values; non-addresses go to ``domain``."""
    if ip not in (None, "", "-", "N/A"):
        text = str(ip)
        addr = parse_ip(text)
        if addr is not None:
            set_field(ev, f"{side}.ip", str(addr) if "%" in text else text)
            add_related(ev, "ip", text)
        else:
            set_field(ev, f"{side}.domain", text)
        if address:
            set_field(ev, f"{side}.address", text)
    if port not in (None, "", "-"):
        try:
            num = int(port)
        except (TypeError, ValueError, OverflowError):
            return
        if 0 <= num <= 65535:  # anything else is no port (and past 64 bits no store could keep it)
            set_field(ev, f"{side}.port", num)


def set_transport(ev: Event, proto: Any) -> int | None:
    """``network.transport`` and ``network.iana_number`` from a name or number; returns the number."""
    if proto in (None, ""):
        return None
    text = str(proto).strip().lower()
    if text.isdigit():
        num = int(text)
        name = _BY_NUMBER.get(num)
    else:
        name = "ipv6-icmp" if text in ("icmpv6", "icmp6") else text
        num = IANA.get(name)
    if name:
        set_field(ev, "network.transport", name)
    if num is not None:
        set_field(ev, "network.iana_number", str(num))
    return num


def set_community_id(ev: Event, proto: int | None, sport: int | None = None, dport: int | None = None) -> None:
    """``network.community_id`` from the event's source/destination ip and port (and ``network.type``)."""
    src = ev.get("source", {}).get("ip")
    dst = ev.get("destination", {}).get("ip")
    if not src or not dst:
        return
    addr = parse_ip(src)
    if addr is not None:
        set_field(ev, "network.type", "ipv4" if addr.version == 4 else "ipv6")
    if proto is None:
        return
    if sport is None:
        sport = ev.get("source", {}).get("port")
    if dport is None:
        dport = ev.get("destination", {}).get("port")
    cid = community_id(src, dst, sport, dport, proto)
    if cid:
        set_field(ev, "network.community_id", cid)


def observer(ev: Event, vendor: str, product: str, type_: str) -> None:
    """``observer.vendor``/``product``/``type`` (``firewall``, ``ids``...) of the appliance that logged."""
    set_field(ev, "observer.vendor", vendor)
    set_field(ev, "observer.product", product)
    set_field(ev, "observer.type", type_)


def split_kv(text: str, pos: int = 0) -> tuple[dict[str, str], bool]:
    """``key=value`` pairs from ``text[pos:]``: ``(pairs, ok)``; ``ok`` is False for broken syntax.

    Values may be bare (up to the next space) or double-quoted with backslash escapes.
    A word without ``=`` or an unterminated quote makes ``ok`` False; what was read
    before stays (the caller tags the event instead of dropping the line).
    """
    out: dict[str, str] = {}
    ok = True
    n = len(text)
    i = pos
    while i < n:
        while i < n and text[i] == " ":
            i += 1
        if i >= n:
            break
        eq = text.find("=", i)
        sp = text.find(" ", i)
        if eq < 0 or (0 <= sp < eq):
            ok = False
            i = n if sp < 0 else sp + 1
            continue
        key = text[i:eq]
        i = eq + 1
        if i < n and text[i] == '"':
            i += 1
            buf: list[str] = []
            start = i
            closed = False
            while i < n:
                c = text[i]
                if c == "\\" and i + 1 < n:
                    buf.append(text[start:i])
                    buf.append(text[i + 1])
                    i += 2
                    start = i
                    continue
                if c == '"':
                    buf.append(text[start:i])
                    closed = True
                    i += 1
                    break
                i += 1
            if not closed:
                buf.append(text[start:i])
                ok = False
            out[key] = "".join(buf)
        else:
            end = text.find(" ", i)
            if end < 0:
                end = n
            out[key] = text[i:end]
            i = end
    return out, ok


def split_envelope(ev: Event, prefix: str, payload: str, now: _dt.datetime, zone: _dt.tzinfo) -> None:
    """Read the syslog envelope in ``prefix`` (``<PRI>``, a BSD or ISO time, a host) into ``ev``.

    Appliances write envelopes the syslog parser refuses (``host : %ASA-...``, a
    FortiGate ``key=value`` body straight after an ISO time); this takes whatever part of
    the envelope is there and leaves ``payload`` as the message.
    """
    hdr = SyslogHeader(rfc="3164", message=payload)
    rest = prefix.strip()
    m = _PRI_RE.match(rest)
    if m:
        raw = m.group(1)
        if raw.isdigit() and int(raw) <= 191:
            hdr.priority = int(raw)
        rest = rest[m.end():].lstrip()
        if rest.startswith("1 "):
            hdr.rfc = "5424"
            hdr.version = 1
            rest = rest[2:]
    tm = _BSD_TS_RE.match(rest)
    if tm:
        hdr.timestamp_text = tm.group(0).rstrip()
        ts = _bsd_time(tm, now, zone)
        hdr.timestamp = ts if ts is not None else hdr.timestamp_text
        rest = rest[tm.end():]
    else:
        im = _ISO_TS_RE.match(rest)
        if im:
            hdr.timestamp = hdr.timestamp_text = im.group(1)
            rest = rest[im.end():]
    words = rest.strip(" :").split()
    if words and re.fullmatch(r"[A-Za-z0-9_.:%-]{1,255}", words[0]):
        hdr.hostname = words[0]
        if len(words) > 1 and hdr.rfc == "5424" and words[1] != "-":
            hdr.appname = words[1]
        elif len(words) > 1 and prefix.rstrip().endswith(":") and re.fullmatch(r"[A-Za-z0-9_./-]{1,48}:", words[-1]):
            hdr.appname = words[-1][:-1]
    apply_header(ev, hdr, now)
