"""Zeek logs, JSON (``LogAscii::use_json``) and TSV (``#fields`` headers): conn, dns, http, ssl, ssh, files, notice, weird.

The log kind comes from, in order: the record's dataset (``zeek.dns``), a ``_path``
key, the ``#path`` header (TSV), the file name in ``log.file.path`` (``dns.log``), and
last the keys of the record itself (``query``+``qtype`` is dns, ``conn_state`` conn...).
Every key is kept under ``zeek.<kind>.*`` (``zeek.connection`` for conn, as Elastic
names it); the ECS side follows Elastic's ``zeek`` integration: ``uid`` ->
``event.id``/``zeek.session_id``, ``id.orig_h``/``id.resp_h`` -> ``source``/``destination``,
``*_ip_bytes`` -> bytes, ``local_orig``/``local_resp`` -> ``network.direction``,
``notice`` -> ``event.kind: alert`` (the alert stage turns it into a citysoc alert, see
:mod:`detections.external`).

TSV is stateful: the ``#fields``/``#types``/``#path`` lines of a file describe the data
lines after them, so the header is remembered per source and file (a bounded cache,
:data:`MAX_HEADERS`). A header line becomes a small event tagged ``zeek_header`` (never
silently dropped); a data line with no header seen is kept with tag ``zeek_no_header``;
one whose column count differs from the header (the header changed under us) maps the
columns it can and is tagged ``zeek_fields_mismatch``.
"""
from __future__ import annotations

import datetime as _dt
from collections import OrderedDict
from typing import Any

from core.events import Event, set_field
from core.protocols import ParseError, RawRecord

from ._app import utcnow
from ._common import add_tag, base_event, decode, set_outcome, set_timestamp
from ._json import JsonFamilyParser, load_object
from ._netfields import add_related, set_community_id, set_endpoint, set_transport

__all__ = ["ZeekParser", "PARSER", "MAX_HEADERS", "claims_zeek", "registered_domain"]

MAX_HEADERS = 256
"""TSV headers remembered at once (one per source and file); the oldest is forgotten."""

_KIND_NAMES = {"conn": "connection", "dns": "dns", "http": "http", "ssl": "ssl", "ssh": "ssh", "files": "files",
               "notice": "notice", "weird": "weird", "x509": "x509", "dhcp": "dhcp", "smtp": "smtp", "ftp": "ftp"}
_CONN_STATES = {
    "S0": "Connection attempt seen, no reply.", "S1": "Connection established, not terminated.",
    "SF": "Normal establishment and termination.", "REJ": "Connection attempt rejected.",
    "S2": "Connection established and close attempt by originator seen (but no reply from responder).",
    "S3": "Connection established and close attempt by responder seen (but no reply from originator).",
    "RSTO": "Connection established, originator aborted (sent a RST).",
    "RSTR": "Responder sent a RST.", "RSTOS0": "Originator sent a SYN followed by a RST, we never saw a SYN-ACK from "
    "the responder.", "RSTRH": "Responder sent a SYN ACK followed by a RST, we never saw a SYN from the (purported) "
    "originator.", "SH": "Originator sent a SYN followed by a FIN, we never saw a SYN ACK from the responder (hence "
    "the connection was 'half' open).", "SHR": "Responder sent a SYN ACK followed by a FIN, we never saw a SYN from "
    "the originator.", "OTH": "No SYN seen, just midstream traffic (a 'partial connection' that was not later "
    "closed)."}
_QCLASS = {1: "IN", 3: "CH", 4: "HS", 254: "NONE", 255: "ANY"}
_TWO_LEVEL = frozenset({"com.vn", "net.vn", "org.vn", "gov.vn", "edu.vn", "ac.vn", "int.vn", "info.vn", "biz.vn",
                        "name.vn", "pro.vn", "health.vn", "co.uk", "org.uk", "ac.uk", "gov.uk", "com.au", "net.au",
                        "org.au", "co.jp", "ne.jp", "or.jp", "com.cn", "net.cn", "org.cn", "com.sg", "com.br",
                        "co.kr", "co.in", "com.tw", "com.hk", "co.nz", "co.za"})


