"""Cisco ASA (and Firepower Threat Defense) syslog: ``%ASA-<level>-<message id>: <text>``.

The message id goes to ``event.code`` and the level (0-7) to ``event.severity`` and
``log.level`` for every line; the text is read for the ids a SOC acts on, after the
wording of Cisco's "ASA Series Syslog Messages" guide:

* connections: 302013/302015/302020 built (``flow-creation``), 302014/302016/302021
  teardown (``flow-expiration``, with duration and bytes), 305011/305012 NAT translations;
* denies and access lists: 106001, 106006, 106007, 106014, 106015, 106021, 106023
  (``firewall-rule``, denied), 106100 (permitted/denied by an ACL), 710003, 710005;
* AAA and management: 113004/113005/113012/113015 (authentication), 113008, 605004/605005
  (login denied/permitted), 611101/611102 (VPN user authentication), 111008/111010
  (command executed);
* VPN sessions: 113019 (disconnected), 113039 (AnyConnect parent session started),
  716001/716002 (WebVPN start/end), 722022/722023 (SVC connection), 722051 (address
  assigned), 751025 is not read (no stable wording).

Direction follows Cisco: in ``Built outbound ...`` the first address is the *responder*,
so source and destination are swapped to keep ``source`` the initiator; the mapped
(``(addr/port)``) half becomes ``source.nat``/``destination.nat`` when it differs. A
``message repeated N times: [ ... ]`` wrapper is unwrapped (``cisco.asa.message_repeats``).
An id not in the table keeps its envelope fields and is tagged ``cisco_asa_unknown_id``;
a known id whose text does not match is tagged ``cisco_asa_unparsed`` (firmware wording
drifts): neither is lost.
"""
from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Callable

from core.events import Event, set_field
from core.protocols import RawRecord

from ._appliance import ApplianceParser
from ._common import add_tag, set_outcome, to_int
from ._netfields import add_related, observer, set_community_id, set_endpoint, set_transport

__all__ = ["CiscoAsaParser", "PARSER", "LEVELS"]

LEVELS = ("emergencies", "alert", "critical", "error", "warning", "notification", "informational", "debugging")
"""ASA logging level names (``logging trap informational``) by number."""
_LOG_LEVEL = ("emergency", "alert", "critical", "error", "warning", "notification", "informational", "debug")

_HEAD_RE = re.compile(r"%(ASA|FTD|FWSM|PIX)-(?:[\w-]+-)?(\d)-(\d{6}):\s?")
_REPEAT_RE = re.compile(r"message repeated (\d+) times: \[\s*(.*?)\s*\]$")
_EP = r"(?:(?P<{0}_if>[^\s:/]+):)?(?P<{0}_ip>[0-9A-Fa-f.:]+?)(?:/(?P<{0}_port>\d+))?"


def _ep(name: str) -> str:
    return _EP.format(name)


def _rx(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern.replace("{S}", _ep("src")).replace("{D}", _ep("dst")))


