"""The rest of the Elasticsearch API that shippers call before their first ``_bulk``.

Filebeat and Elastic Agent (libbeat), Logstash, Fluent Bit and Vector check the cluster
before they send: libbeat asks ``GET /`` (version, ``build_flavor`` to tell serverless
apart), ``GET /_license?human=false`` (its licence check refuses to start without an
active licence), ``GET``/``PUT /_ilm/policy/<beat>``, ``HEAD``/``PUT
/_index_template/<beat>-<version>``, ``GET``/``PUT /_data_stream/<name>`` and, with
modules, ``GET``/``PUT /_ingest/pipeline/<id>``. Logstash adds ``GET /_xpack`` and
legacy ``/_template``; Vector's health check is ``GET /_cluster/health``. Each is answered
here with the status and the shape Elasticsearch 8 gives, so the shippers start unchanged.

citysoc does not index by templates, roll over by ILM or run ingest pipelines: parsing is
ours (``collectors.parsers``, the same parser as the syslog path), retention is
``storage.retention_days``. So a PUT is acknowledged and remembered (in memory, for this
process: a shipper that finds one missing after a restart installs it again, as it would on
a new cluster) and a GET or HEAD answers what was PUT, with ``mappings`` and ``settings``
left out (they can be megabytes and are never applied). Every route needs an ingest key,
like ``_bulk``.
"""
from __future__ import annotations

import threading
from typing import Any

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from api.bodies import INFLIGHT, BodyLease, read_body
from api.security import Require

__all__ = ["router", "EsResources", "es_response", "cluster_info", "VERSION", "LICENSE"]

router = APIRouter(tags=["elasticsearch-compatible"], dependencies=[Depends(Require("events:ingest"))])

VERSION = "8.19.0"
"""The Elasticsearch version we answer as: the last 8.x minor, because libbeat refuses an
Elasticsearch older than the Beat ("Elasticsearch is too old ... allow_older_versions") and
needs >= 7.0 for ILM; every Filebeat / Elastic Agent 8.x therefore starts unchanged."""
LICENSE: dict[str, Any] = {
    "status": "active", "uid": "00000000-0000-4000-8000-00000c17e50c", "type": "basic", "mode": "basic",
    "issue_date": "2026-01-01T00:00:00.000Z", "issue_date_in_millis": 1767225600000,
    "expiry_date": "9999-12-31T23:59:59.999Z", "expiry_date_in_millis": 253402300799999, "max_nodes": 1000,
    "max_resource_units": None, "issued_to": "citysoc", "issuer": "elasticsearch", "start_date_in_millis": -1,
}
"""A basic licence that never expires: what a self-managed Elasticsearch reports by default.

``mode`` is there as well as ``type`` because libbeat's licence check compares ``mode``
(older Beats) or ``type`` (newer) against "basic", and ``expiry_date_in_millis`` is a
number because libbeat parses it as an integer (``null`` fails its JSON decoding)."""
_ES_HEADERS = {"X-Elastic-Product": "Elasticsearch"}
MAX_RESOURCES = 512
"""Per kind (templates, policies, pipelines, data streams): a shipper needs a handful."""
_KEEP_BYTES = 64 * 1024
_DROPPED = ("mappings", "settings")
_ANY_JSON = {"description": "Elasticsearch's own JSON shape for this API", "content": {"application/json": {}}}
_ES_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "Elasticsearch error shape: {error: {type, reason, root_cause}, status}",
          "content": {"application/json": {}}},
    404: {"description": "Not found, in Elasticsearch's shape (what shippers test before they PUT)",
          "content": {"application/json": {}}},
}


def es_response(content: Any, status: int = 200) -> Response:
    """JSON with the ``X-Elastic-Product`` header Elasticsearch clients (7.14+) insist on."""
    return Response(orjson.dumps(content), status_code=status, media_type="application/json", headers=_ES_HEADERS)


def _head(status: int) -> Response:
    """A HEAD answer as Elasticsearch gives it: no body, but the JSON content type (the
    schema declares JSON for these routes, and clients read the status only)."""
    return Response(status_code=status, media_type="application/json", headers=_ES_HEADERS)


def _error(status: int, kind: str, reason: str) -> Response:
    cause = {"type": kind, "reason": reason}
    return es_response({"error": {"root_cause": [cause], **cause}, "status": status}, status)


