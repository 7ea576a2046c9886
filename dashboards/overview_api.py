"""JSON the console needs that no resource router answers: the overview's aggregates
(open alerts by level and center, alerts over time, top rules and assets) and pipeline
health, plus per-rule hit counts for the rules page. The overview is cached for 10 s
(:data:`CACHE`), so any number of open overview pages cost one computation per 10 s.

Open alerts by level are exact counts (indexed). Centers, rules, assets and the time
series are folded from the most recent alerts, at most ``SCAN_LIMIT`` of them, because
the alert store offers filtered pages, not group-by; the answer says how many it read
(``scanned``) and the page shows it, so nobody mistakes a sample for a census.
"""
from __future__ import annotations

import asyncio
import datetime as _dt
import threading
import time
from collections import Counter, defaultdict
from typing import Any

from fastapi import APIRouter, Query

from api.deps import AlertsDep, StateDep, require
from core.alerts import AlertFilter, AlertStore
from core.levels import LEVELS as ALL_LEVELS

__all__ = ["router", "SCAN_LIMIT", "OPEN_STATUSES", "LEVELS", "overview", "CACHE"]

router = APIRouter(prefix="/console", tags=["console"])

SCAN_LIMIT = 2000
OPEN_STATUSES = ["new", "acknowledged", "in_progress"]
LEVELS = list(reversed(ALL_LEVELS))
"""Highest first, as the overview lists them."""

CanRead = require("alerts:read")


def _scan(alerts: AlertStore, flt: AlertFilter, limit: int) -> list[Any]:
    """The newest ``limit`` alerts matching ``flt``, in one query (no count)."""
    flt.count_up_to = 0
    flt.limit = limit
    flt.offset = 0
    return alerts.list(flt)[1]


class _TTLCache:
    """The overview for all viewers, at most ``ttl_s`` old: every open overview page polls
    it, and with 100k alerts one computation costs about half a second."""

    def __init__(self, ttl_s: float):
        self.ttl_s = ttl_s
        self._lock = threading.Lock()
        self._entries: dict[tuple[int, int], tuple[float, dict[str, Any]]] = {}

    def get(self, store: AlertStore, hours: int) -> dict[str, Any]:
        key = (id(store), hours)
        with self._lock:  # one computation at a time; the others wait and reuse it
            hit = self._entries.get(key)
            if hit is not None and time.monotonic() - hit[0] < self.ttl_s:
                return hit[1]
            value = overview(store, _dt.datetime.now(_dt.timezone.utc), hours)
            self._entries[key] = (time.monotonic(), value)
            return value

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


CACHE = _TTLCache(ttl_s=10.0)


def _hour(iso: str) -> str:
    return iso[:13] + ":00:00Z"


def overview(alerts: AlertStore, now: _dt.datetime, hours: int = 24) -> dict[str, Any]:
    """The overview aggregates (blocking: call in a thread)."""
    by_level: dict[str, int] = {}
    for lv in LEVELS:
        total, _ = alerts.list(AlertFilter(status=OPEN_STATUSES, level=[lv], limit=1, count_up_to=None))
        by_level[lv] = total
    recent_open = _scan(alerts, AlertFilter(status=OPEN_STATUSES, sort="-last_seen"), SCAN_LIMIT)
    centers: Counter[str] = Counter()
    rules: dict[str, dict[str, Any]] = {}
    assets: dict[str, dict[str, Any]] = {}
    for a in recent_open:
        e = a.entities
        centers[e.center or ""] += 1
        r = rules.setdefault(a.rule_id, {"rule_id": a.rule_id, "title": a.rule_title, "level": a.level, "count": 0})
        r["count"] += 1
        key = e.asset_id or e.host or e.source_ip
        if key:
            # the asset's own address, never the attacker's: the source only when the source
            # is what the row is about; else the target (resolved from the inventory later)
            ip = e.source_ip if key == e.source_ip else e.destination_ip
            s = assets.setdefault(key, {"asset": key, "asset_id": e.asset_id, "host": e.host, "ip": ip,
                                        "center": e.center, "criticality": e.criticality, "alerts": 0,
                                        "risk": 0, "max_risk": 0, "last_seen": a.last_seen})
            s["alerts"] += 1
            s["risk"] += a.risk_score
            s["max_risk"] = max(s["max_risk"], a.risk_score)
            s["last_seen"] = max(s["last_seen"], a.last_seen)
    start = (now - _dt.timedelta(hours=hours)).replace(minute=0, second=0, microsecond=0)
    since = start.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    recent = _scan(alerts, AlertFilter(since=since, sort="-last_seen"), SCAN_LIMIT)
    series: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(LEVELS, 0))
    for a in recent:
        if a.last_seen >= since:
            series[_hour(a.last_seen)][a.level if a.level in LEVELS else "informational"] += 1
    buckets = []
    for i in range(hours + 1):
        key = (start + _dt.timedelta(hours=i)).strftime("%Y-%m-%dT%H:00:00Z")
        buckets.append({"key": key, **series.get(key, dict.fromkeys(LEVELS, 0))})
    return {
        "open_by_level": by_level,
        "open_total": sum(by_level.values()),
        "scanned": len(recent_open),
        "scan_limit": SCAN_LIMIT,
        "by_center": [{"key": k, "count": c} for k, c in centers.most_common(12)],
        "top_rules": sorted(rules.values(), key=lambda r: -r["count"])[:10],
        "top_assets": sorted(assets.values(), key=lambda s: (-s["risk"], -s["max_risk"]))[:10],
        "over_time": buckets,
        "over_time_scanned": len(recent),
    }