def registered_domain(name: str) -> tuple[str, str, str] | None:
    """``(registered_domain, subdomain, top_level_domain)`` of a DNS name, ``None`` for local/bare names.

    A short built-in list of two-level public suffixes (``com.vn``, ``co.uk``...) stands
    in for the full Public Suffix List; names ending in ``.local``/``.arpa`` have none.
    """
    labels = name.rstrip(".").lower().split(".")
    if len(labels) < 2 or labels[-1] in ("local", "arpa", "localdomain", "internal", "lan") or not labels[-1].isalpha():
        return None
    suffix_len = 2 if len(labels) >= 3 and ".".join(labels[-2:]) in _TWO_LEVEL else 1
    if len(labels) <= suffix_len:
        return None
    reg = ".".join(labels[-suffix_len - 1:])
    sub = ".".join(labels[:-suffix_len - 1])
    return reg, sub, ".".join(labels[-suffix_len:])


def _kind_from_keys(doc: dict[str, Any]) -> str | None:
    if "conn_state" in doc or "orig_ip_bytes" in doc or ("history" in doc and "service" in doc):
        return "conn"
    if "query" in doc or "qtype" in doc or "trans_id" in doc:
        return "dns"
    if "trans_depth" in doc or "method" in doc or "status_code" in doc:
        return "http"
    if "auth_attempts" in doc or "host_key" in doc or ("client" in doc and "server" in doc and "version" in doc):
        return "ssh"
    if "server_name" in doc or "cipher" in doc or "validation_status" in doc or "ja3" in doc:
        return "ssl"
    if "fuid" in doc and ("mime_type" in doc or "source" in doc or "seen_bytes" in doc):
        return "files"
    if "note" in doc:
        return "notice"
    if "name" in doc and ("addl" in doc or "notice" in doc or "peer" in doc):
        return "weird"
    return None


def claims_zeek(doc: dict[str, Any]) -> bool:
    """A Zeek JSON record (or a Splunk export wrapping one in ``result._raw``)."""
    if "ts" in doc and ("uid" in doc or "fuid" in doc or "id.orig_h" in doc):
        return True
    res = doc.get("result")
    return isinstance(res, dict) and isinstance(res.get("_raw"), str) and '"id.orig_h"' in res["_raw"]


def _tsv_value(raw: str, typ: str, hdr: dict[str, Any]) -> Any:
    if raw == hdr["unset"]:
        return None
    container = typ.startswith(("set[", "vector["))
    if raw == hdr["empty"]:
        return [] if container else ""
    if container:
        inner = typ[typ.index("[") + 1:-1]
        return [_tsv_value(v, inner, hdr) for v in raw.split(hdr["set_sep"])]
    if typ in ("count", "int", "port"):
        try:
            n = int(raw)
        except ValueError:
            return raw
        return n if -(2**63) <= n < 2**63 else raw  # past 64 bits no store keeps a number
    if typ in ("double", "interval", "time"):
        try:
            return float(raw)
        except ValueError:
            return raw
    if typ == "bool":
        return raw == "T"
    return raw


