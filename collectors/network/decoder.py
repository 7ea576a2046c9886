"""Packets in, ECS network events out: a bounded flow table plus a few app decoders.

:class:`NetworkDecoder` is fed one captured frame at a time (from a pcap file or a live
socket) and returns the events that frame completed:

* a **flow summary** (``event.action: network_flow``) when a flow ends: TCP FIN from
  both sides or RST, idle timeout, the active timeout of a long-lived flow (camera
  streams last for days: a summary is emitted every ``active_timeout`` seconds and the
  counters restart), eviction from a full table, or :meth:`NetworkDecoder.flush`;
* **application events** as they are seen: DNS messages, HTTP and RTSP request/response
  heads, TLS ClientHello (SNI, JA3), SSH banners, FTP USER and login replies, LDAP
  requests, WS-Discovery (ONVIF) and Dahua DHIP discovery, and a
  ``connection_attempt`` for each SYN to telnet, SSH or FTP.

Orientation: ``source`` is the client (the side that sent the SYN; for UDP, the side
not using a well-known service port; else the first sender) and ``destination`` the
server, in flow and application events alike, so ``source.ip`` of an RTSP 401 is the
client that failed to log in. ``network.bytes`` counts IP-layer bytes. A TCP flow is
reported at the second FIN; the last ACK (and stray retransmissions within 10 s) then
count as ``late_packets`` instead of opening a new flow. IP fragments are not
reassembled: a non-first fragment is counted in a port-less flow of its own.

Memory is bounded: at most ``max_flows`` flows (the least recently active is evicted
and counted when a new one needs room), at most ``max_app_events_per_flow`` application
events per flow (the rest are counted on the flow), and message heads are buffered to
16 KiB at most.
"""
from __future__ import annotations

import re
import socket
import struct
import time
from collections import OrderedDict, deque
from typing import Any

from collectors.network.community_id import community_id, icmp_port_equivalents
from collectors.network.dahua import DHIPError, parse_dhip
from collectors.network.dns import DNSError, parse_dns
from collectors.network.http import (
    MAX_HEAD,
    REQUEST_PREFIXES,
    RESPONSE_PREFIXES,
    head_complete,
    http_request_fields,
    http_response_fields,
    parse_head,
    rtsp_request_fields,
    rtsp_response_fields,
)
from collectors.network.ldap import looks_like_ldap, parse_ldap_request
from collectors.network.packet import ICMP, ICMPV6, TCP, UDP, dissect_tuple
from collectors.network.tls import TLSError, client_hello_complete, looks_like_client_hello, parse_client_hello
from collectors.network.wsdiscovery import WSDiscoveryError, parse_ws_discovery
from core.mappings import deep_merge
from core.events import Event

__all__ = ["NetworkDecoder", "TCP_FLAG_NAMES"]

_FIN, _SYN, _RST, _PSH, _ACK, _URG, _ECE, _CWR, _NS = 1, 2, 4, 8, 16, 32, 64, 128, 256
TCP_FLAG_NAMES = ((_SYN, "SYN"), (_ACK, "ACK"), (_FIN, "FIN"), (_RST, "RST"), (_PSH, "PSH"),
                  (_URG, "URG"), (_ECE, "ECE"), (_CWR, "CWR"), (_NS, "NS"))
_TRANSPORTS = {TCP: "tcp", UDP: "udp", ICMP: "icmp", ICMPV6: "ipv6-icmp", 132: "sctp", 47: "gre",
               50: "esp", 2: "igmp", 89: "ospf"}

