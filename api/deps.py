"""What routers depend on, in one place: the app state and named dependency aliases.

``citysoc/`` builds one :class:`AppState` with the concrete store, pipeline and friends;
routers ask for them through the aliases below (``StoreDep``, ``PipelineDep``), so they
never import an implementation.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Request

from core.pipeline import Pipeline
from core.protocols import DeadLetterStore, EventStore
from core.settings import Settings

__all__ = ["AppState", "get_state", "StateDep", "StoreDep", "PipelineDep", "DeadLettersDep"]


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
    """Optional parts wired by citysoc/ (alerts, rules, playbooks) keyed by name."""


def get_state(request: Request) -> AppState:
    return request.app.state.citysoc


StateDep = Annotated[AppState, Depends(get_state)]


def _store(state: StateDep) -> EventStore:
    return state.store


def _pipeline(state: StateDep) -> Pipeline:
    return state.pipeline


def _deadletters(state: StateDep) -> DeadLetterStore:
    return state.deadletters


StoreDep = Annotated[EventStore, Depends(_store)]
PipelineDep = Annotated[Pipeline, Depends(_pipeline)]
DeadLettersDep = Annotated[DeadLetterStore, Depends(_deadletters)]