_USER = r'(?:user(?:name)?|Uname|User)\s*[=:]?\s*"?(?P<user>[^",\s]+)"?'
_PATTERNS: dict[str, tuple[re.Pattern[str], str, list[str], list[str], bool | None]] = {
    # id: (regex, event.action, category, type, outcome: True success / False failure / None leave)
    "106001": (_rx(r"Inbound (?P<proto>\w+) connection denied from {S} to {D} flags (?P<flags>.*?) on interface "
                   r"(?P<in_if>\S+)"), "firewall-rule", ["network"], ["connection", "denied"], False),
    "106006": (_rx(r"Deny (?P<dir>inbound|outbound) (?P<proto>\w+) from {S} to {D} on interface (?P<in_if>\S+?)\.?$"),
               "firewall-rule", ["network"], ["connection", "denied"], False),
    "106007": (_rx(r"Deny (?P<dir>inbound|outbound) (?P<proto>\w+) from {S} to {D} due to (?P<reason>.*?)\.?$"),
               "firewall-rule", ["network"], ["connection", "denied"], False),
    "106014": (_rx(r"Deny (?P<dir>inbound|outbound) (?P<proto>icmp) src {S} dst {D} \(type (?P<icmp_type>\d+), "
                   r"code (?P<icmp_code>\d+)\)"), "firewall-rule", ["network"], ["connection", "denied"], False),
    "106015": (_rx(r"Deny (?P<proto>\w+) \(no connection\) from {S} to {D} flags (?P<flags>.*?) on interface "
                   r"(?P<in_if>\S+?)\.?$"), "firewall-rule", ["network"], ["connection", "denied"], False),
    "106021": (_rx(r"Deny (?P<proto>\w+) reverse path check from (?P<src_ip>\S+) to (?P<dst_ip>\S+) on interface "
                   r"(?P<in_if>\S+)"), "firewall-rule", ["network"], ["connection", "denied"], False),
    "106023": (_rx(r"Deny (?P<proto>\w+) src {S}(?: \([^)]*\))? dst {D}(?: \([^)]*\))?(?: \(type (?P<icmp_type>\d+), "
                   r"code (?P<icmp_code>\d+)\))? by access-group \"(?P<acl>[^\"]+)\""),
               "firewall-rule", ["network"], ["connection", "denied"], False),
    "106100": (_rx(r"access-list (?P<acl>\S+) (?P<verdict>permitted|denied|est-allowed) (?P<proto>\w+) "
                   r"(?P<src_if>[^/\s]+)/(?P<src_ip>[0-9A-Fa-f.:]+)\((?P<src_port>\d+)\)(?: \([^)]*\))? -> "
                   r"(?P<dst_if>[^/\s]+)/(?P<dst_ip>[0-9A-Fa-f.:]+)\((?P<dst_port>\d+)\)"),
               "firewall-rule", ["network"], ["connection"], None),
    "302013": (_rx(r"Built (?P<dir>inbound|outbound) (?P<proto>TCP) connection (?P<conn>\d+) for {S} "
                   r"\((?P<src_nat_ip>[^/)\s]+)/(?P<src_nat_port>\d+)\)(?: \([^)]*\))? to {D} "
                   r"\((?P<dst_nat_ip>[^/)\s]+)/(?P<dst_nat_port>\d+)\)"),
               "flow-creation", ["network"], ["connection", "start"], True),
    "302014": (_rx(r"Teardown (?P<proto>TCP) connection (?P<conn>\d+) for {S}(?: \([^)]*\))? to {D}(?: \([^)]*\))? "
                   r"duration (?P<duration>[\d:]+) bytes (?P<bytes>\d+)(?: (?P<reason>.*))?$"),
               "flow-expiration", ["network"], ["connection", "end"], True),
    "302020": (re.compile(r"Built (?P<dir>inbound|outbound) (?P<proto>ICMP) connection for faddr "
                          r"(?:(?P<f_if>[^\s:/]+):)?(?P<f_ip>[0-9A-Fa-f.:]+)/(?P<f_port>\d+)(?: \([^)]*\))? gaddr "
                          r"(?P<g_ip>[0-9A-Fa-f.:]+)/(?P<g_port>\d+) laddr (?:(?P<l_if>[^\s:/]+):)?"
                          r"(?P<l_ip>[0-9A-Fa-f.:]+)/(?P<l_port>\d+)(?: \([^)]*\))?"
                          r"(?: type (?P<icmp_type>\d+) code (?P<icmp_code>\d+))?"),
               "flow-creation", ["network"], ["connection", "start"], True),
    "305011": (_rx(r"Built (?P<kind>dynamic|static) (?P<proto>\w+) translation from {S} to "
                   r"(?:(?P<nat_if>[^\s:/]+):)?(?P<src_nat_ip>[0-9A-Fa-f.:]+)(?:/(?P<src_nat_port>\d+))?"),
               "translation-creation", ["network"], ["connection", "start"], True),
    "305012": (_rx(r"Teardown (?P<kind>dynamic|static) (?P<proto>\w+) translation from {S}(?: \([^)]*\))? to "
                   r"(?:(?P<nat_if>[^\s:/]+):)?(?P<src_nat_ip>[0-9A-Fa-f.:]+)(?:/(?P<src_nat_port>\d+))?"
                   r"(?: duration (?P<duration>[\d:]+))?"),
               "translation-expiration", ["network"], ["connection", "end"], True),
    "710003": (_rx(r"(?P<proto>\w+) access denied by ACL from {S} to (?P<dst_if>[^:\s]+):(?P<dst_ip>[0-9A-Fa-f.:]+)"
                   r"/(?P<dst_port>\w+)"), "firewall-rule", ["network"], ["connection", "denied"], False),
    "710005": (_rx(r"(?P<proto>\w+) request discarded from {S} to (?P<dst_if>[^:\s]+):(?P<dst_ip>[0-9A-Fa-f.:]+)"
                   r"/(?P<dst_port>\w+)"), "firewall-rule", ["network"], ["connection", "denied"], False),
    "113004": (re.compile(r"AAA user (?P<what>authentication|authorization) Successful : server =\s*(?P<server>\S+)\s*"
                          r": user = (?P<user>\S+)|AAA user (?P<what2>authentication|authorization) Successful : "
                          r"server =\s*(?P<server2>\S+)\s*, User = (?P<user2>\S+)"),
               "aaa-authentication", ["authentication"], ["info"], True),
    "113005": (re.compile(r"AAA user (?:authentication|authorization) Rejected : reason = (?P<reason>.*?) : "
                          r"server = (?P<server>\S+) : user = (?P<user>[^:]+?)\s*(?:: user IP = (?P<src_ip>\S+))?$"),
               "aaa-authentication", ["authentication"], ["info"], False),
    "113008": (re.compile(r"AAA transaction status ACCEPT : user = (?P<user>\S+)"),
               "aaa-transaction", ["authentication"], ["info"], True),
    "113012": (re.compile(r"AAA user authentication Successful : local database : user = (?P<user>\S+)"),
               "aaa-authentication", ["authentication"], ["info"], True),
    "113015": (re.compile(r"AAA user authentication Rejected : reason = (?P<reason>.*?) : local database : "
                          r"user = (?P<user>[^:]+?)\s*(?:: user IP = (?P<src_ip>\S+))?$"),
               "aaa-authentication", ["authentication"], ["info"], False),
    "605004": (re.compile(r"Login denied from (?P<src_ip>[0-9A-Fa-f.:]+)/(?P<src_port>\d+) to "
                          r"(?P<dst_if>[^:\s]+):(?P<dst_ip>[0-9A-Fa-f.:]+)/(?P<service>\w+) for user \"(?P<user>[^\"]*)\""),
               "login", ["authentication"], ["start"], False),
    "605005": (re.compile(r"Login permitted from (?P<src_ip>[0-9A-Fa-f.:]+)/(?P<src_port>\d+) to "
                          r"(?P<dst_if>[^:\s]+):(?P<dst_ip>[0-9A-Fa-f.:]+)/(?P<service>\w+) for user \"(?P<user>[^\"]*)\""),
               "login", ["authentication"], ["start"], True),
    "611101": (re.compile(r"User authentication succeeded: (?:IP address|IP): (?P<src_ip>[^,\s]+), Uname: (?P<user>\S+)"),
               "vpn-user-authentication", ["authentication"], ["info"], True),
    "611102": (re.compile(r"User authentication failed: (?:IP address|IP): (?P<src_ip>[^,\s]+), Uname: (?P<user>\S+)"),
               "vpn-user-authentication", ["authentication"], ["info"], False),
    "111008": (re.compile(r"User '?(?P<user>[^' ]+)'? executed the '?(?P<command>.*?)'? command"),
               "command-executed", ["configuration"], ["change"], True),
    "111010": (re.compile(r"User '?(?P<user>[^',]+)'?, running '?(?P<app>[^']*?)'? from IP (?P<src_ip>\S+?), "
                          r"executed '?(?P<command>.*?)'?$"), "command-executed", ["configuration"], ["change"], True),
    "113019": (re.compile(r"Group = (?P<group>[^,]*), Username = (?P<user>[^,]*), IP = (?P<src_ip>[^,]+), "
                          r"Session disconnected\. Session Type: (?P<stype>[^,]*), Duration: (?P<duration>[^,]*), "
                          r"Bytes xmt: (?P<bytes_out>\d+), Bytes rcv: (?P<bytes_in>\d+), Reason: (?P<reason>.*)$"),
               "vpn-session-end", ["network", "session"], ["end"], True),
    "113039": (re.compile(r"Group <?(?P<group>[^> ]*)>? User <?(?P<user>[^> ]*)>? IP <?(?P<src_ip>[^> ]*)>? "
                          r"AnyConnect parent session started"), "vpn-session-start", ["network", "session"], ["start"], True),
    "716001": (re.compile(r"Group <?(?P<group>[^> ]*)>? User <?(?P<user>[^> ]*)>? IP <?(?P<src_ip>[^> ]*)>? "
                          r"WebVPN session started"), "vpn-session-start", ["network", "session"], ["start"], True),
    "716002": (re.compile(r"Group <?(?P<group>[^> ]*)>? User <?(?P<user>[^> ]*)>? IP <?(?P<src_ip>[^> ]*)>? "
                          r"WebVPN session terminated: (?P<reason>.*?)\.?$"),
               "vpn-session-end", ["network", "session"], ["end"], True),
    "722022": (re.compile(r"Group <?(?P<group>[^> ]*)>? User <?(?P<user>[^> ]*)>? IP <?(?P<src_ip>[^> ]*)>? "
                          r"(?P<proto>TCP|UDP) SVC connection established"),
               "vpn-connection-start", ["network", "session"], ["start"], True),
    "722023": (re.compile(r"Group <?(?P<group>[^> ]*)>? User <?(?P<user>[^> ]*)>? IP <?(?P<src_ip>[^> ]*)>? "
                          r"(?P<proto>TCP|UDP) SVC connection terminated"),
               "vpn-connection-end", ["network", "session"], ["end"], True),
    "722051": (re.compile(r"Group <?(?P<group>[^> ]*)>? User <?(?P<user>[^> ]*)>? IP <?(?P<src_ip>[^> ]*)>? "
                          r"IPv4 Address <?(?P<assigned>[^> ]*)>?"), "vpn-address-assigned", ["network", "session"],
               ["info"], True),
}
_PATTERNS["302015"] = (re.compile(_PATTERNS["302013"][0].pattern.replace("(?P<proto>TCP)", "(?P<proto>UDP)")),
                       *_PATTERNS["302013"][1:])
