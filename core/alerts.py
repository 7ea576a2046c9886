"""Alerts and cases: the domain model, the pure rules that govern them, and the stores' protocols.

A :class:`core.protocols.Detection` (a rule matched) becomes an :class:`Alert` through
:class:`AlertRecorder`, the pipeline's alert sink: it drops detections an active
:class:`Suppression` covers, asks the :class:`AlertStore` to deduplicate (same rule,
same entity key, within the window: one alert whose ``count`` and ``last_seen`` grow),
and tells listeners (the live SSE stream) what changed.

Pure logic kept here so every store and the API agree on it:

* :func:`risk_score`: rule level (1-5) x asset criticality (1-5, default 3) x 4 -> 4..100.
* :func:`dedupe_key`: the rule id plus the detection's ``group_key`` or, without one,
  the entity tuple (host, user, source ip, destination ip, asset).
* :data:`TRANSITIONS` / :func:`check_transition`: the status workflow.
* :class:`GroupingPolicy`: same-behaviour folding (the network brute-force detector and
  the Sigma brute-force correlations grow one alert listing both rules) and the
  incident key (attacker entity + center): alerts from one attacker against one center
  within ``alerts.incidents.window_s`` (event time) are one :class:`Incident`.
"""
from __future__ import annotations

import builtins
import fnmatch
import hashlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from core.levels import DEFAULT_LEVEL, LEVEL_NUMBERS, level_number
from core.events import Event, event_ms, get_field, ms_to_iso, utc_now_iso
from core.protocols import Detection

__all__ = [
    "LEVELS",
    "STATUSES",
    "RESOLUTIONS",
    "TRANSITIONS",
    "CASE_STATUSES",
    "ENTITY_FIELDS",
    "Entities",
    "Alert",
    "AlertChange",
    "AlertFilter",
    "Comment",
    "Suppression",
    "Case",
    "CaseNote",
    "TimelineEntry",
    "Attachment",
    "AlertStore",
    "CaseStore",
    "AlertRecorder",
    "TransitionError",
    "NotFound",
    "risk_score",
    "level_number",
    "entities_of",
    "dedupe_key",
    "check_transition",
    "DEFAULT_CRITICALITY",
    "MAX_SAMPLE_EVENTS",
    "MAX_LIST",
    "AlertSettings",
    "IncidentSettings",
    "DEFAULT_BEHAVIOURS",
    "GroupingPolicy",
    "Incident",
    "IncidentFilter",
    "IncidentStore",
    "incident_title",
    "targets_of",
    "ports_of",
    "merge_list",
    "absorb",
]

log = logging.getLogger("citysoc.alerts")

LEVELS: dict[str, int] = LEVEL_NUMBERS
"""Level -> 1-5 (the vocabulary is :mod:`core.levels`; this name is kept for its readers)."""
STATUSES: tuple[str, ...] = ("new", "acknowledged", "in_progress", "closed")
RESOLUTIONS: tuple[str, ...] = ("true_positive", "false_positive", "benign")
CASE_STATUSES: tuple[str, ...] = ("open", "in_progress", "closed")
DEFAULT_CRITICALITY = 3
MAX_SAMPLE_EVENTS = 20
"""Events kept inside an alert; the rest are found with its ``events_query``."""
MAX_LIST = 200
"""Targets, ports and rules kept on one alert or incident (the counts stay exact)."""

TRANSITIONS: dict[str, frozenset[str]] = {
    "new": frozenset({"acknowledged", "in_progress", "closed"}),
    "acknowledged": frozenset({"in_progress", "closed", "new"}),
    "in_progress": frozenset({"acknowledged", "closed"}),
    "closed": frozenset({"in_progress"}),  # reopening goes back to work
}

ENTITY_FIELDS: dict[str, str] = {
    "host": "host.name",
    "user": "user.name",
    "source_ip": "source.ip",
    "destination_ip": "destination.ip",
    "asset_id": "citysoc.asset.id",
    "center": "citysoc.center",
}
"""Alert entity -> the ECS field it is read from."""


class TransitionError(ValueError):
    """A status change the workflow does not allow; the message lists the allowed ones."""


