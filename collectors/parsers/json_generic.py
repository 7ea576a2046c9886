"""Any other JSON object: ECS-shaped documents merged, the rest kept under ``json.*``.

A document that already speaks ECS (it has ``@timestamp``, an ``ecs`` object or dotted
ECS keys such as ``host.name``, as Filebeat, Vector or our own exports write) is merged
into the event as it is, the sender's fields winning except ``event.ingested`` and
``event.original``. Anything else goes under ``json`` so arbitrary keys can never clash
with ECS types (a string ``host`` would break the ``host`` object mapping), with the
usual suspects (message, level, host, user, client IP) promoted to ECS.
"""
from __future__ import annotations

import datetime as _dt
import ipaddress
from typing import Any

from core.mappings import deep_merge
from core.events import Event, expand_dots, set_field

from core.protocols import ParseError, RawRecord

from ._common import set_timestamp
from ._json import JsonFamilyParser
from ._pick import pick, pick_str
from ._registry import ROUTES

__all__ = ["JsonParser", "JSON", "NDJSON", "looks_ecs", "shipped_format"]

_ECS_ROOTS = frozenset({"event", "host", "source", "destination", "user", "process", "file", "url", "http",
                        "network", "observer", "log", "agent", "ecs", "service", "cloud", "container", "rule",
                        "threat", "dns", "tls", "user_agent", "client", "server", "error", "related", "labels"})


def looks_ecs(doc: dict[str, Any]) -> bool:
    """ECS-shaped: an ``@timestamp`` or ``ecs`` marker, dotted ECS keys, or ECS field sets
    as objects (``{"labels": {...}}``) with no ECS name holding a scalar (a string
    ``host`` is some other schema and would break the ``host`` object mapping)."""
    if "@timestamp" in doc or isinstance(doc.get("ecs"), dict) or "ecs.version" in doc:
        return True
    dotted = [k for k in doc if "." in k]
    if dotted:
        return all(k.split(".", 1)[0] in _ECS_ROOTS for k in dotted)
    roots = [k for k in doc if k in _ECS_ROOTS]
    return bool(roots) and all(isinstance(doc[k], dict) for k in roots)


class JsonParser(JsonFamilyParser):
    dataset = "json.generic"
    module = "json"

    def __init__(self, name: str = "json") -> None:
        self.name = name

    def claims(self, doc: dict[str, Any]) -> bool:
        return True

    def apply_doc(self, ev: Event, doc: dict[str, Any], record: Any, now: _dt.datetime) -> None:
        if looks_ecs(doc):
            doc = expand_dots(doc)
            if self._parse_shipped(ev, doc, record, now):
                return
            ts = doc.pop("@timestamp", None)
            keep = {k: ev["event"][k] for k in ("ingested", "original")}
            record_dataset = getattr(record, "dataset", None)
            deep_merge(ev, doc)
            if not isinstance(ev.get("event"), dict):
                ev["event"] = {}
            ev["event"].update(keep)
            ev["event"].setdefault("kind", "event")
            if record_dataset:
                ev["event"]["dataset"] = record_dataset
            set_timestamp(ev, ts, now)
            return
        if self._parse_shipped(ev, doc, record, now, ecs=False):
            return
        ev["json"] = doc
        set_timestamp(ev, pick(doc, "timestamp", "time", "ts", "date", "datetime", "@t"), now)
        msg = pick_str(doc, "message", "msg", "log", "@m")
        if msg is not None:
            ev["message"] = msg
        level = pick_str(doc, "level", "severity", "lvl", "loglevel", "@l")
        if level:
            set_field(ev, "log.level", level.lower())
        host = pick(doc, "host", "hostname")
        if isinstance(host, str):
            set_field(ev, "host.name", host)
        user = pick(doc, "user", "username", "user_name")
        if isinstance(user, str):
            set_field(ev, "user.name", user)
        ip = pick_str(doc, "client_ip", "src_ip", "remote_addr", "source_ip", "ip")
        if ip:
            try:
                set_field(ev, "source.ip", str(ipaddress.ip_address(ip)))
            except ValueError:
                pass


    def _parse_shipped(self, ev: Event, doc: dict[str, Any], record: Any, now: _dt.datetime, *,
                       ecs: bool = True) -> bool:
        """A shipper's document (Filebeat, Elastic Agent, Fluent Bit, Vector, Logstash) carrying the raw
        line of a source we read: parse it with that source's parser (the same one the syslog path
        uses) and keep the shipper's fields beside it. The shipper's ``event.dataset`` wins over the
        record's (an index name); the log's own timestamp wins over the shipper's read time, read in
        the shipper's ``event.timezone`` when it sends one, else in the record's zone (the site's).

        ``ecs``: the document is ECS-shaped (Filebeat, Agent, Logstash, Fluent Bit), so its fields are
        merged over the parsed ones; otherwise (Vector's ``host``/``file`` strings) they go under
        ``json`` with ``file`` as ``log.file.path``, so a string can never break an ECS object."""
        key, message = _raw_message(doc)
        event = doc.get("event") if isinstance(doc.get("event"), dict) else {}
        if message is None or (event.get("original") and event.get("original") != message):
            return False  # no raw line, or one already parsed upstream (event.original kept apart)
        fmt = shipped_format(doc, getattr(record, "dataset", None))
        if fmt is None:
            return False
        meta = dict(getattr(record, "meta", None) or {})
        zone = event.get("timezone")
        if isinstance(zone, str) and zone:
            meta["timezone"] = zone  # the shipping host's zone (Filebeat's add_locale) wins over the site's
        try:
            parsed = ROUTES.parsers[fmt].parse(RawRecord(message.encode(), format=fmt, source=getattr(record, "source", ""),
                                                  meta=meta), now=now)
        except ParseError:
            return False
        shipper = {k: v for k, v in doc.items() if k not in (key, "@timestamp")}
        shipper_ts = doc.get("@timestamp") if ecs else pick(doc, "@timestamp", "timestamp")
        parsed_ts = parsed["@timestamp"] if parsed["@timestamp"] != parsed["event"]["ingested"] else None
        ev.clear()
        ev.update(parsed)
        if ecs:
            deep_merge(ev, shipper)
        else:
            path = shipper.pop("file", None)
            shipper.pop("timestamp", None)
            if shipper:
                ev["json"] = shipper
            if isinstance(path, str):
                set_field(ev, "log.file.path", path)
        ev["event"]["original"] = message
        ev["event"]["ingested"] = parsed["event"]["ingested"]
        ev["event"].setdefault("kind", "event")
        dataset = _shipped_dataset(doc)
        if dataset:
            ev["event"]["dataset"] = dataset
        if parsed_ts is None:
            set_timestamp(ev, shipper_ts, now)
        return True


