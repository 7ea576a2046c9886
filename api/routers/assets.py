"""The asset inventory over HTTP: CRUD, export, each asset's health and risk, and a
status summary per center. Every change is audited and tells the running server's
enricher at once (``Services.assets_changed``), so the next event is attributed
with the new inventory.

Services used (:class:`api.deps.Services`, wired by ``citysoc/``): ``assets`` (:class:`core.assets.AssetStore`),
``asset_tracker`` (the live :class:`core.assets.HealthTracker`, optional: without it
health comes from the last flush in the store), ``assets_changed`` (optional callable),
``asset_clock`` (optional callable giving "now" in epoch seconds; replays use event time).
"""
from __future__ import annotations

import asyncio
import datetime as _dt
import time
from typing import Annotated, Any, Literal

from fastapi import Depends, APIRouter, HTTPException, Query, Request
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field

from api.auditing import audit
from api.deps import AlertsDep, AppState, AssetsDep, AuditDep, StateDep
from api.security import Require
from core.auth import Principal
from core.alerts import AlertFilter
from core.assets import (ASSET_TYPES, CENTERS, HEALTH_STATUSES, Asset, AssetError, AssetHealth, AssetStore,
                         asset_from_record, asset_risk, center_summary, dump_csv, dump_yaml, health_status)
from core.events import to_utc_iso

__all__ = ["router", "AssetIn", "AssetOut"]

router = APIRouter(prefix="/assets", tags=["assets"])

CanRead = Annotated[Principal, Depends(Require("assets:read"))]
CanWrite = Annotated[Principal, Depends(Require("assets:write"))]
RISK_WINDOW = _dt.timedelta(days=7)
"""Alerts older than this (by last_seen) no longer weigh on an asset's risk."""
_MAX_ALERTS = 5000


class LocationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ward: str | None = Field(None, max_length=200)
    district: str | None = Field(None, max_length=200)
    lat: float | None = Field(None, ge=-90, le=90)
    lon: float | None = Field(None, ge=-180, le=180)


class AssetIn(BaseModel):
    """An asset as created or replaced (the inventory file's fields)."""

    model_config = ConfigDict(extra="forbid")
    id: str = Field(..., min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.:\-]+$")
    name: str | None = Field(None, max_length=500)
    type: Literal[ASSET_TYPES]  # type: ignore[valid-type]
    center: Literal[CENTERS]  # type: ignore[valid-type]
    criticality: int = Field(3, ge=1, le=5)
    subsystem: str | None = Field(None, max_length=200)
    zone: str | None = Field(None, max_length=200)
    ips: list[str] = Field(default_factory=list, max_length=256)
    hostnames: list[str] = Field(default_factory=list, max_length=256)
    owner: str | None = Field(None, max_length=200)
    location: LocationIn | None = None
    log_sources: list[str] = Field(default_factory=list, max_length=64)
    log_interval_s: int | None = Field(None, ge=1, le=30 * 86400)
    description: str | None = Field(None, max_length=4000)
    tags: list[str] = Field(default_factory=list, max_length=64)


class AssetOut(BaseModel):
    asset: dict[str, Any]
    status: str
    health: dict[str, Any] | None = None
    risk: int | None = None


def _to_asset(body: AssetIn) -> Asset:
    rec = body.model_dump(exclude_none=True)
    rec["criticality_level"] = rec.pop("criticality")
    try:
        return asset_from_record(rec)
    except AssetError as exc:
        raise HTTPException(422, str(exc)) from exc


def _clock(state: AppState) -> float:
    fn = state.services.asset_clock
    return float(fn()) if fn is not None else time.time()


async def _health(state: AppState, store: AssetStore) -> dict[str, AssetHealth]:
    tracker = state.services.asset_tracker
    if tracker is not None:
        return {h.asset_id: h for h in tracker.snapshot()}
    return await asyncio.to_thread(store.health)


def _changed(state: AppState) -> None:
    fn = state.services.assets_changed
    if fn is not None:
        fn()


async def _alerts(alerts: Any, now: float, **flt: Any) -> list[Any]:
    since = to_utc_iso(_dt.datetime.fromtimestamp(now, _dt.timezone.utc) - RISK_WINDOW)
    _total, items = await asyncio.to_thread(alerts.list, AlertFilter(since=since, limit=_MAX_ALERTS, count_up_to=0,
                                                                      **flt))
    return items