# Well-known service ports: decide who is the server when the handshake was not seen,
# and name network.protocol when no payload said otherwise.
PORT_PROTOCOLS = {
    20: "ftp-data", 21: "ftp", 22: "ssh", 23: "telnet", 25: "smtp", 53: "dns", 67: "dhcp", 68: "dhcp",
    69: "tftp", 80: "http", 110: "pop3", 123: "ntp", 137: "netbios", 138: "netbios", 139: "netbios",
    143: "imap", 161: "snmp", 162: "snmp", 389: "ldap", 443: "tls", 445: "smb", 502: "modbus",
    554: "rtsp", 636: "ldaps", 993: "imaps", 995: "pop3s", 1433: "mssql", 1883: "mqtt", 1900: "ssdp",
    2222: "ssh", 2323: "telnet", 3306: "mysql", 3389: "rdp", 3702: "ws-discovery", 5353: "mdns",
    5355: "llmnr", 5432: "postgresql", 5683: "coap", 6379: "redis", 8000: "http", 8080: "http",
    8443: "tls", 8554: "rtsp", 8883: "mqtt", 11211: "memcached", 20000: "dnp3", 37777: "dahua-dvrip",
    37810: "dhip", 44818: "enip", 47808: "bacnet",
}
_SERVICE_PORTS = frozenset(PORT_PROTOCOLS)
_HTTP_PREFIXES = REQUEST_PREFIXES + RESPONSE_PREFIXES
"""What an HTTP or RTSP head starts with, either direction (one ``startswith`` per packet)."""
_REMOTE_ACCESS = {21: "ftp", 22: "ssh", 2222: "ssh", 23: "telnet", 2323: "telnet"}
_DNS_PORTS = frozenset({53, 5353, 5355})
_ICMP_REPLIES = frozenset({0, 14, 16, 18})
_ICMP6_REPLIES = frozenset({129, 131, 134, 136, 140, 145})
_SNIFFED = frozenset({"http", "tls", "ssh", "rtsp", "ldap"})  # recognised from payload, not port
_SNIFF_BUDGET = 8  # payload packets per direction looked at before giving up on a flow
_CLOSED_MEMORY = 4096  # keys of recently closed TCP flows kept to absorb trailing ACKs
_CLOSED_TTL = 10.0
_u16 = struct.Struct("!H").unpack_from
_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")


def _ip(addr: bytes) -> str:
    return socket.inet_ntop(socket.AF_INET if len(addr) == 4 else socket.AF_INET6, addr)


_iso_cache: list = [None, ""]


def _iso(ts: float) -> str:
    """ECS timestamp with microseconds; the seconds part is cached (packets come in order)."""
    sec = int(ts // 1)
    if _iso_cache[0] != sec:
        _iso_cache[0] = sec
        _iso_cache[1] = time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(sec))
    return f"{_iso_cache[1]}{min(round((ts - sec) * 1e6), 999999):06d}Z"


class _Flow:
    __slots__ = ("key", "version", "cip", "sip", "cport", "sport", "proto", "first", "last", "cpk", "cby",
                 "spk", "sby", "cflags", "sflags", "cfin", "sfin", "app", "cbuf", "sbuf", "cbudget",
                 "sbudget", "app_events", "app_dropped", "state", "cid", "icmp_one_way", "segments")

    def __init__(self, key: tuple, version: int, cip: bytes, cport: int, sip: bytes, sport: int, proto: int,
                 ts: float) -> None:
        self.key = key
        self.version = version
        self.cip, self.cport, self.sip, self.sport, self.proto = cip, cport, sip, sport, proto
        self.first = self.last = ts
        self.cpk = self.cby = self.spk = self.sby = 0
        self.cflags = self.sflags = 0
        self.cfin = self.sfin = False
        self.app: str | None = None
        self.cbuf: bytearray | None = None
        self.sbuf: bytearray | None = None
        self.cbudget = self.sbudget = _SNIFF_BUDGET
        self.app_events = self.app_dropped = 0
        self.state: dict[str, Any] | None = None
        self.cid: str | None = None
        self.icmp_one_way = False
        self.segments = 0


