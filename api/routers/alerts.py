"""Alerts: list with filters and paging, get, triage (status, assignee), comments, bulk
actions, export, and the live Server-Sent Events stream of new and grown alerts."""
from __future__ import annotations

import asyncio
import csv
import io
from typing import Annotated, Any, Literal

import orjson
from fastapi import Depends, APIRouter, HTTPException, Query, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from api.auditing import audit
from api.deps import MAX_ID, AlertsDep, AuditDep, BroadcasterDep, IdPath, RowId
from api.security import Require
from core.auth import Principal
from api.stream import sse_frame
from api.timeparams import parse_time_bound
from core.spreadsheet import safe_row
from core.alerts import Alert, AlertFilter, NotFound, TransitionError, check_transition
from core.events import to_utc_iso
from core.levels import Level

__all__ = ["router", "AlertOut", "AlertPage", "public"]

router = APIRouter(prefix="/alerts", tags=["alerts"])

MAX_PAGE = 500
MAX_OFFSET = 100_000
MAX_BULK = 500
MAX_EXPORT = 50_000
COUNT_UP_TO = 10_000
KEEPALIVE_S = 15.0

Status = Literal["new", "acknowledged", "in_progress", "closed"]
Resolution = Literal["true_positive", "false_positive", "benign"]
Sort = Literal["-last_seen", "last_seen", "-first_seen", "-risk_score", "-count", "-id", "id"]


class EntitiesOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    host: str | None
    user: str | None
    source_ip: str | None
    destination_ip: str | None
    asset_id: str | None
    center: str | None
    criticality: int | None


class AlertOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    rule_id: str
    rule_title: str
    level: str
    tags: list[str]
    engine: str
    description: str
    entities: EntitiesOut
    risk_score: int
    status: str
    resolution: str | None
    assignee: str | None
    first_seen: str
    last_seen: str
    count: int
    created_at: str
    updated_at: str
    events_query: str
    """Lucene query for /api/v1/events/search that finds the events behind the alert."""
    case_id: int | None
    rules: list[str] = []
    """Every rule folded into this alert (same behaviour, same attacker); ``rule_id`` first."""
    targets: list[str] = []
    """What was attacked (destination addresses or hosts)."""
    ports: list[int | str] = []
    incident_id: int | None = None
    """The incident this alert is part of (``/api/v1/incidents/{id}``)."""


class AlertDetail(AlertOut):
    events: list[dict[str, Any]]
    """Up to 20 of the matching events, as stored when the alert was raised."""


class AlertPage(BaseModel):
    total: int
    total_relation: Literal["eq", "gte"]
    """``gte``: more than 10,000 match and ``total`` is 10,000 (ask ``exact_total=true``)."""
    limit: int
    offset: int
    items: list[AlertOut]