class EsResources:
    """What shippers PUT (templates, policies, pipelines, data streams), by kind and name; thread-safe."""

    def __init__(self, max_per_kind: int = MAX_RESOURCES) -> None:
        self.max_per_kind = max_per_kind
        self._by_kind: dict[str, dict[str, dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def put(self, kind: str, name: str, body: dict[str, Any]) -> bool:
        """Remember ``body`` (without mappings/settings); False when the kind is full."""
        kept = _summary(body)
        with self._lock:
            table = self._by_kind.setdefault(kind, {})
            if name not in table and len(table) >= self.max_per_kind:
                return False
            table[name] = kept
            return True

    def get(self, kind: str, name: str) -> dict[str, Any] | None:
        with self._lock:
            return self._by_kind.get(kind, {}).get(name)

    def delete(self, kind: str, name: str) -> bool:
        with self._lock:
            return self._by_kind.get(kind, {}).pop(name, None) is not None


def _summary(body: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in body.items() if k not in _DROPPED}
    if isinstance(out.get("template"), dict):
        out["template"] = {k: v for k, v in out["template"].items() if k not in _DROPPED}
    if len(orjson.dumps(out)) > _KEEP_BYTES:
        out = {k: out[k] for k in ("index_patterns", "priority", "version", "data_stream", "composed_of", "_meta")
               if k in out}
    return out


def _resources(request: Request) -> EsResources:
    state = request.app.state
    res = getattr(state, "es_resources", None)
    if res is None:
        res = state.es_resources = EsResources()
    return res


MAX_BODY_BYTES = 16 * 1024 * 1024
"""A PUT body, inflated: Filebeat's index template alone is about a megabyte (api.limits agrees)."""


async def _json_object(request: Request) -> dict[str, Any] | Response:
    # read_body, as _bulk does: libbeat gzips every request body when compression_level > 0
    # (its 8.x default), so a template PUT arrives as Content-Encoding: gzip; bounded inflated.
    lease = BodyLease(INFLIGHT)
    try:
        raw = await read_body(request, MAX_BODY_BYTES, lease)
    finally:
        lease.release()
    if not raw.strip():
        return _error(400, "parse_exception", "request body is required")
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return _error(400, "x_content_parse_exception", f"request body is not JSON: {exc}")
    if not isinstance(doc, dict):
        return _error(400, "x_content_parse_exception", "request body must be a JSON object")
    return doc


async def _put(request: Request, kind: str, name: str) -> Response:
    doc = await _json_object(request)
    if isinstance(doc, Response):
        return doc
    if not _resources(request).put(kind, name, doc):
        return _error(400, "illegal_argument_exception",
                      f"citysoc keeps at most {MAX_RESOURCES} {kind} resources; delete some first")
    return es_response({"acknowledged": True})


def _delete(request: Request, kind: str, name: str, missing: str) -> Response:
    if _resources(request).delete(kind, name):
        return es_response({"acknowledged": True})
    return _error(404, "resource_not_found_exception", missing)


# -- cluster ----------------------------------------------------------------------------------
def cluster_info() -> dict[str, Any]:
    """``GET /``: libbeat reads ``version.number`` and ``version.build_flavor``, Vector ``version.number``."""
    return {"name": "citysoc", "cluster_name": "citysoc", "cluster_uuid": "citysoc-0000000000000000",
            "version": {"number": VERSION, "build_flavor": "default", "build_type": "docker",
                        "build_hash": "citysoc", "build_date": "2026-01-01T00:00:00.000Z", "build_snapshot": False,
                        "lucene_version": "9.12.1", "minimum_wire_compatibility_version": "7.17.0",
                        "minimum_index_compatibility_version": "7.0.0"},
            "tagline": "You Know, for Search"}


@router.head("/", summary="Elasticsearch-compatible ping (HEAD /)", responses={200: _ANY_JSON})
async def ping() -> Response:
    return _head(200)


@router.get("/_license", summary="Elasticsearch-compatible licence (libbeat refuses to start without one)",
            responses={200: _ANY_JSON})
async def license_info() -> Response:
    return es_response({"license": LICENSE})


@router.get("/_xpack", summary="Elasticsearch-compatible X-Pack info (Logstash, older Beats)",
            responses={200: _ANY_JSON})
async def xpack_info() -> Response:
    on = {"available": True, "enabled": True}
    off = {"available": False, "enabled": False}
    return es_response({
        "build": {"hash": "citysoc", "date": "2026-01-01T00:00:00.000Z"},
        "license": {k: LICENSE[k] for k in ("uid", "type", "mode", "status", "expiry_date_in_millis")},
        "features": {"ilm": on, "data_streams": on, "monitoring": off, "security": on, "ml": off, "watcher": off,
                     "graph": off, "slm": off, "rollup": off, "transform": off},
        "tagline": "You know, for X"})


@router.get("/_cluster/health", summary="Elasticsearch-compatible cluster health (Vector's health check)",
            responses={200: _ANY_JSON})
async def cluster_health() -> Response:
    return es_response({"cluster_name": "citysoc", "status": "green", "timed_out": False, "number_of_nodes": 1,
                        "number_of_data_nodes": 1, "active_primary_shards": 1, "active_shards": 1,
                        "relocating_shards": 0, "initializing_shards": 0, "unassigned_shards": 0,
                        "delayed_unassigned_shards": 0, "number_of_pending_tasks": 0,
                        "number_of_in_flight_fetch": 0, "task_max_waiting_in_queue_millis": 0,
                        "active_shards_percent_as_number": 100.0})


def _nodes() -> dict[str, Any]:
    node = {"name": "citysoc", "transport_address": "127.0.0.1:9300", "host": "127.0.0.1", "ip": "127.0.0.1",
            "version": VERSION, "build_flavor": "default", "roles": ["data", "ingest", "master"],
            "ingest": {"processors": [{"type": t} for t in ("append", "convert", "date", "dissect", "geoip", "grok",
                                                            "json", "kv", "pipeline", "remove", "rename", "script",
                                                            "set", "user_agent")]}}
    return {"_nodes": {"total": 1, "successful": 1, "failed": 0}, "cluster_name": "citysoc",
            "nodes": {"citysoc-node-0": node}}


@router.get("/_nodes", summary="Elasticsearch-compatible node info", responses={200: _ANY_JSON})
async def nodes() -> Response:
    return es_response(_nodes())


@router.get("/_nodes/{selector:path}", summary="Elasticsearch-compatible node info (any selector, e.g. _local/ingest)",
            responses={200: _ANY_JSON})
async def nodes_selected(selector: str) -> Response:
    return es_response(_nodes())


# -- composable index templates ---------------------------------------------------------------
@router.head("/_index_template/{name}", summary="Elasticsearch-compatible: does this index template exist",
             responses={200: _ANY_JSON, **_ES_ERRORS})
async def index_template_exists(name: str, request: Request) -> Response:
    found = _resources(request).get("index_template", name) is not None
    return _head(200 if found else 404)


@router.get("/_index_template/{name}", summary="Elasticsearch-compatible: an index template as PUT",
            responses={200: _ANY_JSON, **_ES_ERRORS})
async def index_template_get(name: str, request: Request) -> Response:
    body = _resources(request).get("index_template", name)
    if body is None:
        return _error(404, "resource_not_found_exception", f"index template matching [{name}] not found")
    return es_response({"index_templates": [{"name": name, "index_template": body}]})


@router.put("/_index_template/{name}", summary="Elasticsearch-compatible: store an index template (acknowledged, not applied)",
            responses={200: _ANY_JSON, **_ES_ERRORS})
async def index_template_put(name: str, request: Request) -> Response:
    return await _put(request, "index_template", name)


@router.delete("/_index_template/{name}", summary="Elasticsearch-compatible: forget an index template",
               responses={200: _ANY_JSON, **_ES_ERRORS})
async def index_template_delete(name: str, request: Request) -> Response:
    return _delete(request, "index_template", name, f"index_template [{name}] missing")


# -- component templates ----------------------------------------------------------------------
@router.head("/_component_template/{name}", summary="Elasticsearch-compatible: does this component template exist",
             responses={200: _ANY_JSON, **_ES_ERRORS})
async def component_template_exists(name: str, request: Request) -> Response:
    found = _resources(request).get("component_template", name) is not None
    return _head(200 if found else 404)


@router.get("/_component_template/{name}", summary="Elasticsearch-compatible: a component template as PUT",
            responses={200: _ANY_JSON, **_ES_ERRORS})
async def component_template_get(name: str, request: Request) -> Response:
    body = _resources(request).get("component_template", name)
    if body is None:
        return _error(404, "resource_not_found_exception", f"component template matching [{name}] not found")
    return es_response({"component_templates": [{"name": name, "component_template": body}]})


@router.put("/_component_template/{name}", summary="Elasticsearch-compatible: store a component template",
            responses={200: _ANY_JSON, **_ES_ERRORS})
async def component_template_put(name: str, request: Request) -> Response:
    return await _put(request, "component_template", name)


# -- legacy templates (Logstash's template_api: legacy, Beats 7) ------------------------------
@router.head("/_template/{name}", summary="Elasticsearch-compatible: does this legacy template exist",
             responses={200: _ANY_JSON, **_ES_ERRORS})
async def legacy_template_exists(name: str, request: Request) -> Response:
    found = _resources(request).get("template", name) is not None
    return _head(200 if found else 404)


@router.get("/_template/{name}", summary="Elasticsearch-compatible: a legacy template as PUT",
            responses={200: _ANY_JSON, **_ES_ERRORS})
async def legacy_template_get(name: str, request: Request) -> Response:
    body = _resources(request).get("template", name)
    return es_response({name: body}) if body is not None else es_response({}, 404)


@router.put("/_template/{name}", summary="Elasticsearch-compatible: store a legacy template",
            responses={200: _ANY_JSON, **_ES_ERRORS})
async def legacy_template_put(name: str, request: Request) -> Response:
    return await _put(request, "template", name)


# -- ILM policies -----------------------------------------------------------------------------
@router.get("/_ilm/policy/{name}", summary="Elasticsearch-compatible: an ILM policy as PUT (retention is ours)",
            responses={200: _ANY_JSON, **_ES_ERRORS})
async def ilm_policy_get(name: str, request: Request) -> Response:
    body = _resources(request).get("ilm_policy", name)
    if body is None:
        return _error(404, "resource_not_found_exception", f"Lifecycle policy not found: {name}")
    return es_response({name: {"version": 1, "modified_date": "2026-01-01T00:00:00.000Z",
                               "policy": body.get("policy", {}), "in_use_by": {"indices": [], "data_streams": [],
                                                                               "composable_templates": []}}})


@router.put("/_ilm/policy/{name}", summary="Elasticsearch-compatible: store an ILM policy (acknowledged, not applied)",
            responses={200: _ANY_JSON, **_ES_ERRORS})
async def ilm_policy_put(name: str, request: Request) -> Response:
    return await _put(request, "ilm_policy", name)


# -- ingest pipelines (Filebeat modules load theirs; we parse with our own parsers) ------------
@router.get("/_ingest/pipeline/{pipeline_id}", summary="Elasticsearch-compatible: an ingest pipeline as PUT",
            responses={200: _ANY_JSON, **_ES_ERRORS})
async def pipeline_get(pipeline_id: str, request: Request) -> Response:
    body = _resources(request).get("ingest_pipeline", pipeline_id)
    return es_response({pipeline_id: body}) if body is not None else es_response({}, 404)


@router.put("/_ingest/pipeline/{pipeline_id}", summary="Elasticsearch-compatible: store an ingest pipeline (never run: "
                                                       "documents are parsed by citysoc's own parsers)",
            responses={200: _ANY_JSON, **_ES_ERRORS})
async def pipeline_put(pipeline_id: str, request: Request) -> Response:
    return await _put(request, "ingest_pipeline", pipeline_id)


# -- data streams -----------------------------------------------------------------------------
def _data_stream(name: str, body: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "timestamp_field": {"name": "@timestamp"},
            "indices": [{"index_name": f".ds-{name}-000001", "index_uuid": "citysoc"}], "generation": 1,
            "status": "GREEN", "template": body.get("template", name), "ilm_policy": body.get("ilm_policy"),
            "hidden": False, "system": False, "allow_custom_routing": False, "replicated": False}


@router.get("/_data_stream/{name}", summary="Elasticsearch-compatible: a data stream created by PUT",
            responses={200: _ANY_JSON, **_ES_ERRORS})
async def data_stream_get(name: str, request: Request) -> Response:
    body = _resources(request).get("data_stream", name)
    if body is None:
        return _error(404, "index_not_found_exception", f"no such index [{name}]")
    return es_response({"data_streams": [_data_stream(name, body)]})


@router.put("/_data_stream/{name}", summary="Elasticsearch-compatible: create a data stream (events go to the event store)",
            responses={200: _ANY_JSON, **_ES_ERRORS})
async def data_stream_put(name: str, request: Request) -> Response:
    if _resources(request).get("data_stream", name) is not None:
        return _error(400, "resource_already_exists_exception", f"data_stream [{name}] already exists")
    if not _resources(request).put("data_stream", name, {}):
        return _error(400, "illegal_argument_exception", f"citysoc keeps at most {MAX_RESOURCES} data streams")
    return es_response({"acknowledged": True})
