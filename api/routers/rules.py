"""Detection rules as the running engine has them: list, show, enable, disable.

Works with whatever :class:`core.protocols.RuleCatalog` ``citysoc/`` wired; answers
503 "rules engine not running" when none is. Enabling and disabling are audited.
"""
from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import Depends, APIRouter, HTTPException, Path, Query, Request
from pydantic import BaseModel

from api.auditing import audit
from api.deps import AuditDep, RulesDep
from api.security import Require
from core.auth import Principal
from core.protocols import RuleInfo

__all__ = ["router"]

router = APIRouter(prefix="/rules", tags=["rules"])

CanRead = Annotated[Principal, Depends(Require("rules:read"))]
CanWrite = Annotated[Principal, Depends(Require("rules:write"))]
RuleId = Path(..., min_length=1, max_length=200)


class RuleOut(BaseModel):
    id: str
    title: str
    level: str
    enabled: bool
    tags: list[str]
    engine: str
    description: str
    source: str
    title_vi: str = ""
    """Vietnamese title; empty when the rule has none (SigmaHQ rules stay English)."""
    description_vi: str = ""


class RulePage(BaseModel):
    total: int
    items: list[RuleOut]


def _out(r: RuleInfo) -> RuleOut:
    return RuleOut(id=r.id, title=r.title, level=r.level, enabled=r.enabled, tags=list(r.tags), engine=r.engine,
                   description=r.description, source=r.source, title_vi=r.title_vi, description_vi=r.description_vi)


@router.get("", response_model=RulePage)
async def list_rules(_me: CanRead, rules: RulesDep,
                     enabled: bool | None = Query(None),
                     level: str | None = Query(None, max_length=20),
                     q: str | None = Query(None, max_length=200, description="Substring of id, title or tag"),
                     limit: int = Query(500, ge=1, le=5000), offset: int = Query(0, ge=0, le=1_000_000)) -> RulePage:
    items = await asyncio.to_thread(rules.list_rules)
    if enabled is not None:
        items = [r for r in items if r.enabled == enabled]
    if level:
        items = [r for r in items if r.level == level]
    if q:
        ql = q.lower()
        items = [r for r in items if ql in r.id.lower() or ql in r.title.lower() or ql in r.title_vi.lower() or any(ql in t.lower() for t in r.tags)]
    return RulePage(total=len(items), items=[_out(r) for r in items[offset:offset + limit]])


@router.get("/{rule_id}", response_model=RuleOut)
async def get_rule(_me: CanRead, rules: RulesDep, rule_id: str = RuleId) -> RuleOut:
    r = await asyncio.to_thread(rules.get_rule, rule_id)
    if r is None:
        raise HTTPException(404, f"rule {rule_id!r} is not loaded; list rules with GET /api/v1/rules")
    return _out(r)


async def _toggle(request: Request, rules: RulesDep, log: AuditDep, me, rule_id: str, enabled: bool) -> RuleOut:
    before = await asyncio.to_thread(rules.get_rule, rule_id)
    if before is None:
        raise HTTPException(404, f"rule {rule_id!r} is not loaded; list rules with GET /api/v1/rules")
    after = await asyncio.to_thread(rules.set_enabled, rule_id, enabled)
    await audit(log, request, me, "rule.enable" if enabled else "rule.disable", f"rule:{rule_id}",
                before={"enabled": before.enabled}, after={"enabled": after.enabled})
    return _out(after)


@router.post("/{rule_id}/enable", response_model=RuleOut)
async def enable_rule(me: CanWrite, request: Request, rules: RulesDep, log: AuditDep, rule_id: str = RuleId) -> RuleOut:
    return await _toggle(request, rules, log, me, rule_id, True)


@router.post("/{rule_id}/disable", response_model=RuleOut)
async def disable_rule(me: CanWrite, request: Request, rules: RulesDep, log: AuditDep,
                       rule_id: str = RuleId) -> RuleOut:
    return await _toggle(request, rules, log, me, rule_id, False)
