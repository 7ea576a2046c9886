"""ArcSight Common Event Format: ``CEF:0|Vendor|Product|Version|Class ID|Name|Severity|k=v k=v ...``.

Header fields escape ``\\|`` and ``\\\\``; extension values escape ``\\=``, ``\\\\``,
``\\n`` and ``\\r`` and run up to the next ``<space>key=`` (values hold spaces), as
the "Implementing ArcSight CEF" guide (rev. 25) says. Every extension key is kept under
``cef.extensions.<full name>`` (short names expanded: ``src`` -> ``sourceAddress``);
the common ones are mapped to ECS as Elastic's ``decode_cef`` processor does:
addresses, ports, users and groups (``suser``/``duser``/``spriv``/``dpriv``), NAT
(``*TranslatedAddress``/``Port``), HTTP (``request``, ``requestMethod``,
``requestContext``, ``requestClientApplication``), files, device/agent fields,
``act`` -> ``event.action``, ``outcome`` -> ``event.outcome``, ``rt``/``start``/``end``.
The header's vendor/product/version go to ``observer.*``, the class id to
``event.code``, the name to ``message`` (unless ``msg`` says more).

A CEF line cut short (fewer than 7 header fields) keeps what it has and is tagged
``cef_truncated``; an extension with text before its first ``key=`` is tagged
``cef_extension_malformed``.
"""
from __future__ import annotations

import datetime as _dt
import re
from typing import Any

from core.events import Event, set_field
from core.protocols import RawRecord

from ._appliance import ApplianceParser
from ._common import add_tag, set_outcome, set_timestamp, to_int
from ._netfields import add_related, set_community_id, set_endpoint, set_transport

__all__ = ["CefParser", "PARSER", "parse_cef"]

_KEY_RE = re.compile(r"(?:^|(?<=\s))([A-Za-z0-9_.\[\]-]+)=")
_SHORT = {
    "act": "deviceAction", "app": "applicationProtocol", "c6a1": "deviceCustomIPv6Address1", "cat": "deviceEventCategory",
    "cnt": "baseEventCount", "cs1": "deviceCustomString1", "cs2": "deviceCustomString2", "cs3": "deviceCustomString3",
    "cs4": "deviceCustomString4", "cs5": "deviceCustomString5", "cs6": "deviceCustomString6",
    "cs1Label": "deviceCustomString1Label", "cs2Label": "deviceCustomString2Label", "cs3Label": "deviceCustomString3Label",
    "cs4Label": "deviceCustomString4Label", "cs5Label": "deviceCustomString5Label", "cs6Label": "deviceCustomString6Label",
    "cn1": "deviceCustomNumber1", "cn2": "deviceCustomNumber2", "cn3": "deviceCustomNumber3",
    "cn1Label": "deviceCustomNumber1Label", "cn2Label": "deviceCustomNumber2Label", "cn3Label": "deviceCustomNumber3Label",
    "dhost": "destinationHostName", "dmac": "destinationMacAddress", "dntdom": "destinationNtDomain",
    "dpid": "destinationProcessId", "dpriv": "destinationUserPrivileges", "dproc": "destinationProcessName",
    "dpt": "destinationPort", "dst": "destinationAddress", "dtz": "deviceTimeZone", "duid": "destinationUserId",
    "duser": "destinationUserName", "dvc": "deviceAddress", "dvchost": "deviceHostName", "dvcmac": "deviceMacAddress",
    "dvcpid": "deviceProcessId", "end": "endTime", "externalId": "externalId", "fname": "fileName", "fsize": "fileSize",
    "in": "bytesIn", "msg": "message", "out": "bytesOut", "outcome": "eventOutcome", "proto": "transportProtocol",
    "request": "requestUrl", "rt": "deviceReceiptTime", "shost": "sourceHostName", "smac": "sourceMacAddress",
    "sntdom": "sourceNtDomain", "spid": "sourceProcessId", "spriv": "sourceUserPrivileges", "sproc": "sourceProcessName",
    "spt": "sourcePort", "src": "sourceAddress", "start": "startTime", "suid": "sourceUserId", "suser": "sourceUserName",
    "ahost": "agentHostName", "agt": "agentAddress", "aid": "agentId", "amac": "agentMacAddress", "art": "agentReceiptTime",
    "at": "agentType", "atz": "agentTimeZone", "av": "agentVersion", "dlat": "destinationGeoLatitude",
    "dlong": "destinationGeoLongitude", "slat": "sourceGeoLatitude", "slong": "sourceGeoLongitude",
    "catdt": "categoryDeviceType", "deviceProcessName": "deviceProcessName", "eventId": "eventId",
}
_ECS: dict[str, str] = {
    "sourceHostName": "source.domain", "destinationHostName": "destination.domain",
    "sourceUserName": "source.user.name", "destinationUserName": "destination.user.name",
    "sourceUserId": "source.user.id", "destinationUserId": "destination.user.id",
    "sourceUserPrivileges": "source.user.group.name", "destinationUserPrivileges": "destination.user.group.name",
    "sourceNtDomain": "source.user.domain", "destinationNtDomain": "destination.user.domain",
    "sourceProcessName": "source.process.name", "destinationProcessName": "destination.process.name",
    "sourceServiceName": "source.service.name", "destinationServiceName": "destination.service.name",
    "requestUrl": "url.original", "requestMethod": "http.request.method", "requestContext": "http.request.referrer",
    "requestClientApplication": "user_agent.original", "applicationProtocol": "network.protocol",
    "deviceHostName": "observer.hostname", "deviceInboundInterface": "observer.ingress.interface.name",
    "deviceOutboundInterface": "observer.egress.interface.name", "deviceExternalId": "observer.name",
    "fileName": "file.name", "filePath": "file.path", "fileHash": "file.hash.md5", "deviceProcessName": "process.name",
    "deviceAction": "event.action", "eventId": "event.id", "deviceTimeZone": "event.timezone",
    "agentHostName": "agent.name", "agentId": "agent.id", "agentType": "agent.type", "agentVersion": "agent.version",
    "agentAddress": "agent.ip",
}
_INT_ECS = {"bytesIn": "source.bytes", "bytesOut": "destination.bytes", "fileSize": "file.size",
            "sourceProcessId": "source.process.pid", "destinationProcessId": "destination.process.pid",
            "deviceProcessId": "process.pid"}
