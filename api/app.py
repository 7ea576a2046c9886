"""Builds the FastAPI application from an :class:`api.deps.AppState`.

Every route needs a signed-in caller with the route's permission (see
:mod:`api.security`), except ``GET /healthz`` (load balancers and ``make run`` probe
it) and ``POST /api/v1/auth/login`` (how one signs in). The OpenAPI document and the
interactive docs need any signed-in caller.
"""
from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse
from pydantic import BaseModel

from api.deps import AppState, StateDep
from api.limits import BodyLimitMiddleware
from api.routers import alerts, audit, auth, cases, deadletters, es_compat, events, incidents, ingest, rules, suppressions, users
from api.security import AUTHENTICATED, Require, annotate_permissions
from core.alerts import NotFound, TransitionError
from core.auth import AuthError, Principal
from core.metrics import render_prometheus
from core.protocols import QueryError

__all__ = ["create_app", "API_PREFIX", "PUBLIC_ROUTES", "ERROR_RESPONSES", "ErrorOut"]

API_PREFIX = "/api/v1"
PUBLIC_ROUTES: frozenset[tuple[str, str]] = frozenset({("GET", "/healthz"), ("POST", f"{API_PREFIX}/auth/login")})
"""The only routes that answer without credentials."""

class ErrorOut(BaseModel):
    """Every 4xx/5xx answer: ``detail`` says what is wrong and what to do."""

    detail: Any


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut, "description": "The request is well-formed but unusable (bad time bound, bad query, ...)"},
    401: {"model": ErrorOut, "description": "No or invalid credentials"},
    403: {"model": ErrorOut, "description": "The caller's role lacks the permission, or the CSRF token is missing"},
    404: {"model": ErrorOut, "description": "No such resource"},
    409: {"model": ErrorOut, "description": "Conflicts with the resource's state (workflow transition, duplicate)"},
    413: {"model": ErrorOut, "description": "Body larger than this route allows"},
    429: {"model": ErrorOut, "description": "Too many attempts; see Retry-After"},
    503: {"model": ErrorOut, "description": "The part serving this route is not running"},
}

_Metrics = Annotated[Principal, Depends(Require("metrics:read"))]
_Anyone = Annotated[Principal, Depends(Require(AUTHENTICATED))]


def create_app(state: AppState, extra_routers: list[APIRouter] | None = None) -> FastAPI:
    """The whole HTTP surface. ``extra_routers`` are mounted under ``/api/v1`` too
    (``citysoc/`` passes the ones whose parts are wired in this process); each of their
    routes must carry a :class:`api.security.Require` dependency."""
    app = FastAPI(
        title="citysoc",
        version="0.1.0",
        description="Security operations center for the smart city: events, alerts, cases, playbooks.\n\n"
                    "Authenticate with `Authorization: ApiKey <key>` (or `Bearer <key>`), or with the console "
                    "session cookie from `POST /api/v1/auth/login` plus `X-CSRF-Token` on state-changing requests.",
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    app.state.citysoc = state
    if not state.started_at:
        state.started_at = time.time()
    app.add_middleware(BodyLimitMiddleware)

    v1 = APIRouter(prefix=API_PREFIX)
    for r in [auth.router, events.router, ingest.router, deadletters.router, alerts.router, incidents.router,
              suppressions.router,
              cases.router, rules.router, audit.router, users.users_router, users.keys_router,
              *(extra_routers or [])]:
        annotate_permissions(r.routes)
        v1.include_router(r, responses=ERROR_RESPONSES)
    app.include_router(v1)
    annotate_permissions(ingest.bulk_router.routes)
    app.include_router(ingest.bulk_router, responses=ERROR_RESPONSES)
    annotate_permissions(es_compat.router.routes)
    app.include_router(es_compat.router, responses=ERROR_RESPONSES)

    @app.get(f"{API_PREFIX}/openapi.json", include_in_schema=False)
    async def openapi(_me: _Anyone) -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get(f"{API_PREFIX}/docs", include_in_schema=False)
    async def docs(_me: _Anyone) -> HTMLResponse:
        return get_swagger_ui_html(openapi_url=f"{API_PREFIX}/openapi.json", title="citysoc API")

    @app.get("/healthz", tags=["ops"], summary="Readiness: 200 once every part is up (no credentials needed)",
             responses={503: {"description": "Still starting, or a part is down"}})
    async def healthz(st: StateDep) -> JSONResponse:
        checks = {name: bool(fn()) for name, fn in st.health_checks.items()}
        ok = st.ready and all(checks.values())
        return JSONResponse(
            {"status": "ok" if ok else "starting", "checks": checks, "uptime_s": round(time.time() - st.started_at, 1)},
            status_code=200 if ok else 503,
        )

    @app.get("/metrics", tags=["ops"], summary="Prometheus metrics of every stage and source (Bearer <key>)",
             response_class=PlainTextResponse, responses=ERROR_RESPONSES)
    async def metrics(_me: _Metrics, st: StateDep) -> PlainTextResponse:
        extra = {"detections_total": float(st.pipeline.detections_total)}
        rec = st.services.get("alert_recorder")
        if rec is not None:
            extra.update({"alerts_created_total": float(rec.created), "alerts_updated_total": float(rec.updated),
                          "alerts_suppressed_total": float(rec.suppressed)})
        bc = st.services.get("alert_stream")
        if bc is not None:
            extra.update({"alert_stream_subscribers": float(bc.subscribers),
                          "alert_stream_published_total": float(bc.published),
                          "alert_stream_dropped_total": float(bc.dropped)})
        cluster = st.services.get("cluster")  # bus.backend nats: this node's publish/consume figures
        if cluster is not None:
            extra.update({f"bus_{k}": float(v) for k, v in cluster.counters().items()
                          if k not in ("received", "emitted", "errors", "dropped")})
        return PlainTextResponse(render_prometheus(st.pipeline.all_counters(), extra),
                                 media_type="text/plain; version=0.0.4")

    @app.exception_handler(QueryError)
    async def _query_error(_req: Request, exc: QueryError) -> JSONResponse:
        return JSONResponse({"detail": {"error": "invalid query", "message": exc.message, "position": exc.position}},
                            status_code=400)

    @app.exception_handler(NotFound)
    async def _not_found(_req: Request, exc: NotFound) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=404)

    @app.exception_handler(TransitionError)
    async def _transition(_req: Request, exc: TransitionError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=409)

    @app.exception_handler(AuthError)
    async def _auth_error(_req: Request, exc: AuthError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=exc.status)  # by type: AccountExists 409, ...

    @app.exception_handler(RequestValidationError)
    async def _validation(_req: Request, exc: RequestValidationError) -> JSONResponse:
        errs = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "value_error")}
                for e in exc.errors()]
        return JSONResponse({"detail": errs}, status_code=422)

    annotate_permissions(app.routes)  # the routes defined right here
    return app
