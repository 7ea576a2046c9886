"""HTTP ingest: ``POST /api/v1/ingest`` (NDJSON or a JSON array) and an
Elasticsearch-compatible ``POST /_bulk`` / ``POST /{index}/_bulk``.

Both answer only after the pipeline's store committed the events (``submit(wait=True)``),
so a sender that sees success can forget its copy. ``_bulk`` answers in Elasticsearch's
own response format (per-item ``status`` and ``error``) so rsyslog's omelasticsearch,
Filebeat, Fluent Bit, Vector and Logstash retry exactly the items that failed.
"""
from __future__ import annotations

import time
import uuid
from typing import Any

import orjson
from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel

from api.bodies import INFLIGHT, BodyLease, TooManyItems, iter_lines, read_body, split_array
from api.deps import PipelineDep
from api.routers.es_compat import cluster_info, es_response
from api.security import Require
from core.protocols import RawRecord
from core.timezones import effective_zone

__all__ = ["router", "bulk_router", "parse_bulk_body", "BulkError", "MAX_BODY_BYTES"]

# Shippers authenticate with an API key of role `ingest` (or admin); /_bulk also takes
# HTTP Basic with the key as password (see api.security).
_INGEST = [Depends(Require("events:ingest"))]
router = APIRouter(tags=["ingest"], dependencies=_INGEST)
bulk_router = APIRouter(tags=["elasticsearch-compatible"], dependencies=_INGEST)