class NotFound(KeyError):
    """The alert, case or attachment asked for does not exist."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "not found"


def risk_score(level: str, criticality: int | None) -> int:
    """Level (1-5) x asset criticality (1-5, default 3) x 4: 4..100, higher first."""
    crit = criticality if isinstance(criticality, int) and 1 <= criticality <= 5 else DEFAULT_CRITICALITY
    return level_number(level) * crit * 4


def check_transition(current: str, new: str, resolution: str | None) -> None:
    """Raise :class:`TransitionError` unless ``current -> new`` is allowed.

    Closing needs a resolution; only closing takes one.
    """
    if new not in STATUSES:
        raise TransitionError(f"unknown status {new!r}; use one of {', '.join(STATUSES)}")
    if new != current and new not in TRANSITIONS[current]:
        allowed = ", ".join(sorted(TRANSITIONS[current]))
        raise TransitionError(f"an alert in status {current!r} cannot move to {new!r}; allowed: {allowed}")
    if new == "closed" and resolution not in RESOLUTIONS:
        raise TransitionError(f"closing an alert needs a resolution: one of {', '.join(RESOLUTIONS)}")
    if new != "closed" and resolution is not None:
        raise TransitionError("a resolution is only given when closing an alert")


@dataclass(slots=True)
class Entities:
    host: str | None = None
    user: str | None = None
    source_ip: str | None = None
    destination_ip: str | None = None
    asset_id: str | None = None
    center: str | None = None
    criticality: int | None = None

    def key_tuple(self) -> tuple[str, ...]:
        return tuple(str(getattr(self, k) or "") for k in ("host", "user", "source_ip", "destination_ip", "asset_id"))


def _scalar(v: Any) -> str | None:
    if v is None or isinstance(v, (dict, list)):
        if isinstance(v, list) and v and not isinstance(v[0], (dict, list)):
            return str(v[0])
        return None
    return str(v)


def entities_of(events: Sequence[Event]) -> Entities:
    """The alert's entities: the first value each entity field has among the events."""
    ent = Entities()
    for name, path in ENTITY_FIELDS.items():
        for ev in events:
            val = _scalar(get_field(ev, path))
            if val:
                setattr(ent, name, val[:256])
                break
    for ev in events:
        crit = get_field(ev, "citysoc.asset.criticality")
        try:
            c = int(crit) if crit is not None and not isinstance(crit, bool) else None
        except (TypeError, ValueError):
            c = None
        if c is not None and 1 <= c <= 5:
            ent.criticality = c
            break
    return ent


def dedupe_key(rule_id: str, entities: Entities, group_key: str | None = None) -> str:
    """Same rule + same entity key -> same key. ``group_key`` (correlation rules) wins."""
    basis = [rule_id, "g", group_key] if group_key else [rule_id, "e", *entities.key_tuple()]
    return hashlib.sha256("\x1f".join(basis).encode("utf-8")).hexdigest()[:32]


def _time_span(events: Sequence[Event]) -> list[str]:
    """[first, last] event time as ISO text (min/max of the carried epochs: two
    conversions per detection, not one per event and a sort)."""
    if not events:
        return []
    stamped = [event_ms(e) for e in events]
    known = [ms for ms in stamped if ms is not None]
    if not known:
        now = utc_now_iso()
        return [now, now]
    first, last = ms_to_iso(min(known)), ms_to_iso(max(known))
    if len(known) < len(stamped):  # an event without a time counts as now, as before
        now = utc_now_iso()
        return [min(first, now), max(last, now)]
    return [first, last]


def events_query(entities: Entities) -> str:
    """A Lucene query that finds the events behind an alert (its entities, ANDed)."""
    parts = []
    for name, path in ENTITY_FIELDS.items():
        val = getattr(entities, name)
        if val and name != "center":
            esc = val.replace("\\", "\\\\").replace('"', '\\"')
            parts.append(f'{path}:"{esc}"')
    return " AND ".join(parts) or "*"


