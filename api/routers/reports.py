"""Reports for auditors: make one (audited), export a case's or alert's evidence zip
(audited), list the stored ones, download a file or its manifest (audited too).

Reaches report generation only through :class:`core.reports.ReportService`
(``Services.reports``, wired by ``citysoc/``); 503 when none is wired.
Every route needs the ``export`` permission (auditor, admin).
"""
from __future__ import annotations

import asyncio
from typing import Annotated, Any, Literal

from fastapi import Depends, APIRouter, HTTPException, Path, Request
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field

from api.auditing import audit
from api.deps import AuditDep, ReportsDep, RowId
from api.security import Require, client_ip
from core.auth import Principal
from core.reports import ReportError, ReportInfo, ReportNotFound, ReportRequest, ReportService

__all__ = ["router"]

router = APIRouter(prefix="/reports", tags=["reports"])

CanExport = Annotated[Principal, Depends(Require("export"))]
NamePath = Annotated[str, Path(min_length=1, max_length=120, pattern=r"^[A-Za-z0-9_.\-]+$")]

_MEDIA = {"pdf": "application/pdf", "csv": "text/csv; charset=utf-8", "json": "application/json",
          "html": "text/html; charset=utf-8", "zip": "application/zip"}


class ReportCreate(BaseModel):
    """The period as days (``2026-11-16``; ``end`` included) or ISO times (``end`` excluded)."""

    model_config = ConfigDict(extra="forbid")

    start: str = Field(min_length=10, max_length=40, examples=["2026-11-16"])
    end: str = Field(min_length=10, max_length=40, examples=["2026-11-22"])
    format: Literal["pdf", "csv", "json", "html"] = "pdf"
    lang: Literal["vi", "en"] = "vi"
    tz: str = Field("Asia/Ho_Chi_Minh", max_length=64)


class ReportPublic(BaseModel):
    name: str
    fmt: str
    lang: str
    kind: str
    start: str
    end: str
    size: int
    sha256: str
    generated_at: str
    generated_by: str
    audit_head: str
    figures: dict[str, Any]
    download: str


class ReportList(BaseModel):
    total: int
    items: list[ReportPublic]


def _public(i: ReportInfo) -> ReportPublic:
    return ReportPublic(**i.to_dict(), download=f"/api/v1/reports/{i.name}")


@router.post("", response_model=ReportPublic, status_code=201,
             summary="Make a report for a period (kept in <data>/reports; audited)")
async def create_report(me: CanExport, request: Request, body: ReportCreate, reports: ReportsDep) -> ReportPublic:
    req = ReportRequest(start=body.start, end=body.end, fmt=body.format, lang=body.lang, tz=body.tz)
    try:
        info = await asyncio.to_thread(reports.generate, req, actor=me.actor, source_ip=client_ip(request))
    except ReportError as exc:
        raise HTTPException(400, str(exc)) from exc
    return _public(info)


class EvidenceCreate(BaseModel):
    """Exactly one of ``case_id`` / ``alert_id``."""

    model_config = ConfigDict(extra="forbid")

    case_id: RowId | None = None
    alert_id: RowId | None = None


@router.post("/evidence", response_model=ReportPublic, status_code=201,
             summary="Export a case or an alert with its events, timeline, playbook runs and audit entries as a "
                     "zip with a hash manifest (audited)")
async def create_evidence(me: CanExport, request: Request, body: EvidenceCreate, reports: ReportsDep) -> ReportPublic:
    if (body.case_id is None) == (body.alert_id is None):
        raise HTTPException(400, "give exactly one of case_id or alert_id")
    try:
        info = await asyncio.to_thread(reports.evidence, case_id=body.case_id, alert_id=body.alert_id,
                                       actor=me.actor, source_ip=client_ip(request))
    except ReportError as exc:
        raise HTTPException(404 if "does not exist" in str(exc) else 400, str(exc)) from exc
    return _public(info)


@router.get("", response_model=ReportList, summary="Stored reports, newest first")
async def list_reports(_me: CanExport, reports: ReportsDep) -> ReportList:
    items = await asyncio.to_thread(reports.list)
    return ReportList(total=len(items), items=[_public(i) for i in items])


async def _file(me: Any, request: Request, reports: ReportService, log: Any, name: str, media: str | None) -> FileResponse:
    try:
        path = await asyncio.to_thread(reports.path_of, name)
    except ReportNotFound as exc:
        raise HTTPException(404, str(exc)) from exc
    await audit(log, request, me, "report.download", f"report:{name}")
    ext = name.rsplit(".", 1)[-1]
    return FileResponse(path, media_type=media or _MEDIA.get(ext, "application/octet-stream"), filename=name)


@router.get("/{name}", summary="Download a stored report (audited)", response_class=FileResponse,
            responses={200: {"content": {m: {"schema": {"type": "string", "format": "binary"}}
                                         for m in sorted(set(_MEDIA.values()))}}})
async def download_report(me: CanExport, request: Request, name: NamePath, reports: ReportsDep,
                          log: AuditDep) -> FileResponse:
    if name.endswith(".manifest.json"):
        raise HTTPException(404, f"report {name!r} does not exist; manifests are at /reports/NAME/manifest")
    return await _file(me, request, reports, log, name, None)


@router.get("/{name}/manifest", summary="A stored report's SHA-256 manifest (audit head at generation)",
            response_class=FileResponse, responses={200: {"content": {"application/json": {"schema": {"type": "object"}}}}})
async def download_manifest(me: CanExport, request: Request, name: NamePath, reports: ReportsDep,
                            log: AuditDep) -> FileResponse:
    return await _file(me, request, reports, log, f"{name}.manifest.json", "application/json")
