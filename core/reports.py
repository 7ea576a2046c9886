"""Reports for auditors: the request, the stored report's description, and the service
protocol the API calls.

The API (floor 2) never imports ``reports/`` (floor 3): ``citysoc/`` hands a
:class:`ReportService` in as ``Services.reports`` (``api.deps.Services``), the same way the playbook
runner reaches the API.

Example::

    req = ReportRequest(start="2026-11-16T00:00:00+07:00", end="2026-11-23T00:00:00+07:00",
                        fmt="pdf", lang="vi")
    info = service.generate(req, actor="user:an")   # written to <data>/reports/
    service.path_of(info.name)                       # the file, for a download
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["FORMATS", "LANGS", "SCHEDULES", "ReportError", "ReportNotFound", "ReportRequest", "ReportInfo",
           "ReportService", "ReportSettings"]

FORMATS: tuple[str, ...] = ("pdf", "csv", "json", "html")
LANGS: tuple[str, ...] = ("vi", "en")
SCHEDULES: tuple[str, ...] = ("daily", "weekly", "monthly")


class ReportError(ValueError):
    """A report that cannot be made as asked (reversed period, unknown language...); the
    message says what to change."""


class ReportNotFound(KeyError):
    """No stored report has that name."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "report not found"


@dataclass(slots=True)
class ReportRequest:
    """One report: the period ``[start, end)`` as ISO-8601 instants, format and language."""

    start: str
    end: str
    fmt: str = "pdf"
    lang: str = "vi"
    tz: str = "Asia/Ho_Chi_Minh"
    """Zone for per-day figures and printed dates (the city's own by default)."""
    kind: str = "adhoc"
    """``adhoc`` or the schedule that made it (``daily``/``weekly``/``monthly``)."""


@dataclass(slots=True)
class ReportInfo:
    """A stored report or evidence archive as the API lists it (an archive has no
    period or language: those fields are empty)."""

    name: str
    fmt: str
    lang: str
    kind: str
    start: str
    end: str
    size: int
    sha256: str
    generated_at: str
    generated_by: str
    audit_head: str
    figures: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@runtime_checkable
class ReportService(Protocol):
    """Makes, lists and finds reports kept in ``<data>/reports/``. Implementation:
    ``reports.service.ReportGenerator``. Synchronous (the API calls it in a thread)."""

    def generate(self, request: ReportRequest, *, actor: str, source_ip: str = "") -> ReportInfo: ...

    def evidence(self, *, case_id: int | None = None, alert_id: int | None = None, actor: str,
                 source_ip: str = "") -> ReportInfo:
        """An evidence zip of one case or alert (``kind="evidence"``, ``fmt="zip"``)."""
        ...

    def list(self) -> list[ReportInfo]: ...

    def path_of(self, name: str) -> Path: ...


class ReportSettings(BaseModel):
    """Scheduled reports (``reports:`` in citysoc.yml)."""

    model_config = ConfigDict(extra="forbid")

    schedules: list[Literal["daily", "weekly", "monthly"]] = Field(default_factory=list)
    """Which periodic reports to make: any of ``daily``, ``weekly``, ``monthly`` (none by default)."""
    formats: list[Literal["pdf", "csv", "json", "html"]] = Field(default=["pdf", "json"])
    """Formats made for each scheduled period."""
    langs: list[Literal["vi", "en"]] = Field(default=["vi"])
    """Languages made for each scheduled period."""
    tz: str = "Asia/Ho_Chi_Minh"
    """Zone whose midnights bound the periods."""
    check_interval_s: int = Field(default=600, ge=10)
    """How often the scheduler looks for a period that ended and has no report yet."""

    @field_validator("schedules", "formats", "langs", mode="before")
    @classmethod
    def _comma_list(cls, v: Any) -> Any:
        """``CITYSOC_REPORTS__SCHEDULES=daily,weekly``: environment values are strings."""
        return [x.strip() for x in v.split(",") if x.strip()] if isinstance(v, str) else v
