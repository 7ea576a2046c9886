"""Suppressions (exceptions): detections of a rule on matching entities make no alert
until the suppression expires. Each has an owner, a reason and an expiry, and every
change is audited, because a suppression is a way to hide an attack too."""
from __future__ import annotations

import asyncio
import datetime as _dt
from typing import Annotated, Literal

from fastapi import Depends, APIRouter, HTTPException, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from api.auditing import audit
from api.deps import AlertsDep, AuditDep, IdPath, StateDep
from api.security import Require
from core.auth import Principal
from api.timeparams import parse_since
from core.alerts import Suppression
from core.events import TimestampError, parse_timestamp, to_utc_iso

__all__ = ["router"]

router = APIRouter(prefix="/suppressions", tags=["suppressions"])

CanRead = Annotated[Principal, Depends(Require("alerts:read"))]
CanWrite = Annotated[Principal, Depends(Require("alerts:write"))]
MAX_TTL = _dt.timedelta(days=365)

EntityField = Literal["*", "host", "user", "source_ip", "destination_ip", "asset_id", "center"]


class SuppressionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rule_id: str = Field(..., min_length=1, max_length=200, description="A rule id, or * for every rule")
    field: EntityField = Field(..., description="Alert entity to match, or * for every entity")
    value: str = Field("*", min_length=1, max_length=256, description="Shell-style pattern, e.g. cam-0*")
    reason: str = Field(..., min_length=3, max_length=2000)
    expires_at: str | None = Field(None, max_length=64, description="ISO 8601 expiry; or give ttl")
    ttl: str | None = Field(None, max_length=16, pattern=r"^\d{1,6}[smhdw]$", description="e.g. 7d, 12h")


class SuppressionOut(BaseModel):
    id: int
    rule_id: str
    field: str
    value: str
    owner: str
    reason: str
    created_at: str
    expires_at: str
    hits: int


def _out(s: Suppression) -> SuppressionOut:
    return SuppressionOut(id=s.id, rule_id=s.rule_id, field=s.field, value=s.value, owner=s.owner, reason=s.reason,
                          created_at=s.created_at, expires_at=s.expires_at, hits=s.hits)


def _invalidate(state: StateDep) -> None:
    rec = state.services.alert_recorder
    if rec is not None:
        rec.invalidate_suppressions()


@router.get("", response_model=list[SuppressionOut])
async def list_suppressions(_me: CanRead, alerts: AlertsDep,
                            include_expired: bool = Query(False)) -> list[SuppressionOut]:
    return [_out(s) for s in await asyncio.to_thread(alerts.suppressions, include_expired=include_expired)]


@router.post("", response_model=SuppressionOut, status_code=201)
async def create_suppression(me: CanWrite, request: Request, body: SuppressionIn, alerts: AlertsDep, log: AuditDep,
                             state: StateDep) -> SuppressionOut:
    now = _dt.datetime.now(_dt.timezone.utc)
    if (body.expires_at is None) == (body.ttl is None):
        raise HTTPException(400, "give exactly one of expires_at (ISO 8601) or ttl (e.g. 7d)")
    try:
        expires = now + parse_since(body.ttl) if body.ttl else parse_timestamp(body.expires_at)
    except (ValueError, TimestampError, OverflowError) as exc:
        raise HTTPException(400, f"cannot read the expiry: {exc}") from exc
    if expires <= now:
        raise HTTPException(400, "the expiry is in the past: a suppression must end in the future")
    if expires - now > MAX_TTL:
        raise HTTPException(400, "a suppression may last at most 365 days; renew it when it ends")
    s = await asyncio.to_thread(alerts.add_suppression, body.rule_id, body.field, body.value, me.actor, body.reason,
                                to_utc_iso(expires))
    _invalidate(state)
    await audit(log, request, me, "suppression.create", f"suppression:{s.id}", after=_out(s).model_dump())
    return _out(s)


@router.delete("/{suppression_id}", response_model=SuppressionOut)
async def delete_suppression(me: CanWrite, request: Request, suppression_id: IdPath, alerts: AlertsDep, log: AuditDep,
                             state: StateDep) -> SuppressionOut:
    s = await asyncio.to_thread(alerts.delete_suppression, suppression_id)
    _invalidate(state)
    await audit(log, request, me, "suppression.delete", f"suppression:{s.id}", before=_out(s).model_dump())
    return _out(s)