_PATTERNS["302016"] = (re.compile(_PATTERNS["302014"][0].pattern.replace("(?P<proto>TCP)", "(?P<proto>UDP)")),
                       *_PATTERNS["302014"][1:])
_PATTERNS["302021"] = (re.compile(_PATTERNS["302020"][0].pattern.replace("Built (?P<dir>inbound|outbound) ",
                                                                        "Teardown ")),
                       "flow-expiration", ["network"], ["connection", "end"], True)
for _a, _b in (("106002", r"(?P<proto>\w+) Connection denied by (?P<dir>inbound|outbound) list (?P<acl>\S+) src "
                          r"(?P<src_ip>\S+) dest (?P<dst_ip>\S+)"),):
    _PATTERNS[_a] = (re.compile(_b), "firewall-rule", ["network"], ["connection", "denied"], False)


def _duration_ns(text: str) -> int | None:
    parts = text.split(":")
    if len(parts) == 3 and all(p.isdigit() for p in parts):
        h, m, s = (int(p) for p in parts)
        return ((h * 60 + m) * 60 + s) * 1_000_000_000
    return None


def _g(m: re.Match[str], name: str) -> str | None:
    try:
        return m.group(name)
    except IndexError:
        return None


def _icmp(ev: Event, m: re.Match[str], code: str) -> None:
    """302020/302021: faddr/gaddr/laddr; ``inbound`` means the foreign side started it."""
    inbound = _g(m, "dir") != "outbound"
    f_ip, g_ip, l_ip = m.group("f_ip"), m.group("g_ip"), m.group("l_ip")
    if inbound:
        set_endpoint(ev, "source", f_ip, address=True)
        set_endpoint(ev, "destination", l_ip, address=True)
        set_field(ev, "cisco.asa.mapped_destination_ip", g_ip)
        if g_ip != l_ip:
            set_field(ev, "destination.nat.ip", g_ip)
            add_related(ev, "ip", g_ip)
    else:
        set_endpoint(ev, "source", l_ip, address=True)
        set_endpoint(ev, "destination", f_ip, address=True)
        set_field(ev, "cisco.asa.mapped_source_ip", g_ip)
        if g_ip != l_ip:
            set_field(ev, "source.nat.ip", g_ip)
            add_related(ev, "ip", g_ip)
    if m.group("f_if"):
        set_field(ev, "observer.ingress.interface.name" if inbound else "observer.egress.interface.name", m.group("f_if"))
    if m.group("l_if"):
        set_field(ev, "observer.egress.interface.name" if inbound else "observer.ingress.interface.name", m.group("l_if"))
    if _g(m, "dir"):
        set_field(ev, "network.direction", "inbound" if inbound else "outbound")
    # Elastic writes network.type: icmp here (recorded as a parity exception); ECS says ipv4/ipv6.
    set_transport(ev, "icmp")
    for k in ("icmp_type", "icmp_code"):
        if m.group(k) is not None:
            set_field(ev, f"cisco.asa.{k}", to_int(m.group(k)))


