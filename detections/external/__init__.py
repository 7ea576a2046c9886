"""External detections: alerts that an IDS or firewall already raised become citysoc alerts.

Suricata (``alert`` EVE records), Zeek notices, FortiGate UTM (IPS, anomaly, virus) and
PAN-OS THREAT logs reach us as events with ``event.kind: alert`` (see their parsers in
``collectors/parsers``). :class:`ExternalAlerts` turns each into a
:class:`core.protocols.Detection`, the same object our own rules produce, so the alert
stage deduplicates them the same way (same rule + same entities within the window: one
alert whose count grows), suppressions apply, and playbooks can act on them. This is
what Elastic's "external alerts" and Security Onion's alert view do with NIDS output.

Rule ids are namespaced by the producer (``suricata:<signature id>``,
``zeek:<note>``, ``fortigate:<attack id or name>``, ``panos:<threat id>``) so an
analyst can tell our detections from the sensor's and suppress one signature.

Severity mapping (documented in ``detections/external/README.md``):

* Suricata ``alert.severity`` (the rule's priority): 1 -> high, 2 -> medium, 3 -> low,
  4 and above -> informational;
* Zeek notices: by note name (:data:`ZEEK_LEVELS`), default ``low``;
* FortiGate ``severity`` and PAN-OS ``severity`` words: critical -> critical,
  high -> high, medium -> medium, low -> low, info/informational -> informational.
"""
from __future__ import annotations

from typing import Any

from core.events import Event, get_field
from core.protocols import Detection

__all__ = ["ExternalAlerts", "SURICATA_LEVELS", "ZEEK_LEVELS", "VENDOR_LEVELS", "suricata_level"]

SURICATA_LEVELS: dict[int, str] = {1: "high", 2: "medium", 3: "low"}
"""Suricata alert severity -> citysoc level; anything above 3 is ``informational``."""

ZEEK_LEVELS: dict[str, str] = {
    "SSH::Password_Guessing": "high",
    "Scan::Port_Scan": "medium",
    "Scan::Address_Scan": "medium",
    "SSL::Invalid_Server_Cert": "low",
    "HTTP::SQL_Injection_Attacker": "high",
    "HTTP::SQL_Injection_Victim": "high",
    "FTP::Bruteforcing": "high",
    "TeamCymruMalwareHashRegistry::Match": "high",
    "Intel::Notice": "medium",
    "Signatures::Sensitive_Signature": "medium",
    "Weird::Activity": "informational",
}
"""Zeek notice names (Zeek's own scripts) -> citysoc level; others are ``low``."""

VENDOR_LEVELS: dict[str, str] = {"critical": "critical", "high": "high", "medium": "medium", "low": "low",
                                 "info": "informational", "information": "informational",
                                 "informational": "informational", "notice": "low", "warning": "medium",
                                 "alert": "high", "emergency": "critical"}

_MODULES = frozenset({"suricata", "zeek", "fortinet_fortigate", "panw"})


def suricata_level(severity: Any) -> str:
    """Suricata's 1 (most severe) .. 4+ to our level names."""
    try:
        return SURICATA_LEVELS.get(int(severity), "informational")
    except (TypeError, ValueError):
        return "medium"


def _tags(ev: Event, producer: str) -> list[str]:
    tags = ["external", producer]
    for tid in get_field(ev, "threat.technique.id") or []:
        if isinstance(tid, str):
            tags.append(f"attack.{tid.lower()}")
    return tags


class ExternalAlerts:
    """``core.protocols.Detector``: one detection per sensor alert (cheap check on every event)."""

    name = "external"

    def __init__(self) -> None:
        self.hits: dict[str, int] = {}

    def process(self, event: Event) -> list[Detection]:
        e = event.get("event")
        if not isinstance(e, dict) or e.get("kind") != "alert" or e.get("module") not in _MODULES:
            return []
        det = self._detection(event, e)
        if det is None:
            return []
        self.hits[det.rule_id] = self.hits.get(det.rule_id, 0) + 1
        return [det]

    @staticmethod
    def _detection(ev: Event, e: dict[str, Any]) -> Detection | None:
        module = e.get("module")
        rule = ev.get("rule") if isinstance(ev.get("rule"), dict) else {}
        if module == "suricata":
            sid = rule.get("id")
            if not sid:
                return None
            tags = _tags(ev, "suricata")
            if e.get("action") == "blocked":
                tags.append("blocked")
            return Detection(rule_id=f"suricata:{sid}", title=str(rule.get("name") or f"Suricata signature {sid}"),
                             level=suricata_level(e.get("severity")), events=[ev], tags=tags, engine="external",
                             description=str(rule.get("category") or ""),
                             extra={"producer": "suricata", "signature_id": sid})
        if module == "zeek":
            note = rule.get("name")
            if not note:
                return None
            return Detection(rule_id=f"zeek:{note}", title=f"Zeek notice {note}",
                             level=ZEEK_LEVELS.get(str(note), "low"), events=[ev], tags=_tags(ev, "zeek"),
                             engine="external", description=str(ev.get("message") or ""),
                             extra={"producer": "zeek", "note": note})
        if module == "fortinet_fortigate":
            fw = get_field(ev, "fortinet.firewall") or {}
            key = fw.get("attackid") or rule.get("name")
            if not key:
                return None
            level = VENDOR_LEVELS.get(str(fw.get("severity") or get_field(ev, "log.level") or "").lower(), "medium")
            return Detection(rule_id=f"fortigate:{key}", title=str(rule.get("name") or f"FortiGate {key}"),
                             level=level, events=[ev], tags=_tags(ev, "fortigate"), engine="external",
                             description=str(ev.get("message") or ""), extra={"producer": "fortigate"})
        if module == "panw":
            tid = get_field(ev, "panw.panos.threat.id")
            if not tid:
                return None
            name = get_field(ev, "panw.panos.threat.name") or f"PAN-OS threat {tid}"
            level = VENDOR_LEVELS.get(str(get_field(ev, "panw.panos.severity") or "").lower(), "medium")
            return Detection(rule_id=f"panos:{tid}", title=str(name), level=level, events=[ev],
                             tags=_tags(ev, "panos"), engine="external", extra={"producer": "panos"})
        return None