@dataclass(slots=True)
class Alert:
    id: int
    rule_id: str
    rule_title: str
    level: str
    tags: list[str]
    engine: str
    description: str
    entities: Entities
    risk_score: int
    status: str
    resolution: str | None
    assignee: str | None
    first_seen: str
    last_seen: str
    count: int
    dedupe_key: str
    created_at: str
    updated_at: str
    events: list[Event] = field(default_factory=list)
    events_query: str = "*"
    case_id: int | None = None
    rules: list[str] = field(default_factory=list)
    """Every rule folded into this alert (detectors that see the same behaviour, see
    :data:`DEFAULT_BEHAVIOURS`); ``rule_id`` is the first of them."""
    targets: list[str] = field(default_factory=list)
    """What was attacked: destination addresses or host names (up to :data:`MAX_LIST`)."""
    ports: list[Any] = field(default_factory=list)
    """Destination ports involved (numbers; ``icmp`` for port-less probes)."""
    incident_id: int | None = None

    def to_dict(self, *, with_events: bool = True) -> dict[str, Any]:
        d = asdict(self)
        if not with_events:
            d.pop("events")
        return d

    @staticmethod
    def from_detection(det: Detection, now: str) -> Alert:
        """A new (unsaved, ``id=0``) alert for one detection."""
        ent = entities_of(det.events)
        override = det.extra.get("entities") if isinstance(det.extra, dict) else None
        if isinstance(override, dict):  # the detector knows better whom the alert is about
            for k, v in override.items():
                if k in ENTITY_FIELDS or k == "criticality":
                    setattr(ent, k, v)
        times = _time_span(det.events) or [now]
        return Alert(
            id=0, rule_id=det.rule_id[:200], rule_title=(det.title or det.rule_id)[:500],
            level=det.level if det.level in LEVELS else DEFAULT_LEVEL, tags=[str(t) for t in det.tags][:50],
            engine=det.engine, description=(det.description or "")[:4000], entities=ent,
            risk_score=risk_score(det.level, ent.criticality), status="new", resolution=None,
            assignee=None, first_seen=times[0], last_seen=times[-1], count=max(1, len(det.events)),
            dedupe_key=dedupe_key(det.rule_id, ent, det.group_key), created_at=now, updated_at=now,
            events=list(det.events[:MAX_SAMPLE_EVENTS]), events_query=events_query(ent),
            rules=[det.rule_id[:200]], targets=targets_of(det, ent), ports=ports_of(det),
        )


@dataclass(slots=True)
class AlertChange:
    """What recording a detection did: a new alert (``created``) or a grown one.

    A grown alert whose stored sample was already full (:data:`MAX_SAMPLE_EVENTS`) comes
    without its sample events (``alert.events`` is empty): the sample did not change, and
    loading it for every growth was a quarter of the server's time under a scan. Listeners
    that want it read the alert from the store (playbooks start on created alerts only)."""

    alert: Alert
    created: bool


@dataclass(slots=True)
class AlertFilter:
    status: list[str] | None = None
    level: list[str] | None = None
    rule_id: str | None = None
    assignee: str | None = None
    host: str | None = None
    user: str | None = None
    source_ip: str | None = None
    asset_id: str | None = None
    center: str | None = None
    case_id: int | None = None
    incident_id: int | None = None
    min_risk: int | None = None
    since: str | None = None  # on last_seen, ISO UTC
    until: str | None = None
    sort: str = "-last_seen"
    limit: int = 50
    offset: int = 0
    count_up_to: int | None = 10_000
    """Count matches only up to this many (``None``: exact). Like Elasticsearch's
    ``track_total_hits``: an exact count of 100k rows costs more than the page itself."""


@dataclass(slots=True)
class Comment:
    id: int
    alert_id: int
    author: str
    time: str
    text: str


@dataclass(slots=True)
class Suppression:
    """An exception: detections of ``rule_id`` (``*`` = any) whose entity ``field``
    matches ``value`` (shell-style pattern) make no alert until ``expires_at``."""

    id: int
    rule_id: str
    field: str
    value: str
    owner: str
    reason: str
    created_at: str
    expires_at: str
    hits: int = 0

    def matches(self, rule_id: str, entities: Entities, now: str) -> bool:
        if self.expires_at <= now:
            return False
        if self.rule_id not in ("*", rule_id):
            return False
        if self.field == "*":
            return True
        val = getattr(entities, self.field, None)
        return val is not None and fnmatch.fnmatchcase(str(val), self.value)