@router.get("", response_model=list[AssetOut], summary="List assets with their health status")
async def list_assets(_me: CanRead, state: StateDep, store: AssetsDep,
                      center: Literal[CENTERS] | None = Query(None),  # type: ignore[valid-type]
                      type: Literal[ASSET_TYPES] | None = Query(None),  # type: ignore[valid-type]
                      status: Literal[HEALTH_STATUSES] | None = Query(None),  # type: ignore[valid-type]
                      limit: int = Query(500, ge=1, le=10_000), offset: int = Query(0, ge=0)) -> list[AssetOut]:
    assets = await asyncio.to_thread(store.list, center=center, type=type)
    health = await _health(state, store)
    now = _clock(state)
    out: list[AssetOut] = []
    for a in assets:
        st = health_status(a, health.get(a.id), now)
        if status is None or st == status:
            out.append(AssetOut(asset=a.to_record(), status=st))
    return out[offset:offset + limit]


@router.get("/export", response_class=PlainTextResponse, summary="The inventory as YAML or CSV")
async def export_assets(_me: CanRead, store: AssetsDep,
                        format: Literal["yaml", "csv"] = Query("yaml")) -> PlainTextResponse:
    assets = await asyncio.to_thread(store.list)
    if format == "csv":
        return PlainTextResponse(dump_csv(assets), media_type="text/csv")
    return PlainTextResponse(dump_yaml(assets), media_type="application/yaml")


@router.get("/summary", summary="Per center: assets by status and type, open alerts, risk")
async def summary(_me: CanRead, state: StateDep, store: AssetsDep, alerts: AlertsDep) -> list[dict[str, Any]]:
    assets = await asyncio.to_thread(store.list)
    health = await _health(state, store)
    now = _clock(state)
    recent = await _alerts(alerts, now)
    out = []
    for c in CENTERS:
        mine = [a for a in assets if a.center == c]
        out.append(center_summary(c, mine, health, [al for al in recent if al.entities.center == c], now))
    return out


@router.get("/{asset_id}", response_model=AssetOut, summary="One asset with its health counters and risk")
async def get_asset(asset_id: str, _me: CanRead, state: StateDep, store: AssetsDep, alerts: AlertsDep) -> AssetOut:
    a = await asyncio.to_thread(store.get, asset_id)
    if a is None:
        raise HTTPException(404, f"no asset {asset_id!r}")
    health = await _health(state, store)
    now = _clock(state)
    h = health.get(a.id)
    mine = await _alerts(alerts, now, asset_id=a.id)
    return AssetOut(asset=a.to_record(), status=health_status(a, h, now), health=h.to_dict() if h else None,
                    risk=asset_risk(mine, a.criticality, now))


@router.post("", response_model=AssetOut, status_code=201, summary="Add an asset")
async def create_asset(me: CanWrite, request: Request, body: AssetIn, state: StateDep, store: AssetsDep,
                       log: AuditDep) -> AssetOut:
    a = _to_asset(body)
    if await asyncio.to_thread(store.get, a.id) is not None:
        raise HTTPException(409, f"asset {a.id!r} already exists; PUT /assets/{a.id} replaces it")
    await asyncio.to_thread(store.put, a)
    await audit(log, request, me, "asset.create", f"asset:{a.id}", after=a.to_record())
    _changed(state)
    return AssetOut(asset=a.to_record(), status="unknown")


@router.put("/{asset_id}", response_model=AssetOut, summary="Replace (or create) an asset")
async def replace_asset(asset_id: str, me: CanWrite, request: Request, body: AssetIn, state: StateDep,
                        store: AssetsDep, log: AuditDep) -> AssetOut:
    if body.id != asset_id:
        raise HTTPException(400, f"the body's id {body.id!r} differs from the path's {asset_id!r}")
    a = _to_asset(body)
    before = await asyncio.to_thread(store.put, a)
    await audit(log, request, me, "asset.update" if before else "asset.create", f"asset:{a.id}",
                before=before.to_record() if before else None, after=a.to_record())
    _changed(state)
    health = await _health(state, store)
    return AssetOut(asset=a.to_record(), status=health_status(a, health.get(a.id), _clock(state)))


@router.delete("/{asset_id}", status_code=204, summary="Remove an asset from the inventory")
async def delete_asset(asset_id: str, me: CanWrite, request: Request, state: StateDep, store: AssetsDep,
                       log: AuditDep) -> None:
    before = await asyncio.to_thread(store.delete, asset_id)
    if before is None:
        raise HTTPException(404, f"no asset {asset_id!r}")
    await audit(log, request, me, "asset.delete", f"asset:{asset_id}", before=before.to_record())
    _changed(state)
