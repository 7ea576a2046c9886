"""Assets: the city's inventory, each device's health, and its risk.

Pure logic lives here so the store, the API, the CLI and the scheduler agree on it:

* :class:`Asset`, the one asset model (the file, the asset store, the API, the event
  index ``collectors.enrich.AssetIndex`` and the playbook ``enrich`` action all use it),
  and its file form (:meth:`Asset.to_record` / :func:`asset_from_record`,
  :func:`load_inventory_file`). ``criticality`` is 1-5; the file carries the word
  (``low``/``medium``/``high``/``critical``, as events do) plus ``criticality_level`` with
  the exact number, so a round trip loses nothing.
* :class:`HealthTracker`: an in-stream observer (a :class:`core.protocols.Detector` that
  never detects) counting, per asset, the last time it was heard from and its events
  per hour. It touches two dict entries per event; :meth:`HealthTracker.snapshot` hands
  the counters to the store periodically. Nothing ever scans the event store for this.
* :func:`health_status`: ``healthy`` / ``degraded`` / ``silent`` / ``unknown`` from an
  asset's counters against its own baseline (an hourly-rate EWMA) and expected interval.
  Cameras and NVRs have no agent: their online state is the same log-driven state.
* The detectors over this (``asset:silent``, ``asset:unmanaged``) live in
  :mod:`detections.assets`; :class:`AssetMonitor` is handed the silent check.
* :func:`asset_risk`: open alerts weighted by level and criticality, combined as
  independent chances (``1 - prod(1 - p)``) so the score stays 0..100; closed alerts
  fade with a half-life instead of vanishing (false positives vanish at once).
"""
from __future__ import annotations

import csv
import datetime as _dt
import io
import ipaddress
import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import yaml
from pydantic import BaseModel, ConfigDict, Field

from core.spreadsheet import safe_cell, unsafe_cell
from core.alerts import level_number
from core.events import Event, TimestampError, event_ms, iso_ms, parse_timestamp, to_utc_iso
from core.levels import Level
from core.protocols import Detection

__all__ = [
    "ASSET_TYPES",
    "CENTERS",
    "HEALTH_STATUSES",
    "SILENT_WATCH_TYPES",
    "DEFAULT_INTERVALS",
    "CRIT_WORDS",
    "AssetError",
    "Location",
    "Asset",
    "AssetHealth",
    "AssetStore",
    "AssetSettings",
    "asset_from_record",
    "assets_from_records",
    "load_inventory_text",
    "load_inventory_file",
    "dump_yaml",
    "dump_csv",
    "CSV_COLUMNS",
    "HealthTracker",
    "health_status",
    "expected_interval",
    "SilentCheck",
    "asset_risk",
    "alert_weight",
    "center_summary",
    "AssetMonitor",
    "event_epoch",
]

ASSET_TYPES: tuple[str, ...] = ("camera", "nvr", "vms", "db_node", "etl", "api_gateway", "compute_node",
                                "model_store", "server", "network_device")
CENTERS: tuple[str, ...] = ("operations", "warehouse", "forecasting", "security")
HEALTH_STATUSES: tuple[str, ...] = ("healthy", "degraded", "silent", "unknown")
SILENT_WATCH_TYPES: frozenset[str] = frozenset({"camera", "nvr", "db_node"})
"""Types that raise ``asset:silent`` when quiet (plus any asset given an explicit interval)."""

DEFAULT_INTERVALS: dict[str, int] = {
    "camera": 900, "nvr": 600, "vms": 900, "db_node": 600, "etl": 3600, "api_gateway": 300,
    "compute_node": 3600, "model_store": 3600, "server": 3600, "network_device": 1800,
}
"""Seconds of quiet a type may have before it counts as silent, when the asset sets none."""

CRIT_WORDS: dict[int, str] = {1: "low", 2: "low", 3: "medium", 4: "high", 5: "critical"}
_WORD_CRIT: dict[str, int] = {"low": 2, "medium": 3, "high": 4, "critical": 5}


