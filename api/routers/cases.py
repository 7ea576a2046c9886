"""Cases: alerts grouped for an investigation, with notes, a timeline and attachments.

Attachments are stored in the data directory with their SHA-256; when an
:class:`core.protocols.AttachmentScanner` is wired (YARA), each upload is scanned and
the result kept on the attachment and in the case timeline.
"""
from __future__ import annotations

import asyncio
import logging
import re
from pathlib import Path as FsPath
from typing import Annotated, Literal

from fastapi import Depends, APIRouter, File, HTTPException, Query, Request, UploadFile
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field

from api.auditing import audit
from api.deps import AlertsDep, AuditDep, CasesDep, IdPath, IncidentsDep, RowId, ScannerDep
from api.security import Require
from core.auth import Principal
from api.routers.incidents import IncidentOut
from core.alerts import AlertFilter, Case
from core.levels import Level
from core.protocols import IncompleteScan

__all__ = ["router", "MAX_ATTACHMENT_BYTES"]

logger = logging.getLogger("citysoc.api.cases")

router = APIRouter(prefix="/cases", tags=["cases"])

CanRead = Annotated[Principal, Depends(Require("cases:read"))]
CanWrite = Annotated[Principal, Depends(Require("cases:write"))]
MAX_ATTACHMENT_BYTES = 25 * 1024 * 1024
MAX_CASE_ALERTS = 5000
CaseStatus = Literal["open", "in_progress", "closed"]
Severity = Level
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._\- ]")


class CaseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str = Field(..., min_length=1, max_length=300)
    description: str = Field("", max_length=20_000)
    severity: Severity = "medium"
    assignee: str | None = Field(None, max_length=64)
    alert_ids: list[RowId] = Field(default_factory=list, max_length=1000)
    incident_ids: list[RowId] = Field(default_factory=list, max_length=100)
    """Incidents the case is opened from: their alerts join the case and they link to it."""


class CaseUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str | None = Field(None, min_length=1, max_length=300)
    description: str | None = Field(None, max_length=20_000)
    status: CaseStatus | None = None
    severity: Severity | None = None
    assignee: str | None = Field(None, max_length=64)


class CaseOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    title: str
    description: str
    status: str
    severity: str
    assignee: str | None
    created_by: str
    created_at: str
    updated_at: str
    alert_ids: list[int]


class CasePage(BaseModel):
    total: int
    items: list[CaseOut]


class AlertIdsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    alert_ids: list[RowId] = Field(..., min_length=1, max_length=1000)


class NoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(..., min_length=1, max_length=20_000)


class NoteOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    case_id: int
    author: str
    time: str
    text: str


class TimelineOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    case_id: int
    time: str
    actor: str
    kind: str
    summary: str
    data: dict


class AttachmentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    case_id: int
    filename: str
    size: int
    sha256: str
    content_type: str
    uploaded_by: str
    time: str
    scan_status: str
    scan_findings: list[dict]


def _view(c: Case) -> dict:
    return {"title": c.title, "status": c.status, "severity": c.severity, "assignee": c.assignee}


@router.get("", response_model=CasePage)
async def list_cases(_me: CanRead, cases: CasesDep, status: CaseStatus | None = Query(None),
                     limit: int = Query(50, ge=1, le=500), offset: int = Query(0, ge=0, le=100_000)) -> CasePage:
    total, items = await asyncio.to_thread(cases.list_cases, status=status, limit=limit, offset=offset)
    return CasePage(total=total, items=[CaseOut.model_validate(c) for c in items])


@router.post("", response_model=CaseOut, status_code=201,
             summary="Open a case from selected alerts and/or incidents (their alerts join it)")
async def create_case(me: CanWrite, request: Request, body: CaseIn, cases: CasesDep, incidents: IncidentsDep,
                      log: AuditDep) -> CaseOut:
    def create() -> Case:
        alert_ids = list(body.alert_ids)
        for iid in dict.fromkeys(body.incident_ids):
            alert_ids.extend(incidents.incident_alert_ids(iid))  # NotFound (404) before anything is written
        alert_ids = list(dict.fromkeys(alert_ids))
        if len(alert_ids) > MAX_CASE_ALERTS:
            raise HTTPException(413, f"the incidents hold {len(alert_ids)} alerts; a case takes at most "
                                     f"{MAX_CASE_ALERTS}: open it from fewer incidents")
        c = cases.create_case(body.title, body.description, body.severity, me.actor, alert_ids, body.assignee)
        for iid in dict.fromkeys(body.incident_ids):
            incidents.set_case(iid, c.id)
        return c

    c = await asyncio.to_thread(create)
    await audit(log, request, me, "case.create", f"case:{c.id}",
                after={**_view(c), "alert_ids": c.alert_ids, "incident_ids": list(body.incident_ids)})
    return CaseOut.model_validate(c)


@router.get("/{case_id}/incidents", response_model=list[IncidentOut],
            summary="Incidents linked to the case (opened from it, or holding one of its alerts)")
async def case_incidents(_me: CanRead, case_id: IdPath, cases: CasesDep, alerts: AlertsDep,
                         incidents: IncidentsDep) -> list[IncidentOut]:
    def load() -> list[IncidentOut]:
        cases.get_case(case_id)
        _n, items = alerts.list(AlertFilter(case_id=case_id, sort="id", limit=MAX_CASE_ALERTS, count_up_to=0))
        ids = sorted({a.incident_id for a in items if a.incident_id is not None})
        return [IncidentOut.model_validate(incidents.get_incident(i)) for i in ids]

    return await asyncio.to_thread(load)


