"""Linux netfilter log lines (iptables ``LOG``, nftables ``log``, UFW, Ubiquiti EdgeOS).

The kernel writes ``[prefix]IN=eth0 OUT=eth2 MAC=... SRC=a DST=b LEN=.. PROTO=TCP SPT=1
DPT=2 ... ACK PSH`` (``nf_log_syslog.c``); the prefix is whatever the rule's
``--log-prefix``/``log prefix`` said. What the prefix says decides ``event.action``:

* Ubiquiti EdgeOS ``[RULESET-RULE-A|D|R]`` (``A`` accept, ``D`` drop, ``R`` reject):
  ``rule.name`` is the ruleset, ``rule.id`` the rule number; a ruleset named
  ``zone1-zone2`` gives ``observer.ingress.zone``/``egress.zone`` (Elastic's reading);
* any other prefix is kept in ``rule.name`` and its words decide the verb: ``drop``,
  ``reject``, ``block`` (UFW's ``[UFW BLOCK]``), ``deny`` -> denied; ``accept``, ``allow``
  -> allowed; nothing recognisable -> ``log`` with no ``event.outcome`` guess.

Syslog cuts long kernel lines; a line without ``SRC=``/``DST=`` is parsed as far as it
goes and tagged ``netfilter_truncated``. MAC addresses are written as ECS says
(upper case, dash-separated); ``iptables.*`` keeps the header fields.
"""
from __future__ import annotations

import datetime as _dt
import re

from core.events import Event, set_field
from core.protocols import RawRecord

from ._appliance import ApplianceParser
from ._common import add_tag, categorize, to_int
from ._netfields import set_community_id, set_endpoint, set_transport

__all__ = ["NetfilterParser", "PARSER"]

_UBNT_RE = re.compile(r"\[([^\]\s]+?)-(\d+|default)-([ADR])\]$")
_KTIME_RE = re.compile(r"\[\s*\d+\.\d+\]\s*")
_DENY_WORDS = ("drop", "reject", "block", "deny", "denied")
_ALLOW_WORDS = ("accept", "allow", "permit")
_UBNT_ACTIONS = {"A": "accept", "D": "drop", "R": "reject"}
_FLAGS = frozenset({"CWR", "ECE", "URG", "ACK", "PSH", "RST", "SYN", "FIN"})
_INT_KEYS = {"LEN": "length", "TTL": "ttl", "ID": "id", "HOPLIMIT": "hop_limit", "FLOWLBL": "flow_label"}


def _mac(raw: str) -> tuple[str | None, str | None, int | None]:
    """``dst:src:type`` from the kernel's MAC= (14 bytes of the Ethernet header)."""
    parts = raw.split(":")
    if len(parts) < 12:
        return None, None, None
    dst = "-".join(parts[0:6]).upper()
    src = "-".join(parts[6:12]).upper()
    try:
        etype = int(parts[12] + parts[13], 16) if len(parts) >= 14 and all(len(p) == 2 for p in parts[12:14]) else None
    except ValueError:  # not hex: no EtherType
        etype = None
    return dst, src, etype