@dataclass(slots=True)
class Case:
    id: int
    title: str
    description: str
    status: str
    severity: str
    assignee: str | None
    created_by: str
    created_at: str
    updated_at: str
    alert_ids: list[int] = field(default_factory=list)


@dataclass(slots=True)
class CaseNote:
    id: int
    case_id: int
    author: str
    time: str
    text: str


@dataclass(slots=True)
class TimelineEntry:
    id: int
    case_id: int
    time: str
    actor: str
    kind: str
    summary: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Attachment:
    id: int
    case_id: int
    filename: str
    size: int
    sha256: str
    content_type: str
    uploaded_by: str
    time: str
    path: str
    scan_status: str = "not_scanned"  # not_scanned | clean | flagged | error
    scan_findings: list[dict[str, Any]] = field(default_factory=list)


# -- folding and incidents -------------------------------------------------------------------
DEFAULT_BEHAVIOURS: dict[str, list[str]] = {
    "brute_force": [
        "net:brute_force",                          # network detector: failed logins / short connections
        "66476bbc-62e7-4b08-a2f3-26e9cf5abfb2",     # Sigma: SSH brute force (correlation)
        "9f8ae69a-72c0-4121-8e56-832435a8728f",     # Sigma: camera/NVR brute force (correlation)
        "70669add-fdda-4b88-a68e-4d3058da7bb8",     # Sigma: RTSP credential guessing (correlation)
        "82e5f390-3a81-4193-82dc-58a8abe96c65",     # Sigma: warehouse database password guessing (correlation)
    ],
}
"""Rules that see the same behaviour: their alerts from one attacker within the dedupe
window fold into one alert that lists every rule (``Alert.rules``)."""


class IncidentSettings(BaseModel):
    """How alerts fold into incidents (``alerts.incidents`` in ``citysoc.yml``)."""

    model_config = ConfigDict(extra="forbid")
    enabled: bool = True
    """Group alerts into incidents at all (off: every alert is its own queue item)."""
    window_s: float = Field(3600.0, gt=0)
    """An alert joins an open incident whose last alert (event time) is at most this old."""
    attacker_fields: list[str] = Field(default_factory=lambda: ["source_ip", "user"])
    """Alert entities that name the attacker, first present wins. An alert with none of
    them (a silent asset, a YARA hit) groups by its rule instead."""
    by_center: bool = True
    """Keep attacks on different centers apart (one incident per attacker and center)."""


class AlertSettings(BaseModel):
    """Alert deduplication, same-behaviour folding and incident grouping (``alerts``)."""

    model_config = ConfigDict(extra="forbid")
    dedupe_window_s: float = Field(900.0, gt=0)
    """The same rule on the same entities within this long (wall time) grows one alert."""
    behaviours: dict[str, list[str]] = Field(default_factory=lambda: {k: list(v) for k, v in DEFAULT_BEHAVIOURS.items()})
    """Behaviour name -> rule ids that see it; ``{}`` turns folding off."""
    incidents: IncidentSettings = IncidentSettings()


def merge_list(into: list[Any], more: Sequence[Any], limit: int = MAX_LIST) -> list[Any]:
    """``into`` plus the items of ``more`` it lacks, in order, at most ``limit`` long."""
    seen = set(map(str, into))
    out = list(into)
    for v in more:
        if len(out) >= limit:
            break
        if str(v) not in seen:
            seen.add(str(v))
            out.append(v)
    return out