class AssetError(ValueError):
    """An inventory entry cannot be used; the message lists every problem with its row."""


class AssetSettings(BaseModel):
    """``assets:`` in citysoc.yml: health tracking, silent checks, unmanaged devices."""

    model_config = ConfigDict(extra="forbid")

    camera_cidrs: list[str] = Field(default_factory=lambda: ["10.20.0.0/16"])
    """Camera networks: traffic from an address here that no asset owns is an unmanaged device."""
    check_interval_s: float = Field(60.0, gt=0)
    """How often the scheduler flushes health counters, checks for silent assets and reloads the index."""
    silent_level: Level = "high"
    """Level of ``asset:silent`` alerts."""
    unmanaged_level: Level = "medium"
    """Level of ``asset:unmanaged`` alerts."""


@dataclass(slots=True)
class Location:
    ward: str | None = None
    district: str | None = None
    lat: float | None = None
    lon: float | None = None

    def is_empty(self) -> bool:
        return self.ward is None and self.district is None and self.lat is None and self.lon is None


@dataclass(slots=True)
class Asset:
    """One device or service of the city, as the inventory lists it."""

    id: str
    name: str
    type: str
    center: str
    criticality: int = 3
    subsystem: str | None = None
    zone: str | None = None
    """Network zone (``camera-lan``, ``warehouse-db``...)."""
    ips: list[str] = field(default_factory=list)
    hostnames: list[str] = field(default_factory=list)
    owner: str | None = None
    location: Location = field(default_factory=Location)
    log_sources: list[str] = field(default_factory=list)
    """Datasets this asset is expected to send (``hikvision``, ``postgresql.log``...)."""
    log_interval_s: int | None = None
    """Longest quiet expected; None: the type's default (:data:`DEFAULT_INTERVALS`)."""
    description: str | None = None
    tags: list[str] = field(default_factory=list)

    def to_record(self) -> dict[str, Any]:
        """The YAML form (what :func:`asset_from_record` reads back)."""
        rec: dict[str, Any] = {"id": self.id, "name": self.name, "type": self.type, "center": self.center,
                               "criticality": CRIT_WORDS[self.criticality], "criticality_level": self.criticality}
        for k in ("subsystem", "zone", "owner", "description"):
            v = getattr(self, k)
            if v is not None:
                rec[k] = v
        rec["ips"] = list(self.ips)
        rec["hostnames"] = list(self.hostnames)
        if not self.location.is_empty():
            rec["location"] = {k: v for k, v in asdict(self.location).items() if v is not None}
        if self.log_sources:
            rec["log_sources"] = list(self.log_sources)
        if self.log_interval_s is not None:
            rec["log_interval_s"] = self.log_interval_s
        if self.tags:
            rec["tags"] = list(self.tags)
        return rec

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def addresses(self) -> list[str]:
        return list(self.ips) + list(self.hostnames)


@dataclass(slots=True)
class AssetHealth:
    """The in-stream counters of one asset (times are epoch seconds)."""

    asset_id: str
    last_seen: float | None = None
    hour: int | None = None
    """The hour (epoch // 3600) ``hour_count`` counts."""
    hour_count: int = 0
    last_hour_count: int | None = None
    """Events of the last completed hour."""
    baseline: float | None = None
    """EWMA of events per hour over completed hours (zero hours included)."""
    hours: int = 0
    """Completed hours behind the baseline."""
    total: int = 0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["last_seen_iso"] = _iso(self.last_seen)
        return d


def _iso(t: float | None) -> str | None:
    return to_utc_iso(_dt.datetime.fromtimestamp(t, _dt.timezone.utc)) if t is not None else None


