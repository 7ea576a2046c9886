"""Suricata EVE JSON (``eve.json``): alert, flow, dns, http, tls, ssh, fileinfo, anomaly (and the rest kept).

One JSON object per line with ``timestamp``, ``event_type``, ``src_ip``/``src_port``/
``dest_ip``/``dest_port``/``proto`` and one object named after the event type
(Suricata's ``output-json-*.c``). Everything Suricata wrote stays under
``suricata.eve.*``; the ECS side follows Elastic's ``suricata`` integration:

* ``alert``: ``event.kind: alert``, ``intrusion_detection``, ``rule.id`` (signature id),
  ``rule.name``, ``rule.category``, ``event.severity`` (1 high ... 3 low, Suricata's
  priority), ``event.action``/``type`` allowed or blocked/denied (IPS mode);
  these become citysoc alerts through :mod:`detections.external`;
* ``flow``: bytes and packets per side (``to_server`` is the source's), start/end;
* ``dns`` (v1 and v2 layouts), ``http``, ``tls`` (certificate fields, JA3/JA3S,
  hashes as ECS wants them: upper-case hex without colons), ``ssh``, ``fileinfo``
  (``file.*``), ``anomaly``.

An EVE line missing keys (no ``event_type``, no addresses) is parsed as far as it
goes and tagged ``suricata_missing_keys``; a line that is not JSON is dead-lettered
(``ParseError``), as for every JSON format.
"""
from __future__ import annotations

import datetime as _dt
from typing import Any

from core.events import Event, set_field
from core.protocols import RawRecord

from ._common import add_tag, set_outcome, set_timestamp
from ._json import JsonFamilyParser
from ._netfields import add_related, observer, set_community_id, set_endpoint, set_transport

__all__ = ["SuricataParser", "PARSER", "SEVERITY_LEVELS", "claims_eve"]

SEVERITY_LEVELS = {1: "high", 2: "medium", 3: "low"}
"""Suricata alert severity (rule priority) -> citysoc level; 4 and above are ``low``."""

_CATEGORY = {"alert": (["network", "intrusion_detection"], ["info"]), "flow": (["network"], ["connection", "end"]),
             "dns": (["network"], ["protocol"]), "http": (["network", "web"], ["access", "protocol"]),
             "tls": (["network"], ["protocol"]), "ssh": (["network"], ["protocol"]),
             "fileinfo": (["network", "file"], ["info"]), "anomaly": (["network"], ["info"]),
             "drop": (["network", "intrusion_detection"], ["denied"]), "smtp": (["network", "email"], ["protocol"])}


def claims_eve(doc: dict[str, Any]) -> bool:
    """An EVE record: ``event_type`` plus Suricata's own keys."""
    return "event_type" in doc and ("src_ip" in doc or "flow_id" in doc or "pcap_cnt" in doc or "in_iface" in doc)


def _hex_upper(value: Any) -> str | None:
    return value.replace(":", "").upper() if isinstance(value, str) and value else None


def _eve_time(value: Any) -> Any:
    """``2026-06-27T08:13:26.024477-0400`` -> ISO with a colon in the offset (fromisoformat wants it on 3.10)."""
    if isinstance(value, str) and len(value) > 5 and value[-5] in "+-" and value[-4:].isdigit():
        return value[:-2] + ":" + value[-2:]
    return value


def _cert_time(value: Any) -> str | None:
    if not isinstance(value, str) or len(value) < 19:
        return None
    return value[:19] + ".000Z"


