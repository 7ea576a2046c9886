"""Incidents: alerts from one attacker against one center within a window, as one queue
item. List with filters (open ones by default in the console), detail with its alerts and
timeline, triage (status and assignee, which its open alerts follow), every matching id
(the queue's "select all matching") and the values the queue's filters offer."""
from __future__ import annotations

import asyncio
from typing import Annotated, Any, Literal

from fastapi import Depends, APIRouter, HTTPException, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from api.auditing import audit
from api.deps import AlertsDep, AuditDep, IdPath, IncidentsDep, RowId
from api.security import Require
from core.auth import Principal
from api.routers.alerts import AlertOut, Level, Resolution, Status, _iso, public
from core.alerts import AlertFilter, Incident, IncidentFilter, NotFound, TransitionError, check_transition

__all__ = ["router", "IncidentOut", "IncidentPage", "IncidentDetail"]

router = APIRouter(prefix="/incidents", tags=["incidents"])

MAX_PAGE = 500
MAX_OFFSET = 100_000
MAX_IDS = 10_000
COUNT_UP_TO = 10_000

Sort = Literal["-last_seen", "last_seen", "-first_seen", "-risk_score", "-alert_count", "-id", "id"]


class IncidentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    attacker_kind: str
    """Which alert entity named the attacker (``source_ip``, ``user``), or ``rule`` when none did."""
    attacker: str
    center: str | None
    title: str
    level: str
    risk_score: int
    status: str
    resolution: str | None
    assignee: str | None
    first_seen: str
    last_seen: str
    alert_count: int
    detection_count: int
    rules: list[str]
    rule_titles: list[str]
    targets: list[str]
    target_count: int
    ports: list[int | str]
    port_count: int
    assets: list[str]
    tags: list[str]
    created_at: str
    updated_at: str
    case_id: int | None


class TimelineItem(BaseModel):
    alert_id: int
    rule_id: str
    rule_title: str
    level: str
    first_seen: str
    last_seen: str
    count: int
    status: str
    targets: list[str]
    ports: list[int | str]
    host: str | None
    asset_id: str | None


class IncidentDetail(IncidentOut):
    alerts: list[AlertOut]
    """Its alerts (up to 500), oldest first."""
    timeline: list[TimelineItem]


class IncidentPage(BaseModel):
    total: int
    total_relation: Literal["eq", "gte"]
    limit: int
    offset: int
    items: list[IncidentOut]


class IncidentQuery(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)
    status: list[Status] | None = Field(None, max_length=4)
    level: list[Level] | None = Field(None, max_length=5)
    rule_id: str | None = Field(None, max_length=256)
    assignee: str | None = Field(None, max_length=256)
    asset_id: str | None = Field(None, max_length=256)
    center: str | None = Field(None, max_length=256)
    attacker: str | None = Field(None, max_length=256)
    min_risk: int | None = Field(None, ge=0, le=100)
    start: str | None = Field(None, alias="from", max_length=64)
    end: str | None = Field(None, alias="to", max_length=64)
    sort: Sort = "-last_seen"
    limit: int = Field(50, ge=1, le=MAX_PAGE)
    offset: int = Field(0, ge=0, le=MAX_OFFSET)


class IncidentUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: Status | None = None
    resolution: Resolution | None = None
    """Required when closing; its open alerts close with it."""
    assignee: str | None = Field(None, max_length=64)


class BulkIn(BaseModel):
    """Triage of many incidents at once (the queue's bulk bar, also after "select all matching")."""
    model_config = ConfigDict(extra="forbid")
    ids: list[RowId] = Field(..., min_length=1, max_length=MAX_IDS)
    status: Status | None = None
    resolution: Resolution | None = None
    assignee: str | None = Field(None, max_length=64)


class BulkItem(BaseModel):
    id: int
    ok: bool
    error: str | None = None


class BulkOut(BaseModel):
    updated: int
    failed: int
    items: list[BulkItem]


class IdsOut(BaseModel):
    ids: list[int]
    truncated: bool


CanRead = Annotated[Principal, Depends(Require("alerts:read"))]
CanWrite = Annotated[Principal, Depends(Require("alerts:write"))]


def _filter(q: IncidentQuery) -> IncidentFilter:
    return IncidentFilter(status=list(q.status) if q.status else None, level=list(q.level) if q.level else None,
                          rule_id=q.rule_id, assignee=q.assignee, asset_id=q.asset_id, center=q.center,
                          attacker=q.attacker, min_risk=q.min_risk, since=_iso(q.start, "from"),
                          until=_iso(q.end, "to"), sort=q.sort, limit=q.limit, offset=q.offset)


def _view(i: Incident) -> dict[str, Any]:
    return {"status": i.status, "resolution": i.resolution, "assignee": i.assignee}