class NetfilterParser(ApplianceParser):
    name = "netfilter"
    dataset = "iptables.log"
    module = "iptables"
    order = 180
    datasets = ("iptables.log",)
    payload_re = re.compile(r"(?<=kernel: )|\[[^\]]{0,64}\]\s*IN=|(?<![\w-])IN=\S* OUT=")

    def sniff(self, message: str) -> bool:
        return ("IN=" in message and " OUT=" in message) or (" PROTO=" in message and " SPT=" in message)

    def apply(self, ev: Event, message: str, program: str | None, record: RawRecord, now: _dt.datetime) -> bool:
        body = _KTIME_RE.sub("", message, count=1) if message.startswith("[") and "." in message[:20] else message
        i = body.find("IN=")
        words_at = 0
        if i >= 0:
            prefix = body[:i].strip()
            words_at = i
        else:
            prefix = ""
        fields: dict[str, str] = {}
        flags: list[str] = []
        frag: list[str] = []
        for word in body[words_at:].split():
            k, eq, v = word.partition("=")
            if eq:
                fields.setdefault(k, v)
            elif word in _FLAGS:
                flags.append(word)
            elif word in ("DF", "MF", "CE"):
                frag.append(word)
        if not fields:
            return False
        self.claim(ev, record)
        host = ev.get("host", {}).get("name")
        if host:
            set_field(ev, "observer.name", host)
        set_field(ev, "observer.type", "firewall")
        category = "network"
        action, allowed = "log", None
        if prefix:
            m = _UBNT_RE.search(prefix)
            if m:
                ruleset, rule_no, code = m.groups()
                set_field(ev, "rule.name", ruleset)
                set_field(ev, "rule.id", rule_no)
                set_field(ev, "iptables.ubiquiti.rule_set", ruleset)
                set_field(ev, "iptables.ubiquiti.rule_number", rule_no)
                zones = ruleset.split("-")
                if len(zones) == 2 and zones[0].islower() and zones[1].islower():
                    set_field(ev, "observer.ingress.zone", zones[0])
                    set_field(ev, "observer.egress.zone", zones[1])
                    set_field(ev, "iptables.ubiquiti.input_zone", zones[0])
                    set_field(ev, "iptables.ubiquiti.output_zone", zones[1])
                action = _UBNT_ACTIONS[code]
                allowed = code == "A"
            else:
                clean = prefix.strip("[]: ")
                set_field(ev, "rule.name", clean)
                low = clean.lower()
                for word in _DENY_WORDS:
                    if word in low:
                        action, allowed = ("block" if word == "block" else "drop" if word == "drop" else
                                           "reject" if word == "reject" else "deny"), False
                        break
                else:
                    for word in _ALLOW_WORDS:
                        if word in low:
                            action, allowed = "accept", True
                            break
        if allowed is None:
            ev["event"]["category"] = [category]
            ev["event"]["type"] = ["connection"]
            if action != "log" or prefix:
                ev["event"]["action"] = action
        else:
            categorize(ev, category, ["allowed" if allowed else "denied", "connection"], action)
            ev["event"]["outcome"] = "success" if allowed else "failure"
        if "IN" in fields:
            set_field(ev, "iptables.input_device", fields["IN"])
            if fields["IN"]:
                set_field(ev, "observer.ingress.interface.name", fields["IN"])
        if "OUT" in fields:
            set_field(ev, "iptables.output_device", fields["OUT"])
            if fields["OUT"]:
                set_field(ev, "observer.egress.interface.name", fields["OUT"])
        if "MAC" in fields:
            dst_mac, src_mac, etype = _mac(fields["MAC"])
            if dst_mac:
                set_field(ev, "destination.mac", dst_mac)
                set_field(ev, "source.mac", src_mac)
            if etype is not None:
                set_field(ev, "iptables.ether_type", etype)
        set_endpoint(ev, "source", fields.get("SRC"), fields.get("SPT"))
        set_endpoint(ev, "destination", fields.get("DST"), fields.get("DPT"))
        for key, name in _INT_KEYS.items():
            value = to_int(fields.get(key))
            if value is not None:
                set_field(ev, f"iptables.{name}", value)
        for key, name in (("TOS", "tos"), ("PREC", "precedence_bits"), ("TC", "traffic_class")):
            if key in fields:
                try:
                    set_field(ev, f"iptables.{name}", to_int(int(fields[key], 16)))
                except ValueError:
                    pass
        if frag:
            set_field(ev, "iptables.fragment_flags", frag)
        proto = fields.get("PROTO")
        num = set_transport(ev, proto)
        if proto == "TCP":
            if flags:
                set_field(ev, "iptables.tcp.flags", flags)
            if to_int(fields.get("WINDOW")) is not None:
                set_field(ev, "iptables.tcp.window", to_int(fields["WINDOW"]))
            if "RES" in fields:
                try:
                    set_field(ev, "iptables.tcp.reserved_bits", to_int(int(fields["RES"], 16)))
                except ValueError:
                    pass
        elif proto in ("ICMP", "ICMPv6"):
            for key, name in (("TYPE", "type"), ("CODE", "code")):
                if to_int(fields.get(key)) is not None:
                    set_field(ev, f"iptables.icmp.{name}", to_int(fields[key]))
        if proto == "UDP":
            # The second LEN= of a UDP line is the UDP length (the first is the IP length).
            lens = [w[4:] for w in body[words_at:].split() if w.startswith("LEN=")]
            if len(lens) > 1 and lens[1].isdigit():
                set_field(ev, "iptables.udp.length", to_int(lens[1]))
        if proto in ("ICMP", "ICMPv6"):
            set_community_id(ev, num, to_int(fields.get("TYPE")), to_int(fields.get("CODE")))
        else:
            set_community_id(ev, num)
        if "SRC" not in fields or "DST" not in fields:
            add_tag(ev, "netfilter_truncated")
        return True


PARSER = NetfilterParser()
