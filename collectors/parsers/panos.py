"""Palo Alto Networks PAN-OS syslog, CSV: TRAFFIC, THREAT, SYSTEM, CONFIG (and CORRELATION, others kept).

The payload is one CSV record ``FUTURE_USE,receive time,serial,type,subtype,...``
(PAN-OS 8-11 "Syslog Field Descriptions"), after an optional syslog envelope
(``<14>Nov 30 16:44:36 PA-220 1,2018/11/30 ...``, the "syslog wrapper"). Columns are
read by position per log type; every named column is kept under ``panw.panos.*``.
ECS mapping, after Elastic's ``panw`` integration where it agrees with ECS:

* TRAFFIC: ``event.action`` = the action (``allow``, ``deny``, ``drop``, ``reset-*``),
  ``event.type`` allowed/denied + ``end``, bytes and packets per side, NAT
  (``source.nat``/``destination.nat``), rule, zones and interfaces (``observer.ingress``/
  ``egress``), ``network.application``, ``event.duration``;
* THREAT: ``event.kind: alert``, ``intrusion_detection``/``threat``, the threat name and id
  (``rule``-less: ``panw.panos.threat.*``), URL subtype -> ``url.*``,
  ``event.action`` = ``url_filtering``/``<subtype>_detected`` (Elastic's names);
* SYSTEM: ``event.action`` = event id, ``log.level`` = severity, ``message`` = description;
* CONFIG: ``event.category: configuration``, ``user.name`` = admin, ``source.ip`` = client
  host, ``message`` = the command and path, outcome from the result.

``network.direction`` comes from the two addresses (private = internal), not from
PAN-OS's ``client-to-server`` (a session direction, not a perimeter one; see the parity
exceptions). A record with fewer columns than its type needs keeps what it has and is
tagged ``panos_truncated``; an unknown type is kept under ``panw.panos`` and tagged
``panos_unknown_type``.
"""
from __future__ import annotations

import csv
import datetime as _dt
import re

from core.events import Event, set_field
from core.protocols import RawRecord

from ._appliance import ApplianceParser
from ._common import add_tag, record_zone, set_outcome, set_timestamp, to_int
from ._netfields import add_related, observer, set_community_id, set_endpoint, set_transport
from .fortigate import direction_of

__all__ = ["PanosParser", "PARSER", "COLUMNS"]

_COMMON = ["future_use1", "receive_time", "serial_number", "type", "sub_type", "future_use2", "generated_time"]
_FLOW = ["source_ip", "destination_ip", "nat_source_ip", "nat_destination_ip", "ruleset", "source_user",
         "destination_user", "application", "virtual_sys", "source_zone", "destination_zone", "inbound_interface",
         "outbound_interface", "log_profile", "future_use3", "session_id", "repeat_count", "source_port",
         "destination_port", "nat_source_port", "nat_destination_port", "flags", "protocol", "action"]
COLUMNS: dict[str, list[str]] = {
    "TRAFFIC": _COMMON + _FLOW + ["bytes", "bytes_sent", "bytes_received", "packets", "start_time", "elapsed",
                                  "url_category", "future_use4", "sequence_number", "action_flags", "source_location",
                                  "destination_location", "future_use5", "packets_sent", "packets_received",
                                  "session_end_reason", "dg1", "dg2", "dg3", "dg4", "vsys_name", "device_name",
                                  "action_source"],
    "THREAT": _COMMON + _FLOW + ["misc", "threat_id", "url_category", "severity", "direction", "sequence_number",
                                 "action_flags", "source_location", "destination_location", "future_use4",
                                 "content_type", "pcap_id", "file_digest", "cloud", "url_idx", "user_agent",
                                 "file_type", "xff", "referer", "sender", "subject", "recipient", "report_id", "dg1",
                                 "dg2", "dg3", "dg4", "vsys_name", "device_name"],
    "SYSTEM": _COMMON + ["virtual_sys", "event_id", "object", "future_use3", "future_use4", "module", "severity",
                         "description", "sequence_number", "action_flags", "dg1", "dg2", "dg3", "dg4", "vsys_name",
                         "device_name"],
    "CONFIG": _COMMON + ["source_ip", "virtual_sys", "command", "admin", "client", "result", "configuration_path",
                         "before_change_detail", "after_change_detail", "sequence_number", "action_flags", "dg1", "dg2",
                         "dg3", "dg4", "vsys_name", "device_name"],
    "CORRELATION": _COMMON + ["source_ip", "source_user", "virtual_sys", "category", "severity", "dg1", "dg2", "dg3",
                              "dg4", "vsys_name", "device_name", "vsys_id", "object_name", "object_id", "evidence"],
}
_MIN_COLUMNS = {"TRAFFIC": 31, "THREAT": 35, "SYSTEM": 16, "CONFIG": 13, "CORRELATION": 12}
_DENY = frozenset({"deny", "drop", "drop-icmp", "reset-client", "reset-server", "reset-both", "block-url", "block",
                   "block-continue", "block-override", "sinkhole", "drop-all-packets", "block-ip"})
