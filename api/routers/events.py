"""Event search and aggregations in the analysts' Lucene query language."""
from __future__ import annotations

import asyncio
import datetime as _dt
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import BaseModel

from api.deps import StoreDep
from api.security import Require
from api.timeparams import parse_time_bound
from core.intervals import INTERVAL_PATTERN
from core.protocols import QueryError

router = APIRouter(prefix="/events", tags=["events"], dependencies=[Depends(Require("events:read"))])

MAX_LIMIT = 1000
MAX_QUERY_LEN = 4096


class SearchOut(BaseModel):
    total: int
    took_ms: float
    hits: list[dict[str, Any]]


class CountOut(BaseModel):
    count: int


class Bucket(BaseModel):
    key: Any
    count: int


def _bounds(start: str | None, end: str | None) -> tuple[_dt.datetime | None, _dt.datetime | None]:
    try:
        return parse_time_bound(start), parse_time_bound(end)
    except ValueError as exc:
        raise HTTPException(status_code=400, detail=str(exc)) from exc


def _query_error(exc: QueryError) -> HTTPException:
    return HTTPException(status_code=400, detail={"error": "invalid query", "message": exc.message, "position": exc.position})


QueryParam = Query("*", max_length=MAX_QUERY_LEN, description="Lucene query, e.g. host.name:cam-* AND event.outcome:failure")
FromParam = Query(None, alias="from", description="ISO 8601, epoch, or now-24h")
ToParam = Query(None, alias="to", description="ISO 8601, epoch, or now")


@router.get("/search", response_model=SearchOut)
async def search(
    store: StoreDep,
    q: str = QueryParam,
    start: str | None = FromParam,
    end: str | None = ToParam,
    limit: int = Query(100, ge=1, le=MAX_LIMIT),
    offset: int = Query(0, ge=0, le=100_000),
    sort: str = Query("desc", pattern="^(asc|desc)$"),
) -> SearchOut:
    s, e = _bounds(start, end)
    try:
        res = await asyncio.to_thread(store.search, q or "*", start=s, end=e, limit=limit, offset=offset, sort=sort)
    except QueryError as exc:
        raise _query_error(exc) from exc
    return SearchOut(total=res.total, took_ms=res.took_ms, hits=res.hits)


@router.get("/count", response_model=CountOut)
async def count(store: StoreDep, q: str = QueryParam, start: str | None = FromParam, end: str | None = ToParam) -> CountOut:
    s, e = _bounds(start, end)
    try:
        n = await asyncio.to_thread(store.count, q or "*", start=s, end=e)
    except QueryError as exc:
        raise _query_error(exc) from exc
    return CountOut(count=n)


@router.get("/terms", response_model=list[Bucket])
async def terms(
    store: StoreDep,
    field: str = Query(..., max_length=200, pattern=r"^[A-Za-z0-9_@.]+$"),
    q: str = QueryParam,
    start: str | None = FromParam,
    end: str | None = ToParam,
    size: int = Query(10, ge=1, le=1000),
) -> list[Bucket]:
    s, e = _bounds(start, end)
    try:
        rows = await asyncio.to_thread(store.terms, field, q or "*", start=s, end=e, size=size)
    except QueryError as exc:
        raise _query_error(exc) from exc
    return [Bucket(key=k, count=c) for k, c in rows]


@router.get("/histogram", response_model=list[Bucket])
async def histogram(
    store: StoreDep,
    q: str = QueryParam,
    start: str | None = FromParam,
    end: str | None = ToParam,
    interval: str = Query("1h", pattern=INTERVAL_PATTERN),
) -> list[Bucket]:
    s, e = _bounds(start, end)
    try:
        rows = await asyncio.to_thread(store.date_histogram, q or "*", start=s, end=e, interval=interval)
    except QueryError as exc:
        raise _query_error(exc) from exc
    return [Bucket(key=k, count=c) for k, c in rows]