def _dn(text: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    names = {"CN": "common_name", "O": "organization", "OU": "organizational_unit", "C": "country", "L": "locality",
             "ST": "state_or_province"}
    for part in text.split(", "):
        k, eq, v = part.partition("=")
        if eq and k.strip() in names:
            out.setdefault(names[k.strip()], []).append(v)
    return out


class SuricataParser(JsonFamilyParser):
    name = "suricata"
    dataset = "suricata.eve"
    module = "suricata"
    order = 190
    json_claims = True
    datasets = ("suricata.eve",)

    def claims(self, doc: dict[str, Any]) -> bool:
        return claims_eve(doc)

    def apply_doc(self, ev: Event, doc: dict[str, Any], record: RawRecord, now: _dt.datetime) -> None:
        etype = doc.get("event_type")
        eve = {k: v for k, v in doc.items() if k not in ("timestamp", "src_ip", "src_port", "dest_ip", "dest_port",
                                                          "proto", "app_proto")}
        if "flow_id" in eve:
            eve["flow_id"] = str(eve["flow_id"])
        ev.setdefault("suricata", {})["eve"] = eve
        set_timestamp(ev, _eve_time(doc.get("timestamp")), now, original=str(doc.get("timestamp")))
        e = ev["event"]
        missing = not isinstance(etype, str) or "src_ip" not in doc or "timestamp" not in doc
        if missing:
            add_tag(ev, "suricata_missing_keys")
        if not isinstance(etype, str):
            return
        cat, typ = _CATEGORY.get(etype, (["network"], ["info"]))
        e["category"], e["type"] = list(cat), list(typ)
        set_endpoint(ev, "source", doc.get("src_ip"), doc.get("src_port"), address=True)
        set_endpoint(ev, "destination", doc.get("dest_ip"), doc.get("dest_port"), address=True)
        num = set_transport(ev, doc.get("proto"))
        app = doc.get("app_proto") if isinstance(doc.get("app_proto"), str) else None
        proto_name = app if app and app not in ("failed", "unknown") else etype if etype in (
            "dns", "http", "tls", "ssh", "smtp", "ftp", "smb", "dhcp", "krb5", "nfs", "rdp", "sip", "snmp") else None
        if proto_name:
            set_field(ev, "network.protocol", proto_name)
        set_community_id(ev, num)
        if doc.get("in_iface"):
            set_field(ev, "observer.ingress.interface.name", doc["in_iface"])
        body = doc.get(etype)
        if not isinstance(body, dict):
            if etype in _CATEGORY and etype not in ("drop",):
                add_tag(ev, "suricata_missing_keys")
            return
        handler = getattr(self, f"_{etype}", None)
        if handler is not None:
            handler(ev, body, doc)

    @staticmethod
    def _alert(ev: Event, a: dict[str, Any], doc: dict[str, Any]) -> None:
        e = ev["event"]
        e["kind"] = "alert"
        observer(ev, "OISF", "Suricata", "ids")
        for key, field in (("signature_id", "rule.id"), ("signature", "rule.name"), ("category", "rule.category"),
                           ("rev", "rule.version"), ("gid", "rule.ruleset")):
            if a.get(key) not in (None, ""):
                set_field(ev, field, str(a[key]))
        sev = a.get("severity")
        if isinstance(sev, int):
            e["severity"] = sev
        action = a.get("action")
        if action in ("allowed", "blocked"):
            e["action"] = action
            e["type"] = ["allowed"] if action == "allowed" else ["denied"]
            if action == "blocked":
                set_outcome(ev, True)
        meta = a.get("metadata")
        if isinstance(meta, dict):
            tags = meta.get("mitre_technique_id")
            if isinstance(tags, list):
                set_field(ev, "threat.technique.id", [str(t) for t in tags])

    @staticmethod
    def _flow(ev: Event, f: dict[str, Any], doc: dict[str, Any]) -> None:
        for key, field in (("bytes_toserver", "source.bytes"), ("bytes_toclient", "destination.bytes"),
                           ("pkts_toserver", "source.packets"), ("pkts_toclient", "destination.packets")):
            if isinstance(f.get(key), int):
                set_field(ev, field, f[key])
        src, dst = ev.get("source", {}), ev.get("destination", {})
        if "bytes" in src or "bytes" in dst:
            set_field(ev, "network.bytes", src.get("bytes", 0) + dst.get("bytes", 0))
        if "packets" in src or "packets" in dst:
            set_field(ev, "network.packets", src.get("packets", 0) + dst.get("packets", 0))
        for key in ("start", "end"):
            if isinstance(f.get(key), str):
                set_field(ev, f"event.{key}", f[key])

    @staticmethod
    def _dns(ev: Event, d: dict[str, Any], doc: dict[str, Any]) -> None:
        if d.get("type") in ("query", "answer", "request", "response"):
            set_field(ev, "dns.type", "query" if d["type"] in ("query", "request") else "answer")
        if d.get("id") is not None:
            set_field(ev, "dns.id", str(d["id"]))
        q = d.get("queries")
        rrname = d.get("rrname") or (q[0].get("rrname") if isinstance(q, list) and q and isinstance(q[0], dict) else None)
        rrtype = d.get("rrtype") or (q[0].get("rrtype") if isinstance(q, list) and q and isinstance(q[0], dict) else None)
        if rrname:
            set_field(ev, "dns.question.name", rrname)
        if rrtype:
            set_field(ev, "dns.question.type", rrtype)
        if d.get("rcode"):
            set_field(ev, "dns.response_code", d["rcode"])
        answers = d.get("answers")
        if isinstance(answers, list):
            out, ips = [], []
            for ans in answers:
                if isinstance(ans, dict):
                    item = {k2: ans[k1] for k1, k2 in (("rrname", "name"), ("rrtype", "type"), ("rdata", "data"),
                                                       ("ttl", "ttl")) if k1 in ans}
                    out.append(item)
                    if ans.get("rrtype") in ("A", "AAAA") and ans.get("rdata"):
                        ips.append(ans["rdata"])
            if out:
                set_field(ev, "dns.answers", out)
            if ips:
                set_field(ev, "dns.resolved_ip", ips)
        grouped = d.get("grouped")
        if isinstance(grouped, dict):
            ips = [ip for t in ("A", "AAAA") for ip in grouped.get(t, []) if isinstance(ip, str)]
            if ips:
                set_field(ev, "dns.resolved_ip", ips)

    @staticmethod
    def _http(ev: Event, h: dict[str, Any], doc: dict[str, Any]) -> None:
        for key, field in (("http_method", "http.request.method"), ("status", "http.response.status_code"),
                           ("http_user_agent", "user_agent.original"), ("http_refer", "http.request.referrer"),
                           ("length", "http.response.body.bytes"), ("http_content_type", "http.response.mime_type")):
            if h.get(key) not in (None, ""):
                set_field(ev, field, h[key])
        proto = h.get("protocol")
        if isinstance(proto, str) and proto.startswith("HTTP/"):
            set_field(ev, "http.version", proto[5:])
        if h.get("hostname"):
            set_field(ev, "url.domain", h["hostname"])
        url = h.get("url")
        if isinstance(url, str):
            set_field(ev, "url.original", url)
            path, _, query = url.partition("?")
            set_field(ev, "url.path", path)
            if query:
                set_field(ev, "url.query", query)
        status = h.get("status")
        if isinstance(status, int):
            set_outcome(ev, status < 400)

    @staticmethod
    def _tls(ev: Event, t: dict[str, Any], doc: dict[str, Any]) -> None:
        version = t.get("version")
        if isinstance(version, str) and " " in version:
            proto, _, num = version.partition(" ")
            set_field(ev, "tls.version_protocol", proto.lower())
            set_field(ev, "tls.version", num)
        if t.get("sni"):
            set_field(ev, "tls.client.server_name", t["sni"])
            set_field(ev, "destination.domain", t["sni"])
        sha1 = _hex_upper(t.get("fingerprint"))
        if sha1:
            set_field(ev, "tls.server.hash.sha1", sha1)
            add_related(ev, "hash", sha1)
        if t.get("subject"):
            set_field(ev, "tls.server.subject", t["subject"])
            set_field(ev, "tls.server.x509.subject", _dn(t["subject"]))
        if t.get("issuerdn"):
            set_field(ev, "tls.server.issuer", t["issuerdn"])
            set_field(ev, "tls.server.x509.issuer", _dn(t["issuerdn"]))
        serial = _hex_upper(t.get("serial"))
        if serial:
            set_field(ev, "tls.server.x509.serial_number", serial)
        for key, field in (("notbefore", "not_before"), ("notafter", "not_after")):
            ts = _cert_time(t.get(key))
            if ts:
                set_field(ev, f"tls.server.{field}", ts)
                set_field(ev, f"tls.server.x509.{field}", ts)
        for key, field in (("ja3", "tls.client.ja3"), ("ja3s", "tls.server.ja3s")):
            j = t.get(key)
            if isinstance(j, dict) and j.get("hash"):
                set_field(ev, field, j["hash"])
                add_related(ev, "hash", j["hash"])

    @staticmethod
    def _ssh(ev: Event, s: dict[str, Any], doc: dict[str, Any]) -> None:
        for side in ("client", "server"):
            part = s.get(side)
            if isinstance(part, dict):
                if part.get("software_version"):
                    set_field(ev, f"suricata.eve.ssh.{side}.software_version", part["software_version"])

    @staticmethod
    def _fileinfo(ev: Event, f: dict[str, Any], doc: dict[str, Any]) -> None:
        for key, field in (("filename", "file.name"), ("size", "file.size"), ("md5", "file.hash.md5"),
                           ("sha1", "file.hash.sha1"), ("sha256", "file.hash.sha256"), ("magic", "file.type"),
                           ("mimetype", "file.mime_type")):
            if f.get(key) not in (None, ""):
                set_field(ev, field, f[key])
                if key in ("md5", "sha1", "sha256"):
                    add_related(ev, "hash", f[key])
        name = f.get("filename")
        if isinstance(name, str) and "." in name.rsplit("/", 1)[-1]:
            set_field(ev, "file.extension", name.rsplit(".", 1)[-1].lower())
        http = doc.get("http")
        if isinstance(http, dict) and http.get("hostname"):
            set_field(ev, "url.domain", http["hostname"])
            if http.get("url"):
                set_field(ev, "url.original", http["url"])

    @staticmethod
    def _anomaly(ev: Event, a: dict[str, Any], doc: dict[str, Any]) -> None:
        if a.get("event"):
            set_field(ev, "event.action", str(a["event"]).lower())
        if a.get("type"):
            set_field(ev, "event.reason", f"{a.get('type')}: {a.get('event', '')}".rstrip(": "))


PARSER = SuricataParser()
