"""Builds the FastAPI application from an :class:`api.deps.AppState`."""
from __future__ import annotations

import time

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse

from api.deps import AppState, StateDep
from api.routers import deadletters, events, ingest
from core.metrics import render_prometheus
from core.protocols import QueryError

__all__ = ["create_app", "API_PREFIX"]

API_PREFIX = "/api/v1"


def create_app(state: AppState, extra_routers: list[APIRouter] | None = None) -> FastAPI:
    """The whole HTTP surface. ``extra_routers`` are mounted under ``/api/v1`` too
    (``citysoc/`` passes the ones whose parts are wired in this process)."""
    app = FastAPI(
        title="citysoc",
        version="0.1.0",
        description="Security operations center for the smart city: events, alerts, cases, playbooks.",
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=f"{API_PREFIX}/docs",
        redoc_url=None,
    )
    app.state.citysoc = state
    if not state.started_at:
        state.started_at = time.time()

    v1 = APIRouter(prefix=API_PREFIX)
    v1.include_router(events.router)
    v1.include_router(ingest.router)
    v1.include_router(deadletters.router)
    for r in extra_routers or []:
        v1.include_router(r)
    app.include_router(v1)
    app.include_router(ingest.bulk_router)

    @app.get("/healthz", tags=["ops"], summary="Readiness: 200 once every part is up")
    async def healthz(st: StateDep) -> JSONResponse:
        checks = {name: bool(fn()) for name, fn in st.health_checks.items()}
        ok = st.ready and all(checks.values())
        return JSONResponse(
            {"status": "ok" if ok else "starting", "checks": checks, "uptime_s": round(time.time() - st.started_at, 1)},
            status_code=200 if ok else 503,
        )

    @app.get("/metrics", tags=["ops"], summary="Prometheus metrics of every stage and source")
    async def metrics(st: StateDep) -> PlainTextResponse:
        extra = {"detections_total": float(st.pipeline.detections_total)}
        return PlainTextResponse(render_prometheus(st.pipeline.all_counters(), extra),
                                 media_type="text/plain; version=0.0.4")

    @app.exception_handler(QueryError)
    async def _query_error(_req: Request, exc: QueryError) -> JSONResponse:
        return JSONResponse({"detail": {"error": "invalid query", "message": exc.message, "position": exc.position}},
                            status_code=400)

    @app.exception_handler(RequestValidationError)
    async def _validation(_req: Request, exc: RequestValidationError) -> JSONResponse:
        errs = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", "")} for e in exc.errors()]
        return JSONResponse({"detail": errs}, status_code=422)

    return app