@runtime_checkable
class AssetStore(Protocol):
    """Where the inventory and the health counters live (``storage.assets``).

    Writes bump :meth:`version`, which lets a running server notice another process's
    change (``citysoc assets import`` beside ``citysoc serve``) and rebuild its index.
    """

    def list(self, *, center: str | None = None, type: str | None = None) -> list[Asset]: ...

    def get(self, asset_id: str) -> Asset | None: ...

    def put(self, asset: Asset) -> Asset | None:
        """Insert or replace; returns the asset as it was before (None when new)."""
        ...

    def delete(self, asset_id: str) -> Asset | None: ...

    def put_many(self, assets: Sequence[Asset]) -> tuple[int, int]:
        """Insert or replace in one transaction; returns (created, updated)."""
        ...

    def version(self) -> int: ...

    def save_health(self, rows: Sequence[AssetHealth]) -> None: ...

    def health(self) -> dict[str, AssetHealth]: ...


# -- file form ---------------------------------------------------------------------------
_KNOWN = {"id", "name", "type", "center", "criticality", "criticality_level", "subsystem", "zone", "ips",
          "hostnames", "owner", "location", "ward", "district", "lat", "lon", "log_sources", "log_interval_s",
          "description", "tags"}


def _split(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [str(v).strip() for v in value if str(v).strip()]
    return [p for p in str(value).replace(";", " ").replace(",", " ").split() if p]


def _opt(value: Any) -> str | None:
    if value is None:
        return None
    s = str(value).strip()
    return s or None


def _crit(clean: Mapping[str, Any], problems: list[str]) -> int:
    raw = clean.get("criticality_level")
    if raw in (None, ""):
        raw = clean.get("criticality")
    if raw in (None, ""):
        return 3
    if isinstance(raw, str) and raw.strip().lower() in _WORD_CRIT:
        return _WORD_CRIT[raw.strip().lower()]
    try:
        n = int(str(raw).strip())
    except ValueError:
        problems.append(f"criticality {raw!r} is not 1-5 or one of {', '.join(_WORD_CRIT)}")
        return 3
    if not 1 <= n <= 5:
        problems.append(f"criticality {n} is not within 1-5")
    return n


def _float(value: Any, name: str, lo: float, hi: float, problems: list[str]) -> float | None:
    if value in (None, ""):
        return None
    try:
        f = float(value)
    except (TypeError, ValueError):
        problems.append(f"{name} {value!r} is not a number")
        return None
    if not lo <= f <= hi:
        problems.append(f"{name} {f} is out of range {lo}..{hi}")
    return f


def asset_from_record(row: Mapping[str, Any]) -> Asset:
    """One YAML item or CSV row -> :class:`Asset`; :class:`AssetError` lists every problem."""
    clean = {str(k).strip().lower(): (v.strip() if isinstance(v, str) else v) for k, v in row.items()
             if k is not None}
    problems: list[str] = []
    unknown = sorted(set(clean) - _KNOWN)
    if unknown:
        problems.append(f"unknown field(s) {', '.join(unknown)} (known: {', '.join(sorted(_KNOWN))})")
    for k in ("id", "type", "center"):
        if not clean.get(k):
            problems.append(f"missing {k}")
    typ = str(clean.get("type") or "").lower()
    if typ and typ not in ASSET_TYPES:
        problems.append(f"type {typ!r} is not one of {', '.join(ASSET_TYPES)}")
    center = str(clean.get("center") or "").lower()
    if center and center not in CENTERS:
        problems.append(f"center {center!r} is not one of {', '.join(CENTERS)}")
    crit = _crit(clean, problems)
    ips, hosts = _split(clean.get("ips")), _split(clean.get("hostnames"))
    if not ips and not hosts:
        problems.append("neither ips nor hostnames: nothing could attribute events to it")
    for ip in ips:
        try:
            ipaddress.ip_network(ip, strict=False)
        except ValueError:
            problems.append(f"{ip!r} is not an IP address or network")
    raw_loc = clean.get("location")
    loc = {str(k).lower(): v for k, v in raw_loc.items()} if isinstance(raw_loc, Mapping) else {}
    ward = _opt(loc.get("ward", clean.get("ward")))
    district = _opt(loc.get("district", clean.get("district")))
    lat = _float(loc.get("lat", clean.get("lat")), "lat", -90, 90, problems)
    lon = _float(loc.get("lon", clean.get("lon")), "lon", -180, 180, problems)
    interval: int | None = None
    raw_iv = clean.get("log_interval_s")
    if raw_iv not in (None, ""):
        try:
            interval = int(float(raw_iv))
            if interval <= 0:
                problems.append("log_interval_s must be positive")
        except (TypeError, ValueError):
            problems.append(f"log_interval_s {raw_iv!r} is not a number of seconds")
    if problems:
        raise AssetError(f"asset {clean.get('id')!r}: " + "; ".join(problems))
    return Asset(id=str(clean["id"]), name=str(clean.get("name") or clean["id"]), type=typ, center=center,
                 criticality=crit, subsystem=_opt(clean.get("subsystem")), zone=_opt(clean.get("zone")),
                 ips=ips, hostnames=hosts, owner=_opt(clean.get("owner")),
                 location=Location(ward=ward, district=district, lat=lat, lon=lon),
                 log_sources=_split(clean.get("log_sources")), log_interval_s=interval,
                 description=_opt(clean.get("description")), tags=_split(clean.get("tags")))


def assets_from_records(rows: Iterable[Any], *, source: str = "<inventory>", csv_rows: bool = False) -> list[Asset]:
    """Every row -> an asset; all problems (bad rows, duplicate ids or addresses) in one :class:`AssetError`."""
    out: list[Asset] = []
    problems: list[str] = []
    seen: dict[str, str] = {}
    first = 2 if csv_rows else 1
    for n, row in enumerate(rows, first):
        where = f"{source}: {'row' if csv_rows else 'item'} {n}"
        if not isinstance(row, Mapping):
            problems.append(f"{where}: expected a mapping of fields, got {type(row).__name__}")
            continue
        try:
            a = asset_from_record(row)
        except AssetError as exc:
            problems.append(f"{where}: {exc}")
            continue
        if a.id in seen:
            problems.append(f"{where}: duplicate id {a.id!r}")
            continue
        seen[a.id] = a.id
        for key in list(a.ips) + [h.lower() for h in a.hostnames]:
            other = seen.get("addr:" + key)
            if other is not None:
                problems.append(f"{where}: {key} already belongs to {other!r}")
            seen["addr:" + key] = a.id
        out.append(a)
    if problems:
        raise AssetError("inventory has problems:\n  " + "\n  ".join(problems[:200])
                         + (f"\n  ... and {len(problems) - 200} more" if len(problems) > 200 else ""))
    return out


def load_inventory_text(text: str, *, fmt: str, source: str = "<inventory>") -> list[Asset]:
    """Parse an inventory file's text (``fmt``: ``yaml`` or ``csv``)."""
    if fmt == "csv":
        rows = ({k: unsafe_cell(v) if isinstance(v, str) else v for k, v in r.items()}
                for r in csv.DictReader(io.StringIO(text)))  # undo dump_csv's formula guard
        return assets_from_records(rows, source=source, csv_rows=True)
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise AssetError(f"{source}: invalid YAML: {exc}") from exc
    if isinstance(doc, dict):
        doc = doc.get("assets")
    if not isinstance(doc, list):
        raise AssetError(f"{source}: expected a list of assets (or a mapping with an 'assets' list)")
    return assets_from_records(doc, source=source)


def load_inventory_file(path: str | Path) -> list[Asset]:
    """Read an inventory file (``.csv`` by its suffix, else YAML); :class:`AssetError` on
    any problem, a missing or unreadable file included. The one reader of the file form:
    the asset store's first import, ``citysoc ingest`` and :class:`collectors.enrich.AssetIndex`."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise AssetError(f"cannot read inventory {p}: {getattr(exc, 'strerror', None) or exc}") from exc
    return load_inventory_text(text, fmt="csv" if p.suffix.lower() == ".csv" else "yaml", source=str(p))


def dump_yaml(assets: Iterable[Asset]) -> str:
    return yaml.safe_dump({"assets": [a.to_record() for a in assets]}, sort_keys=False, allow_unicode=True)


CSV_COLUMNS: tuple[str, ...] = ("id", "name", "type", "center", "criticality", "criticality_level", "subsystem",
                                "zone", "ips", "hostnames", "owner", "ward", "district", "lat", "lon", "log_sources",
                                "log_interval_s", "description", "tags")


def dump_csv(assets: Iterable[Asset]) -> str:
    """CSV with ``;``-separated lists (as :func:`load_inventory_text` reads them)."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(CSV_COLUMNS), lineterminator="\n")
    w.writeheader()
    for a in assets:
        w.writerow({k: safe_cell(v) for k, v in _csv_fields(a).items()})  # names from log content: no formulas
    return buf.getvalue()


def _csv_fields(a: Asset) -> dict[str, Any]:
    return {"id": a.id, "name": a.name, "type": a.type, "center": a.center,
            "criticality": CRIT_WORDS[a.criticality], "criticality_level": a.criticality,
            "subsystem": a.subsystem or "", "zone": a.zone or "", "ips": ";".join(a.ips),
            "hostnames": ";".join(a.hostnames), "owner": a.owner or "", "ward": a.location.ward or "",
            "district": a.location.district or "",
            "lat": "" if a.location.lat is None else repr(a.location.lat),
            "lon": "" if a.location.lon is None else repr(a.location.lon),
            "log_sources": ";".join(a.log_sources),
            "log_interval_s": "" if a.log_interval_s is None else a.log_interval_s,
            "description": a.description or "", "tags": ";".join(a.tags)}


# -- health --------------------------------------------------------------------------------
EWMA_ALPHA = 0.1
"""Weight of the newest hour in the baseline (about the last ten hours dominate)."""
MIN_BASELINE_HOURS = 6
DEGRADED_LOW = 0.25
DEGRADED_HIGH = 4.0
_MAX_CATCHUP_HOURS = 24 * 7


def _roll(h: AssetHealth, hour: int) -> None:
    """Close ``h.hour`` (and the empty hours up to ``hour``) into the baseline."""
    if h.hour is None:
        h.hour = hour
        return
    if hour <= h.hour:
        return
    counts = [h.hour_count] + [0] * min(hour - h.hour - 1, _MAX_CATCHUP_HOURS)
    for c in counts:
        h.baseline = float(c) if h.baseline is None else (1 - EWMA_ALPHA) * h.baseline + EWMA_ALPHA * c
        h.hours += 1
    h.last_hour_count = counts[-1]
    h.hour = hour
    h.hour_count = 0


def event_epoch(ts: Any) -> float | None:
    """Whole epoch seconds of an ECS ``@timestamp`` text (None if it is not one). Events
    that came through the pipeline carry their epoch already: use
    :func:`core.events.event_ms` for those."""
    if not isinstance(ts, str) or len(ts) < 19 or ts[10] != "T":
        return None
    try:
        return float(iso_ms(ts) // 1000)
    except (TimestampError, ValueError, OverflowError):
        return None


class HealthTracker:
    """Counts, per asset, when it was last heard from and its events per hour.

    A pipeline detector that never detects: ``process`` reads ``citysoc.asset.id`` (set by
    the enricher) and updates two counters, which is all that is done per event.
    ``clock="event"`` dates events by their ``@timestamp`` (replays, the demo);
    ``clock="wall"`` by arrival (live: a device with a wrong clock still counts as heard).
    """

    name = "asset-health"

    def __init__(self, *, clock: str = "wall", initial: Mapping[str, AssetHealth] | None = None,
                 now: Callable[[], float] = time.time):
        if clock not in ("wall", "event"):
            raise ValueError("clock is 'wall' or 'event'")
        self.clock = clock
        self._now = now
        self._h: dict[str, AssetHealth] = {k: replace(v) for k, v in (initial or {}).items()}
        self._lock = threading.Lock()
        self.latest = 0.0
        """The newest time seen (event clock) or observed (wall clock)."""

    def process(self, event: Event) -> list[Detection]:
        c = event.get("citysoc")
        if not c:
            return []
        a = c.get("asset") if isinstance(c, dict) else None
        aid = a.get("id") if isinstance(a, dict) else None
        if aid is None:
            return []
        if self.clock == "event":
            ms = event_ms(event)
            t = None if ms is None else float(ms // 1000)
        else:
            t = self._now()
        if t is None:
            t = self._now()
        self.observe(aid, t)
        return []

    def observe(self, asset_id: str, t: float, n: int = 1) -> None:
        hour = int(t // 3600)
        with self._lock:
            h = self._h.get(asset_id)
            if h is None:
                h = self._h[asset_id] = AssetHealth(asset_id)
            if h.hour != hour:
                if h.hour is None or hour > h.hour:
                    _roll(h, hour)
                else:  # a late event of an earlier hour: counted in the total only
                    h.total += n
                    return
            h.hour_count += n
            h.total += n
            if h.last_seen is None or t > h.last_seen:
                h.last_seen = t
            if t > self.latest:
                self.latest = t

    def advance(self, now: float) -> None:
        """Close the hours that passed with no event (so a quiet asset's rate falls)."""
        hour = int(now // 3600)
        with self._lock:
            for h in self._h.values():
                if h.hour is not None and hour > h.hour:
                    _roll(h, hour)

    def snapshot(self) -> list[AssetHealth]:
        with self._lock:
            return [replace(h) for h in self._h.values()]

    def get(self, asset_id: str) -> AssetHealth | None:
        with self._lock:
            h = self._h.get(asset_id)
            return replace(h) if h is not None else None


def expected_interval(asset: Asset) -> int:
    return asset.log_interval_s or DEFAULT_INTERVALS.get(asset.type, 3600)


def health_status(asset: Asset, h: AssetHealth | None, now: float) -> str:
    """``unknown`` (never heard), ``silent`` (quiet past its interval), ``degraded``
    (last hour's rate far off its own baseline), else ``healthy``."""
    if h is None or h.last_seen is None:
        return "unknown"
    if now - h.last_seen > expected_interval(asset):
        return "silent"
    if (h.baseline is not None and h.hours >= MIN_BASELINE_HOURS and h.baseline >= 1.0
            and h.last_hour_count is not None
            and not DEGRADED_LOW * h.baseline <= h.last_hour_count <= DEGRADED_HIGH * h.baseline):
        return "degraded"
    return "healthy"


# -- risk -----------------------------------------------------------------------------------
RISK_HALF_LIFE_S = 24 * 3600.0
"""A closed alert's weight halves every day (true positives leave a fading trace)."""


def alert_weight(level: str, criticality: int) -> float:
    """Chance-like weight 0..1 of one open alert: level (1-5) x criticality (1-5) / 25."""
    c = criticality if 1 <= criticality <= 5 else 3
    return level_number(level) * c / 25.0


def asset_risk(alerts: Iterable[Any], criticality: int, now: float) -> int:
    """0..100: ``1 - prod(1 - w_i)`` over the asset's alerts, closed ones decaying.

    ``alerts`` are :class:`core.alerts.Alert` (duck-typed: ``level``, ``status``,
    ``resolution``, ``updated_at``). A false-positive or benign closure counts nothing.
    """
    keep = 1.0
    for al in alerts:
        w = alert_weight(al.level, criticality)
        if al.status == "closed":
            if al.resolution in ("false_positive", "benign"):
                continue
            try:
                age = max(0.0, now - parse_timestamp(al.updated_at).timestamp())
            except ValueError:
                age = 0.0
            w *= math.pow(0.5, age / RISK_HALF_LIFE_S)
        keep *= 1.0 - min(w, 1.0)
    return round(100 * (1.0 - keep))


def center_summary(center: str, assets: Sequence[Asset], health: Mapping[str, AssetHealth], alerts: Sequence[Any],
                   now: float) -> dict[str, Any]:
    """One center's status: assets by type and status, open alerts by level, risk (max and top 5)."""
    by_status = dict.fromkeys(HEALTH_STATUSES, 0)
    by_type: dict[str, int] = {}
    for a in assets:
        by_status[health_status(a, health.get(a.id), now)] += 1
        by_type[a.type] = by_type.get(a.type, 0) + 1
    per_asset: dict[str, list[Any]] = {}
    open_by_level: dict[str, int] = {}
    open_n = 0
    for al in alerts:
        if al.status != "closed":
            open_n += 1
            open_by_level[al.level] = open_by_level.get(al.level, 0) + 1
        aid = al.entities.asset_id
        if aid:
            per_asset.setdefault(aid, []).append(al)
    crit = {a.id: a.criticality for a in assets}
    risks = sorted(((asset_risk(v, crit.get(k, 3), now), k) for k, v in per_asset.items() if k in crit), reverse=True)
    return {"center": center, "assets": len(assets), "by_status": by_status, "by_type": by_type,
            "open_alerts": open_n, "open_by_level": open_by_level, "risk": risks[0][0] if risks else 0,
            "top_risk": [{"asset_id": k, "risk": r} for r, k in risks[:5] if r > 0]}


SilentCheck = Callable[[Sequence[Asset], Mapping[str, "AssetHealth"], float], list[Detection]]
"""``(assets, health by asset id, now) -> asset:silent detections``."""


class AssetMonitor:
    """The scheduler's periodic asset job: flush health counters to the store, pick up
    inventory changes (``on_change`` gets the new list: the wiring rebuilds the enricher's
    index), and hand the health to ``silent`` (the ``asset:silent`` detector of
    ``detections.assets``, wired by ``citysoc``), whose detections go to the alert sink.

    ``tick`` is synchronous (run it in a thread); ``clock`` gives "now" (epoch seconds).
    """

    def __init__(self, store: AssetStore, tracker: HealthTracker, *, alert_sink: Any = None,
                 on_change: Callable[[list[Asset]], None] | None = None,
                 silent: SilentCheck | None = None, clock: Callable[[], float] = time.time):
        self.store = store
        self.tracker = tracker
        self.alert_sink = alert_sink
        self.on_change = on_change
        self.silent = silent
        self.clock = clock
        self.assets: list[Asset] = []
        self._version: int | None = None
        self.ticks = 0
        self.silent_raised = 0

    def refresh(self, *, force: bool = False) -> bool:
        """Reload the inventory when its version moved; True when it did."""
        v = self.store.version()
        if not force and v == self._version:
            return False
        self._version = v
        self.assets = self.store.list()
        if self.on_change is not None:
            self.on_change(self.assets)
        return True

    def tick(self) -> list[Detection]:
        now = self.clock()
        if self.tracker.clock == "wall":
            self.tracker.advance(now)
        self.refresh()
        known = {a.id for a in self.assets}
        snap = [h for h in self.tracker.snapshot() if h.asset_id in known]  # a deleted asset's counters stay out
        if snap:
            self.store.save_health(snap)
        dets = self.silent(self.assets, {h.asset_id: h for h in snap}, now) if self.silent is not None else []
        if dets and self.alert_sink is not None:
            self.alert_sink.emit(dets)
        self.silent_raised += len(dets)
        self.ticks += 1
        return dets