def _raw_message(doc: dict[str, Any]) -> tuple[str, str | None]:
    """(key, raw line): ``message`` (Filebeat, Agent, Logstash, Vector), else Fluent Bit's tail
    key ``log`` when it is a string (in ECS ``log`` is an object, so a string cannot be ECS's)."""
    for key in ("message", "log"):
        value = doc.get(key)
        if isinstance(value, str) and value:
            return key, value
    return "message", None


def _shipped_dataset(doc: dict[str, Any]) -> str | None:
    event = doc.get("event") if isinstance(doc.get("event"), dict) else {}
    ds = doc.get("data_stream") if isinstance(doc.get("data_stream"), dict) else {}
    fileset = doc.get("fileset") if isinstance(doc.get("fileset"), dict) else {}
    for value in (event.get("dataset"), ds.get("dataset")):
        if isinstance(value, str) and value:
            return value
    if isinstance(event.get("module"), str) and isinstance(fileset.get("name"), str):
        return f"{event['module']}.{fileset['name']}"
    return None


def _shipped_path(doc: dict[str, Any]) -> str | None:
    log = doc.get("log") if isinstance(doc.get("log"), dict) else {}
    file = log.get("file") if isinstance(log.get("file"), dict) else {}
    path = file.get("path")
    if isinstance(path, str):
        return path
    vector_file = doc.get("file")  # Vector's file source
    return vector_file if isinstance(vector_file, str) else None


def shipped_format(doc: dict[str, Any], index_dataset: str | None = None) -> str | None:
    """Our format id for a shipper's document; None if unknown.

    Tried in order: the document's dataset (``event.dataset``, ``data_stream.dataset``,
    ``event.module`` + ``fileset.name``), its file path (``log.file.path``, Vector's ``file``),
    then ``index_dataset``, the dataset of the data stream it was sent to
    (``logs-system.auth-default``: Fluent Bit, Vector or Logstash pointed at Elastic's naming).
    Both tables are derived from the parsers' ``datasets`` and ``log_paths`` declarations."""
    dataset = _shipped_dataset(doc)
    if dataset in ROUTES.by_dataset:
        return ROUTES.by_dataset[dataset]
    path = _shipped_path(doc)
    if path is not None:
        for prefix, fmt in ROUTES.by_path:
            if path.startswith(prefix):
                return fmt
    if index_dataset in ROUTES.by_dataset:
        return ROUTES.by_dataset[index_dataset]
    return None


JSON = JsonParser("json")
NDJSON = JsonParser("ndjson")
