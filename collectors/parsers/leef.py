"""IBM QRadar Log Event Extended Format: ``LEEF:1.0|Vendor|Product|Version|EventID|k=v<TAB>k=v``.

LEEF 1.0 separates attributes with a tab; LEEF 2.0 adds a sixth header field naming
the delimiter (a character, or ``x09``/``0x09``/``^`` style hex) before the attributes
("LEEF Event Components", QRadar DSM guide). Attributes stay under ``leef.*``; the
predefined keys map to ECS: ``src``/``dst``/``srcPort``/``dstPort``, the NAT pairs
(``srcPostNAT``/``dstPostNAT`` and ports -> ``*.nat.*``; ``srcPreNAT`` keeps the
address before translation), ``usrName``, ``proto``, ``srcBytes``/``dstBytes``,
``srcPackets``/``dstPackets``, ``srcMAC``/``dstMAC``, ``identHostName``, ``url``,
``sev`` (``event.severity``), ``cat``, ``devTime`` (with ``devTimeFormat`` when it is the
usual Java pattern), and the common vendor extras ``action``, ``policy``, ``resource``.
The header vendor/product/version go to ``observer.*``, the event id to ``event.code``.

A header cut short is tagged ``leef_truncated``; attributes without ``=`` are tagged
``leef_attributes_malformed``; neither loses the line.
"""
from __future__ import annotations

import datetime as _dt
import re

from core.events import Event, set_field
from core.protocols import RawRecord

from ._appliance import ApplianceParser
from ._common import add_tag, set_outcome, set_timestamp, to_int
from ._netfields import add_related, set_community_id, set_endpoint, set_transport

__all__ = ["LeefParser", "PARSER"]

_STRS = {"usrName": "user.name", "identHostName": "host.hostname", "url": "url.original", "cat": "event.category_name",
         "policy": "rule.name", "resource": "destination.domain", "accountName": "user.name", "domain": "user.domain",
         "role": "user.roles", "realm": "user.domain", "identSrc": "source.ip"}
_INTS = {"srcBytes": "source.bytes", "dstBytes": "destination.bytes", "srcPackets": "source.packets",
         "dstPackets": "destination.packets", "totalPackets": "network.packets"}
_JAVA = {"MMM dd yyyy HH:mm:ss": "%b %d %Y %H:%M:%S", "MMM dd yyyy HH:mm:ss.SSS": "%b %d %Y %H:%M:%S.%f",
         "yyyy-MM-dd HH:mm:ss": "%Y-%m-%d %H:%M:%S", "yyyy-MM-dd'T'HH:mm:ss": "%Y-%m-%dT%H:%M:%S"}
_DENY = ("deny", "denied", "drop", "dropped", "block", "blocked", "reject")
_ALLOW = ("allow", "allowed", "accept", "accepted", "permit", "permitted", "pass")


def _delimiter(spec: str) -> str:
    s = spec.strip()
    if not s:
        return "\t"
    m = re.fullmatch(r"(?:0?[xX])([0-9A-Fa-f]{2,4})", s)
    if m:
        return chr(int(m.group(1), 16))
    return s[0]


class LeefParser(ApplianceParser):
    name = "leef"
    dataset = "leef.log"
    module = "leef"
    order = 130
    payload_re = re.compile(r"LEEF:[12]\.0\|")
    max_prefix = 256

    def sniff(self, message: str) -> bool:
        return "LEEF:" in message[:256] and self.find_payload(message) >= 0

    def apply(self, ev: Event, message: str, program: str | None, record: RawRecord, now: _dt.datetime) -> bool:
        start = self.find_payload(message)
        if start < 0:
            return False
        self.claim(ev, record)
        body = message[start:]
        version = body[5:8]
        parts = body.split("|", 6 if version == "2.0" else 5)
        # parts: LEEF:v, vendor, product, version, eventid, [delim,] attributes
        need = 7 if version == "2.0" else 6
        leef: dict[str, object] = {"version": version}
        ev["leef"] = leef
        names = ("vendor", "product", "product_version", "event_id")
        for name, value in zip(names, parts[1:5]):
            if value:
                leef[name] = value
        for name, field in (("vendor", "observer.vendor"), ("product", "observer.product"),
                            ("product_version", "observer.version")):
            if leef.get(name):
                set_field(ev, field, leef[name])
        if leef.get("event_id"):
            ev["event"]["code"] = str(leef["event_id"])
        if len(parts) < need:
            add_tag(ev, "leef_truncated")
            return True
        delim = _delimiter(parts[5]) if version == "2.0" else "\t"
        attrs_text = parts[-1]
        if version != "2.0" and "\t" not in attrs_text and " " in attrs_text and "=" in attrs_text:
            delim = " "  # some senders (and syslog relays) replace the tab with a space
        attrs: dict[str, str] = {}
        ok = True
        for item in attrs_text.split(delim):
            if not item.strip():
                continue
            k, eq, v = item.partition("=")
            if not eq:
                ok = False
                continue
            attrs[k.strip()] = v
        if not ok:
            add_tag(ev, "leef_attributes_malformed")
        if attrs:
            leef["attributes"] = attrs
        self._map(ev, attrs, now)
        return True

    @staticmethod
    def _map(ev: Event, a: dict[str, str], now: _dt.datetime) -> None:
        e = ev["event"]
        set_endpoint(ev, "source", a.get("src"), a.get("srcPort"))
        set_endpoint(ev, "destination", a.get("dst"), a.get("dstPort"))
        for key, side in (("srcPostNAT", "source"), ("dstPostNAT", "destination")):
            if a.get(key):
                set_field(ev, f"{side}.nat.ip", a[key])
                add_related(ev, "ip", a[key])
        for key, side in (("srcPostNATPort", "source"), ("dstPostNATPort", "destination")):
            n = to_int(a.get(key))
            if n is not None:
                set_field(ev, f"{side}.nat.port", n)
        for key, field in _STRS.items():
            if a.get(key) and field != "event.category_name":
                set_field(ev, field, [a[key]] if field == "user.roles" else a[key])
        for key, field in _INTS.items():
            n = to_int(a.get(key))
            if n is not None:
                set_field(ev, field, n)
        for key, field in (("srcMAC", "source.mac"), ("dstMAC", "destination.mac")):
            if a.get(key):
                set_field(ev, field, a[key].upper().replace(":", "-"))
        if a.get("usrName"):
            add_related(ev, "user", a["usrName"])
        sev = to_int(a.get("sev"))
        if sev is not None:
            e["severity"] = sev
        num = set_transport(ev, a.get("proto"))
        set_community_id(ev, num)
        action = (a.get("action") or "").lower()
        if action:
            e["action"] = action
            if action in _DENY:
                set_outcome(ev, False)
                e["category"], e["type"] = ["network"], ["connection", "denied"]
            elif action in _ALLOW:
                set_outcome(ev, True)
                e["category"], e["type"] = ["network"], ["connection", "allowed"]
        dev_time = a.get("devTime")
        if dev_time:
            fmt = _JAVA.get(a.get("devTimeFormat", ""))
            value: object = dev_time
            if fmt:
                try:
                    value = _dt.datetime.strptime(dev_time, fmt).replace(tzinfo=_dt.timezone.utc)
                except ValueError:
                    value = dev_time
            elif dev_time.isdigit():
                value = int(dev_time) / 1000 if len(dev_time) > 11 else int(dev_time)
            set_timestamp(ev, value, now, original=dev_time)


PARSER = LeefParser()