class ZeekParser(JsonFamilyParser):
    name = "zeek"
    dataset = "zeek.log"
    module = "zeek"
    order = 200
    json_claims = True
    datasets = ("zeek.connection", "zeek.dns", "zeek.http", "zeek.ssh", "zeek.ssl", "zeek.files", "zeek.notice",
                "zeek.weird")

    def __init__(self) -> None:
        self._headers: OrderedDict[tuple[str, str], dict[str, Any]] = OrderedDict()

    def claims(self, doc: dict[str, Any]) -> bool:
        return claims_zeek(doc)

    # -- TSV -----------------------------------------------------------------------------
    def parse(self, record: RawRecord, *, now: _dt.datetime | None = None) -> Event:
        text, valid = decode(record.data)
        if text.lstrip().startswith("{"):
            return super().parse(record, now=now)
        now = now or utcnow()
        ev, line = base_event(record, now, dataset=self.dataset, module=self.module, text=text if valid else None)
        key = (record.source, str(record.meta.get("log.file.path", "")) if record.meta else "")
        if line.startswith("#"):
            self._header_line(ev, line, key)
            return ev
        hdr = self._headers.get(key)
        if hdr is None or "fields" not in hdr:
            ev["message"] = line
            add_tag(ev, "zeek_no_header")
            return ev
        self._headers.move_to_end(key)
        cols = line.split(hdr["sep"])
        fields, types = hdr["fields"], hdr.get("types") or ["string"] * len(hdr["fields"])
        if len(cols) != len(fields):
            add_tag(ev, "zeek_fields_mismatch")
        doc: dict[str, Any] = {}
        for name, typ, raw in zip(fields, types, cols):
            value = _tsv_value(raw, typ, hdr)
            if value is not None:
                doc[name] = value
        if hdr.get("path"):
            doc.setdefault("_path", hdr["path"])
        self.apply_doc(ev, doc, record, now)
        return ev

    def _header_line(self, ev: Event, line: str, key: tuple[str, str]) -> None:
        hdr = self._headers.get(key)
        if line.startswith("#separator"):
            name, value = "separator", line[len("#separator"):].strip()
        else:
            name, _, value = line[1:].partition(hdr["sep"] if hdr else "\t")
        if hdr is None or name == "separator":
            hdr = {"sep": "\t", "set_sep": ",", "empty": "(empty)", "unset": "-"}
            self._headers[key] = hdr
            while len(self._headers) > MAX_HEADERS:
                self._headers.popitem(last=False)
        sep = hdr["sep"]
        if name == "separator":
            hdr["sep"] = value.encode().decode("unicode_escape") if value.startswith("\\x") else value or "\t"
        elif name == "set_separator":
            hdr["set_sep"] = value
        elif name == "empty_field":
            hdr["empty"] = value
        elif name == "unset_field":
            hdr["unset"] = value
        elif name == "path":
            hdr["path"] = value
        elif name == "fields":
            hdr["fields"] = value.split(sep)
            hdr.pop("types", None)
        elif name == "types":
            hdr["types"] = value.split(sep)
        ev["message"] = line
        ev["event"]["action"] = "zeek-log-header"
        add_tag(ev, "zeek_header")

    # -- mapping ---------------------------------------------------------------------------
    def apply_doc(self, ev: Event, doc: dict[str, Any], record: RawRecord, now: _dt.datetime) -> None:
        res = doc.get("result")
        if "ts" not in doc and isinstance(res, dict) and isinstance(res.get("_raw"), str):
            try:
                inner = load_object(res["_raw"])
            except ParseError:
                add_tag(ev, "zeek_missing_keys")
                return
            ev["event"]["original"] = res["_raw"]
            if isinstance(res.get("host"), str):
                set_field(ev, "host.name", res["host"])
            if isinstance(res.get("source"), str):
                set_field(ev, "log.file.path", res["source"])
            doc = inner
        kind = self._kind(doc, record)
        name = _KIND_NAMES.get(kind or "", kind or "unknown")
        e = ev["event"]
        if not record.dataset:
            e["dataset"] = f"zeek.{name}"
        body = {k: v for k, v in doc.items() if k not in ("ts", "uid", "id.orig_h", "id.orig_p", "id.resp_h",
                                                          "id.resp_p", "proto", "_path", "_write_ts")}
        zk: dict[str, Any] = {name: body}
        ev["zeek"] = zk
        set_timestamp(ev, doc.get("ts"), now)
        uid = doc.get("uid")
        if isinstance(uid, str):
            e["id"] = uid
            zk["session_id"] = uid
        if "ts" not in doc or kind is None:
            add_tag(ev, "zeek_missing_keys")
        set_endpoint(ev, "source", doc.get("id.orig_h"), doc.get("id.orig_p"), address=True)
        set_endpoint(ev, "destination", doc.get("id.resp_h"), doc.get("id.resp_p"), address=True)
        num = set_transport(ev, doc.get("proto"))
        if kind == "ssh" or kind == "http" or kind == "ssl":
            num = num or 6
            set_field(ev, "network.transport", ev.get("network", {}).get("transport", "tcp"))
        set_community_id(ev, num)
        e["category"] = ["network"]
        handler = getattr(self, f"_{kind}", None)
        if handler is not None:
            handler(ev, doc, body)
        else:
            e["type"] = ["info"]

    def _kind(self, doc: dict[str, Any], record: RawRecord) -> str | None:
        ds = record.dataset or ""
        if ds.startswith("zeek."):
            tail = ds[5:]
            return "conn" if tail in ("connection", "conn") else tail
        path = doc.get("_path")
        if isinstance(path, str) and path:
            return path
        fpath = str(record.meta.get("log.file.path", "")) if record.meta else ""
        base = fpath.rsplit("/", 1)[-1].split(".", 1)[0]
        if base in _KIND_NAMES:
            return base
        return _kind_from_keys(doc)

    @staticmethod
    def _conn(ev: Event, doc: dict[str, Any], body: dict[str, Any]) -> None:
        e = ev["event"]
        state = doc.get("conn_state")
        # Both ends seen (Elastic's reading): start and end; only the start; else partial, info.
        e["type"] = (["connection", "start", "end"] if state in ("SF", "S2", "S3", "RSTO", "RSTR")
                     else ["connection", "start"] if state in ("S0", "S1", "REJ") else ["connection", "info"])
        if isinstance(doc.get("service"), str):
            set_field(ev, "network.protocol", doc["service"].split(",")[0])
        if isinstance(doc.get("duration"), (int, float)):
            e["duration"] = round(doc["duration"] * 1e9)
        for key, field in (("orig_ip_bytes", "source.bytes"), ("resp_ip_bytes", "destination.bytes"),
                           ("orig_pkts", "source.packets"), ("resp_pkts", "destination.packets")):
            if isinstance(doc.get(key), int):
                set_field(ev, field, doc[key])
        src, dst = ev.get("source", {}), ev.get("destination", {})
        if "bytes" in src or "bytes" in dst:
            set_field(ev, "network.bytes", src.get("bytes", 0) + dst.get("bytes", 0))
        if "packets" in src or "packets" in dst:
            set_field(ev, "network.packets", src.get("packets", 0) + dst.get("packets", 0))
        lo, lr = doc.get("local_orig"), doc.get("local_resp")
        if isinstance(lo, bool) and isinstance(lr, bool):
            set_field(ev, "network.direction",
                      "internal" if lo and lr else "outbound" if lo else "inbound" if lr else "external")
        state = doc.get("conn_state")
        if isinstance(state, str):
            body["state"] = body.pop("conn_state")
            if state in _CONN_STATES:
                body["state_message"] = _CONN_STATES[state]
            if state == "REJ":
                set_outcome(ev, False)

    @staticmethod
    def _dns(ev: Event, doc: dict[str, Any], body: dict[str, Any]) -> None:
        e = ev["event"]
        e["type"] = ["connection", "protocol", "info"]
        set_field(ev, "network.protocol", "dns")
        if doc.get("trans_id") is not None:
            set_field(ev, "dns.id", str(doc["trans_id"]))
            body["trans_id"] = str(doc["trans_id"])
        if isinstance(doc.get("rtt"), (int, float)):
            e["duration"] = round(doc["rtt"] * 1e9, 1)
        q = doc.get("query")
        if isinstance(doc.get("qclass"), int):
            set_field(ev, "dns.question.class", _QCLASS.get(doc["qclass"], str(doc["qclass"])))
        if doc.get("qtype_name"):
            set_field(ev, "dns.question.type", doc["qtype_name"])
        if isinstance(q, str) and q:
            reg = registered_domain(q)
            # Elastic leaves dns.question.name out when no registered domain is found
            # (mDNS ``*.local``); we always keep it (see the parity exceptions).
            set_field(ev, "dns.question.name", q)
            if reg:
                set_field(ev, "dns.question.registered_domain", reg[0])
                if reg[1]:
                    set_field(ev, "dns.question.subdomain", reg[1])
                set_field(ev, "dns.question.top_level_domain", reg[2])
        flags = [f for f in ("AA", "TC", "RD", "RA") if doc.get(f) is True]
        if flags:
            set_field(ev, "dns.header_flags", flags)
        if doc.get("rcode_name"):
            set_field(ev, "dns.response_code", doc["rcode_name"])
        answers = doc.get("answers")
        ttls = doc.get("TTLs") or []
        if isinstance(answers, list) and answers:
            out = []
            for i, data in enumerate(answers):
                item: dict[str, Any] = {"data": data}
                if i < len(ttls) and isinstance(ttls[i], (int, float)):
                    item["ttl"] = int(ttls[i])
                out.append(item)
            set_field(ev, "dns.answers", out)
            ips = [a for a in answers if (isinstance(a, str) and a[:1].isdigit() and a.count(".") == 3) or
                   (isinstance(a, str) and ":" in a and "." not in a)]
            set_field(ev, "dns.resolved_ip", ips)
            for ip in ips:
                add_related(ev, "ip", ip)
        set_field(ev, "dns.type", "answer" if answers or doc.get("rcode_name") else "query")
        set_outcome(ev, doc.get("rejected") is not True)

    @staticmethod
    def _http(ev: Event, doc: dict[str, Any], body: dict[str, Any]) -> None:
        e = ev["event"]
        e["category"] = ["network", "web"]
        e["type"] = ["connection", "protocol", "info"]
        method = doc.get("method")
        if method:
            e["action"] = method
            set_field(ev, "http.request.method", method)
        for key, field in (("request_body_len", "http.request.body.bytes"),
                           ("response_body_len", "http.response.body.bytes"), ("status_code", "http.response.status_code"),
                           ("version", "http.version"), ("user_agent", "user_agent.original"),
                           ("referrer", "http.request.referrer"), ("host", "url.domain"), ("username", "url.username")):
            if doc.get(key) not in (None, "", "-"):
                set_field(ev, field, doc[key])
        uri = doc.get("uri")
        if isinstance(uri, str):
            set_field(ev, "url.original", uri)
            if uri.startswith("/"):
                path, _, query = uri.partition("?")
                set_field(ev, "url.path", path)
                if query:
                    set_field(ev, "url.query", query)
        if doc.get("username"):
            set_field(ev, "user.name", doc["username"])
            add_related(ev, "user", doc["username"])
        status = doc.get("status_code")
        if isinstance(status, int):
            set_outcome(ev, status < 400)

    @staticmethod
    def _ssh(ev: Event, doc: dict[str, Any], body: dict[str, Any]) -> None:
        ev["event"]["type"] = ["connection", "protocol"]
        set_field(ev, "network.protocol", "ssh")
        ok = doc.get("auth_success")
        if isinstance(ok, bool):
            set_outcome(ev, ok)

    @staticmethod
    def _ssl(ev: Event, doc: dict[str, Any], body: dict[str, Any]) -> None:
        ev["event"]["type"] = ["connection", "protocol"]
        set_field(ev, "network.protocol", "tls")
        version = doc.get("version")
        if isinstance(version, str) and version.startswith(("TLSv", "SSLv")):
            set_field(ev, "tls.version_protocol", version[:3].lower())
            num = version[4:]
            set_field(ev, "tls.version", num if "." in num else f"{num[0]}.{num[1:]}" if len(num) > 1 else num)
        for key, field in (("cipher", "tls.cipher"), ("curve", "tls.curve"), ("server_name", "tls.client.server_name"),
                           ("resumed", "tls.resumed"), ("established", "tls.established"), ("ja3", "tls.client.ja3"),
                           ("ja3s", "tls.server.ja3s"), ("subject", "tls.server.subject"),
                           ("issuer", "tls.server.issuer"), ("next_protocol", "tls.next_protocol")):
            if doc.get(key) not in (None, ""):
                set_field(ev, field, doc[key])
        if doc.get("server_name"):
            set_field(ev, "destination.domain", doc["server_name"])
        if isinstance(doc.get("established"), bool):
            set_outcome(ev, doc["established"])

    @staticmethod
    def _files(ev: Event, doc: dict[str, Any], body: dict[str, Any]) -> None:
        ev["event"]["category"] = ["file"]
        ev["event"]["type"] = ["info"]
        for key, field in (("md5", "file.hash.md5"), ("sha1", "file.hash.sha1"), ("sha256", "file.hash.sha256"),
                           ("mime_type", "file.mime_type"), ("filename", "file.name"), ("total_bytes", "file.size"),
                           ("fuid", "file.uid")):
            if doc.get(key) not in (None, ""):
                set_field(ev, field, doc[key])
                if key in ("md5", "sha1", "sha256"):
                    add_related(ev, "hash", doc[key])
        if "size" not in ev.get("file", {}) and isinstance(doc.get("seen_bytes"), int):
            set_field(ev, "file.size", doc["seen_bytes"])
        for key, side in (("tx_hosts", "source"), ("rx_hosts", "destination")):
            hosts = doc.get(key)
            if isinstance(hosts, list) and hosts and "ip" not in ev.get(side, {}):
                set_endpoint(ev, side, hosts[0])

    @staticmethod
    def _notice(ev: Event, doc: dict[str, Any], body: dict[str, Any]) -> None:
        e = ev["event"]
        e["kind"] = "alert"
        e["category"] = ["intrusion_detection", "network"]
        e["type"] = ["info"]
        note = doc.get("note")
        if note:
            set_field(ev, "rule.name", note)
            e["action"] = str(note)
        if doc.get("msg"):
            ev["message"] = doc["msg"]
        if doc.get("sub"):
            set_field(ev, "rule.description", doc["sub"])
        for key, side in (("src", "source"), ("dst", "destination")):
            if doc.get(key) and "ip" not in ev.get(side, {}):
                set_endpoint(ev, side, doc[key], doc.get("p") if key == "dst" else None, address=True)
        if doc.get("file_mime_type"):
            set_field(ev, "file.mime_type", doc["file_mime_type"])

    @staticmethod
    def _weird(ev: Event, doc: dict[str, Any], body: dict[str, Any]) -> None:
        e = ev["event"]
        e["type"] = ["info"]
        if doc.get("name"):
            set_field(ev, "rule.name", doc["name"])
            e["action"] = str(doc["name"])
        if doc.get("addl"):
            ev["message"] = f"{doc.get('name', '')}: {doc['addl']}"


PARSER = ZeekParser()
