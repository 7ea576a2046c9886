"""Scheduled Sigma query rules, read-only: which rules run, their run log, their gaps.

Works with the runner ``citysoc/`` wired as ``Services.scheduled_rules`` (a
:class:`core.protocols.ScheduledRuleLog`; this package imports no detection code); answers 503 when no scheduled rule is configured. Gaps are the point:
missed runs (the server was down) are shown with how far catch-up has come.
"""
from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import Depends, APIRouter, Query
from pydantic import BaseModel

from api.deps import ScheduledDep
from api.security import Require
from core.auth import Principal

__all__ = ["router"]

router = APIRouter(prefix="/scheduled-rules", tags=["rules"])

CanRead = Annotated[Principal, Depends(Require("rules:read"))]
RuleFilter = Query(None, min_length=1, max_length=200, description="Only this rule id")


class ScheduledRuleOut(BaseModel):
    id: str
    title: str
    level: str
    path: str
    interval_s: float
    lookback_s: float
    covered_end: str | None
    open_gaps: int
    case_variants: bool
    """False: the rule runs case-sensitively (its case-variant query was too large)."""
    queries: list[str]


class NotScheduledOut(BaseModel):
    id: str | None
    title: str | None
    path: str
    reason: str


class ScheduledOverview(BaseModel):
    rules: list[ScheduledRuleOut]
    not_scheduled: list[NotScheduledOut]


class RunOut(BaseModel):
    id: int
    rule_id: str
    kind: str
    started: str
    finished: str | None
    window_start: str
    window_end: str
    hits: int
    alerts: int
    status: str
    error: str
    gap_id: int | None


class GapOut(BaseModel):
    id: int
    rule_id: str
    gap_start: str
    gap_end: str
    minutes: float
    detected: str
    covered_until: str
    closed: str | None
    open: bool


@router.get("", response_model=ScheduledOverview)
async def overview(_me: CanRead, runner: ScheduledDep) -> Any:
    return await asyncio.to_thread(runner.describe)


@router.get("/runs", response_model=list[RunOut])
async def runs(_me: CanRead, runner: ScheduledDep, rule_id: str | None = RuleFilter,
               limit: int = Query(100, ge=1, le=5000)) -> Any:
    return await asyncio.to_thread(runner.list_runs, rule_id, limit)


@router.get("/gaps", response_model=list[GapOut])
async def gaps(_me: CanRead, runner: ScheduledDep, rule_id: str | None = RuleFilter,
               open_only: bool = Query(False), limit: int = Query(100, ge=1, le=5000)) -> Any:
    return await asyncio.to_thread(lambda: runner.list_gaps(rule_id, open_only=open_only, limit=limit))