def _endpoints(ev: Event, m: re.Match[str], code: str) -> None:
    outbound = _g(m, "dir") == "outbound" and code in ("302013", "302015")
    src, dst = ("dst", "src") if outbound else ("src", "dst")
    set_endpoint(ev, "source", _g(m, f"{src}_ip"), _g(m, f"{src}_port"), address=True)
    set_endpoint(ev, "destination", _g(m, f"{dst}_ip"), _g(m, f"{dst}_port"), address=True)
    for side, half in (("source", src), ("destination", dst)):
        nat_ip, nat_port = _g(m, f"{half}_nat_ip"), _g(m, f"{half}_nat_port")
        real_ip, real_port = _g(m, f"{half}_ip"), _g(m, f"{half}_port")
        if nat_ip and (nat_ip != real_ip or nat_port != real_port):
            set_field(ev, f"{side}.nat.ip", nat_ip)
            add_related(ev, "ip", nat_ip)
            if nat_port:
                set_field(ev, f"{side}.nat.port", to_int(nat_port))
    src_if, dst_if = _g(m, f"{src}_if"), _g(m, f"{dst}_if")
    in_if = _g(m, "in_if")
    if in_if:
        set_field(ev, "observer.ingress.interface.name", in_if)
        set_field(ev, "cisco.asa.source_interface", in_if)
    else:
        if src_if:
            set_field(ev, "observer.ingress.interface.name", src_if)
            set_field(ev, "cisco.asa.source_interface", src_if)
        if dst_if:
            set_field(ev, "observer.egress.interface.name", dst_if)
            set_field(ev, "cisco.asa.destination_interface", dst_if)
    direction = _g(m, "dir")
    if direction:
        set_field(ev, "network.direction", direction)


