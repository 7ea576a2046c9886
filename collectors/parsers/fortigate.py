"""Fortinet FortiGate (FortiOS) syslog: ``date=... time=... devname="x" logid="..." type=... subtype=...``.

Every FortiOS log is one ``key=value`` list (values quoted when they hold spaces, ``\\"``
inside quotes) after whatever syslog envelope the collector wrote. Mapping, after the
FortiOS Log Message Reference and Elastic's ``fortinet_fortigate`` integration:

* all types: ``event.code`` = ``logid``, ``observer.name``/``serial_number`` = ``devname``/
  ``devid``, ``@timestamp`` from ``date``+``time``+``tz`` (or ``eventtime``), ``event.start``
  from ``eventtime``, ``log.level`` = ``level``, ``message`` = ``msg``,
  ``rule.id``/``name``/``uuid``/``ruleset``/``description`` = ``policyid``/``policyname``/
  ``poluuid``/``profile``/``logdesc``; ``srcip``/``dstip``/ports/interfaces; NAT from
  ``transip``/``transport`` (source NAT) and ``tranip``/``tranport`` (destination NAT);
  ``sentbyte``/``rcvdbyte`` -> ``source.bytes``/``destination.bytes`` (``network.bytes`` the sum);
* ``type=traffic``: ``event.action`` = the verdict (``accept``, ``deny``, ``close``,
  ``timeout``...), ``event.type`` allowed/denied/end, ``event.outcome``;
* ``type=utm`` (ips, virus, webfilter, app-ctrl, anomaly, dns, ssl, waf, dlp): an IPS or
  anomaly hit is ``event.kind: alert`` in ``intrusion_detection`` (Elastic files it under
  ``network`` only, see the parity exceptions), a virus in ``malware``;
  ``event.action`` = ``eventtype`` when present (``signature``), else ``action``; the
  URL, method and agent of web hits go to ``url.*``/``http.*``/``user_agent.original``;
* ``type=event``: admin logins are ``authentication`` (``user.name``, outcome from
  ``status``), VPN negotiation/tunnel logs are ``network``/``connection`` with ``remip``
  as the source; configuration changes (``cfgpath``) are ``configuration``/``change``.

``network.direction`` is the log's ``direction`` when it has one, else derived from the
two addresses (private-to-private is ``internal``, as Elastic does with
``internal_networks: [private]``). Every key is also kept under ``fortinet.firewall.*``.
Broken syntax (an unterminated quote, a word without ``=``) keeps what was read and tags
the event ``fortigate_kv_malformed``.
"""
from __future__ import annotations

import datetime as _dt
import re
from urllib.parse import urlsplit

from core.events import Event, set_field
from core.protocols import RawRecord

from ._appliance import ApplianceParser
from ._common import add_tag, record_zone, set_outcome, set_timestamp, to_int
from ._netfields import add_related, observer, parse_ip, set_community_id, set_endpoint, set_transport, split_kv

__all__ = ["FortigateParser", "PARSER", "direction_of"]

_ECS_KEYS = frozenset({"date", "time", "tz", "devname", "devid", "logid", "level", "msg", "srcip", "dstip", "srcport",
                       "dstport", "srcintf", "dstintf", "policyid", "policyname", "profile", "logdesc", "sentbyte",
                       "rcvdbyte", "sentpkt", "rcvdpkt", "user", "proto", "service", "url", "hostname", "agent",
                       "httpmethod", "ref", "reason", "eventtime", "remip", "locip", "remport", "locport", "duration",
                       "transip", "transport", "tranip", "tranport", "srcmac", "dstmac", "direction", "unauthuser"})
_DENY = frozenset({"deny", "blocked", "block", "dropped", "drop", "reset", "reject", "server-rst", "client-rst"})
_UTM_CATEGORY = {"ips": ["intrusion_detection", "network"], "anomaly": ["intrusion_detection", "network"],
                 "virus": ["malware", "network"], "webfilter": ["web", "network"], "waf": ["web", "network"],
                 "app-ctrl": ["network"], "dns": ["network"], "ssl": ["network"], "dlp": ["network"],
                 "emailfilter": ["email", "network"], "file-filter": ["file", "network"]}


def direction_of(src: str | None, dst: str | None) -> str | None:
    """``internal``/``outbound``/``inbound``/``external`` from two addresses (private = internal)."""
    a, b = parse_ip(src), parse_ip(dst)
    if a is None or b is None:
        return None
    ai, bi = a.is_private, b.is_private
    return "internal" if ai and bi else "outbound" if ai else "inbound" if bi else "external"


def _epoch_ns(value: str, tz: str | None) -> _dt.datetime | None:
    n = to_int(value)
    if n is None:
        return None
    secs = n / 1e9 if n > 10**15 else n / 1e3 if n > 10**12 else float(n)
    try:
        ts = _dt.datetime.fromtimestamp(secs, _dt.timezone.utc)
    except (OverflowError, OSError, ValueError):
        return None
    off = _offset(tz)
    return ts.astimezone(off) if off else ts


