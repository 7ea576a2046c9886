"""What routers depend on, in one place: the app state and named dependency aliases.

``citysoc/`` builds one :class:`AppState` with the concrete store, pipeline and the
:class:`Services` around them; routers ask for them through the aliases below
(``StoreDep``, ``AlertsDep``, ``PlaybooksDep``...), so they never import an implementation.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, TypeVar

from fastapi import Depends, HTTPException, Path, Request
from pydantic import Field

from api.security import AUTHENTICATED, Require
from api.stream import AlertBroadcaster
from core.alerts import AlertRecorder, AlertStore, CaseStore, IncidentStore
from core.assets import AssetStore, HealthTracker
from core.audit import AuditLog
from core.auth import LoginThrottle, Principal, UserStore
from core.pipeline import Pipeline
from core.playbooks import PlaybookRunner
from core.protocols import AttachmentScanner, DeadLetterStore, EventStore, RuleCatalog, ScheduledRuleLog
from core.reports import ReportService
from core.settings import Settings

__all__ = ["Services", "AppState", "get_state", "StateDep", "StoreDep", "PipelineDep", "DeadLettersDep", "part",
           "AlertsDep", "CasesDep", "IncidentsDep", "UsersDep", "AuditDep", "RulesDep", "BroadcasterDep", "ScannerDep",
           "PlaybooksDep", "ReportsDep", "ScheduledDep", "AssetsDep", "require", "Caller", "IdPath", "RowId", "MAX_ID"]


@dataclass(frozen=True)
class Services:
    """The parts routers use beyond the store and the pipeline, one typed attribute each,
    built once by ``citysoc/`` (``citysoc.runtime.build_server``) after the parts they come
    from, and never changed afterwards. An attribute left None is not running in this
    process: a route that needs it answers 503 naming it.

    Example (a test stack)::

        recorder, services = build_alerting(soc)                  # users, alerts, cases, ...
        state = AppState(..., services=replace(services, rules=catalog))
    """

    users: UserStore | None = None
    alerts: AlertStore | None = None
    cases: CaseStore | None = None
    incidents: IncidentStore | None = None
    audit: AuditLog | None = None
    alert_stream: AlertBroadcaster | None = None
    """The console's live stream of alert and run changes (SSE)."""
    alert_recorder: AlertRecorder | None = None
    """The pipeline's alert sink: counters for /metrics, suppression changes."""
    login_throttle: LoginThrottle = field(default_factory=LoginThrottle)
    attachment_scanner: AttachmentScanner | None = None
    """Scans case uploads (YARA); None stores them unscanned."""
    rules: RuleCatalog | None = None
    playbooks: PlaybookRunner | None = None
    scheduled_rules: ScheduledRuleLog | None = None
    reports: ReportService | None = None
    assets: AssetStore | None = None
    asset_tracker: HealthTracker | None = None
    """The live health counters; None: health as last flushed to the asset store."""
    assets_changed: Callable[[], None] | None = None
    """Called after an inventory write, so the next event is attributed with it."""
    asset_clock: Callable[[], float] | None = None
    """"Now" in epoch seconds for asset health (a replay runs on event time); None: wall time."""
    detector_state: Callable[[], dict[str, int]] | None = None
    """Tracked state keys of the stateful detectors in this process, for /metrics
    (``citysoc.detection.DetectionRuntime.state_sizes``)."""
    bus_counters: Callable[[], dict[str, int]] | None = None
    """``bus.backend: nats``: this node's publish/consume figures for /metrics."""


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
    services: Services = field(default_factory=Services)
    """The optional parts wired by ``citysoc/`` (:class:`Services`)."""


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


T = TypeVar("T")


def part(get: Callable[[Services], T | None], missing: str) -> Any:
    """Dependency: the part ``get`` reads from :class:`Services`, or 503 with ``missing``."""

    async def _get(state: StateDep) -> T:
        svc = get(state.services)
        if svc is None:
            raise HTTPException(503, missing)
        return svc

    return Depends(_get)


async def _optional_scanner(state: StateDep) -> AttachmentScanner | None:
    return state.services.attachment_scanner


AlertsDep = Annotated[AlertStore, part(lambda s: s.alerts, "the alert store is not running in this server")]
CasesDep = Annotated[CaseStore, part(lambda s: s.cases, "the case store is not running in this server")]
IncidentsDep = Annotated[IncidentStore, part(lambda s: s.incidents, "incidents is not running in this server")]
UsersDep = Annotated[UserStore, part(lambda s: s.users, "the user store is not running in this server")]
AuditDep = Annotated[AuditLog, part(lambda s: s.audit, "the audit log is not running in this server")]
RulesDep = Annotated[RuleCatalog, part(lambda s: s.rules,
                                       "rules engine not running: no rule catalog is wired into this server")]
BroadcasterDep = Annotated[AlertBroadcaster, part(lambda s: s.alert_stream,
                                                  "the alert stream is not running in this server")]
ScannerDep = Annotated[AttachmentScanner | None, Depends(_optional_scanner)]
PlaybooksDep = Annotated[PlaybookRunner, part(lambda s: s.playbooks,
                                              "the playbook runner is not running in this server")]
ReportsDep = Annotated[ReportService, part(lambda s: s.reports, "reports is not running in this server")]
ScheduledDep = Annotated[ScheduledRuleLog, part(lambda s: s.scheduled_rules,
                                                "scheduled_rules is not running in this server")]
AssetsDep = Annotated[AssetStore, part(lambda s: s.assets, "assets is not running in this server")]


def require(permission: str) -> Any:
    """``Annotated[Principal, Depends(Require(permission))]``: the caller, checked."""
    return Annotated[Principal, Depends(Require(permission))]


Caller = require(AUTHENTICATED)
"""Any signed-in caller."""


MAX_ID = 2**53 - 1
"""Ids stay within JSON-safe integers (2**53 - 1) and SQLite INTEGER; larger numbers are refused with 422, not a 500."""
IdPath = Annotated[int, Path(ge=1, le=MAX_ID)]
RowId = Annotated[int, Field(ge=1, le=MAX_ID)]