def _fill(ev: Event, m: re.Match[str], code: str) -> None:
    if code in ("302020", "302021"):
        _icmp(ev, m, code)
    else:
        _endpoints(ev, m, code)
        proto = _g(m, "proto")
        num = set_transport(ev, proto.lower() if proto else None)
        set_community_id(ev, num)
    user = _g(m, "user") or _g(m, "user2")
    if user and user not in ("*****", "(none)"):
        set_field(ev, "user.name", user)
        add_related(ev, "user", user)
    if _g(m, "group"):
        set_field(ev, "cisco.asa.group_policy", m.group("group"))
    for k in ("acl",):
        if _g(m, k):
            set_field(ev, "rule.name", m.group(k))
    if _g(m, "conn"):
        set_field(ev, "cisco.asa.connection_id", m.group("conn"))
    if _g(m, "duration"):
        ns = _duration_ns(m.group("duration"))
        if ns is not None:
            set_field(ev, "event.duration", ns)
    if _g(m, "bytes"):
        set_field(ev, "network.bytes", to_int(m.group("bytes")))
    if _g(m, "bytes_out"):
        set_field(ev, "source.bytes", to_int(m.group("bytes_out")))
        set_field(ev, "destination.bytes", to_int(m.group("bytes_in")))
    if _g(m, "reason"):
        set_field(ev, "event.reason", m.group("reason"))
    if _g(m, "command"):
        set_field(ev, "cisco.asa.command_line_arguments", m.group("command"))
    if _g(m, "assigned"):
        set_field(ev, "source.nat.ip", m.group("assigned"))
    if _g(m, "server") or _g(m, "server2"):
        set_field(ev, "destination.address", m.group("server") or m.group("server2"))