def _offset(tz: str | None) -> _dt.timezone | None:
    if tz and re.fullmatch(r"[+-]\d{4}", tz):
        delta = _dt.timedelta(hours=int(tz[1:3]), minutes=int(tz[3:5]))
        if delta < _dt.timedelta(hours=24):  # "+3200" is no offset
            return _dt.timezone(-delta if tz[0] == "-" else delta)
    return None


def _iso_ms(ts: _dt.datetime) -> str:
    return ts.isoformat(timespec="milliseconds")


class FortigateParser(ApplianceParser):
    name = "fortigate"
    dataset = "fortinet_fortigate.log"
    module = "fortinet_fortigate"
    order = 170
    datasets = ("fortinet_fortigate.log",)
    payload_re = re.compile(r"(?<![\w\"])(?:date=\d|logver=|devname=|eventtime=\d)")

    def sniff(self, message: str) -> bool:
        return "logid=" in message and "devid=" in message

    def apply(self, ev: Event, message: str, program: str | None, record: RawRecord, now: _dt.datetime) -> bool:
        start = self.find_payload(message)
        kv, ok = split_kv(message, max(start, 0))
        if "logid" not in kv and "devid" not in kv and "type" not in kv:
            return False
        self.claim(ev, record)
        if not ok:
            add_tag(ev, "fortigate_kv_malformed")
        fw = {k: v for k, v in kv.items() if k not in _ECS_KEYS}
        if fw:
            ev.setdefault("fortinet", {})["firewall"] = fw
        self._header(ev, kv, record, now)
        ftype, sub = kv.get("type", ""), kv.get("subtype", "")
        vpn = ftype == "event" and sub == "vpn"
        self._flow(ev, kv, vpn)
        user = kv.get("user") or kv.get("unauthuser")
        if vpn and (not user or parse_ip(user) or user == "N/A"):
            user = kv.get("eapuser") or (None if not user or parse_ip(user) or user == "N/A" else user)
        if user and user != "N/A":
            set_field(ev, "source.user.name", user)
            add_related(ev, "user", user)
        self._categorize(ev, kv, vpn, user)
        self._web(ev, kv)
        return True

    @staticmethod
    def _header(ev: Event, kv: dict[str, str], record: RawRecord, now: _dt.datetime) -> None:
        """The device, the log id, the time (device-local with its ``tz``), level, message, rule."""
        e = ev["event"]
        observer(ev, "Fortinet", "Fortigate", "firewall")
        if kv.get("devname"):
            set_field(ev, "observer.name", kv["devname"])
        if kv.get("devid"):
            set_field(ev, "observer.serial_number", kv["devid"])
        if kv.get("logid"):
            e["code"] = kv["logid"]
        tz = kv.get("tz")
        if tz:
            e["timezone"] = tz
        if kv.get("date") and kv.get("time"):
            off = _offset(tz)
            text = f"{kv['date']}T{kv['time']}"
            try:
                local = _dt.datetime.fromisoformat(text)
                set_timestamp(ev, local.replace(tzinfo=off or record_zone(record)), now, original=text)
            except ValueError:
                set_timestamp(ev, text, now)
        if kv.get("eventtime"):
            start_ts = _epoch_ns(kv["eventtime"], tz)
            if start_ts is not None:
                e["start"] = _iso_ms(start_ts)
        if kv.get("level"):
            set_field(ev, "log.level", kv["level"])
        if "msg" in kv:
            ev["message"] = kv["msg"]
        if kv.get("reason") and kv["reason"] not in ("none", "N/A"):
            e["reason"] = kv["reason"]
        if kv.get("ref"):
            e["reference"] = kv["ref"]
        for key, field in (("policyid", "rule.id"), ("policyname", "rule.name"), ("poluuid", "rule.uuid"),
                           ("profile", "rule.ruleset"), ("logdesc", "rule.description")):
            if kv.get(key):
                set_field(ev, field, kv[key])

    @staticmethod
    def _flow(ev: Event, kv: dict[str, str], vpn: bool) -> None:
        """Both ends (a VPN tunnel's remote end is the source), NAT, bytes and packets per side,
        duration, transport and protocol, community id and direction."""
        e = ev["event"]
        if vpn and kv.get("remip"):
            set_endpoint(ev, "source", kv.get("remip"), kv.get("remport"))
            set_endpoint(ev, "destination", kv.get("locip"), kv.get("locport"))
        else:
            set_endpoint(ev, "source", kv.get("srcip"), kv.get("srcport"))
            set_endpoint(ev, "destination", kv.get("dstip"), kv.get("dstport"))
        for key, field in (("srcintf", "observer.ingress.interface.name"), ("dstintf", "observer.egress.interface.name"),
                           ("srcmac", "source.mac"), ("dstmac", "destination.mac")):
            if kv.get(key):
                set_field(ev, field, kv[key].upper().replace(":", "-") if key.endswith("mac") else kv[key])
        for ip_key, port_key, side in (("transip", "transport", "source"), ("tranip", "tranport", "destination")):
            if kv.get(ip_key) and kv[ip_key] not in ("N/A", "0.0.0.0"):
                set_field(ev, f"{side}.nat.ip", kv[ip_key])
                add_related(ev, "ip", kv[ip_key])
                port = to_int(kv.get(port_key))
                if port:
                    set_field(ev, f"{side}.nat.port", port)
        sent, rcvd = to_int(kv.get("sentbyte")), to_int(kv.get("rcvdbyte"))
        src_b, dst_b = (rcvd, sent) if vpn else (sent, rcvd)
        if src_b is not None:
            set_field(ev, "source.bytes", src_b)
        if dst_b is not None:
            set_field(ev, "destination.bytes", dst_b)
        if src_b is not None or dst_b is not None:
            set_field(ev, "network.bytes", (src_b or 0) + (dst_b or 0))
        sp, rp = to_int(kv.get("sentpkt")), to_int(kv.get("rcvdpkt"))
        if sp is not None:
            set_field(ev, "source.packets", sp)
        if rp is not None:
            set_field(ev, "destination.packets", rp)
        if sp is not None or rp is not None:
            set_field(ev, "network.packets", (sp or 0) + (rp or 0))
        dur = to_int(kv.get("duration"))
        if dur is not None:
            e["duration"] = dur * 1_000_000_000
        num = set_transport(ev, kv.get("proto"))
        if kv.get("service") and not kv["service"].isdigit():
            set_field(ev, "network.protocol", kv["service"].lower())
        set_community_id(ev, num)
        d = kv.get("direction")
        direction = {"incoming": "inbound", "outgoing": "outbound", "inbound": "inbound", "outbound": "outbound"}.get(
            d or "") or direction_of(ev.get("source", {}).get("ip"), ev.get("destination", {}).get("ip"))
        if direction:
            set_field(ev, "network.direction", direction)

    @staticmethod
    def _categorize(ev: Event, kv: dict[str, str], vpn: bool, user: str | None) -> None:
        """ECS category, type, action and outcome from the log ``type``/``subtype``."""
        e = ev["event"]
        ftype, sub = kv.get("type", ""), kv.get("subtype", "")
        action = kv.get("action", "")
        status = kv.get("status", "")
        if ftype == "traffic":
            denied = action in _DENY
            e["category"] = ["network"]
            e["type"] = ["connection", "denied" if denied else "end" if action in ("close", "timeout") else "allowed"]
            if action:
                e["action"] = action
            set_outcome(ev, not denied)
        elif ftype == "utm":
            e["category"] = list(_UTM_CATEGORY.get(sub, ["network"]))
            e["type"] = ["denied"] if action in _DENY else ["info"]
            if sub in ("ips", "anomaly", "virus"):
                e["kind"] = "alert"
            e["action"] = kv.get("eventtype") or action
            if action:
                set_outcome(ev, True)
            attack = kv.get("attack") or kv.get("virus")
            if attack:
                set_field(ev, "rule.name", attack)
        elif ftype == "event":
            if action:
                e["action"] = action
            if "login" in action or "logout" in action or (sub == "user" and "auth" in action):
                e["category"] = ["authentication"]
                e["type"] = ["start"] if "login" in action else ["end"]
                if user:
                    set_field(ev, "user.name", user)
                    if kv.get("logdesc", "").startswith("Admin ") or kv.get("msg", "").startswith("Administrator "):
                        set_field(ev, "user.roles", ["Administrator"])
                        set_field(ev, "source.user.roles", ["Administrator"])
            elif vpn:
                e["category"] = ["network"]
                e["type"] = ["connection"]
            elif kv.get("cfgpath"):
                e["category"] = ["configuration"]
                e["type"] = ["change"]
            if status in ("success", "succeeded"):
                set_outcome(ev, True)
            elif status in ("failed", "failure", "fail"):
                set_outcome(ev, False)

    @staticmethod
    def _web(ev: Event, kv: dict[str, str]) -> None:
        if kv.get("httpmethod"):
            set_field(ev, "http.request.method", kv["httpmethod"])
        if kv.get("agent"):
            set_field(ev, "user_agent.original", kv["agent"])
        url, host = kv.get("url"), kv.get("hostname")
        if not url and not host:
            return
        if host:
            set_field(ev, "url.domain", host)
        if url:
            scheme = "https" if kv.get("service", "").upper() == "HTTPS" else "http"
            full = url if "://" in url else f"{scheme}://{host}{url}" if host else None
            try:
                parts = urlsplit(full or url)
            except ValueError:
                return
            if full:
                set_field(ev, "url.full", full)
                set_field(ev, "url.scheme", parts.scheme)
            set_field(ev, "url.path", parts.path or "/")
            if parts.query:
                set_field(ev, "url.query", parts.query)


PARSER = FortigateParser()
