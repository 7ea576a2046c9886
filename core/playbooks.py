"""Playbook runs: the domain model, the status workflow and the protocols around them.

A *run* is one execution of a playbook: its inputs (the alert that triggered it, or what
a responder typed), the ordered *steps* it took, and who approved what. The runner
(``playbooks.runner``) decides and records; actions act. This module is what the API,
the CLI and the store share, so none of them imports the runner.

Status changes go through :data:`RUN_TRANSITIONS` / :func:`check_run_transition`; a run
never stays in ``running`` once its process is gone: it ends ``succeeded`` (every step that
ran succeeded), ``completed_with_failures`` (it reached the end, but a step with
``on_error: continue`` failed: not a success, so never shown green), ``failed`` (with the
reason and the failed step, resumable), ``rejected`` (an approver said no), ``cancelled``,
or parks in ``awaiting_approval`` with no task held open, so nothing hangs.

Four eyes (``playbooks.four_eyes``, on by default): whoever started a run may not approve
its gates; another person must (:class:`FourEyesDenied`, answered 403).

Example::

    run = await runner.start("camera-bruteforce", alert_id=7, actor="user:alice", dry_run=True)
    for step in run.steps:
        print(step.name, step.status, step.inputs, step.would)
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from core.alerts import NotFound, TransitionError
from core.messages import message_json

__all__ = [
    "RUN_STATUSES",
    "STEP_STATUSES",
    "RUN_TRANSITIONS",
    "FINAL_RUN_STATUSES",
    "check_run_transition",
    "StepState",
    "Run",
    "Approval",
    "PlaybookInfo",
    "PlaybookRunner",
    "RunStore",
    "RunNotFound",
    "PlaybookNotFound",
    "RunStateError",
    "ApprovalDenied",
    "FourEyesDenied",
    "OnDutySettings",
    "PlaybookInputError",
    "PlaybookSettings",
    "NftSettings",
    "SmtpSettings",
    "WebhookTarget",
    "DatabaseTarget",
    "CorroborationSettings",
    "RateLimit",
    "RateLimitSettings",
    "RunLimit",
    "INTERNAL_NETWORKS",
]

RUN_STATUSES: tuple[str, ...] = (
    "queued", "running", "awaiting_approval", "succeeded", "completed_with_failures", "failed", "rejected",
    "cancelled", "refused")
STEP_STATUSES: tuple[str, ...] = (
    "pending", "running", "succeeded", "failed", "skipped", "awaiting_approval", "rejected", "would_run")
FINAL_RUN_STATUSES: frozenset[str] = frozenset({"succeeded", "completed_with_failures", "failed", "rejected",
                                                 "cancelled", "refused"})

RUN_TRANSITIONS: dict[str, frozenset[str]] = {
    "queued": frozenset({"running", "cancelled", "failed"}),
    "running": frozenset({"awaiting_approval", "succeeded", "completed_with_failures", "failed"}),
    # approved -> running; rejected; nobody answered in time -> failed; withdrawn -> cancelled
    "awaiting_approval": frozenset({"running", "rejected", "failed", "cancelled"}),
    "failed": frozenset({"running"}),  # resume from the failed step
    "succeeded": frozenset(),
    "completed_with_failures": frozenset(),  # the run is over; rerun starts a new one
    "rejected": frozenset(),
    "cancelled": frozenset(),
    "refused": frozenset(),  # an automatic run over its rate limit: stored refused, with the reason
}
"""Who may follow whom. ``rerun`` never moves an old run: it starts a new one."""


class RunStateError(TransitionError):
    """The run is not in a state that allows the request (answered 409 by the API)."""


def check_run_transition(current: str, new: str) -> None:
    """Raise :class:`RunStateError` unless a run may move ``current -> new``."""
    if new not in RUN_STATUSES:
        raise RunStateError(f"unknown run status {new!r}; use one of {', '.join(RUN_STATUSES)}")
    if new not in RUN_TRANSITIONS.get(current, frozenset()):
        allowed = ", ".join(sorted(RUN_TRANSITIONS.get(current, ()))) or "none (the run is over)"
        raise RunStateError(f"a run in status {current!r} cannot move to {new!r}; allowed: {allowed}")


class RunNotFound(NotFound):
    """No run with that id."""


class PlaybookNotFound(NotFound):
    """No loaded playbook with that name."""


class ApprovalDenied(PermissionError):
    """The caller's role may not approve this step (answered 403 by the API)."""


class FourEyesDenied(ApprovalDenied):
    """Four eyes: the person who started a run asked to approve it (answered 403)."""