_THREAT_ACTIONS = {"url": "url_filtering", "virus": "virus_detected", "spyware": "spyware_detected",
                   "vulnerability": "vulnerability_detected", "file": "file_match", "wildfire": "wildfire_verdict",
                   "wildfire-virus": "wildfire_virus_detected", "flood": "flood_detected", "scan": "scan_detected",
                   "data": "data_match"}
_PAYLOAD_RE = re.compile(r"(?:^|(?<=[\s:]))\d?,\d{4}/\d\d/\d\d \d\d:\d\d:\d\d,[^,]*,[A-Z][A-Z_-]{2,20},")


def _pan_time(value: str, zone: _dt.tzinfo) -> _dt.datetime | None:
    try:
        return _dt.datetime.strptime(value, "%Y/%m/%d %H:%M:%S").replace(tzinfo=zone)
    except ValueError:
        return None


class PanosParser(ApplianceParser):
    name = "panos"
    dataset = "panw.panos"
    module = "panw"
    order = 140
    datasets = ("panw.panos",)
    payload_re = _PAYLOAD_RE

    def apply(self, ev: Event, message: str, program: str | None, record: RawRecord, now: _dt.datetime) -> bool:
        start = self.find_payload(message)
        if start < 0:
            return False
        self.claim(ev, record)
        try:
            cols = next(csv.reader([message[start:]]))
        except (csv.Error, StopIteration):
            add_tag(ev, "panos_truncated")
            return True
        ltype = cols[3] if len(cols) > 3 else ""
        names = COLUMNS.get(ltype)
        if names is None:
            add_tag(ev, "panos_unknown_type")
            names = _COMMON
        if len(cols) < _MIN_COLUMNS.get(ltype, 7):
            add_tag(ev, "panos_truncated")
        pan = {n: v for n, v in zip(names, cols) if v != "" and not n.startswith("future_use")}
        ev.setdefault("panw", {})["panos"] = pan
        zone = record_zone(record)
        observer(ev, "Palo Alto Networks", "PAN-OS", "firewall")
        if pan.get("serial_number"):
            set_field(ev, "observer.serial_number", pan["serial_number"])
        host = pan.get("device_name") or ev.get("host", {}).get("name")
        if host:
            set_field(ev, "observer.hostname", host)
            add_related(ev, "hosts", host)
        gen = _pan_time(pan.get("generated_time", ""), zone)
        if gen is not None:
            set_timestamp(ev, gen, now, original=pan.get("generated_time"))
        rec = _pan_time(pan.get("receive_time", ""), zone)
        if rec is not None:
            ev["event"]["created"] = rec.astimezone(_dt.timezone.utc).isoformat(timespec="milliseconds").replace(
                "+00:00", "Z")
        getattr(self, f"_{ltype.lower()}", self._other)(ev, pan)
        return True

    @staticmethod
    def _flow(ev: Event, pan: dict[str, str]) -> None:
        set_endpoint(ev, "source", pan.get("source_ip"), pan.get("source_port"))
        set_endpoint(ev, "destination", pan.get("destination_ip"), pan.get("destination_port"))
        for side, key in (("source", "nat_source"), ("destination", "nat_destination")):
            ip = pan.get(f"{key}_ip")
            if ip and ip != "0.0.0.0":
                set_field(ev, f"{side}.nat.ip", ip)
                add_related(ev, "ip", ip)
                port = to_int(pan.get(f"{key}_port"))
                if port:
                    set_field(ev, f"{side}.nat.port", port)
        for key, field in (("ruleset", "rule.name"), ("application", "network.application"),
                           ("source_zone", "observer.ingress.zone"), ("destination_zone", "observer.egress.zone"),
                           ("inbound_interface", "observer.ingress.interface.name"),
                           ("outbound_interface", "observer.egress.interface.name")):
            if pan.get(key):
                set_field(ev, field, pan[key])
        for key, field in (("source_user", "source.user.name"), ("destination_user", "destination.user.name")):
            if pan.get(key):
                set_field(ev, field, pan[key])
                add_related(ev, "user", pan[key])
        if pan.get("source_user"):
            set_field(ev, "user.name", pan["source_user"])
        num = set_transport(ev, pan.get("protocol"))
        set_community_id(ev, num)
        d = direction_of(ev.get("source", {}).get("ip"), ev.get("destination", {}).get("ip"))
        if d:
            set_field(ev, "network.direction", d)

    def _traffic(self, ev: Event, pan: dict[str, str]) -> None:
        self._flow(ev, pan)
        e = ev["event"]
        action = pan.get("action", "")
        denied = action in _DENY
        e["category"] = ["network"]
        e["type"] = ["connection", "denied" if denied else "allowed", "end"]
        if action:
            e["action"] = action
        set_outcome(ev, not denied)
        for key, field in (("bytes_sent", "source.bytes"), ("bytes_received", "destination.bytes"),
                           ("bytes", "network.bytes"), ("packets_sent", "source.packets"),
                           ("packets_received", "destination.packets"), ("packets", "network.packets")):
            n = to_int(pan.get(key))
            if n is not None:
                set_field(ev, field, n)
        elapsed = to_int(pan.get("elapsed"))
        if elapsed is not None:
            e["duration"] = elapsed * 1_000_000_000
        if pan.get("session_end_reason"):
            e["reason"] = pan["session_end_reason"]

    def _threat(self, ev: Event, pan: dict[str, str]) -> None:
        self._flow(ev, pan)
        e = ev["event"]
        e["kind"] = "alert"
        e["category"] = ["intrusion_detection", "threat", "network"]
        action = pan.get("action", "")
        denied = action in _DENY
        e["type"] = ["denied"] if denied else ["allowed"]
        sub = pan.get("sub_type", "")
        e["action"] = _THREAT_ACTIONS.get(sub, f"{sub}_detected" if sub else "threat")
        set_outcome(ev, True)
        sev = {"informational": 5, "low": 4, "medium": 3, "high": 2, "critical": 1}.get(pan.get("severity", ""))
        if sev is not None:
            e["severity"] = sev
        if pan.get("severity"):
            set_field(ev, "log.level", pan["severity"])
        tid = pan.get("threat_id", "")
        m = re.fullmatch(r"(.*?)\s*\((\d+)\)", tid)
        if m:
            set_field(ev, "panw.panos.threat.id", m.group(2))
            set_field(ev, "panw.panos.threat.name", m.group(1) or ("URL-filtering" if sub == "url" else ""))
        misc = pan.get("misc")
        if misc and sub == "url":
            set_field(ev, "url.original", misc)
            host, slash, path = misc.partition("/")
            if "://" in misc:
                host, _, rest = misc.split("://", 1)[1].partition("/")
                path = rest
            set_field(ev, "url.domain", host)
            set_field(ev, "destination.domain", host)
            set_field(ev, "url.path", "/" + path if slash or "://" in misc else "/")
        elif misc:
            set_field(ev, "file.name", misc)
        if pan.get("user_agent"):
            set_field(ev, "user_agent.original", pan["user_agent"])
        if pan.get("referer"):
            set_field(ev, "http.request.referrer", pan["referer"])
        if pan.get("file_digest"):
            set_field(ev, "file.hash.sha256", pan["file_digest"])

    @staticmethod
    def _system(ev: Event, pan: dict[str, str]) -> None:
        e = ev["event"]
        e["category"] = ["host"]
        e["type"] = ["info"]
        if pan.get("event_id"):
            e["action"] = pan["event_id"]
        if pan.get("severity"):
            set_field(ev, "log.level", pan["severity"])
        if pan.get("description"):
            ev["message"] = pan["description"]
        m = re.search(r"(?:user|User) '?([\w.@-]+)'?.*?(?:from|From):? '?([0-9A-Fa-f.:]+)'?", pan.get("description", ""))
        if m and "auth" in pan.get("event_id", "") + pan.get("sub_type", ""):
            set_field(ev, "user.name", m.group(1))
            set_endpoint(ev, "source", m.group(2).rstrip("."))
            e["category"] = ["authentication"]
            set_outcome(ev, "fail" not in pan.get("event_id", "") and "fail" not in pan.get("description", "").lower())

    @staticmethod
    def _config(ev: Event, pan: dict[str, str]) -> None:
        e = ev["event"]
        e["category"] = ["configuration"]
        e["type"] = ["change"]
        if pan.get("command"):
            e["action"] = pan["command"]
        if pan.get("admin"):
            set_field(ev, "user.name", pan["admin"])
            add_related(ev, "user", pan["admin"])
        set_endpoint(ev, "source", pan.get("source_ip"))
        result = pan.get("result", "").lower()
        if result:
            set_outcome(ev, result in ("succeeded", "success", "submitted"))
        ev["message"] = " ".join(v for v in (pan.get("command"), pan.get("configuration_path")) if v)

    @staticmethod
    def _correlation(ev: Event, pan: dict[str, str]) -> None:
        e = ev["event"]
        e["category"] = ["network"]
        set_outcome(ev, True)
        set_endpoint(ev, "source", pan.get("source_ip"))
        if pan.get("source_user"):
            set_field(ev, "source.user.name", pan["source_user"])
            set_field(ev, "user.name", pan["source_user"])
            add_related(ev, "user", pan["source_user"])
        if pan.get("severity"):
            set_field(ev, "log.level", pan["severity"])
        src = ev.get("source", {}).get("ip")
        if src:
            set_field(ev, "network.type", "ipv6" if ":" in src else "ipv4")

    @staticmethod
    def _other(ev: Event, pan: dict[str, str]) -> None:
        ev["event"]["category"] = ["network"]
        ev["event"]["type"] = ["info"]


PARSER = PanosParser()
