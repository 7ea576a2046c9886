"""What citysoc installs in Elasticsearch: ILM policy, component and index templates.

One composable index template, ``<prefix>-events``, matches the data stream of the same
name and is composed of two component templates:

* ``<prefix>-events-settings``: the ILM policy, ``ignore_malformed`` (one bad value, say
  a host name in ``source.ip``, drops that field from the index rather than the whole
  event; it is still in ``_source``), a field limit that ignores new dynamic fields past
  the limit instead of rejecting documents, ``auto_expand_replicas: 0-1`` (green on a
  single node, one replica as soon as a second node joins), the ``lowercase``
  normalizer behind the ``.caseless`` sub-fields, and a default analyzer that folds
  diacritics (Vietnamese text: ``loi`` finds ``lỗi``).
* ``<prefix>-events-mappings``: ECS mappings for the fields citysoc's parsers and
  enrichers write, and dynamic templates that map every other string to ``keyword``
  (exact match and aggregations, as Kibana users expect) with ``date_detection`` off, so
  that a string that happens to look like a date never fixes a field's type.

Choices that follow ECS and the Sigma pipelines: ``message`` and ``event.original`` are
``match_only_text`` (free text, no scoring: results are sorted by time); command lines
and URLs are ``wildcard`` (fast ``*x*`` searches over the whole value) with a ``.text``
sub-field; ``process.executable``/``process.name`` (and parents) carry a ``.caseless``
keyword, which pySigma's ``ecs_windows`` pipeline targets; Windows ``winlog.event_data``
values are keywords through a dynamic template, as Winlogbeat maps them, so any Sigma
field condition on them works (``flattened`` would not support ``wildcard`` the same way).

The ILM policy rolls the write index over daily (or at 50 GB per primary shard) and
deletes a backing index ``retention_days`` after its rollover, so retention is whole-index
deletes, the cheap path, matching the SQLite store's day partitions.

Run ``python -m storage.es_mappings --prefix citysoc --retention-days 30`` to print all
of it as JSON (e.g. to review or install by hand).
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import Any

__all__ = [
    "TEMPLATE_VERSION",
    "FREE_TEXT_FIELDS",
    "TEXT_FIELDS",
    "FIELD_TYPES",
    "data_stream_name",
    "ilm_policy_name",
    "index_template_name",
    "component_template_names",
    "ilm_policy",
    "settings_component",
    "mappings_component",
    "index_template",
    "mapping_properties",
]

TEMPLATE_VERSION = 1
"""Bumped whenever the templates change, so an installed cluster shows what it runs."""

FREE_TEXT_FIELDS: tuple[str, ...] = ("message", "event.original")
"""Fields searched by bare words and phrases (the analyst typed no field)."""

# --- field kinds -----------------------------------------------------------------------
_KW: dict[str, Any] = {"type": "keyword", "ignore_above": 1024}
_KW_CASELESS: dict[str, Any] = {
    "type": "keyword",
    "ignore_above": 1024,
    "fields": {"caseless": {"type": "keyword", "ignore_above": 1024, "normalizer": "citysoc_lowercase"}},
}
_KW_TEXT: dict[str, Any] = {"type": "keyword", "ignore_above": 1024, "fields": {"text": {"type": "match_only_text"}}}
_WILDCARD_TEXT: dict[str, Any] = {"type": "wildcard", "fields": {"text": {"type": "match_only_text"}}}
_TEXT: dict[str, Any] = {"type": "match_only_text"}
_DATE: dict[str, Any] = {"type": "date"}
_IP: dict[str, Any] = {"type": "ip"}
_LONG: dict[str, Any] = {"type": "long"}
_FLOAT: dict[str, Any] = {"type": "float"}
_BOOL: dict[str, Any] = {"type": "boolean"}
_GEO: dict[str, Any] = {"type": "geo_point"}


def _endpoint(prefix: str) -> dict[str, dict[str, Any]]:
    """ECS endpoint fields shared by source, destination, client and server."""
    return {
        f"{prefix}.ip": _IP,
        f"{prefix}.port": _LONG,
        f"{prefix}.address": _KW,
        f"{prefix}.domain": _KW,
        f"{prefix}.registered_domain": _KW,
        f"{prefix}.mac": _KW,
        f"{prefix}.bytes": _LONG,
        f"{prefix}.packets": _LONG,
        f"{prefix}.nat.ip": _IP,
        f"{prefix}.nat.port": _LONG,
        f"{prefix}.user.name": _KW,
        f"{prefix}.geo.country_iso_code": _KW,
        f"{prefix}.geo.country_name": _KW,
        f"{prefix}.geo.region_name": _KW,
        f"{prefix}.geo.city_name": _KW,
        f"{prefix}.geo.location": _GEO,
        f"{prefix}.as.number": _LONG,
        f"{prefix}.as.organization.name": _KW,
    }


def _hashes(prefix: str) -> dict[str, dict[str, Any]]:
    return {f"{prefix}.hash.{h}": _KW for h in ("md5", "sha1", "sha256", "sha512", "ssdeep", "imphash")}


def _process(prefix: str, *, with_parent: bool) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {
        f"{prefix}.pid": _LONG,
        f"{prefix}.entity_id": _KW,
        f"{prefix}.name": _KW_CASELESS,
        f"{prefix}.executable": _KW_CASELESS,
        f"{prefix}.command_line": _WILDCARD_TEXT,
        f"{prefix}.args": _KW,
        f"{prefix}.args_count": _LONG,
        f"{prefix}.working_directory": _KW,
        f"{prefix}.title": _KW,
        f"{prefix}.exit_code": _LONG,
        f"{prefix}.start": _DATE,
        f"{prefix}.thread.id": _LONG,
        f"{prefix}.pe.original_file_name": _KW_CASELESS,
        f"{prefix}.pe.company": _KW,
        f"{prefix}.pe.description": _KW,
        f"{prefix}.pe.product": _KW,
        **_hashes(prefix),
    }
    if with_parent:
        out.update(_process(f"{prefix}.parent", with_parent=False))
    return out


_ECS_FIELDS: dict[str, dict[str, Any]] = {
    # Explicitly not ignore_malformed: the index-wide setting must not reach a data
    # stream's @timestamp (Elasticsearch refuses the template otherwise, as logs-*-* does).
    "@timestamp": {"type": "date", "ignore_malformed": False},
    "message": _TEXT,
    "tags": _KW,
    "ecs.version": _KW,
    # event
    "event.kind": _KW,
    "event.category": _KW,
    "event.type": _KW,
    "event.outcome": _KW,
    "event.action": _KW,
    "event.dataset": _KW,
    "event.module": _KW,
    "event.provider": _KW,
    "event.code": _KW,
    "event.id": _KW,
    "event.reason": _KW,
    "event.reference": _KW,
    "event.hash": _KW,
    "event.timezone": _KW,
    "event.severity": _LONG,
    "event.risk_score": _FLOAT,
    "event.sequence": _LONG,
    "event.duration": _LONG,
    "event.original": _TEXT,
    "event.ingested": _DATE,
    "event.created": _DATE,
    "event.start": _DATE,
    "event.end": _DATE,
    # log
    "log.level": _KW,
    "log.logger": _KW,
    "log.file.path": _KW,
    "log.offset": _LONG,
    "log.source.address": _KW,
    "log.syslog.priority": _LONG,
    "log.syslog.facility.code": _LONG,
    "log.syslog.facility.name": _KW,
    "log.syslog.severity.code": _LONG,
    "log.syslog.severity.name": _KW,
    "log.syslog.hostname": _KW,
    "log.syslog.appname": _KW,
    "log.syslog.procid": _KW,
    "log.syslog.msgid": _KW,
    "log.syslog.version": _KW,
    "error.message": _TEXT,
    "error.type": _KW,
    "error.code": _KW,
    # host, agent, observer
    "host.name": _KW,
    "host.hostname": _KW,
    "host.id": _KW,
    "host.ip": _IP,
    "host.mac": _KW,
    "host.domain": _KW,
    "host.type": _KW,
    "host.architecture": _KW,
    "host.os.name": _KW,
    "host.os.full": _KW,
    "host.os.family": _KW,
    "host.os.platform": _KW,
    "host.os.version": _KW,
    "host.os.kernel": _KW,
    "host.os.type": _KW,
    "agent.name": _KW,
    "agent.type": _KW,
    "agent.version": _KW,
    "agent.id": _KW,
    "observer.name": _KW,
    "observer.hostname": _KW,
    "observer.type": _KW,
    "observer.vendor": _KW,
    "observer.product": _KW,
    "observer.version": _KW,
    "observer.serial_number": _KW,
    "observer.ip": _IP,
    "observer.mac": _KW,
    "observer.ingress.interface.name": _KW,
    "observer.egress.interface.name": _KW,
    "service.name": _KW,
    "service.type": _KW,
    "organization.name": _KW,
    # network endpoints
    **_endpoint("source"),
    **_endpoint("destination"),
    **_endpoint("client"),
    **_endpoint("server"),
    "network.protocol": _KW,
    "network.transport": _KW,
    "network.type": _KW,
    "network.direction": _KW,
    "network.application": _KW,
    "network.community_id": _KW,
    "network.iana_number": _KW,
    "network.name": _KW,
    "network.bytes": _LONG,
    "network.packets": _LONG,
    "network.vlan.id": _KW,
    # users
    "user.name": _KW_CASELESS,
    "user.id": _KW,
    "user.domain": _KW,
    "user.email": _KW,
    "user.full_name": _KW,
    "user.roles": _KW,
    "user.target.name": _KW,
    "user.target.id": _KW,
    "user.target.domain": _KW,
    "group.name": _KW,
    "group.id": _KW,
    # processes and files
    **_process("process", with_parent=True),
    "file.path": _KW_CASELESS,
    "file.target_path": _KW,
    "file.name": _KW_CASELESS,
    "file.directory": _KW,
    "file.extension": _KW,
    "file.size": _LONG,
    "file.mime_type": _KW,
    "file.type": _KW,
    "file.owner": _KW,
    "file.group": _KW,
    "file.mode": _KW,
    "file.inode": _KW,
    "file.mtime": _DATE,
    "file.ctime": _DATE,
    "file.created": _DATE,
    **_hashes("file"),
    "registry.path": _KW_CASELESS,
    "registry.key": _KW,
    "registry.value": _KW,
    "registry.data.strings": _WILDCARD_TEXT,
    # dns, url, http
    "dns.id": _KW,
    "dns.type": _KW,
    "dns.op_code": _KW,
    "dns.response_code": _KW,
    "dns.header_flags": _KW,
    "dns.question.name": _KW,
    "dns.question.type": _KW,
    "dns.question.class": _KW,
    "dns.question.registered_domain": _KW,
    "dns.question.subdomain": _KW,
    "dns.question.top_level_domain": _KW,
    "dns.answers.name": _KW,
    "dns.answers.type": _KW,
    "dns.answers.class": _KW,
    "dns.answers.data": _KW,
    "dns.answers.ttl": _LONG,
    "dns.resolved_ip": _IP,
    "url.original": _WILDCARD_TEXT,
    "url.full": _WILDCARD_TEXT,
    "url.path": {"type": "wildcard"},
    "url.query": _KW,
    "url.domain": _KW,
    "url.registered_domain": _KW,
    "url.scheme": _KW,
    "url.port": _LONG,
    "url.extension": _KW,
    "url.fragment": _KW,
    "url.username": _KW,
    "http.version": _KW,
    "http.request.id": _KW,
    "http.request.method": _KW,
    "http.request.mime_type": _KW,
    "http.request.referrer": _KW,
    "http.request.bytes": _LONG,
    "http.request.body.bytes": _LONG,
    "http.response.status_code": _LONG,
    "http.response.mime_type": _KW,
    "http.response.bytes": _LONG,
    "http.response.body.bytes": _LONG,
    "user_agent.original": _KW_TEXT,
    "user_agent.name": _KW,
    "user_agent.version": _KW,
    "user_agent.os.name": _KW,
    "user_agent.device.name": _KW,
    "tls.version": _KW,
    "tls.cipher": _KW,
    "tls.server.subject": _KW,
    "tls.server.issuer": _KW,
    "tls.client.ja3": _KW,
    "tls.server.ja3s": _KW,
    # detections and threat intel
    "rule.id": _KW,
    "rule.name": _KW,
    "rule.category": _KW,
    "rule.ruleset": _KW,
    "threat.framework": _KW,
    "threat.tactic.id": _KW,
    "threat.tactic.name": _KW,
    "threat.technique.id": _KW,
    "threat.technique.name": _KW,
    "threat.indicator.type": _KW,
    "threat.indicator.ip": _IP,
    "threat.indicator.url.original": _WILDCARD_TEXT,
    "threat.indicator.file.hash.sha256": _KW,
    "threat.indicator.provider": _KW,
    "threat.indicator.confidence": _KW,
    "related.ip": _IP,
    "related.user": _KW,
    "related.hosts": _KW,
    "related.hash": _KW,
    # Windows event logs
    "winlog.channel": _KW,
    "winlog.event_id": _KW,
    "winlog.provider_name": _KW,
    "winlog.provider_guid": _KW,
    "winlog.computer_name": _KW,
    "winlog.record_id": _KW,
    "winlog.task": _KW,
    "winlog.opcode": _KW,
    "winlog.level": _KW,
    "winlog.keywords": _KW,
    "winlog.activity_id": _KW,
    "winlog.process.pid": _LONG,
    "winlog.process.thread.id": _LONG,
    "winlog.user.identifier": _KW,
    "winlog.user.name": _KW,
    "winlog.user.domain": _KW,
    # citysoc enrichment: which asset and which center an event concerns
    "citysoc.center": _KW,
    "citysoc.zone": _KW,
    "citysoc.asset.id": _KW,
    "citysoc.asset.name": _KW,
    "citysoc.asset.type": _KW,
    "citysoc.asset.criticality": _KW,
    "citysoc.asset.zone": _KW,
    "citysoc.asset.owner": _KW,
    "citysoc.asset.vendor": _KW,
    "citysoc.asset.model": _KW,
    "citysoc.asset.ip": _IP,
}


def _flat_types(fields: dict[str, dict[str, Any]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for path, spec in fields.items():
        out[path] = spec["type"]
        for sub, sub_spec in spec.get("fields", {}).items():
            out[f"{path}.{sub}"] = sub_spec["type"]
    return out


FIELD_TYPES: dict[str, str] = _flat_types(_ECS_FIELDS)
"""Every explicitly mapped field (sub-fields included) and its Elasticsearch type."""

TEXT_FIELDS: frozenset[str] = frozenset(
    f for f, t in FIELD_TYPES.items() if t in ("text", "match_only_text")
)
"""Analyzed fields: queried with ``match``/``match_phrase``, never aggregated."""


def data_stream_name(prefix: str) -> str:
    return f"{prefix}-events"


def ilm_policy_name(prefix: str) -> str:
    return f"{prefix}-events"


def index_template_name(prefix: str) -> str:
    return f"{prefix}-events"


def component_template_names(prefix: str) -> tuple[str, str]:
    """(settings, mappings): the order they compose in (later wins on conflicts)."""
    return (f"{prefix}-events-settings", f"{prefix}-events-mappings")


def _meta() -> dict[str, Any]:
    return {"managed_by": "citysoc", "description": "citysoc events (ECS)", "template_version": TEMPLATE_VERSION}


def ilm_policy(retention_days: int, *, rollover_max_age: str = "1d", max_primary_shard_size: str = "50gb") -> dict[str, Any]:
    """The ILM policy (the value of ``policy`` in ``PUT _ilm/policy/<name>``).

    ``delete.min_age`` counts from rollover, so an event is kept at least
    ``retention_days`` and at most ``retention_days`` plus one rollover period.
    """
    if retention_days < 1:
        raise ValueError(f"retention_days must be at least 1, got {retention_days}")
    return {
        "_meta": _meta(),
        "phases": {
            "hot": {
                "min_age": "0ms",
                "actions": {
                    "rollover": {"max_age": rollover_max_age, "max_primary_shard_size": max_primary_shard_size},
                    "set_priority": {"priority": 100},
                },
            },
            "delete": {"min_age": f"{retention_days}d", "actions": {"delete": {}}},
        },
    }


def settings_component(prefix: str) -> dict[str, Any]:
    """The ``template`` of the settings component template."""
    return {
        "settings": {
            "index": {
                "lifecycle": {"name": ilm_policy_name(prefix)},
                "codec": "best_compression",
                "auto_expand_replicas": "0-1",
                "mapping": {
                    "ignore_malformed": True,
                    "total_fields": {"limit": 5000, "ignore_dynamic_beyond_limit": True},
                },
                "analysis": {
                    "normalizer": {"citysoc_lowercase": {"type": "custom", "filter": ["lowercase"]}},
                    # match_only_text always uses the index's default analyzer: fold
                    # diacritics so "loi" finds "lỗi" (as the SQLite store's FTS5 does).
                    "analyzer": {
                        "default": {"type": "custom", "tokenizer": "standard", "filter": ["lowercase", "asciifolding"]}
                    },
                },
            }
        }
    }


def mapping_properties(fields: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """Nest dotted field specs into Elasticsearch ``properties`` objects."""
    fields = _ECS_FIELDS if fields is None else fields
    root: dict[str, Any] = {}
    for path, spec in sorted(fields.items()):
        node = root
        parts = path.split(".") if path != "@timestamp" else [path]
        for part in parts[:-1]:
            entry = node.setdefault(part, {"properties": {}})
            if "properties" not in entry:
                raise ValueError(f"field {path!r}: {part!r} is mapped as a leaf and cannot also hold fields")
            node = entry["properties"]
        if parts[-1] in node:
            raise ValueError(f"field {path!r} is mapped twice or is also an object")
        node[parts[-1]] = dict(spec)
    return root


def _keyword_templates(name: str, path: str) -> list[dict[str, Any]]:
    """Dynamic templates mapping every scalar under ``path`` to keyword, whatever its JSON
    type. One template per type: single-valued ``match_mapping_type`` works on every
    Elasticsearch release (lists are recent)."""
    return [
        {
            f"{name}_{json_type}_as_keyword": {
                "path_match": path,
                "match_mapping_type": json_type,
                "mapping": {"type": "keyword", "ignore_above": 1024},
            }
        }
        for json_type in ("string", "long", "double", "boolean")
    ]


def mappings_component() -> dict[str, Any]:
    """The ``template`` of the mappings component template."""
    return {
        "mappings": {
            "_meta": _meta(),
            "date_detection": False,
            "numeric_detection": False,
            "dynamic_templates": [
                *_keyword_templates("winlog_event_data", "winlog.event_data.*"),
                *_keyword_templates("winlog_user_data", "winlog.user_data.*"),
                *_keyword_templates("labels", "labels.*"),
                {
                    "strings_as_keyword": {
                        "match_mapping_type": "string",
                        "mapping": {"type": "keyword", "ignore_above": 1024},
                    }
                },
            ],
            "properties": mapping_properties(),
        }
    }


def index_template(prefix: str) -> dict[str, Any]:
    """The body of ``PUT _index_template/<prefix>-events`` (a data stream template)."""
    return {
        "index_patterns": [data_stream_name(prefix)],
        "data_stream": {},
        "composed_of": list(component_template_names(prefix)),
        "priority": 200,
        "version": TEMPLATE_VERSION,
        "_meta": _meta(),
    }


def _main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Print citysoc's Elasticsearch ILM policy and templates as JSON.")
    ap.add_argument("--prefix", default="citysoc")
    ap.add_argument("--retention-days", type=int, default=30)
    args = ap.parse_args(argv)
    settings_name, mappings_name = component_template_names(args.prefix)
    doc = {
        f"_ilm/policy/{ilm_policy_name(args.prefix)}": {"policy": ilm_policy(args.retention_days)},
        f"_component_template/{settings_name}": {"template": settings_component(args.prefix), "version": TEMPLATE_VERSION},
        f"_component_template/{mappings_name}": {"template": mappings_component(), "version": TEMPLATE_VERSION},
        f"_index_template/{index_template_name(args.prefix)}": index_template(args.prefix),
    }
    json.dump(doc, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(_main())