class PlaybookInputError(ValueError):
    """Inputs of a run (or of one action) are missing or of the wrong type; names the input."""


@dataclass(slots=True)
class Approval:
    """One decision on an approval gate (kept for every gate, approve or reject)."""

    step: str
    decision: str  # "approved" | "rejected"
    actor: str
    role: str
    time: str
    comment: str = ""


@dataclass(slots=True)
class StepState:
    """What one step did: resolved inputs, output or error, timing, attempts and approval."""

    index: int
    name: str
    action: str
    status: str = "pending"
    inputs: dict[str, Any] = field(default_factory=dict)
    output: dict[str, Any] | None = None
    error: str = ""
    would: str = ""
    """Dry-run only: what the action would have done with these inputs."""
    attempts: int = 0
    started_at: str = ""
    ended_at: str = ""
    duration_ms: float = 0.0
    destructive: bool = False
    approval_role: str | None = None
    approved_by: str | None = None
    approved_at: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def would_msg(self) -> dict[str, Any] | None:
        """``would`` as a catalog key and parameters (:mod:`core.messages`), so the console
        shows it in the reader's language; None for plain text."""
        return message_json(self.would)

    @property
    def error_msg(self) -> dict[str, Any] | None:
        """``error`` as a catalog key and parameters when the action wrote one (an SMTP
        failure), so it reads in the reader's language; None for plain text."""
        return message_json(self.error)


