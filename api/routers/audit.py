"""The audit log: read it, verify its hash chain, export it (the export is audited too)."""
from __future__ import annotations

import asyncio
from typing import Annotated, Any

import orjson
from fastapi import Depends, APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from api.auditing import audit
from api.deps import AuditDep
from api.security import Require
from core.auth import Principal

__all__ = ["router"]

router = APIRouter(prefix="/audit", tags=["audit"])

CanRead = Annotated[Principal, Depends(Require("audit:read"))]
CanExport = Annotated[Principal, Depends(Require("export"))]


class AuditEntryOut(BaseModel):
    seq: int
    time: str
    actor: str
    action: str
    target: str
    source_ip: str
    before: Any = None
    after: Any = None
    details: dict[str, Any]
    prev_hash: str
    hash: str


class AuditPage(BaseModel):
    total: int
    items: list[AuditEntryOut]


class VerifyOut(BaseModel):
    ok: bool
    checked: int
    head: str
    first_bad_seq: int | None
    reason: str


@router.get("", response_model=AuditPage, summary="Audit entries, newest first")
async def list_audit(_me: CanRead, log: AuditDep,
                     actor: str | None = Query(None, max_length=200),
                     action: str | None = Query(None, max_length=100),
                     target: str | None = Query(None, max_length=200),
                     limit: int = Query(100, ge=1, le=1000), offset: int = Query(0, ge=0, le=10_000_000)) -> AuditPage:
    total, items = await asyncio.to_thread(log.list, limit=limit, offset=offset, actor=actor, action=action,
                                           target=target)
    return AuditPage(total=total, items=[AuditEntryOut(**e.to_dict()) for e in items])


@router.get("/verify", response_model=VerifyOut, summary="Recompute the hash chain; names the first broken entry")
async def verify(_me: CanRead, log: AuditDep) -> VerifyOut:
    r = await asyncio.to_thread(log.verify)
    return VerifyOut(ok=r.ok, checked=r.checked, head=r.head, first_bad_seq=r.first_bad_seq, reason=r.reason)


@router.get("/export", summary="The whole audit log as NDJSON, oldest first (audited)",
            response_class=StreamingResponse,
            responses={200: {"content": {"application/x-ndjson": {"schema": {"type": "string"}}}}})
async def export(me: CanExport, request: Request, log: AuditDep) -> StreamingResponse:
    await audit(log, request, me, "audit.export", "audit")
    entries = await asyncio.to_thread(lambda: [orjson.dumps(e.to_dict()) + b"\n" for e in log.iter_all()])
    return StreamingResponse(iter(entries), media_type="application/x-ndjson",
                             headers={"Content-Disposition": 'attachment; filename="citysoc-audit.ndjson"'})