def absorb(into: Alert, more: Alert, *, sample_full: bool = False) -> bool:
    """Grow ``into`` by ``more``, a later detection with the same dedupe key: counts add
    up, the time span widens, the sample fills up to :data:`MAX_SAMPLE_EVENTS`, the score
    and level only rise, folded rules/tags/targets/ports are listed once. ``into`` keeps
    its own entities, title and description. Returns whether the sample grew.
    ``sample_full``: ``into`` is a stored alert read without its (full) sample.

    The one merge rule for both an alert already stored and alerts of one batch merged in
    memory before they are written, so merging a batch first gives what recording its
    detections one by one would."""
    room = 0 if sample_full else MAX_SAMPLE_EVENTS - len(into.events)
    into.count += more.count
    into.first_seen = min(into.first_seen, more.first_seen)
    into.last_seen = max(into.last_seen, more.last_seen)
    if room > 0:
        into.events.extend(more.events[:room])
    # A higher-criticality asset seen later raises the score, never lowers it.
    into.risk_score = max(into.risk_score, more.risk_score)
    # a same-behaviour rule folded in: list it, and what it saw
    into.rules = merge_list(into.rules or [into.rule_id], more.rules or [more.rule_id])
    into.tags = merge_list(into.tags, more.tags, 50)
    into.targets = merge_list(into.targets, more.targets)
    into.ports = merge_list(into.ports, more.ports)
    into.level = max(into.level, more.level, key=level_number)
    return room > 0


def targets_of(det: Detection, ent: Entities) -> list[str]:
    """What the detection says was attacked: the detector's own list (``hosts``,
    ``targets``), its ``destination.ip``, else the alert's destination or host."""
    ex = det.extra if isinstance(det.extra, dict) else {}
    out: list[str] = []
    for key in ("hosts", "targets"):
        v = ex.get(key)
        if isinstance(v, list):
            out = merge_list(out, [str(x)[:256] for x in v if x is not None])
    d = ex.get("destination.ip")
    if d:
        out = merge_list(out, [str(d)[:256]])
    if not out:
        out = [v for v in (ent.destination_ip or ent.host,) if v]
    return out


def ports_of(det: Detection) -> list[Any]:
    """Destination ports the detection names (``ports``, ``destination.port``), else the
    ports of its events."""
    ex = det.extra if isinstance(det.extra, dict) else {}
    out: list[Any] = []
    v = ex.get("ports")
    if isinstance(v, list):
        out = merge_list(out, [p for p in v if isinstance(p, (int, str))])
    p = ex.get("destination.port")
    if isinstance(p, (int, str)) and not isinstance(p, bool):
        out = merge_list(out, [p])
    if not out:
        for ev in det.events[:MAX_SAMPLE_EVENTS]:
            p = get_field(ev, "destination.port")
            if isinstance(p, int) and not isinstance(p, bool):
                out = merge_list(out, [p])
    return out


class GroupingPolicy:
    """The pure decisions behind folding and incidents, from :class:`AlertSettings`.

    Example::

        pol = GroupingPolicy(AlertSettings())
        pol.fold(alert)                  # same-behaviour rules share one dedupe key
        pol.incident_key(alert)          # ("source_ip", "10.20.5.11", "operations")
    """

    def __init__(self, settings: AlertSettings | None = None):
        self.settings = settings or AlertSettings()
        self.behaviour: dict[str, str] = {}
        for name, rules in self.settings.behaviours.items():
            for r in rules:
                self.behaviour.setdefault(r, name)
        inc = self.settings.incidents
        bad = [f for f in inc.attacker_fields if f not in ENTITY_FIELDS]
        if bad:
            raise ValueError(f"alerts.incidents.attacker_fields: unknown entity {bad[0]!r}; "
                             f"use some of {', '.join(ENTITY_FIELDS)}")
        self.incidents = inc

    def fold(self, alert: Alert) -> None:
        """Give an alert of a same-behaviour rule the behaviour's dedupe key (behaviour +
        attacker), so the network detector and the Sigma correlation grow one alert."""
        name = self.behaviour.get(alert.rule_id)
        who = alert.entities.source_ip or alert.entities.user
        if name is None or not who:
            return
        basis = ["b", name, who]
        alert.dedupe_key = hashlib.sha256("\x1f".join(basis).encode("utf-8")).hexdigest()[:32]

    def incident_key(self, alert: Alert) -> tuple[str, str, str] | None:
        """(attacker kind, attacker, center), or ``None`` when incidents are off."""
        if not self.incidents.enabled:
            return None
        center = (alert.entities.center or "") if self.incidents.by_center else ""
        for name in self.incidents.attacker_fields:
            val = getattr(alert.entities, name)
            if val:
                return name, str(val), center
        return "rule", alert.rule_id, center