@router.get("", response_model=IncidentPage, summary="List incidents with filters")
async def list_incidents(_me: CanRead, incidents: IncidentsDep, q: Annotated[IncidentQuery, Query()]) -> IncidentPage:
    flt = _filter(q)
    flt.count_up_to = COUNT_UP_TO
    total, items = await asyncio.to_thread(incidents.list_incidents, flt)
    relation: Literal["eq", "gte"] = "eq"
    if total > COUNT_UP_TO:
        total, relation = COUNT_UP_TO, "gte"
    return IncidentPage(total=total, total_relation=relation, limit=q.limit, offset=q.offset,
                        items=[IncidentOut.model_validate(i) for i in items])


@router.get("/ids", response_model=IdsOut, summary="Every incident id the filters match (select all matching)")
async def matching_ids(_me: CanRead, incidents: IncidentsDep, q: Annotated[IncidentQuery, Query()]) -> IdsOut:
    ids = await asyncio.to_thread(incidents.matching_ids, _filter(q), MAX_IDS + 1)
    return IdsOut(ids=ids[:MAX_IDS], truncated=len(ids) > MAX_IDS)


@router.get("/facets", summary="Values the queue's filters offer: rules, centers, assets, assignees")
async def facets(_me: CanRead, incidents: IncidentsDep) -> dict[str, list[str]]:
    return await asyncio.to_thread(incidents.facets)


@router.post("/bulk", response_model=BulkOut,
             summary="Triage many incidents: status (closing needs a resolution) and/or assignee")
async def bulk(me: CanWrite, request: Request, body: BulkIn, incidents: IncidentsDep, log: AuditDep) -> BulkOut:
    given = "assignee" in body.model_fields_set
    if body.status is None and not given:
        raise HTTPException(400, "nothing to do: give status (with resolution when closing) or assignee")
    if body.status is None and body.resolution is not None:
        raise HTTPException(400, "a resolution is only given together with status 'closed'")
    items: list[BulkItem] = []
    for iid in dict.fromkeys(body.ids):
        try:
            current = await asyncio.to_thread(incidents.get_incident, iid)
            if body.status is not None:
                check_transition(current.status, body.status, body.resolution)
            before, after = await asyncio.to_thread(incidents.update_incident, iid, status=body.status,
                                                    resolution=body.resolution, assignee=body.assignee,
                                                    clear_assignee=given and body.assignee is None)
            await audit(log, request, me, "incident.update", f"incident:{iid}", before=_view(before),
                        after=_view(after))
            items.append(BulkItem(id=iid, ok=True))
        except (NotFound, TransitionError) as exc:
            items.append(BulkItem(id=iid, ok=False, error=str(exc)))
    ok = sum(1 for i in items if i.ok)
    return BulkOut(updated=ok, failed=len(items) - ok, items=items)


@router.get("/{incident_id}", response_model=IncidentDetail)
async def get_incident(_me: CanRead, incident_id: IdPath, incidents: IncidentsDep, alerts: AlertsDep) -> IncidentDetail:
    def load() -> dict[str, Any]:
        inc = incidents.get_incident(incident_id)
        _n, items = alerts.list(AlertFilter(incident_id=incident_id, sort="id", limit=500, count_up_to=0))
        return {**inc.to_dict(), "alerts": [public(a) for a in items], "timeline": incidents.timeline(incident_id)}

    return IncidentDetail.model_validate(await asyncio.to_thread(load))


@router.get("/{incident_id}/alerts", response_model=list[AlertOut], summary="The incident's alerts (expand)")
async def incident_alerts(_me: CanRead, incident_id: IdPath, incidents: IncidentsDep, alerts: AlertsDep,
                          limit: int = Query(500, ge=1, le=MAX_PAGE)) -> list[AlertOut]:
    def load() -> list[dict[str, Any]]:
        incidents.get_incident(incident_id)
        _n, items = alerts.list(AlertFilter(incident_id=incident_id, sort="id", limit=limit, count_up_to=0))
        return [public(a) for a in items]

    return [AlertOut.model_validate(a) for a in await asyncio.to_thread(load)]


@router.patch("/{incident_id}", response_model=IncidentOut,
              summary="Triage: status (closing needs a resolution and closes its open alerts) or assignee")
async def update_incident(me: CanWrite, request: Request, incident_id: IdPath, body: IncidentUpdate,
                          incidents: IncidentsDep, log: AuditDep) -> IncidentOut:
    if not body.model_fields_set:
        raise HTTPException(400, "nothing to change: give status (with resolution when closing) or assignee")
    current = await asyncio.to_thread(incidents.get_incident, incident_id)
    if body.status is not None:
        check_transition(current.status, body.status, body.resolution)
    elif body.resolution is not None:
        raise HTTPException(400, "a resolution is only given together with status 'closed'")
    given = "assignee" in body.model_fields_set
    before, after = await asyncio.to_thread(incidents.update_incident, incident_id, status=body.status,
                                            resolution=body.resolution, assignee=body.assignee,
                                            clear_assignee=given and body.assignee is None)
    await audit(log, request, me, "incident.update", f"incident:{incident_id}", before=_view(before),
                after=_view(after))
    return IncidentOut.model_validate(after)


