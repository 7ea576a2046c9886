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

from core.events import Event, expand_dots, set_field

from ._common import set_timestamp
from ._json import JsonFamilyParser
from ._pick import pick, pick_str

__all__ = ["JsonParser", "JSON", "NDJSON", "looks_ecs"]

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


def _merge(dst: dict[str, Any], src: dict[str, Any]) -> None:
    for k, v in src.items():
        if isinstance(v, dict) and isinstance(dst.get(k), dict):
            _merge(dst[k], v)
        else:
            dst[k] = v


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
            ts = doc.pop("@timestamp", None)
            keep = {k: ev["event"][k] for k in ("ingested", "original")}
            record_dataset = getattr(record, "dataset", None)
            _merge(ev, doc)
            if not isinstance(ev.get("event"), dict):
                ev["event"] = {}
            ev["event"].update(keep)
            ev["event"].setdefault("kind", "event")
            if record_dataset:
                ev["event"]["dataset"] = record_dataset
            set_timestamp(ev, ts, now)
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


JSON = JsonParser("json")
NDJSON = JsonParser("ndjson")