def incident_title(attacker_kind: str, attacker: str, rule_titles: Sequence[str], targets: Sequence[str],
                   target_count: int, ports: Sequence[Any], port_count: int) -> str:
    """One line that says who did what to whom: ``10.20.5.11: Port scan, Brute force against
    31 targets (10.20.0.5, 10.20.0.6, ... ; 40 ports)``. The console builds its own
    (translated) line from the same fields; this one is for the CLI, reports and e-mail."""
    what = ", ".join(rule_titles[:2]) + (f" (+{len(rule_titles) - 2} more)" if len(rule_titles) > 2 else "")
    if attacker_kind == "rule":
        head = what
    else:
        head = f"{attacker}: {what}"
    if target_count == 1 and targets:
        on = f" against {targets[0]}"
    elif target_count > 1:
        shown = ", ".join(targets[:3]) + (", ..." if target_count > 3 else "")
        on = f" against {target_count} targets ({shown})"
    else:
        on = ""
    if port_count:
        on += f"; port {ports[0]}" if port_count == 1 else f"; {port_count} ports"
    return (head + on)[:500]


@dataclass(slots=True)
class Incident:
    """Alerts from one attacker against one center within a window: the queue's unit.

    ``attacker_kind`` is the entity that named the attacker (``source_ip``, ``user``) or
    ``rule`` when the alerts had none (then ``attacker`` is the rule id)."""

    id: int
    attacker_kind: str
    attacker: str
    center: str | None
    title: str
    level: str
    risk_score: int
    status: str
    resolution: str | None
    assignee: str | None
    first_seen: str
    last_seen: str
    alert_count: int
    detection_count: int
    rules: list[str]
    rule_titles: list[str]
    targets: list[str]
    target_count: int
    ports: list[Any]
    port_count: int
    assets: list[str]
    tags: list[str]
    created_at: str
    updated_at: str
    case_id: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(slots=True)
class IncidentFilter:
    status: list[str] | None = None
    level: list[str] | None = None
    rule_id: str | None = None
    assignee: str | None = None
    asset_id: str | None = None
    center: str | None = None
    attacker: str | None = None
    min_risk: int | None = None
    since: str | None = None
    until: str | None = None
    sort: str = "-last_seen"
    limit: int = 50
    offset: int = 0
    count_up_to: int | None = 10_000


@runtime_checkable
class IncidentStore(Protocol):
    """Incidents (written by :meth:`AlertStore.record`); reads and triage. ``storage.socdb``."""

    def list_incidents(self, flt: IncidentFilter) -> tuple[int, list[Incident]]: ...
    def get_incident(self, incident_id: int) -> Incident: ...
    def incident_alert_ids(self, incident_id: int) -> list[int]: ...
    def matching_ids(self, flt: IncidentFilter, limit: int) -> list[int]: ...
    def timeline(self, incident_id: int) -> list[dict[str, Any]]: ...
    def set_case(self, incident_id: int, case_id: int | None) -> None: ...
    def update_incident(self, incident_id: int, *, status: str | None = None, resolution: str | None = None,
                        assignee: str | None = None, clear_assignee: bool = False) -> tuple[Incident, Incident]: ...
    def facets(self) -> dict[str, list[str]]: ...


@runtime_checkable
class AlertStore(Protocol):
    """Alerts, their comments and suppressions. Implementation: ``storage.socdb``.

    Synchronous and thread-safe: the pipeline calls :meth:`record` from a worker
    thread while the API reads through ``asyncio.to_thread``.
    """

    def record(self, alerts: Sequence[Alert], *, window_s: float,
               policy: GroupingPolicy | None = None) -> list[AlertChange]: ...
    def get(self, alert_id: int) -> Alert: ...
    def list(self, flt: AlertFilter) -> tuple[int, list[Alert]]: ...
    def update(self, alert_id: int, *, status: str | None = None, resolution: str | None = None,
               assignee: str | None = None, clear_assignee: bool = False) -> tuple[Alert, Alert]: ...
    def add_comment(self, alert_id: int, author: str, text: str) -> Comment: ...
    def comments(self, alert_id: int) -> builtins.list[Comment]: ...
    def add_suppression(self, rule_id: str, field: str, value: str, owner: str, reason: str,
                        expires_at: str) -> Suppression: ...
    def suppressions(self, *, include_expired: bool = False) -> builtins.list[Suppression]: ...
    def delete_suppression(self, suppression_id: int) -> Suppression: ...
    def count_suppressed(self, suppression_id: int, n: int) -> None: ...