_HOOKS: dict[str, Callable[[Event, re.Match[str]], None]] = {}


class CiscoAsaParser(ApplianceParser):
    name = "cisco_asa"
    dataset = "cisco_asa.log"
    module = "cisco_asa"
    order = 160
    datasets = ("cisco_asa.log",)
    programs = frozenset({"%asa", "asa"})
    payload_re = _HEAD_RE

    def sniff(self, message: str) -> bool:
        return "%ASA-" in message[:48] or "%FTD-" in message[:48]

    def apply(self, ev: Event, message: str, program: str | None, record: RawRecord, now: _dt.datetime) -> bool:
        m = _HEAD_RE.search(message, 0, 200)
        if m is None:
            return False
        self.claim(ev, record)
        family, level, code = m.group(1), int(m.group(2)), m.group(3)
        text = message[m.end():].rstrip()
        ev["message"] = text
        e = ev["event"]
        e["code"] = code
        e["severity"] = level
        e["kind"] = "event"
        set_field(ev, "log.level", _LOG_LEVEL[level])
        host = ev.get("host", {}).get("name")
        if host:
            set_field(ev, "observer.hostname", host)
            set_field(ev, "host.hostname", host)
        observer(ev, "Cisco", "asa" if family != "FTD" else "ftd", "firewall")
        rm = _REPEAT_RE.match(text)
        if rm:
            set_field(ev, "cisco.asa.message_repeats", to_int(rm.group(1)))
            text = rm.group(2)
        spec = _PATTERNS.get(code)
        if spec is None:
            e["category"] = ["network"]
            e["type"] = ["info"]
            add_tag(ev, "cisco_asa_unknown_id")
            return True
        regex, action, category, type_, outcome = spec
        mm = regex.search(text)
        if mm is None:
            e["action"] = action
            add_tag(ev, "cisco_asa_unparsed")
            return True
        e["action"] = action
        e["category"] = list(category)
        e["type"] = list(type_)
        if code == "106100":
            verdict = mm.group("verdict")
            ok = verdict != "denied"
            e["type"] = ["connection", "allowed" if ok else "denied"]
            outcome = ok
        if outcome is not None:
            set_outcome(ev, outcome)
        _fill(ev, mm, code)
        return True


PARSER = CiscoAsaParser()
