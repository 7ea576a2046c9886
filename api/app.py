"""Builds the FastAPI application from an :class:`api.deps.AppState`.

Every route needs a signed-in caller with the route's permission (see
:mod:`api.security`), except ``GET /healthz`` (load balancers and ``make run`` probe
it) and ``POST /api/v1/auth/login`` (how one signs in). The OpenAPI document and the
interactive docs need any signed-in caller.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse
from pydantic import BaseModel

from api.deps import AppState, StateDep
from api.limits import BodyLimitMiddleware
from api.routers import (alerts, assets, audit, auth, cases, deadletters, es_compat, events, incidents, ingest, playbooks,
                         reports, rules, scheduled, suppressions, users)
from api.security import AUTHENTICATED, Require, annotate_permissions
from core.alerts import NotFound, TransitionError
from core.auth import AuthError, Principal
from core.metrics import render_prometheus
from core.protocols import QueryError
from core.settings import Settings

__all__ = ["create_app", "Mount", "ROUTERS", "API_PREFIX", "PUBLIC_ROUTES", "ERROR_RESPONSES", "ErrorOut"]

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


def _always(_settings: Settings) -> bool:
    return True


def _playbooks_on(settings: Settings) -> bool:
    return settings.playbooks.enabled


@dataclass(frozen=True)
class Mount:
    """One router of the API: where it is mounted and when."""

    router: APIRouter
    prefix: str = API_PREFIX
    """``/api/v1``, or ``""`` for the Elasticsearch-compatible paths shippers call at the root."""
    when: Callable[[Settings], bool] = _always
    """Mounted when this says so for the server's settings. Every node of a cluster
    (``bus.roles``) serves the whole API; a route whose part does not run in this process
    answers 503 naming it (:class:`api.deps.Services`)."""


ROUTERS: tuple[Mount, ...] = (
    Mount(auth.router), Mount(events.router), Mount(ingest.router), Mount(deadletters.router),
    Mount(alerts.router), Mount(incidents.router), Mount(suppressions.router), Mount(cases.router),
    Mount(rules.router), Mount(audit.router), Mount(users.users_router), Mount(users.keys_router),
    *(Mount(r, when=_playbooks_on) for r in playbooks.routers),
    Mount(assets.router),
    Mount(reports.router),
    Mount(scheduled.router),  # 503 until detection.scheduled names rules
    Mount(ingest.bulk_router, prefix=""),  # /_bulk, /{index}/_bulk
    Mount(es_compat.router, prefix=""),  # what shippers ask an Elasticsearch before they send
)
"""Every router of the HTTP surface, in match order: the one list :func:`create_app` mounts
from. The console (``dashboards``, above this package) is mounted by ``citysoc/``, on
nodes with the ``api`` role."""

_Metrics = Annotated[Principal, Depends(Require("metrics:read"))]
_Anyone = Annotated[Principal, Depends(Require(AUTHENTICATED))]


def create_app(state: AppState) -> FastAPI:
    """The whole HTTP surface: every router of :data:`ROUTERS` whose condition holds for
    ``state.settings``, plus the health, metrics and docs routes defined here. Each route
    carries a :class:`api.security.Require` dependency (or is in :data:`PUBLIC_ROUTES`)."""
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

    for m in ROUTERS:
        if m.when(state.settings):
            annotate_permissions(m.router.routes)
            app.include_router(m.router, prefix=m.prefix, responses=ERROR_RESPONSES)

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
        rec = st.services.alert_recorder
        if rec is not None:
            extra.update({"alerts_created_total": float(rec.created), "alerts_updated_total": float(rec.updated),
                          "alerts_suppressed_total": float(rec.suppressed)})
        bc = st.services.alert_stream
        if bc is not None:
            extra.update({"alert_stream_subscribers": float(bc.subscribers),
                          "alert_stream_published_total": float(bc.published),
                          "alert_stream_dropped_total": float(bc.dropped)})
        bus = st.services.bus_counters  # bus.backend nats: this node's publish/consume figures
        if bus is not None:
            extra.update({f"bus_{k}": float(v) for k, v in bus().items()
                          if k not in ("received", "emitted", "errors", "dropped")})
        labelled: dict[str, tuple[str, str, dict[str, float]]] = {}
        if st.services.detector_state is not None:
            labelled["detector_state_keys"] = ("Keys a stateful detector tracks now (its max_keys bounds them)", "state",
                                               {k: float(v) for k, v in st.services.detector_state().items()})
        return PlainTextResponse(render_prometheus(st.pipeline.all_counters(), extra, labelled),
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
