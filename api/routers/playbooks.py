"""Playbooks and their runs: list and read (viewer and up), start, approve, reject, resume
and re-run (responder and admin).

The router reaches the runner only through :class:`core.playbooks.PlaybookRunner`
(``Services.playbooks``, wired by ``citysoc serve``); the runner writes the
audit log for every run, step and decision, naming the caller.
"""
from __future__ import annotations

import asyncio
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import Depends, APIRouter, HTTPException, Query
from pydantic import BaseModel, ConfigDict, Field

from api.deps import AlertsDep, IdPath, PlaybooksDep, RowId
from api.security import Require
from core.auth import Principal
from core.playbooks import ApprovalDenied, PlaybookInputError, RUN_STATUSES

__all__ = ["router", "runs_router", "routers"]

router = APIRouter(prefix="/playbooks", tags=["playbooks"])
runs_router = APIRouter(prefix="/playbook-runs", tags=["playbooks"])

CanRead = Annotated[Principal, Depends(Require("playbooks:read"))]
CanRun = Annotated[Principal, Depends(Require("playbooks:run"))]
CanApprove = Annotated[Principal, Depends(Require("playbooks:approve"))]
RunnerDep = PlaybooksDep


class PlaybookOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    name: str
    title: str
    description: str
    source: str
    title_vi: str = ""
    description_vi: str = ""
    triggers: dict[str, Any]
    inputs: dict[str, dict[str, Any]]
    steps: list[dict[str, Any]]
    matches: bool | None = None
    """With ``?alert_id=``: whether the playbook's alert trigger matches that alert (the
    console's picker offers those first)."""


class StepOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    index: int
    name: str
    action: str
    status: str
    inputs: dict[str, Any]
    output: dict[str, Any] | None
    error: str
    would: str
    would_msg: dict[str, Any] | None = None
    """``would`` as a catalog key and parameters (``dashboards/i18n``), for display in either language."""
    error_msg: dict[str, Any] | None = None
    """``error`` likewise, when the action wrote a catalog message (else only the text)."""
    attempts: int
    started_at: str
    ended_at: str
    duration_ms: float
    destructive: bool
    approval_role: str | None
    approved_by: str | None
    approved_at: str | None


class ApprovalOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    step: str
    decision: str
    actor: str
    role: str
    time: str
    comment: str


class RunOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    playbook: str
    status: str
    trigger: str
    actor: str
    inputs: dict[str, Any]
    alert_id: int | None
    dry_run: bool
    idempotency_key: str | None
    reason: str
    reason_msg: dict[str, Any] | None = None
    """``reason`` as a catalog key and parameters, when the runner wrote it as a message."""
    created_at: str
    started_at: str
    ended_at: str
    parent_run_id: int | None
    current_step: str | None
    approval_expires_at: str | None
    duplicate: bool
    steps: list[StepOut]
    approvals: list[ApprovalOut]


class RunPage(BaseModel):
    total: int
    items: list[RunOut]


class RunIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    alert_id: RowId | None = None
    inputs: dict[str, Any] = Field(default_factory=dict)
    dry_run: bool = False
    """Resolve and show every step's inputs and what it would do, touching nothing."""
    wait: bool = True
    """Answer when the run has ended or parked for an approval (steps are bounded by timeouts)."""


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    comment: str = Field("", max_length=2000)
    wait: bool = True


class RerunIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    dry_run: bool = False
    wait: bool = True


class ResumeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    wait: bool = True


def _call_errors(exc: Exception) -> HTTPException:
    if isinstance(exc, ApprovalDenied):
        return HTTPException(403, str(exc))
    return HTTPException(422, str(exc))


@router.get("", response_model=list[PlaybookOut],
            summary="Loaded playbooks (with alert_id: which of them the alert's triggers match, those first)")
async def list_playbooks(_me: CanRead, runner: RunnerDep, alerts: AlertsDep,
                         alert_id: Annotated[int | None, Query(ge=1, le=2**53)] = None) -> Any:
    items = runner.list_playbooks()
    if alert_id is None:
        return items
    alert = await asyncio.to_thread(alerts.get, alert_id)
    hit = {p.name for p in runner.matching(alert)}
    out = [{**asdict(p), "matches": p.name in hit} for p in items]
    return sorted(out, key=lambda p: not p["matches"])  # stable: by name within each group