class AlertQuery(BaseModel):
    """The alert list's query parameters, validated in one go (cheaper per request than
    twenty separate parameters on the console's busiest route)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)
    status: list[Status] | None = Field(None, max_length=4)
    level: list[Level] | None = Field(None, max_length=5)
    rule_id: str | None = Field(None, max_length=256)
    assignee: str | None = Field(None, max_length=256)
    host: str | None = Field(None, max_length=256)
    user: str | None = Field(None, max_length=256)
    source_ip: str | None = Field(None, max_length=256)
    asset_id: str | None = Field(None, max_length=256)
    center: str | None = Field(None, max_length=256)
    case_id: int | None = Field(None, ge=1, le=MAX_ID)
    incident_id: int | None = Field(None, ge=1, le=MAX_ID)
    min_risk: int | None = Field(None, ge=0, le=100)
    start: str | None = Field(None, alias="from", max_length=64, description="last_seen >= this (ISO, epoch, now-24h)")
    end: str | None = Field(None, alias="to", max_length=64, description="last_seen < this")
    sort: Sort = "-last_seen"
    limit: int = Field(50, ge=1, le=MAX_PAGE)
    offset: int = Field(0, ge=0, le=MAX_OFFSET)
    exact_total: bool = Field(False, description="Count every match (slower) instead of stopping at 10,000")


class AlertUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: Status | None = None
    resolution: Resolution | None = None
    """Required when closing; only allowed when closing."""
    assignee: str | None = Field(None, max_length=64)
    """A user name; send null to unassign."""


class CommentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(..., min_length=1, max_length=10_000)


class CommentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    alert_id: int
    author: str
    time: str
    text: str


class BulkIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ids: list[RowId] = Field(..., min_length=1, max_length=MAX_BULK)
    status: Status | None = None
    resolution: Resolution | None = None
    assignee: str | None = Field(None, max_length=64)
    comment: str | None = Field(None, min_length=1, max_length=10_000)


class BulkItem(BaseModel):
    id: int
    ok: bool
    error: str | None = None


class BulkOut(BaseModel):
    updated: int
    failed: int
    items: list[BulkItem]


def public(a: Alert) -> dict[str, Any]:
    """An alert as :class:`AlertOut` lays it out (without its sample events)."""
    e = a.entities
    return {"id": a.id, "rule_id": a.rule_id, "rule_title": a.rule_title, "level": a.level, "tags": a.tags,
            "engine": a.engine, "description": a.description,
            "entities": {"host": e.host, "user": e.user, "source_ip": e.source_ip, "destination_ip": e.destination_ip,
                         "asset_id": e.asset_id, "center": e.center, "criticality": e.criticality},
            "risk_score": a.risk_score, "status": a.status, "resolution": a.resolution, "assignee": a.assignee,
            "first_seen": a.first_seen, "last_seen": a.last_seen, "count": a.count, "created_at": a.created_at,
            "updated_at": a.updated_at, "events_query": a.events_query, "case_id": a.case_id,
            "rules": a.rules, "targets": a.targets, "ports": a.ports, "incident_id": a.incident_id}


def _view(a: Alert) -> dict[str, Any]:
    return {"status": a.status, "resolution": a.resolution, "assignee": a.assignee}


def _iso(value: str | None, name: str) -> str | None:
    try:
        t = parse_time_bound(value)
    except ValueError as exc:
        raise HTTPException(400, f"{name}: {exc}") from exc
    return to_utc_iso(t) if t is not None else None


def _filter(status: list[Status] | None, level: list[Level] | None, rule_id: str | None, assignee: str | None,
            host: str | None, user: str | None, source_ip: str | None, asset_id: str | None, center: str | None,
            case_id: int | None, min_risk: int | None, start: str | None, end: str | None, sort: str,
            limit: int, offset: int) -> AlertFilter:
    return AlertFilter(status=list(status) if status else None, level=list(level) if level else None,
                       rule_id=rule_id, assignee=assignee, host=host, user=user, source_ip=source_ip,
                       asset_id=asset_id, center=center, case_id=case_id, min_risk=min_risk,
                       since=_iso(start, "from"), until=_iso(end, "to"), sort=sort, limit=limit, offset=offset)



CanRead = Annotated[Principal, Depends(Require("alerts:read"))]
CanWrite = Annotated[Principal, Depends(Require("alerts:write"))]
CanExport = Annotated[Principal, Depends(Require("export"))]


@router.get("", response_model=None, summary="List alerts, newest activity first, with filters",
            responses={200: {"model": AlertPage, "description": "One page of alerts and the total that match"}})
async def list_alerts(_me: CanRead, alerts: AlertsDep, q: Annotated[AlertQuery, Query()]) -> Response:
    flt = _filter(q.status, q.level, q.rule_id, q.assignee, q.host, q.user, q.source_ip, q.asset_id, q.center,
                  q.case_id, q.min_risk, q.start, q.end, q.sort, q.limit, q.offset)
    flt.count_up_to = None if q.exact_total else COUNT_UP_TO
    flt.incident_id = q.incident_id
    limit, offset = q.limit, q.offset

    def page() -> bytes:
        # The hot path of the console: rows -> JSON bytes directly, no per-alert model
        # validation (AlertOut documents the shape; tests hold the two together).
        total, items = alerts.list(flt)
        relation = "eq"
        if flt.count_up_to is not None and total > flt.count_up_to:
            total, relation = flt.count_up_to, "gte"
        return orjson.dumps({"total": total, "total_relation": relation, "limit": limit, "offset": offset, "items": [public(a) for a in items]})

    return Response(await asyncio.to_thread(page), media_type="application/json")


@router.get("/stream", summary="Server-Sent Events: alert.created / alert.updated as they happen",
            response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {"schema": {"type": "string"}}},
                             "description": "An endless event stream; `: keepalive` comments every 15 s; "
                                            "`event: dropped` tells how many events this slow client lost."}})
async def stream(
    _me: CanRead, request: Request,
    broadcaster: BroadcasterDep,
    min_risk: int | None = Query(None, ge=0, le=100, description="Only alerts with at least this risk score"),
) -> StreamingResponse:
    sub = broadcaster.subscribe(min_risk=min_risk)

    async def frames():
        try:
            yield b": connected\n\n"
            while not sub.ended:
                try:
                    frame = await asyncio.wait_for(sub.queue.get(), KEEPALIVE_S)
                except TimeoutError:
                    if await request.is_disconnected():
                        return
                    yield b": keepalive\n\n"
                    continue
                if sub.ended:
                    return  # the server is shutting down
                if sub.unreported_drops:
                    n, sub.unreported_drops = sub.unreported_drops, 0
                    yield sse_frame("dropped", orjson.dumps({"count": n, "total": sub.dropped}))
                sub.delivered += 1
                yield frame
        finally:
            broadcaster.unsubscribe(sub)

    return StreamingResponse(frames(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


@router.get("/export", summary="Export alerts matching the filters as CSV or NDJSON (audited)",
            response_class=Response,
            responses={200: {"content": {"text/csv": {"schema": {"type": "string"}},
                                         "application/x-ndjson": {"schema": {"type": "string"}}}}})
async def export_alerts(
    me: CanExport,
    request: Request,
    alerts: AlertsDep,
    log: AuditDep,
    format: Literal["csv", "ndjson"] = Query("csv"),
    status: list[Status] | None = Query(None, max_length=4),
    level: list[Level] | None = Query(None, max_length=5),
    rule_id: str | None = Query(None, max_length=256),
    start: str | None = Query(None, alias="from", max_length=64),
    end: str | None = Query(None, alias="to", max_length=64),
    limit: int = Query(10_000, ge=1, le=MAX_EXPORT),
) -> Response:
    flt = _filter(status, level, rule_id, None, None, None, None, None, None, None, None, start, end,
                  "-last_seen", limit, 0)
    flt.count_up_to = None
    total, items = await asyncio.to_thread(alerts.list, flt)
    await audit(log, request, me, "alerts.export", "alerts",
                details={"format": format, "rows": len(items), "matched": total,
                         "filter": {"status": status, "level": level, "rule_id": rule_id, "from": start, "to": end}})
    if format == "ndjson":
        body = b"".join(orjson.dumps(a.to_dict(with_events=False)) + b"\n" for a in items)
        return Response(body, media_type="application/x-ndjson",
                        headers={"Content-Disposition": 'attachment; filename="citysoc-alerts.ndjson"'})
    buf = io.StringIO()
    cols = ["id", "rule_id", "rule_title", "level", "risk_score", "status", "resolution", "assignee", "host", "user",
            "source_ip", "destination_ip", "asset_id", "center", "first_seen", "last_seen", "count", "case_id"]
    w = csv.writer(buf)
    w.writerow(cols)
    for a in items:
        e = a.entities
        w.writerow(safe_row([a.id, a.rule_id, a.rule_title, a.level, a.risk_score, a.status, a.resolution or "",
                    a.assignee or "", e.host or "", e.user or "", e.source_ip or "", e.destination_ip or "",
                    e.asset_id or "", e.center or "", a.first_seen, a.last_seen, a.count, a.case_id or ""]))
    return Response(buf.getvalue(), media_type="text/csv",
                    headers={"Content-Disposition": 'attachment; filename="citysoc-alerts.csv"'})


@router.post("/bulk", response_model=BulkOut, summary="Change status/assignee of many alerts, or comment on them")
async def bulk(me: CanWrite, request: Request, body: BulkIn, alerts: AlertsDep, log: AuditDep) -> BulkOut:
    if body.status is None and body.assignee is None and body.comment is None and "assignee" not in body.model_fields_set:
        raise HTTPException(400, "nothing to do: give status, assignee or comment")
    items: list[BulkItem] = []
    for aid in dict.fromkeys(body.ids):
        try:
            await _apply(request, alerts, log, me, aid, body.status, body.resolution, body.assignee,
                         "assignee" in body.model_fields_set)
            if body.comment:
                c = await asyncio.to_thread(alerts.add_comment, aid, me.name, body.comment)
                await audit(log, request, me, "alert.comment", f"alert:{aid}", details={"comment_id": c.id})
            items.append(BulkItem(id=aid, ok=True))
        except (NotFound, TransitionError) as exc:
            items.append(BulkItem(id=aid, ok=False, error=str(exc)))
    ok = sum(1 for i in items if i.ok)
    return BulkOut(updated=ok, failed=len(items) - ok, items=items)


async def _apply(request: Request, alerts: Any, log: Any, me: Any, alert_id: IdPath, status: str | None,
                 resolution: str | None, assignee: str | None, assignee_given: bool) -> Alert:
    current = await asyncio.to_thread(alerts.get, alert_id)
    if status is not None:
        check_transition(current.status, status, resolution)
    elif resolution is not None:
        raise TransitionError("a resolution is only given together with status 'closed'")
    if status is None and not assignee_given:
        return current
    before, after = await asyncio.to_thread(alerts.update, alert_id, status=status, resolution=resolution,
                                            assignee=assignee, clear_assignee=assignee_given and assignee is None)
    await audit(log, request, me, "alert.update", f"alert:{alert_id}", before=_view(before), after=_view(after))
    return after


@router.get("/{alert_id}", response_model=AlertDetail)
async def get_alert(_me: CanRead, alert_id: IdPath, alerts: AlertsDep) -> AlertDetail:
    a = await asyncio.to_thread(alerts.get, alert_id)
    return AlertDetail.model_validate(a)


@router.patch("/{alert_id}", response_model=AlertOut, summary="Triage: change status (closing needs a resolution) "
                                                              "or assignee")
async def update_alert(me: CanWrite, request: Request, alert_id: IdPath, body: AlertUpdate, alerts: AlertsDep, log: AuditDep) -> AlertOut:
    if not body.model_fields_set:
        raise HTTPException(400, "nothing to change: give status (with resolution when closing) or assignee")
    after = await _apply(request, alerts, log, me, alert_id, body.status, body.resolution, body.assignee,
                         "assignee" in body.model_fields_set)
    return AlertOut.model_validate(after)


@router.get("/{alert_id}/comments", response_model=list[CommentOut])
async def list_comments(_me: CanRead, alert_id: IdPath, alerts: AlertsDep) -> list[CommentOut]:
    return [CommentOut.model_validate(c) for c in await asyncio.to_thread(alerts.comments, alert_id)]


@router.post("/{alert_id}/comments", response_model=CommentOut, status_code=201)
async def add_comment(me: CanWrite, request: Request, alert_id: IdPath, body: CommentIn, alerts: AlertsDep, log: AuditDep) -> CommentOut:
    c = await asyncio.to_thread(alerts.add_comment, alert_id, me.name, body.text)
    await audit(log, request, me, "alert.comment", f"alert:{alert_id}", details={"comment_id": c.id})
    return CommentOut.model_validate(c)