@dataclass(slots=True)
class Run:
    """One execution of a playbook, as stored, shown by the API and audited."""

    id: int
    playbook: str
    status: str
    trigger: str  # "alert" | "manual" | "schedule" | "rerun"
    actor: str
    inputs: dict[str, Any] = field(default_factory=dict)
    alert_id: int | None = None
    rule_id: str | None = None
    """Rule of the alert that started the run (rate limits per rule count by it)."""
    dry_run: bool = False
    idempotency_key: str | None = None
    reason: str = ""
    """Why the run ended as it did (or why it waits), in words an operator can act on."""
    created_at: str = ""
    started_at: str = ""
    ended_at: str = ""
    parent_run_id: int | None = None
    current_step: str | None = None
    approval_expires_at: str | None = None
    steps: list[StepState] = field(default_factory=list)
    approvals: list[Approval] = field(default_factory=list)
    duplicate: bool = False
    """True when ``start`` found an earlier run with the same idempotency key and returned it."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def reason_msg(self) -> dict[str, Any] | None:
        """``reason`` as a catalog key and parameters (:mod:`core.messages`); None for plain text."""
        return message_json(self.reason)

    def step(self, name: str) -> StepState:
        for s in self.steps:
            if s.name == name:
                return s
        raise KeyError(f"run {self.id} has no step {name!r}")


@dataclass(slots=True)
class PlaybookInfo:
    """What the API and CLI show about a loaded playbook."""

    name: str
    title: str
    description: str
    source: str
    triggers: dict[str, Any]
    inputs: dict[str, dict[str, Any]]
    steps: list[dict[str, Any]]
    title_vi: str = ""
    """Vietnamese title and description, when the playbook file has them."""
    description_vi: str = ""


@dataclass(frozen=True, slots=True)
class RunLimit:
    """One rate limit checked when a run is created: at most ``max_runs`` non-refused real runs
    of ``playbook`` (and, when given, of alerts of ``rule_id``) created since ``since``."""

    playbook: str
    max_runs: int
    since: str
    window_s: float
    rule_id: str | None = None
    trigger: str = "alert"

    def reason(self, counted: int) -> str:
        scope = f"rule {self.rule_id!r} in playbook {self.playbook!r}" if self.rule_id else f"playbook {self.playbook!r}"
        return (f"rate limit: {counted} automatic run(s) of {scope} in the last {self.window_s:g} s "
                f"(limit {self.max_runs}); refused so a flood of alerts cannot drive responses")


@runtime_checkable
class RunStore(Protocol):
    """Persistence of runs, steps and approvals. Implementation: ``storage.playbook_runs``.

    ``create_run`` returns the existing run instead when a non-dry run with the same
    ``(playbook, idempotency_key)`` exists (the second element is then False). With
    ``limits``, it counts (in the same transaction) the earlier runs each limit covers and
    stores the run ``refused`` with the limit's reason when one is full.
    ``set_status`` enforces :data:`RUN_TRANSITIONS` (raising :class:`RunStateError`).
    ``set_status`` is a compare-and-set: it moves the run only when it is still in
    ``expected`` and returns False otherwise, so two processes cannot both resume it.
    """

    def create_run(self, run: Run, *, limits: Sequence[RunLimit] = ()) -> tuple[Run, bool]: ...
    def get_run(self, run_id: int) -> Run: ...
    def list_runs(self, *, playbook: str | None = None, status: str | None = None, alert_id: int | None = None,
                  limit: int = 50, offset: int = 0) -> tuple[int, list[Run]]: ...
    def set_status(self, run_id: int, expected: str, new: str, *, reason: str | None = None,
                   current_step: str | None = None, approval_expires_at: str | None = None,
                   started_at: str | None = None, ended_at: str | None = None) -> bool: ...
    def save_step(self, run_id: int, step: StepState) -> None: ...
    def add_approval(self, run_id: int, approval: Approval) -> None: ...
    def expired_approvals(self, now: str) -> list[int]: ...
    def running_runs(self) -> list[int]: ...


@runtime_checkable
class PlaybookRunner(Protocol):
    """What the API and CLI call; ``playbooks.runner.Runner`` implements it.

    ``start`` with ``wait=True`` returns once the run has ended or parked for approval;
    with ``wait=False`` it returns the queued run at once. ``role`` is the caller's role:
    approval gates name the role that may pass them (``admin`` passes every gate).
    """

    def list_playbooks(self) -> list[PlaybookInfo]: ...
    def matching(self, alert: Any) -> list[Any]: ...
    def get_playbook(self, name: str) -> PlaybookInfo: ...
    async def start(self, name: str, *, actor: str, alert_id: int | None = None,
                    inputs: dict[str, Any] | None = None, dry_run: bool = False, wait: bool = True,
                    trigger: str = "manual") -> Run: ...
    async def approve(self, run_id: int, *, actor: str, role: str, comment: str = "", wait: bool = True) -> Run: ...
    async def reject(self, run_id: int, *, actor: str, role: str, comment: str = "") -> Run: ...
    async def cancel(self, run_id: int, *, actor: str, comment: str = "") -> Run: ...
    async def resume(self, run_id: int, *, actor: str, wait: bool = True) -> Run: ...
    async def rerun(self, run_id: int, *, actor: str, dry_run: bool = False, wait: bool = True) -> Run: ...
    def get_run(self, run_id: int) -> Run: ...
    def list_runs(self, *, playbook: str | None = None, status: str | None = None, alert_id: int | None = None,
                  limit: int = 50, offset: int = 0) -> tuple[int, list[Run]]: ...


# --- settings (referenced by core.settings.Settings.playbooks) ---------------------------

class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NftSettings(_Strict):
    table: str = Field("citysoc", pattern=r"^[A-Za-z][A-Za-z0-9_]{0,31}$")
    """nftables table (family ``inet``) the SOC owns on the gateway; created if missing."""
    soc_addresses: list[str] = Field(default_factory=list)
    """Addresses an isolated host may still talk to (the SOC's own)."""
    command_prefix: list[str] = Field(default_factory=list)
    """Argument list put before ``nft``, e.g. ``[ip, netns, exec, gw]`` or ``[ssh, gw, --]``."""
    default_ttl_s: int = Field(3600, ge=1, le=30 * 86400)
    allow_block: list[str] = Field(default_factory=lambda: ["0.0.0.0/0", "::/0"])
    """Networks ``block_ip`` / ``isolate_host`` may act on. An address inside
    ``internal_networks`` is acted on only when an entry *inside* those internal ranges
    covers it (e.g. ``10.20.3.0/24`` for the camera network): ``0.0.0.0/0`` alone never
    lets a playbook cut off the city's own hosts. ``soc_addresses`` are never acted on."""
    internal_networks: list[str] = Field(default_factory=lambda: list(INTERNAL_NETWORKS))
    """The city's internal ranges (default: RFC 1918, CGNAT, IPv6 ULA and link-local)."""


INTERNAL_NETWORKS: tuple[str, ...] = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10",
                                      "fc00::/7", "fe80::/10")
"""Default ``playbooks.nft.internal_networks``. Not ``ipaddress.is_private``: that also counts
the documentation ranges (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24) as private."""