class NetworkDecoder:
    """Stateful packet-to-event decoder; one per capture (not thread-safe).

    Example::

        dec = NetworkDecoder(max_flows=50_000)
        for ts, linktype, frame in frames:
            for event in dec.feed(ts, linktype, frame):
                handle(event)
        for event in dec.flush():
            handle(event)

    Parameters: ``max_flows`` bounds the flow table; ``tcp_idle``/``udp_idle`` (seconds)
    end flows that went quiet; ``active_timeout`` reports long flows periodically;
    ``max_app_events_per_flow`` bounds application events per flow; ``observer`` is
    copied to ``observer.name`` (e.g. the capture interface).
    """

    def __init__(
        self,
        *,
        max_flows: int = 100_000,
        tcp_idle: float = 300.0,
        udp_idle: float = 60.0,
        active_timeout: float = 1800.0,
        max_app_events_per_flow: int = 100,
        observer: str | None = None,
    ) -> None:
        if max_flows < 1:
            raise ValueError(f"max_flows must be at least 1, got {max_flows}")
        self.max_flows = max_flows
        self.tcp_idle = tcp_idle
        self.udp_idle = udp_idle
        self.active_timeout = active_timeout
        self.max_app_events_per_flow = max_app_events_per_flow
        self.observer = observer
        # Two tables so each stays ordered by last activity under one idle timeout.
        self._tcp: OrderedDict[tuple, _Flow] = OrderedDict()
        self._other: OrderedDict[tuple, _Flow] = OrderedDict()
        self._closed: OrderedDict[tuple, float] = OrderedDict()
        self._last_sweep = 0.0
        self._c = {
            "packets": 0, "non_ip": 0, "fragments": 0, "flows_created": 0, "flows_ended": 0,
            "flows_evicted": 0, "flows_active_timeout": 0, "app_events": 0, "app_events_dropped": 0,
            "app_errors": 0, "late_packets": 0,
        }

    # ------------------------------------------------------------------ public
    def counters(self) -> dict[str, int]:
        """Packets seen, flows created/ended/evicted, app events and errors, flows active."""
        out = dict(self._c)
        out["flows_active"] = len(self._tcp) + len(self._other)
        return out

    def feed(self, ts: float, linktype: int, data: bytes) -> list[Event]:
        """Decode one frame captured at ``ts`` (epoch seconds) on a ``linktype`` link."""
        c = self._c
        c["packets"] += 1
        out: list[Event] = []
        if ts - self._last_sweep >= 1.0:
            self._sweep(ts, out)
        pkt = dissect_tuple(linktype, data)
        if pkt is None:
            c["non_ip"] += 1
            return out
        version, src, dst, proto, sport, dport, flags, ip_len, payload, fragment = pkt
        if fragment:
            c["fragments"] += 1
            sport = dport = 0
        one_way = False
        if proto == ICMP or proto == ICMPV6:
            sport, dport, one_way = icmp_port_equivalents(proto, sport, dport)
        table = self._tcp if proto == TCP else self._other
        key = (src, sport, dst, dport, proto)
        f = table.get(key)
        if f is not None:
            to_server = True
        else:
            f = table.get((dst, dport, src, sport, proto))
            to_server = False
            if f is None:
                f = self._new_flow(version, src, sport, dst, dport, proto, flags, ts, one_way, out)
                if f is None:
                    return out
                to_server = f.cip == src and f.cport == sport
        table.move_to_end(f.key)
        f.last = ts
        if to_server:
            f.cpk += 1
            f.cby += ip_len
            f.cflags |= flags
        else:
            f.spk += 1
            f.sby += ip_len
            f.sflags |= flags
        if payload and (f.cbudget if to_server else f.sbudget) > 0:
            self._inspect(f, to_server, payload, ts, out)
        if proto == TCP and flags & (_FIN | _RST):
            if flags & _RST:
                self._end(f, "rst", out)
                return out
            if to_server:
                f.cfin = True
            else:
                f.sfin = True
            if f.cfin and f.sfin:
                self._end(f, "fin", out)
                return out
        if ts - f.first >= self.active_timeout:
            c["flows_active_timeout"] += 1
            out.append(self._flow_event(f, "active_timeout"))
            f.first = ts
            f.cpk = f.cby = f.spk = f.sby = 0
            f.cflags = f.sflags = 0
        return out

    def expire(self, now: float) -> list[Event]:
        """End flows idle at ``now``; live capture calls this while no packet arrives."""
        out: list[Event] = []
        self._sweep(now, out)
        return out

    def flush(self, reason: str = "end_of_capture") -> list[Event]:
        """End every open flow (end of file, capture stopped) and return their summaries."""
        out: list[Event] = []
        for table in (self._tcp, self._other):
            while table:
                _, f = table.popitem(last=False)
                self._c["flows_ended"] += 1
                out.append(self._flow_event(f, reason))
        out.sort(key=lambda e: e["event"]["start"])
        return out

    # ------------------------------------------------------------------ flows
    def _new_flow(self, version: int, src: bytes, sport: int, dst: bytes, dport: int, proto: int, flags: int,
                  ts: float, one_way: bool, out: list[Event]) -> _Flow | None:
        swap = False
        if proto == TCP:
            closed = self._closed
            if closed and not flags & _SYN and ((src, sport, dst, dport, proto) in closed
                                                or (dst, dport, src, sport, proto) in closed):
                self._c["late_packets"] += 1
                return None
            if flags & _SYN:
                swap = bool(flags & _ACK)
            else:
                swap = sport in _SERVICE_PORTS and dport not in _SERVICE_PORTS
        elif proto == ICMP:
            swap = sport in _ICMP_REPLIES
        elif proto == ICMPV6:
            swap = sport in _ICMP6_REPLIES
        else:
            swap = sport in _SERVICE_PORTS and dport not in _SERVICE_PORTS
        if one_way:
            swap = False
        if swap:
            src, sport, dst, dport = dst, dport, src, sport
        if len(self._tcp) + len(self._other) >= self.max_flows:
            self._evict(out)
        f = _Flow((src, sport, dst, dport, proto), version, src, sport, dst, dport, proto, ts)
        f.icmp_one_way = one_way
        if proto == UDP:
            if dport in _DNS_PORTS or sport in _DNS_PORTS:
                f.app = "dns"
                f.cbudget = f.sbudget = 1 << 30
            elif dport == 3702 or sport == 3702:
                f.app = "ws-discovery"
                f.cbudget = f.sbudget = 1 << 30
            elif dport == 37810 or sport == 37810:
                f.app = "dhip"
                f.cbudget = f.sbudget = 1 << 30
        elif proto == TCP:
            remote = _REMOTE_ACCESS.get(dport)
            if remote is not None:
                f.app = remote
                f.cbudget = f.sbudget = 0 if remote == "telnet" else 64
                if flags & _SYN and not flags & _ACK:
                    self._app_event(f, ts, "connection_attempt", "network." + remote,
                                    {"event": {"type": ["connection", "start"]}}, out)
            elif dport == 53:
                f.app = "dns"
                f.cbudget = f.sbudget = 1 << 30
        else:
            f.cbudget = f.sbudget = 0
        (self._tcp if proto == TCP else self._other)[f.key] = f
        self._c["flows_created"] += 1
        return f

    def _end(self, f: _Flow, reason: str, out: list[Event]) -> None:
        (self._tcp if f.proto == TCP else self._other).pop(f.key, None)
        self._c["flows_ended"] += 1
        out.append(self._flow_event(f, reason))
        if f.proto == TCP:
            closed = self._closed
            closed[f.key] = f.last
            if len(closed) > _CLOSED_MEMORY:
                closed.popitem(last=False)

    def _evict(self, out: list[Event]) -> None:
        tcp, other = self._tcp, self._other
        if tcp and other:
            ft = next(iter(tcp.values()))
            fo = next(iter(other.values()))
            table = tcp if ft.last <= fo.last else other
        else:
            table = tcp or other
        _, f = table.popitem(last=False)
        self._c["flows_evicted"] += 1
        self._c["flows_ended"] += 1
        out.append(self._flow_event(f, "evicted"))

    def _sweep(self, now: float, out: list[Event]) -> None:
        self._last_sweep = now
        for table, timeout in ((self._tcp, self.tcp_idle), (self._other, self.udp_idle)):
            while table:
                f = next(iter(table.values()))
                if now - f.last < timeout:
                    break
                table.popitem(last=False)
                self._c["flows_ended"] += 1
                out.append(self._flow_event(f, "idle_timeout"))
        closed = self._closed
        while closed:
            _k, t = next(iter(closed.items()))
            if now - t < _CLOSED_TTL:
                break
            closed.popitem(last=False)

    # ------------------------------------------------------------------ events
    def _community_id(self, f: _Flow) -> str:
        if f.cid is None:
            f.cid = community_id(f.cip, f.sip, f.proto, f.cport, f.sport, one_way=f.icmp_one_way)
        return f.cid

    def _base(self, f: _Flow, ts: float) -> Event:
        proto = f.proto
        network: dict[str, Any] = {
            "transport": _TRANSPORTS.get(proto, str(proto)),
            "iana_number": str(proto),
            "type": "ipv4" if f.version == 4 else "ipv6",
            "community_id": self._community_id(f),
        }
        appname = f.app
        if appname is None and (proto == TCP or proto == UDP):
            appname = PORT_PROTOCOLS.get(f.sport)
            # Payload was looked at and did not match what the port promises (a shell on 443).
            if appname in _SNIFFED and (f.cbudget < _SNIFF_BUDGET or f.sbudget < _SNIFF_BUDGET):
                appname = None
        if appname:
            network["protocol"] = appname
        ev: Event = {
            "@timestamp": _iso(ts),
            "source": {"ip": _ip(f.cip)},
            "destination": {"ip": _ip(f.sip)},
            "network": network,
        }
        if proto in (TCP, UDP, 132):
            ev["source"]["port"] = f.cport
            ev["destination"]["port"] = f.sport
        elif proto in (ICMP, ICMPV6):
            ev["citysoc"] = {"network": {"icmp": {"type": f.cport, "code": f.sport} if f.icmp_one_way
                                         else {"type": f.cport}}}
        if self.observer:
            ev["observer"] = {"name": self.observer, "type": "sensor"}
        return ev

    def _flow_event(self, f: _Flow, reason: str) -> Event:
        ev = self._base(f, f.last)
        ev["event"] = {
            "kind": "event",
            "category": ["network"],
            "type": ["connection", "end"],
            "action": "network_flow",
            "dataset": "network.flow",
            "module": "network",
            "start": _iso(f.first),
            "end": _iso(f.last),
            "duration": round((f.last - f.first) * 1e6) * 1000,
            "reason": reason,
        }
        ev["source"]["bytes"] = f.cby
        ev["source"]["packets"] = f.cpk
        ev["destination"]["bytes"] = f.sby
        ev["destination"]["packets"] = f.spk
        net = ev["network"]
        net["bytes"] = f.cby + f.sby
        net["packets"] = f.cpk + f.spk
        cs = ev.setdefault("citysoc", {}).setdefault("network", {})
        cs["flow_end_reason"] = reason
        if f.proto == TCP:
            cs["tcp_flags"] = [n for bit, n in TCP_FLAG_NAMES if (f.cflags | f.sflags) & bit]
            cs["tcp_flags_source"] = [n for bit, n in TCP_FLAG_NAMES if f.cflags & bit]
            cs["tcp_flags_destination"] = [n for bit, n in TCP_FLAG_NAMES if f.sflags & bit]
        if f.app_dropped:
            cs["app_events_dropped"] = f.app_dropped
        return ev

    def _app_event(self, f: _Flow, ts: float, action: str, dataset: str, fields: dict[str, Any],
                   out: list[Event], category: tuple[str, ...] = ("network",)) -> None:
        if f.app_events >= self.max_app_events_per_flow:
            f.app_dropped += 1
            self._c["app_events_dropped"] += 1
            return
        f.app_events += 1
        self._c["app_events"] += 1
        ev = self._base(f, ts)
        ev["event"] = {"kind": "event", "category": list(category), "type": ["protocol"], "action": action,
                       "dataset": dataset, "module": "network"}
        deep_merge(ev, fields)
        out.append(ev)

    # ------------------------------------------------------------------ payloads
    def _inspect(self, f: _Flow, to_server: bool, payload: bytes, ts: float, out: list[Event]) -> None:
        app = f.app
        if app is None:
            if to_server:
                f.cbudget -= 1
            else:
                f.sbudget -= 1
            if f.proto != TCP:
                return
            if payload.startswith(_HTTP_PREFIXES):
                app = f.app = "http"  # may turn into rtsp once the start line is read
                f.cbudget = f.sbudget = 1 << 30
            elif looks_like_client_hello(payload) and to_server:
                app = f.app = "tls"
                f.cbudget, f.sbudget = 8, 0
            elif payload.startswith(b"SSH-"):
                app = f.app = "ssh"
                f.cbudget = f.sbudget = 4
            elif to_server and looks_like_ldap(payload):
                app = f.app = "ldap"
                f.cbudget, f.sbudget = 16, 0
            else:
                return
        try:
            if app == "http" or app == "rtsp":
                self._http(f, to_server, payload, ts, out)
            elif app == "dns":
                self._dns(f, payload, ts, out)
            elif app == "tls":
                self._tls(f, payload, ts, out)
            elif app == "ssh":
                self._ssh(f, to_server, payload, ts, out)
            elif app == "ftp":
                self._ftp(f, to_server, payload, ts, out)
            elif app == "ldap":
                f.cbudget -= 1
                req = parse_ldap_request(payload)
                if req is not None:
                    self._app_event(f, ts, "ldap_" + req["operation"], "network.ldap",
                                    {"citysoc": {"network": {"ldap": req}}}, out)
            elif app == "ws-discovery":
                fields = parse_ws_discovery(payload)
                action = "ws_discovery_" + _CAMEL.sub("_", fields["wsd"]["action"]).lower()
                self._app_event(f, ts, action, "network.ws_discovery", {"citysoc": {"network": fields}}, out)
            elif app == "dhip":
                fields = parse_dhip(payload)
                self._app_event(f, ts, "dahua_discovery", "network.dahua",
                                {"citysoc": {"network": {"dahua": fields}}}, out)
        except (DNSError, TLSError, WSDiscoveryError, DHIPError, ValueError, IndexError, KeyError,
                struct.error, UnicodeError) as exc:
            # Hostile or odd payloads must cost one app event, never the capture.
            self._c["app_errors"] += 1
            if f.state is None:
                f.state = {}
            f.state["last_error"] = str(exc)

    def _dns(self, f: _Flow, payload: bytes, ts: float, out: list[Event]) -> None:
        if f.proto == TCP:
            if len(payload) < 2:
                return
            payload = payload[2:2 + _u16(payload, 0)[0]]
        dns = parse_dns(payload)
        action = "dns_query" if dns["type"] == "query" else "dns_answer"
        fields: dict[str, Any] = {"dns": dns}
        if "response_code" in dns:
            fields["event"] = {"outcome": "success" if dns["response_code"] == "NOERROR" else "failure"}
        self._app_event(f, ts, action, "network.dns", fields, out)

    def _http(self, f: _Flow, to_server: bool, payload: bytes, ts: float, out: list[Event]) -> None:
        buf = f.cbuf if to_server else f.sbuf
        if buf is not None:
            buf += payload
            f.segments += 1
            if not (head_complete(buf) or len(buf) >= MAX_HEAD or f.segments >= 32):
                return
            payload = bytes(buf)
            if to_server:
                f.cbuf = None
            else:
                f.sbuf = None
        elif not payload.startswith(REQUEST_PREFIXES if to_server else RESPONSE_PREFIXES):
            return
        elif not head_complete(payload) and len(payload) < MAX_HEAD:
            f.segments = 0
            if to_server:
                f.cbuf = bytearray(payload)
            else:
                f.sbuf = bytearray(payload)
            return
        head = parse_head(payload)
        if head is None:
            return
        if f.state is None:
            f.state = {}
        if to_server:
            if head.start[2].startswith("RTSP/"):
                f.app = "rtsp"
                fields = rtsp_request_fields(head)
                self._app_event(f, ts, "rtsp_request", "network.rtsp", fields, out)
            else:
                fields = http_request_fields(head)
                pending = f.state.setdefault("requests", deque(maxlen=16))
                pending.append((fields["http"]["request"]["method"], fields["url"].get("path"),
                                fields["url"].get("domain")))
                self._app_event(f, ts, "http_request", "network.http", fields, out, ("network", "web"))
        else:
            if head.start[0].startswith("RTSP/"):
                f.app = "rtsp"
                fields = rtsp_response_fields(head)
                code = fields["citysoc"]["network"]["rtsp"].get("status_code")
                if code is not None:
                    fields["event"] = {"outcome": "success" if code < 400 else "failure"}
                self._app_event(f, ts, "rtsp_response", "network.rtsp", fields, out)
            else:
                fields = http_response_fields(head)
                code = fields["http"]["response"].get("status_code")
                if code is not None:
                    fields["event"] = {"outcome": "success" if code < 400 else "failure"}
                pending = f.state.get("requests")
                if pending:
                    method, path, domain = pending.popleft()
                    fields["http"]["request"] = {"method": method}
                    url = {k: v for k, v in (("path", path), ("domain", domain)) if v is not None}
                    if url:
                        fields["url"] = url
                self._app_event(f, ts, "http_response", "network.http", fields, out, ("network", "web"))

    def _tls(self, f: _Flow, payload: bytes, ts: float, out: list[Event]) -> None:
        buf = f.cbuf
        if buf is None:
            if not looks_like_client_hello(payload):
                f.cbudget = 0
                return
            buf = f.cbuf = bytearray(payload)
        else:
            buf += payload
        f.cbudget -= 1
        if client_hello_complete(buf) or len(buf) > 2 * MAX_HEAD or f.cbudget <= 0:
            f.cbuf = None
            f.cbudget = 0
            self._app_event(f, ts, "tls_client_hello", "network.tls", parse_client_hello(buf), out)

    def _ssh(self, f: _Flow, to_server: bool, payload: bytes, ts: float, out: list[Event]) -> None:
        if to_server:
            f.cbudget -= 1
        else:
            f.sbudget -= 1
        if not payload.startswith(b"SSH-"):
            return
        banner = payload.split(b"\n", 1)[0].rstrip(b"\r")[:255].decode("utf-8", "backslashreplace")
        if to_server:
            f.cbudget = 0
        else:
            f.sbudget = 0
        ssh = {"banner": banner, "role": "client" if to_server else "server"}
        self._app_event(f, ts, "ssh_banner", "network.ssh", {"citysoc": {"network": {"ssh": ssh}}}, out)

    def _ftp(self, f: _Flow, to_server: bool, payload: bytes, ts: float, out: list[Event]) -> None:
        if to_server:
            f.cbudget -= 1
        else:
            f.sbudget -= 1
        if f.state is None:
            f.state = {}
        for line in payload.split(b"\n")[:16]:
            line = line.rstrip(b"\r")
            if to_server:
                verb = line[:5].upper()
                if verb == b"USER ":
                    user = line[5:].strip()[:256].decode("utf-8", "backslashreplace")
                    f.state["user"] = user
                    self._app_event(f, ts, "ftp_user", "network.ftp", {"user": {"name": user}}, out)
                elif verb == b"PASS ":  # never stored: only that one was sent
                    f.state["pass_sent"] = True
            elif "user" in f.state and line[:4] in (b"230 ", b"530 ", b"230-", b"530-"):
                ok = line[:3] == b"230"
                self._app_event(f, ts, "ftp_login", "network.ftp",
                                {"user": {"name": f.state["user"]},
                                 "event": {"outcome": "success" if ok else "failure",
                                           "type": ["start"] if ok else ["info"]}}, out, ("network", "authentication"))