_SEVERITY_WORDS = {"unknown": 0, "low": 0, "medium": 4, "high": 7, "very-high": 9, "veryhigh": 9}


def _unescape_ext(value: str) -> str:
    if "\\" not in value:
        return value
    out, i, n = [], 0, len(value)
    while i < n:
        c = value[i]
        if c == "\\" and i + 1 < n:
            nxt = value[i + 1]
            out.append({"n": "\n", "r": "\r"}.get(nxt, nxt))
            i += 2
            continue
        out.append(c)
        i += 1
    return "".join(out)


def _split_header(text: str) -> tuple[list[str], str | None]:
    """Seven ``|``-separated header fields (``\\|`` kept literal) and the extension, if complete."""
    fields: list[str] = []
    buf: list[str] = []
    i, n = 0, len(text)
    while i < n and len(fields) < 7:
        c = text[i]
        if c == "\\" and i + 1 < n and text[i + 1] in "|\\":
            buf.append(text[i + 1])
            i += 2
            continue
        if c == "|":
            fields.append("".join(buf))
            buf = []
        else:
            buf.append(c)
        i += 1
    if len(fields) < 7:
        fields.append("".join(buf))
        return fields, None
    return fields, text[i:]


def parse_extension(ext: str) -> tuple[dict[str, str], bool]:
    """``key=value`` pairs of a CEF extension (unescaped); ``(pairs, ok)``."""
    out: dict[str, str] = {}
    matches = [m for m in _KEY_RE.finditer(ext) if not (m.start(1) > 0 and ext[m.end(1) - 1:m.end(1)] == "\\")]
    matches = [m for m in matches if ext[m.end() - 2:m.end()] != "\\="]
    ok = not matches or not ext[:matches[0].start()].strip()
    for j, m in enumerate(matches):
        end = matches[j + 1].start() if j + 1 < len(matches) else len(ext)
        out[m.group(1)] = _unescape_ext(ext[m.end():end].rstrip())
    return out, ok


def _cef_time(value: str) -> Any:
    n = to_int(value)
    if n is not None:
        return n / 1000 if n > 10**11 else n
    return value