@router.get("/{case_id}", response_model=CaseOut)
async def get_case(_me: CanRead, case_id: IdPath, cases: CasesDep) -> CaseOut:
    return CaseOut.model_validate(await asyncio.to_thread(cases.get_case, case_id))


@router.patch("/{case_id}", response_model=CaseOut)
async def update_case(me: CanWrite, request: Request, case_id: IdPath, body: CaseUpdate, cases: CasesDep,
                      log: AuditDep) -> CaseOut:
    if not body.model_fields_set:
        raise HTTPException(400, "nothing to change: give title, description, status, severity or assignee")
    before, after = await asyncio.to_thread(cases.update_case, case_id, me.actor, **body.model_dump(exclude_unset=True))
    if _view(before) != _view(after) or before.description != after.description:
        await audit(log, request, me, "case.update", f"case:{case_id}", before=_view(before), after=_view(after))
    return CaseOut.model_validate(after)


@router.post("/{case_id}/alerts", response_model=CaseOut)
async def add_alerts(me: CanWrite, request: Request, case_id: IdPath, body: AlertIdsIn, cases: CasesDep,
                     log: AuditDep) -> CaseOut:
    c = await asyncio.to_thread(cases.add_alerts, case_id, body.alert_ids, me.actor)
    await audit(log, request, me, "case.add_alerts", f"case:{case_id}", details={"alert_ids": body.alert_ids})
    return CaseOut.model_validate(c)


@router.get("/{case_id}/notes", response_model=list[NoteOut])
async def list_notes(_me: CanRead, case_id: IdPath, cases: CasesDep) -> list[NoteOut]:
    return [NoteOut.model_validate(n) for n in await asyncio.to_thread(cases.notes, case_id)]


@router.post("/{case_id}/notes", response_model=NoteOut, status_code=201)
async def add_note(me: CanWrite, case_id: IdPath, body: NoteIn, cases: CasesDep) -> NoteOut:
    return NoteOut.model_validate(await asyncio.to_thread(cases.add_note, case_id, me.actor, body.text))


@router.get("/{case_id}/timeline", response_model=list[TimelineOut])
async def timeline(_me: CanRead, case_id: IdPath, cases: CasesDep) -> list[TimelineOut]:
    return [TimelineOut.model_validate(t) for t in await asyncio.to_thread(cases.timeline, case_id)]


@router.get("/{case_id}/attachments", response_model=list[AttachmentOut])
async def list_attachments(_me: CanRead, case_id: IdPath, cases: CasesDep) -> list[AttachmentOut]:
    return [AttachmentOut.model_validate(a) for a in await asyncio.to_thread(cases.attachments, case_id)]


@router.post("/{case_id}/attachments", response_model=AttachmentOut, status_code=201,
             summary="Attach a file (multipart field `file`, at most 25 MiB); scanned when a scanner is wired")
async def upload_attachment(me: CanWrite, request: Request, case_id: IdPath, cases: CasesDep, log: AuditDep,
                            scanner: ScannerDep, file: UploadFile = File(...)) -> AttachmentOut:
    data = await file.read(MAX_ATTACHMENT_BYTES + 1)
    if len(data) > MAX_ATTACHMENT_BYTES:
        raise HTTPException(413, f"attachment exceeds {MAX_ATTACHMENT_BYTES} bytes; compress or split it")
    name = _SAFE_NAME.sub("_", FsPath(file.filename or "attachment").name)[:200] or "attachment"
    ctype = (file.content_type or "application/octet-stream")[:100]
    att = await asyncio.to_thread(cases.add_attachment, case_id, name, ctype, data, me.actor)
    await audit(log, request, me, "case.attach", f"case:{case_id}",
                details={"attachment_id": att.id, "filename": name, "size": att.size, "sha256": att.sha256})
    if scanner is not None:
        try:
            found = await asyncio.to_thread(scanner.scan_file, att.path)
            findings = [{"rule": f.rule, "namespace": f.namespace, "tags": list(f.tags), "meta": dict(f.meta)}
                        for f in found]
            status = "flagged" if findings else "clean"
        except IncompleteScan as exc:  # part of the file was not seen: never "clean"
            findings = [{"rule": f.rule, "namespace": f.namespace, "tags": list(f.tags), "meta": dict(f.meta)}
                        for f in exc.findings] + [{"incomplete": r[:300]} for r in exc.reasons[:20]]
            status = "flagged" if exc.findings else "incomplete"
        except Exception as exc:  # a scanner failure must not lose the upload
            logger.warning("attachment scan failed for %s: %s", att.sha256, exc)
            findings, status = [{"error": f"{type(exc).__name__}: {exc}"[:500]}], "error"
        await asyncio.to_thread(cases.set_scan_result, att.id, status, findings)
        att = await asyncio.to_thread(cases.get_attachment, case_id, att.id)
    return AttachmentOut.model_validate(att)


@router.get("/{case_id}/attachments/{attachment_id}", response_class=FileResponse,
            responses={200: {"content": {"application/octet-stream": {"schema": {"type": "string",
                                                                                  "format": "binary"}}}}})
async def download_attachment(_me: CanRead, case_id: IdPath, attachment_id: IdPath, cases: CasesDep) -> FileResponse:
    att = await asyncio.to_thread(cases.get_attachment, case_id, attachment_id)
    if not await asyncio.to_thread(FsPath(att.path).is_file):
        raise HTTPException(410, f"the file of attachment {attachment_id} is missing from the data directory")
    return FileResponse(att.path, media_type="application/octet-stream", filename=att.filename,
                        headers={"X-Content-SHA256": att.sha256, "X-Content-Type-Options": "nosniff"})