class SmtpSettings(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(25, ge=1, le=65535)
    sender: str = "citysoc@localhost"
    starttls: bool = False
    username: str | None = None
    password: str | None = None
    default_to: list[str] = Field(default_factory=list)
    """Recipients used when a step names none (the SOC duty mailbox)."""


class WebhookTarget(_Strict):
    url: str
    secret: str | None = None
    """HMAC-SHA256 key; the body's signature goes in ``X-Citysoc-Signature: sha256=<hex>``."""
    format: str = Field("generic", pattern=r"^(generic|slack|teams|telegram)$")
    chat_id: str | None = None
    """Telegram only."""


class DatabaseTarget(_Strict):
    engine: str = Field("postgresql", pattern=r"^(postgresql|mariadb)$")
    dsn: str
    """Connection string of an account allowed to change logins (kept out of logs and audit).
    PostgreSQL: libpq ``host=... dbname=... user=...``; MariaDB: ``host=... port=... user=...
    password=...`` or ``unix_socket=/run/mysqld/mysqld.sock user=...``."""


class CorroborationSettings(_Strict):
    """When an automatic (``approval: {auto: ...}``) destructive step in a run started by an
    alert may act without a person: its target must be corroborated, else the step waits for
    approval. Log lines are unauthenticated (a UDP syslog datagram can carry any address),
    so one alert is never enough by itself."""

    enabled: bool = True
    min_rules: int = Field(2, ge=1, le=100)
    """Distinct rules whose alerts name the target (as source address, or user for accounts)
    within ``window_s``, counting the alert that started the run."""
    window_s: float = Field(3600.0, gt=0)
    observed_engines: list[str] = Field(default_factory=lambda: ["network"])
    """Detection engines that watch the network themselves (our packet capture); one of their
    alerts corroborates on its own unless its events came from a log sender
    (``log.source.address``)."""
    approval_role: str = "responder"
    """Who approves a step that lacked corroboration."""


class RateLimit(_Strict):
    max_runs: int = Field(ge=1)
    window_s: float = Field(gt=0)


class RateLimitSettings(_Strict):
    """Automatic runs (started by alerts) allowed per window; over it a run is stored
    ``refused`` with the reason, audited (``playbook.run.refused``) and counted. Runs started
    by a person are not limited."""

    per_playbook: RateLimit | None = RateLimit(max_runs=30, window_s=3600)
    per_rule: RateLimit | None = RateLimit(max_runs=10, window_s=3600)
    """Runs of one playbook started by alerts of one rule."""


class OnDutySettings(_Strict):
    """Who is told when a run starts waiting for an approval (besides the console, which
    always hears it over the alert stream as ``run.awaiting_approval``). Sending is off the
    run's path: a mail server or webhook that fails is logged and audited
    (``playbook.notify.failed``), never fails or delays the run."""

    email_to: list[str] = Field(default_factory=list)
    """Duty mailbox(es) e-mailed through ``playbooks.smtp``; empty: no e-mail."""
    webhooks: list[str] = Field(default_factory=list)
    """Names under ``playbooks.webhooks`` to post to (chat channel of the duty team)."""
    console_url: str | None = None
    """Base URL of the console put in the message (e.g. ``https://soc.hcmc.example``)."""
    timeout_s: float = Field(10.0, gt=0, le=120)


class PlaybookSettings(_Strict):
    enabled: bool = True
    four_eyes: bool = True
    """The approver of a gate must differ from whoever started the run (a person who starts
    a destructive response cannot also wave it through). On by default; a one-person site
    may turn it off, and every approval stays in the audit log either way."""
    on_duty: OnDutySettings = OnDutySettings()
    folders: list[Path] = Field(default_factory=list)
    """Extra playbook folders loaded beside ``playbooks/library``."""
    max_concurrent_runs: int = Field(4, ge=1, le=256)
    default_step_timeout_s: float = Field(30.0, gt=0, le=3600)
    approval_timeout_s: float = Field(24 * 3600.0, gt=0)
    """A run waiting longer than this for an approval ends ``failed`` (resumable)."""
    nft: NftSettings = NftSettings()
    corroboration: CorroborationSettings = CorroborationSettings()
    rate_limits: RateLimitSettings = RateLimitSettings()
    smtp: SmtpSettings = SmtpSettings()
    webhooks: dict[str, WebhookTarget] = Field(default_factory=dict)
    databases: dict[str, DatabaseTarget] = Field(default_factory=dict)
    http_allowed_hosts: list[str] = Field(default_factory=list)
    """Hosts ``http_request`` may call (exact names or ``*.suffix``); empty: none."""
    http_credentials: dict[str, str] = Field(default_factory=dict)
    """Named ``Authorization`` header values for ``http_request`` (``credential: NAME``), so
    secrets live here and never in a playbook, a run record or the audit log."""
    quarantine_dir: Path | None = None
    """Default ``<data>/quarantine``."""
    quarantine_roots: list[Path] = Field(default_factory=list)
    """Folders files may be quarantined from (e.g. the warehouse ingest folder); empty: none."""