class ORJSONResponse(Response):
    """JSON via orjson (the ``_bulk`` answers can list 100k items); FastAPI's own class
    of that name is deprecated."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)

    def __init__(self, content: Any, status_code: int = 200, **kw: Any) -> None:
        # Elasticsearch clients (7.14+: Logstash, the Go and Java clients) refuse answers without it.
        super().__init__(content, status_code=status_code, **kw)
        self.headers.setdefault("X-Elastic-Product", "Elasticsearch")


MAX_BODY_BYTES = 100 * 1024 * 1024  # Elasticsearch's default http.max_content_length
MAX_ITEMS = 100_000


async def _read_body(request: Request, lease: BodyLease) -> bytes:
    return await read_body(request, MAX_BODY_BYTES, lease)


def _site_zone(request: Request) -> str:
    """The zone for zone-less timestamps in shipped raw lines (an auth.log line carries none):
    the site's, as for syslog sources that set no zone of their own; a shipper's own
    ``event.timezone`` wins over it (collectors.parsers.json_generic)."""
    state = getattr(request.app.state, "citysoc", None)
    settings = getattr(state, "settings", None)
    return effective_zone(None, settings.site.timezone if settings is not None else None)


class IngestItemError(BaseModel):
    index: int
    reason: str


class IngestOut(BaseModel):
    received: int
    stored: int
    errors: list[IngestItemError]


def split_ingest_body(body: bytes, max_items: int = MAX_ITEMS) -> list[bytes]:
    """A JSON array -> one record per element; otherwise NDJSON -> one record per non-blank line.

    Both keep each item's bytes as sent (a bad item reaches the dead-letter store exactly
    as sent) and stop counting at ``max_items`` (413), so an attacker's item count never
    decides our memory.
    """
    stripped = body.lstrip()
    if stripped.startswith(b"["):
        try:
            return split_array(stripped, max_items)
        except TooManyItems as exc:
            raise HTTPException(413, str(exc)) from exc
        except ValueError as exc:
            raise HTTPException(400, f"body starts with '[' but is not a valid JSON array: {exc}") from exc
    lines: list[bytes] = []
    for line in iter_lines(body):
        lines.append(line)
        if len(lines) > max_items:
            raise HTTPException(413, f"more than {max_items} items exceed the per request limit; send smaller batches")
    return lines


@router.post("/ingest", response_model=IngestOut)
async def ingest(
    request: Request,
    pipeline: PipelineDep,
    dataset: str | None = Query(None, max_length=100, pattern=r"^[A-Za-z0-9_.\-]+$"),
    format: str = Query("auto", max_length=32, pattern=r"^[A-Za-z0-9_]+$"),
) -> IngestOut:
    """Store NDJSON lines or a JSON array of events; answers after they are committed."""
    lease = BodyLease(INFLIGHT)
    try:
        body = await _read_body(request, lease)
        lines = split_ingest_body(body)
        del body
        peer = request.client.host if request.client else "unknown"
        fmt = "ndjson" if format == "auto" else format
        meta = {"timezone": _site_zone(request)}
        records = [RawRecord(data=line, format=fmt, source=f"http:{peer}", dataset=dataset, meta=meta)
                   for line in lines]
        del lines
        res = await pipeline.submit(records, wait=True)
    finally:
        lease.release()
    return IngestOut(
        received=len(records),
        stored=res.stored,
        errors=[IngestItemError(index=e.index, reason=e.reason) for e in sorted(res.errors, key=lambda e: e.index)],
    )


# ---------------------------------------------------------------------------------- _bulk
class BulkError(ValueError):
    """A body Elasticsearch itself would refuse whole (400 with this reason)."""


_ACTIONS = ("index", "create", "update", "delete")


def parse_bulk_body(body: bytes, default_index: str | None,
                    max_items: int = MAX_ITEMS) -> list[tuple[str, dict[str, Any], bytes | None]]:
    """Split a ``_bulk`` body into (action, metadata, source line) triples.

    Lines are taken one at a time and counting stops past ``max_items``
    (:class:`api.bodies.TooManyItems`): a body of a million tiny items is refused after
    reading ``max_items`` of them, not after building all of them.

    Like Elasticsearch, a malformed action line rejects the whole request (the sender's
    framing is broken, nothing after it can be trusted); a malformed *document* is a
    per-item failure.
    """
    out: list[tuple[str, dict[str, Any], bytes | None]] = []
    lines = iter_lines(body)
    i = 0
    for raw in lines:
        line = raw.strip()
        i += 1
        if len(out) >= max_items:
            raise TooManyItems(f"more than {max_items} items in one request; send smaller batches")
        try:
            action_doc = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise BulkError(f"Malformed action/metadata line [{i}], expected START_OBJECT but found garbage: {exc}") from exc
        if not isinstance(action_doc, dict) or len(action_doc) != 1:
            raise BulkError(f"Malformed action/metadata line [{i}], expected a single action object")
        action, meta = next(iter(action_doc.items()))
        if action not in _ACTIONS:
            raise BulkError(f"Malformed action/metadata line [{i}], expected one of [create, delete, index, update] but found [{action}]")
        if not isinstance(meta, dict):
            raise BulkError(f"Malformed action/metadata line [{i}], metadata must be an object")
        if "_index" not in meta and default_index:
            meta["_index"] = default_index
        if action == "delete":
            out.append((action, meta, None))
            continue
        doc = next(lines, None)
        if doc is None:
            raise BulkError(f"Validation Failed: 1: no requests added; action line [{i}] has no document line after it")
        i += 1
        out.append((action, meta, doc.strip()))
    return out


def _dataset_from_index(index: str | None) -> str | None:
    """``logs-nginx.access-default`` -> ``nginx.access`` (data stream naming); else the index name."""
    if not index:
        return None
    parts = index.split("-")
    if len(parts) >= 3 and parts[0] in ("logs", "metrics", "traces"):
        return "-".join(parts[1:-1])
    return index


async def _bulk(request: Request, pipeline: PipelineDep, index: str | None) -> ORJSONResponse:
    lease = BodyLease(INFLIGHT)
    try:
        return await _bulk_held(request, pipeline, index, lease)
    finally:
        lease.release()


async def _bulk_held(request: Request, pipeline: PipelineDep, index: str | None, lease: BodyLease) -> ORJSONResponse:
    t0 = time.perf_counter()
    body = await _read_body(request, lease)
    try:
        items = parse_bulk_body(body, index)
    except TooManyItems as exc:
        raise HTTPException(413, str(exc)) from exc
    except BulkError as exc:
        return ORJSONResponse(
            status_code=400,
            content={
                "error": {"root_cause": [{"type": "illegal_argument_exception", "reason": str(exc)}],
                          "type": "illegal_argument_exception", "reason": str(exc)},
                "status": 400,
            },
        )
    del body
    peer = request.client.host if request.client else "unknown"
    zone = _site_zone(request)
    records: list[RawRecord] = []
    positions: list[int] = []  # record k belongs to item positions[k]
    results: list[dict[str, Any]] = []
    for pos, (action, meta, source) in enumerate(items):
        idx = meta.get("_index") or "citysoc-events"
        doc_id = meta.get("_id") or uuid.uuid4().hex
        if action in ("update", "delete"):
            results.append({action: {"_index": idx, "_id": doc_id, "status": 400, "error": {
                "type": "action_request_validation_exception",
                "reason": f"citysoc keeps events append-only: [{action}] is not supported, use index or create"}}})
            continue
        results.append({action: {"_index": idx, "_id": doc_id}})
        records.append(RawRecord(data=source or b"", format="json", source=f"bulk:{peer}",
                                 dataset=_dataset_from_index(idx), meta={"bulk.index": idx, "timezone": zone}))
        positions.append(pos)
    errors_by_pos: dict[int, tuple[str, int]] = {}
    if records:
        res = await pipeline.submit(records, wait=True)
        for err in res.errors:
            errors_by_pos[positions[err.index]] = (err.reason, err.status)
    any_error = False
    for pos in positions:
        action = next(iter(results[pos]))
        item = results[pos][action]
        if pos in errors_by_pos:
            reason, status = errors_by_pos[pos]
            item["status"] = status
            item["error"] = {"type": "document_parsing_exception" if status == 400 else "es_rejected_execution_exception",
                             "reason": reason}
            any_error = True
        else:
            item.update({"_version": 1, "result": "created", "status": 201,
                         "_shards": {"total": 1, "successful": 1, "failed": 0}, "_seq_no": 0, "_primary_term": 1})
    any_error = any_error or any("error" in next(iter(r.values())) for r in results)
    took = int((time.perf_counter() - t0) * 1000)
    return ORJSONResponse({"took": took, "errors": any_error, "items": results})


@bulk_router.post("/_bulk", summary="Elasticsearch-compatible bulk ingest")
async def bulk(request: Request, pipeline: PipelineDep) -> ORJSONResponse:
    return await _bulk(request, pipeline, None)


@bulk_router.post("/{index}/_bulk", summary="Elasticsearch-compatible bulk ingest into a named index")
async def bulk_index(index: str, request: Request, pipeline: PipelineDep) -> ORJSONResponse:
    return await _bulk(request, pipeline, index)


@bulk_router.get("/", summary="Elasticsearch-compatible cluster info, for shippers' version checks")
async def es_info() -> Response:
    # Shippers (Filebeat, Logstash, Vector, omelasticsearch) probe GET / for the product and version.
    return es_response(cluster_info())