@runtime_checkable
class CaseStore(Protocol):
    """Cases with their alerts, notes, timeline and attachments. Implementation: ``storage.socdb``."""

    def create_case(self, title: str, description: str, severity: str, created_by: str,
                    alert_ids: Sequence[int] = (), assignee: str | None = None) -> Case: ...
    def get_case(self, case_id: int) -> Case: ...
    def list_cases(self, *, status: str | None = None, limit: int = 50, offset: int = 0) -> tuple[int, list[Case]]: ...
    def update_case(self, case_id: int, actor: str, *, title: str | None = None, description: str | None = None,
                    status: str | None = None, severity: str | None = None,
                    assignee: str | None = None) -> tuple[Case, Case]: ...
    def add_alerts(self, case_id: int, alert_ids: Sequence[int], actor: str) -> Case: ...
    def add_note(self, case_id: int, author: str, text: str) -> CaseNote: ...
    def notes(self, case_id: int) -> list[CaseNote]: ...
    def timeline(self, case_id: int) -> list[TimelineEntry]: ...
    def add_attachment(self, case_id: int, filename: str, content_type: str, data: bytes,
                       uploaded_by: str) -> Attachment: ...
    def attachments(self, case_id: int) -> list[Attachment]: ...
    def get_attachment(self, case_id: int, attachment_id: int) -> Attachment: ...
    def set_scan_result(self, attachment_id: int, status: str, findings: list[dict[str, Any]]) -> None: ...


AlertListener = Callable[[list[AlertChange]], None]


class AlertRecorder:
    """The pipeline's :class:`core.protocols.AlertSink`: detections -> stored alerts.

    ``emit`` runs in the pipeline's detect worker thread. Listeners are called there too
    and must not block (the SSE broadcaster only hands off to the event loop).
    Suppressions are re-read at most every ``suppression_ttl_s`` seconds.
    """

    def __init__(self, store: AlertStore, *, window_s: float = 900.0,
                 listeners: Sequence[AlertListener] = (), suppression_ttl_s: float = 5.0,
                 clock: Callable[[], str] = utc_now_iso, policy: GroupingPolicy | None = None):
        self.store = store
        self.window_s = window_s
        self.policy = policy if policy is not None else GroupingPolicy()
        self.listeners: list[AlertListener] = list(listeners)
        self._clock = clock
        self._ttl = suppression_ttl_s
        self._supp: list[Suppression] = []
        self._supp_loaded = -1e18
        self._lock = threading.Lock()
        self.created = 0
        self.updated = 0
        self.suppressed = 0

    def invalidate_suppressions(self) -> None:
        self._supp_loaded = -1e18

    def _suppressions(self) -> list[Suppression]:
        now = time.monotonic()
        if now - self._supp_loaded > self._ttl:
            self._supp = self.store.suppressions()
            self._supp_loaded = now
        return self._supp

    def emit(self, detections: Sequence[Detection]) -> None:
        now = self._clock()
        with self._lock:
            supp = self._suppressions()
            pending: list[Alert] = []
            hits: dict[int, int] = {}
            for det in detections:
                alert = Alert.from_detection(det, now)
                self.policy.fold(alert)
                rule = next((s for s in supp if s.matches(alert.rule_id, alert.entities, now)), None)
                if rule is not None:
                    hits[rule.id] = hits.get(rule.id, 0) + 1
                    continue
                pending.append(alert)
            for sid, n in hits.items():
                self.store.count_suppressed(sid, n)
                self.suppressed += n
            if not pending:
                return
            changes = self.store.record(pending, window_s=self.window_s, policy=self.policy)
        for ch in changes:
            if ch.created:
                self.created += 1
            else:
                self.updated += 1
        for listener in self.listeners:
            try:
                listener(changes)
            except Exception:
                log.exception("alert listener failed; alerts are stored, only the live push was lost")