def parse_cef(ev: Event, payload: str, now: _dt.datetime) -> bool:
    """Fill ``ev`` from a CEF payload starting at ``CEF:``; False when it is not CEF."""
    if not payload.startswith("CEF:"):
        return False
    header, ext = _split_header(payload[4:])
    version, vendor, product, dversion, class_id, name, severity = (header + [""] * 7)[:7]
    cef: dict[str, Any] = {"version": version}
    dev = {k: v for k, v in (("vendor", vendor), ("product", product), ("version", dversion),
                             ("event_class_id", class_id)) if v}
    if dev:
        cef["device"] = dev
    if name:
        cef["name"] = name
        ev["message"] = name
    if severity:
        cef["severity"] = severity
    ev["cef"] = cef
    e = ev["event"]
    if vendor:
        set_field(ev, "observer.vendor", vendor)
    if product:
        set_field(ev, "observer.product", product)
    if dversion:
        set_field(ev, "observer.version", dversion)
    if class_id:
        e["code"] = class_id
    sev = to_int(severity)
    e["severity"] = sev if sev is not None else _SEVERITY_WORDS.get(severity.strip().lower(), 0)
    if ext is None:
        add_tag(ev, "cef_truncated")
        return True
    raw, ok = parse_extension(ext)
    if not ok:
        add_tag(ev, "cef_extension_malformed")
    exts = {_SHORT.get(k, k): v for k, v in raw.items()}
    if exts:
        cef["extensions"] = exts
    _map(ev, exts, now)
    return True


def _map(ev: Event, x: dict[str, str], now: _dt.datetime) -> None:
    e = ev["event"]
    set_endpoint(ev, "source", x.get("sourceAddress"), x.get("sourcePort"))
    set_endpoint(ev, "destination", x.get("destinationAddress"), x.get("destinationPort"))
    for key, field in _ECS.items():
        v = x.get(key)
        if v not in (None, ""):
            set_field(ev, field, v)
    for key, field in _INT_ECS.items():
        n = to_int(x.get(key))
        if n is not None:
            set_field(ev, field, n)
    for key, side in (("sourceTranslatedAddress", "source"), ("destinationTranslatedAddress", "destination")):
        if x.get(key):
            set_field(ev, f"{side}.nat.ip", x[key])
            add_related(ev, "ip", x[key])
    for key, side in (("sourceTranslatedPort", "source"), ("destinationTranslatedPort", "destination")):
        n = to_int(x.get(key))
        if n is not None:
            set_field(ev, f"{side}.nat.port", n)
    for key, field in (("sourceMacAddress", "source.mac"), ("destinationMacAddress", "destination.mac"),
                       ("deviceMacAddress", "observer.mac"), ("agentMacAddress", "agent.mac")):
        if x.get(key):
            set_field(ev, field, x[key].lower().replace("-", ":") if key == "agentMacAddress" else
                      x[key].upper().replace(":", "-"))
    if x.get("deviceAddress"):
        set_field(ev, "observer.ip", x["deviceAddress"])
    for key in ("sourceUserName", "destinationUserName"):
        add_related(ev, "user", x.get(key))
    for key in ("fileHash", "oldFileHash"):
        add_related(ev, "hash", x.get(key))
    for key in ("sourceHostName", "destinationHostName", "deviceHostName"):
        add_related(ev, "hosts", x.get(key))
    if x.get("message"):
        ev["message"] = x["message"]
    num = set_transport(ev, x.get("transportProtocol"))
    set_community_id(ev, num)
    outcome = (x.get("eventOutcome") or x.get("categoryOutcome") or "").strip("/").lower()
    if outcome in ("success", "succeeded", "allow", "allowed"):
        set_outcome(ev, True)
    elif outcome in ("failure", "failed", "fail", "deny", "denied", "blocked"):
        set_outcome(ev, False)
    if x.get("deviceReceiptTime"):
        set_timestamp(ev, _cef_time(x["deviceReceiptTime"]), now, original=x["deviceReceiptTime"])
    for key, field in (("startTime", "start"), ("endTime", "end"), ("agentReceiptTime", "created")):
        if x.get(key):
            t = _cef_time(x[key])
            try:
                e[field] = (_dt.datetime.fromtimestamp(t, _dt.timezone.utc).isoformat(timespec="milliseconds")
                            .replace("+00:00", "Z")) if isinstance(t, (int, float)) else x[key]
            except (ValueError, OverflowError, OSError):  # past year 9999: kept as written
                e[field] = x[key]
    # A custom-string label names its value: "cs1Label=Module cs1=systemd" -> cef.extensions keep both.


class CefParser(ApplianceParser):
    name = "cef"
    dataset = "cef.log"
    module = "cef"
    order = 150
    datasets = ("cef.log",)
    payload_re = re.compile(r"CEF:\d+\|")
    max_prefix = 256

    def sniff(self, message: str) -> bool:
        return "CEF:" in message[:256] and self.find_payload(message) >= 0

    def apply(self, ev: Event, message: str, program: str | None, record: RawRecord, now: _dt.datetime) -> bool:
        start = self.find_payload(message)
        if start < 0:
            return False
        self.claim(ev, record)
        return parse_cef(ev, message[start:], now)


PARSER = CefParser()
