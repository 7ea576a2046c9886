"""What routers depend on, in one place: the app state and named dependency aliases.

``citysoc/`` builds one :class:`AppState` with the concrete store, pipeline and friends;
routers ask for them through the aliases below (``StoreDep``, ``PipelineDep``), so they
never import an implementation.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Path, Request
from pydantic import Field

from api.security import AUTHENTICATED, Require
from core.alerts import AlertStore, CaseStore
from core.audit import AuditLog
from core.auth import Principal, UserStore
from core.pipeline import Pipeline
from core.protocols import AttachmentScanner, DeadLetterStore, EventStore, RuleCatalog
from core.settings import Settings

__all__ = ["AppState", "get_state", "StateDep", "StoreDep", "PipelineDep", "DeadLettersDep", "service",
           "AlertsDep", "CasesDep", "IncidentsDep", "UsersDep", "AuditDep", "RulesDep", "BroadcasterDep", "ScannerDep", "require",
           "Caller", "IdPath", "RowId", "MAX_ID"]


@dataclass
class AppState:
    settings: Settings
    store: EventStore
    deadletters: DeadLetterStore
    pipeline: Pipeline
    ready: bool = False
    started_at: float = 0.0
    health_checks: dict[str, Callable[[], bool]] = field(default_factory=dict)
    """Named readiness checks shown by /healthz (e.g. each listener bound)."""
    services: dict[str, Any] = field(default_factory=dict)
    """Optional parts wired by citysoc/, keyed by name: ``users`` (UserStore), ``alerts``
    (AlertStore), ``cases`` (CaseStore), ``audit`` (AuditLog), ``alert_stream``
    (api.stream.AlertBroadcaster), ``alert_recorder`` (core.alerts.AlertRecorder),
    ``rules`` (RuleCatalog), ``attachment_scanner`` (AttachmentScanner),
    ``login_throttle`` (core.auth.LoginThrottle)."""


async def get_state(request: Request) -> AppState:
    # async on purpose here and in every alias below: FastAPI runs plain ``def``
    # dependencies in a worker thread, a hop that costs more than the lookup.
    return request.app.state.citysoc


StateDep = Annotated[AppState, Depends(get_state)]


async def _store(state: StateDep) -> EventStore:
    return state.store


async def _pipeline(state: StateDep) -> Pipeline:
    return state.pipeline


async def _deadletters(state: StateDep) -> DeadLetterStore:
    return state.deadletters


StoreDep = Annotated[EventStore, Depends(_store)]
PipelineDep = Annotated[Pipeline, Depends(_pipeline)]
DeadLettersDep = Annotated[DeadLetterStore, Depends(_deadletters)]


_WHAT = {
    "users": "the user store",
    "alerts": "the alert store",
    "cases": "the case store",
    "audit": "the audit log",
    "rules": "rules engine",
    "alert_stream": "the alert stream",
    "playbooks": "the playbook runner",
}


def service(name: str) -> Any:
    """Dependency factory: ``state.services[name]`` or 503 naming what is missing."""

    async def _get(state: StateDep) -> Any:
        svc = state.services.get(name)
        if svc is None:
            if name == "rules":
                raise HTTPException(503, "rules engine not running: no rule catalog is wired into this server")
            raise HTTPException(503, f"{_WHAT.get(name, name)} is not running in this server")
        return svc

    return Depends(_get)


async def _optional_scanner(state: StateDep) -> AttachmentScanner | None:
    return state.services.get("attachment_scanner")


AlertsDep = Annotated[AlertStore, service("alerts")]
CasesDep = Annotated[CaseStore, service("cases")]
IncidentsDep = Annotated[Any, service("incidents")]
"""``storage.socdb.SQLiteIncidentStore`` (the :class:`core.alerts.IncidentStore` protocol)."""
UsersDep = Annotated[UserStore, service("users")]
AuditDep = Annotated[AuditLog, service("audit")]
RulesDep = Annotated[RuleCatalog, service("rules")]
BroadcasterDep = Annotated[Any, service("alert_stream")]
ScannerDep = Annotated[AttachmentScanner | None, Depends(_optional_scanner)]


def require(permission: str) -> Any:
    """``Annotated[Principal, Depends(Require(permission))]``: the caller, checked."""
    return Annotated[Principal, Depends(Require(permission))]


Caller = require(AUTHENTICATED)
"""Any signed-in caller."""


MAX_ID = 2**53 - 1
"""Ids stay within JSON-safe integers (2**53 - 1) and SQLite INTEGER; larger numbers are refused with 422, not a 500."""
IdPath = Annotated[int, Path(ge=1, le=MAX_ID)]
RowId = Annotated[int, Field(ge=1, le=MAX_ID)]