@router.get("/{name}", response_model=PlaybookOut, summary="One playbook: triggers, inputs, steps")
async def get_playbook(name: str, _me: CanRead, runner: RunnerDep) -> Any:
    return runner.get_playbook(name)


@router.post("/{name}/run", response_model=RunOut, summary="Start a run (dry_run: show what it would do)")
async def run_playbook(name: str, body: RunIn, me: CanRun, runner: RunnerDep) -> Any:
    try:
        return await runner.start(name, actor=me.actor, alert_id=body.alert_id, inputs=body.inputs,
                                  dry_run=body.dry_run, wait=body.wait)
    except (PlaybookInputError, ApprovalDenied) as exc:
        raise _call_errors(exc) from None


@runs_router.get("", response_model=RunPage, summary="Runs, newest first")
async def list_runs(_me: CanRead, runner: RunnerDep, playbook: str | None = None,
                    status: Annotated[str | None, Query(pattern="^(" + "|".join(RUN_STATUSES) + ")$")] = None,
                    alert_id: Annotated[int | None, Query(ge=1, le=2**53)] = None,
                    limit: Annotated[int, Query(ge=1, le=500)] = 50,
                    offset: Annotated[int, Query(ge=0, le=100_000)] = 0) -> Any:
    total, items = runner.list_runs(playbook=playbook, status=status, alert_id=alert_id, limit=limit, offset=offset)
    return {"total": total, "items": items}


@runs_router.get("/{run_id}", response_model=RunOut, summary="One run with its steps and approvals")
async def get_run(run_id: IdPath, _me: CanRead, runner: RunnerDep) -> Any:
    return runner.get_run(run_id)


@runs_router.post("/{run_id}/approve", response_model=RunOut, summary="Approve the step the run waits on")
async def approve(run_id: IdPath, body: DecisionIn, me: CanApprove, runner: RunnerDep) -> Any:
    try:
        return await runner.approve(run_id, actor=me.actor, role=me.role, comment=body.comment, wait=body.wait)
    except (PlaybookInputError, ApprovalDenied) as exc:
        raise _call_errors(exc) from None


@runs_router.post("/{run_id}/reject", response_model=RunOut, summary="Refuse the step the run waits on; the run ends")
async def reject(run_id: IdPath, body: DecisionIn, me: CanApprove, runner: RunnerDep) -> Any:
    try:
        return await runner.reject(run_id, actor=me.actor, role=me.role, comment=body.comment)
    except (PlaybookInputError, ApprovalDenied) as exc:
        raise _call_errors(exc) from None


@runs_router.post("/{run_id}/cancel", response_model=RunOut, summary="Withdraw a queued run or one awaiting approval")
async def cancel(run_id: IdPath, body: DecisionIn, me: CanApprove, runner: RunnerDep) -> Any:
    return await runner.cancel(run_id, actor=me.actor, comment=body.comment)


@runs_router.post("/{run_id}/resume", response_model=RunOut, summary="Continue a failed run from its failed step")
async def resume(run_id: IdPath, body: ResumeIn, me: CanRun, runner: RunnerDep) -> Any:
    try:
        return await runner.resume(run_id, actor=me.actor, wait=body.wait)
    except (PlaybookInputError, ApprovalDenied) as exc:
        raise _call_errors(exc) from None


@runs_router.post("/{run_id}/rerun", response_model=RunOut, summary="Start a new run with the same inputs")
async def rerun(run_id: IdPath, body: RerunIn, me: CanRun, runner: RunnerDep) -> Any:
    try:
        return await runner.rerun(run_id, actor=me.actor, dry_run=body.dry_run, wait=body.wait)
    except (PlaybookInputError, ApprovalDenied) as exc:
        raise _call_errors(exc) from None


routers = [router, runs_router]
"""Both, mounted by :data:`api.app.ROUTERS` when ``playbooks.enabled``."""