def named(value: dict[str, Any], rules: Any, assets: Any) -> dict[str, Any]:
    """The overview with each top rule titled by the rule itself (an alert's title may name
    its target: "Port scan of nvr-05") and each at-risk asset's IP from the inventory."""
    out = dict(value)
    top = []
    for r in value["top_rules"]:
        info = rules.get_rule(r["rule_id"]) if rules is not None else None
        top.append({**r, "title": info.title} if info is not None and info.title else dict(r))
    out["top_rules"] = top
    at_risk = []
    for a in value["top_assets"]:
        inv = assets.get(a["asset_id"]) if assets is not None and a.get("asset_id") else None
        at_risk.append({**a, "ip": inv.ips[0]} if inv is not None and inv.ips else dict(a))
    out["top_assets"] = at_risk
    return out


@router.get("/overview", summary="Console overview: open alerts by level/center, over time, top rules and assets")
async def get_overview(_me: CanRead, alerts: AlertsDep, state: StateDep,
                       hours: int = Query(24, ge=1, le=168)) -> dict[str, Any]:
    value = await asyncio.to_thread(CACHE.get, alerts, hours)
    return await asyncio.to_thread(named, value, state.services.rules, state.services.assets)


@router.get("/health", summary="Pipeline and collector health: counters, queue lag, dead letters, alert stream")
async def get_health(_me: require("metrics:read"), state: StateDep) -> dict[str, Any]:
    stages = [c.snapshot() for c in state.pipeline.all_counters()]
    dead = await asyncio.to_thread(state.deadletters.count)
    extra: dict[str, float] = {"detections_total": float(state.pipeline.detections_total)}
    bc = state.services.alert_stream
    if bc is not None:
        extra.update({"alert_stream_subscribers": float(bc.subscribers),
                      "alert_stream_dropped_total": float(bc.dropped)})
    rec = state.services.alert_recorder
    if rec is not None:
        extra.update({"alerts_created_total": float(rec.created), "alerts_suppressed_total": float(rec.suppressed)})
    return {"time": time.time(), "stages": stages, "dead_letters": dead, "ready": state.ready,
            "uptime_s": round(time.time() - state.started_at, 1), "extra": extra}


@router.get("/rule-hits", summary="Alert counts per rule id (for the rules page)")
async def rule_hits(_me: CanRead, alerts: AlertsDep,
                    ids: list[str] = Query(..., max_length=1000)) -> dict[str, int]:
    def count() -> dict[str, int]:
        out: dict[str, int] = {}
        for rid in dict.fromkeys(ids):
            total, _ = alerts.list(AlertFilter(rule_id=rid, limit=1, count_up_to=None))
            out[rid] = total
        return out

    return await asyncio.to_thread(count)
