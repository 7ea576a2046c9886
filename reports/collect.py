"""Gathers a report's figures from the stores in one pass each, in bounded memory.

Two passes, in this order:

1. **The audit log, once** (``AuditLog.iter_all``): the chain is verified on the way
   (the report states whether it was intact and its head), and it yields each alert's
   first *acknowledge* (first audited ``alert.update`` whose status leaves ``new``) and
   last *close* (last audited change to ``closed``), plus the rule and account changes
   of the period. Memory grows with the number of audited alert changes, not alerts.
2. **The alerts, once**, in keyset pages of ``page_size`` (``AlertFilter`` on
   ``last_seen`` with ``sort="last_seen"``: never an ``OFFSET`` that grows with the
   period). Every figure is a counter updated per alert, and ``on_alert`` lets the CSV
   writer emit each row as it goes; no alert list is ever held.

MTTA = mean of (acknowledge - ``first_seen``), MTTR = mean of (close - ``first_seen``)
over the period's alerts that have that audited change. Alerts closed without an audit
entry (a direct store write) are counted as ``unaudited_closures``, never guessed.

Sections whose source is not wired (no asset store, no playbook runs, no rule catalog)
are ``None`` and named in ``not_available``: a report never invents a figure.
"""
from __future__ import annotations

import datetime as _dt
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from core.alerts import LEVELS, RESOLUTIONS, STATUSES, Alert, AlertFilter, AlertStore, CaseStore
from core.assets import HEALTH_STATUSES, RISK_HALF_LIFE_S, AssetStore, alert_weight, health_status
from core.audit import AuditEntry, AuditLog, verify_chain
from core.events import parse_timestamp, to_utc_iso, utc_now_iso
from core.protocols import RuleCatalog
from reports.i18n import zone
from reports.period import Period

__all__ = ["Sources", "AlertTimes", "collect", "iter_alerts", "SCHEMA", "SECTIONS"]

SCHEMA = "citysoc.report/1"
SECTIONS = ("availability", "playbook_runs", "coverage")
"""Sections that depend on an optional source; listed in ``not_available`` when it is missing."""
TOP_RULES = 20
TOP_ASSETS = 10
MAX_RUNS = 500
MAX_CHANGES = 1000
MAX_CASES = 500
SILENT_RULE = "asset:silent"


@dataclass(slots=True)
class Sources:
    """Where a report reads from: ``core`` protocols handed in by ``citysoc/``."""

    alerts: AlertStore
    cases: CaseStore
    audit: AuditLog
    assets: AssetStore | None = None
    runs: Any = None
    """Anything with ``list_runs(limit=, offset=)`` newest first (``core.playbooks.RunStore``
    or ``PlaybookRunner``)."""
    rules: RuleCatalog | Callable[[], RuleCatalog | None] | None = None
    """The catalog, or a function returning it (the server wires the Sigma engine's catalog
    after the report service: a late-bound lookup sees it)."""
    clock: Callable[[], float] = time.time

    def rule_catalog(self) -> RuleCatalog | None:
        r = self.rules
        return r if r is None or hasattr(r, "list_rules") else r()  # type: ignore[operator]


@dataclass(slots=True)
class AlertTimes:
    """Audited acknowledge and close times of one alert (ISO UTC, or None)."""

    acknowledged_at: str | None = None
    closed_at: str | None = None


def _secs(a: str, b: str) -> float:
    return max(0.0, (parse_timestamp(b) - parse_timestamp(a)).total_seconds())


def iter_alerts(store: AlertStore, period: Period, page_size: int = 2000) -> Iterator[Alert]:
    """Every alert with ``start <= last_seen < end``, oldest first, one page in memory.

    Keyset paging on (last_seen, id): the next page starts at the last ``last_seen`` seen
    and skips the rows already read at exactly that time, so a page costs the same at the
    end of a million alerts as at the start."""
    since = period.start_iso
    ties = 0  # rows already returned whose last_seen == since
    while True:
        _n, page = store.list(AlertFilter(since=since, until=period.end_iso, sort="last_seen", limit=page_size,
                                          offset=ties, count_up_to=0))
        if not page:
            return
        yield from page
        last = page[-1].last_seen
        same = sum(1 for a in page if a.last_seen == last)
        ties = ties + same if last == since else same
        since = last
        if len(page) < page_size:
            return


def _status_of(v: Any) -> str | None:
    return v.get("status") if isinstance(v, dict) else None


class _AuditPass:
    """Pass 1: verify the chain and pick out what the report needs."""

    def __init__(self, period: Period):
        self.period = period
        self.times: dict[int, AlertTimes] = {}
        self.rule_changes: list[dict[str, Any]] = []
        self.account_changes: list[dict[str, Any]] = []
        self.in_period = 0
        self.head_seq = 0
        self.rule_changes_total = 0  # the lists stop at MAX_CHANGES; the totals do not
        self.account_changes_total = 0

    def _see(self, e: AuditEntry) -> None:
        self.head_seq = e.seq
        if e.action == "alert.update" and e.target.startswith("alert:"):
            before, after = _status_of(e.before), _status_of(e.after)
            if after and before != after:
                try:
                    aid = int(e.target[6:])
                except ValueError:
                    aid = -1
                if aid > 0:
                    t = self.times.get(aid)
                    if t is None:
                        t = self.times[aid] = AlertTimes()
                    if before == "new" and t.acknowledged_at is None:
                        t.acknowledged_at = e.time
                    if after == "closed":
                        t.closed_at = e.time
        if not (self.period.start_iso <= e.time < self.period.end_iso):
            return
        self.in_period += 1
        if e.action.startswith("rule."):
            self.rule_changes_total += 1
            bucket = self.rule_changes
        elif e.action.startswith(("user.", "apikey.")):
            self.account_changes_total += 1
            bucket = self.account_changes
        else:
            return
        if len(bucket) < MAX_CHANGES:
            bucket.append({"seq": e.seq, "time": e.time, "actor": e.actor, "action": e.action, "target": e.target,
                           "before": e.before, "after": e.after})

    def run(self, log: AuditLog) -> dict[str, Any]:
        def tee() -> Iterator[AuditEntry]:
            for e in log.iter_all():
                self._see(e)
                yield e

        r = verify_chain(tee())
        return {"ok": r.ok, "entries": r.checked, "head": r.head, "head_seq": self.head_seq if r.ok else None,
                "first_bad_seq": r.first_bad_seq, "reason": r.reason, "entries_in_period": self.in_period}


class _AlertPass:
    """Pass 2: counters over the period's alerts."""

    def __init__(self, period: Period, times: dict[int, AlertTimes], crit: dict[str, int], now: float):
        self.tz = zone(period.tz)
        self.times = times
        self.crit = crit
        self.now = now
        self.total = 0
        self.by_level = dict.fromkeys(LEVELS, 0)
        self.by_status = dict.fromkeys(STATUSES, 0)
        self.by_resolution = dict.fromkeys(RESOLUTIONS, 0)
        self.by_center: dict[str, int] = {}
        self.by_rule: dict[str, list[Any]] = {}
        self.per_day = dict.fromkeys(period.days(), 0)
        self.mtta = [0.0, 0]
        self.mttr = [0.0, 0]
        self.unaudited = 0
        self.assets: dict[str, list[Any]] = {}  # id -> [keep, alerts, max level, center]
        self.silent: dict[str, dict[str, int]] = {}  # center -> asset -> silent alerts
        self._day_cache: dict[str, str] = {}
        self._weights: dict[tuple[str, int], float] = {}  # alert_weight per (level, criticality)

    def _day(self, ts: str) -> str:
        hour = ts[:13]
        d = self._day_cache.get(hour)
        if d is None:
            d = parse_timestamp(ts).astimezone(self.tz).date().isoformat()
            self._day_cache[hour] = d
        return d

    def add(self, a: Alert) -> AlertTimes | None:
        self.total += 1
        self.by_level[a.level] = self.by_level.get(a.level, 0) + 1
        self.by_status[a.status] = self.by_status.get(a.status, 0) + 1
        if a.status == "closed" and a.resolution:
            self.by_resolution[a.resolution] = self.by_resolution.get(a.resolution, 0) + 1
        center = a.entities.center or ""
        self.by_center[center] = self.by_center.get(center, 0) + 1
        r = self.by_rule.get(a.rule_id)
        if r is None:
            self.by_rule[a.rule_id] = [a.rule_title, 1]
        else:
            r[1] += 1
        day = self._day(a.last_seen)
        self.per_day[day] = self.per_day.get(day, 0) + 1
        t = self.times.get(a.id)
        if t is not None and t.acknowledged_at:
            self.mtta[0] += _secs(a.first_seen, t.acknowledged_at)
            self.mtta[1] += 1
        if a.status == "closed":
            if t is not None and t.closed_at:
                self.mttr[0] += _secs(a.first_seen, t.closed_at)
                self.mttr[1] += 1
            else:
                self.unaudited += 1
        aid = a.entities.asset_id
        if aid:
            self._risk(a, aid, center)
            if a.rule_id == SILENT_RULE:
                per = self.silent.setdefault(center, {})
                per[aid] = per.get(aid, 0) + 1
        return t

    def _risk(self, a: Alert, aid: str, center: str) -> None:
        # core.assets.asset_risk's formula (1 - prod(1 - w)), accumulated one alert at a time.
        crit = self.crit.get(aid) or a.entities.criticality or 3
        key = (a.level, crit)
        w = self._weights.get(key)
        if w is None:
            w = self._weights[key] = alert_weight(a.level, crit)
        if a.status == "closed":
            if a.resolution in ("false_positive", "benign"):
                w = 0.0
            else:
                try:
                    age = max(0.0, self.now - parse_timestamp(a.updated_at).timestamp())
                except ValueError:
                    age = 0.0
                w *= math.pow(0.5, age / RISK_HALF_LIFE_S)
        s = self.assets.get(aid)
        if s is None:
            s = self.assets[aid] = [1.0, 0, a.level, center]
        s[0] *= 1.0 - min(w, 1.0)
        s[1] += 1
        if LEVELS.get(a.level, 0) > LEVELS.get(s[2], 0):
            s[2] = a.level

    def result(self, assets: dict[str, Any]) -> dict[str, Any]:
        rules = sorted(self.by_rule.items(), key=lambda kv: (-kv[1][1], kv[0]))
        top = sorted(((round(100 * (1 - s[0])), aid, s) for aid, s in self.assets.items()),
                     key=lambda x: (-x[0], -x[2][1], x[1]))[:TOP_ASSETS]
        return {
            "alerts": {
                "total": self.total,
                "open": self.total - self.by_status.get("closed", 0),
                "closed": self.by_status.get("closed", 0),
                "by_level": self.by_level, "by_status": self.by_status, "by_resolution": self.by_resolution,
                "by_center": [{"center": c, "count": n} for c, n in
                              sorted(self.by_center.items(), key=lambda kv: (-kv[1], kv[0]))],
                "by_rule": [{"rule_id": k, "title": v[0], "count": v[1]} for k, v in rules[:TOP_RULES]],
                "rules_total": len(rules),
                "per_day": [{"day": d, "count": n} for d, n in sorted(self.per_day.items())],
            },
            "response": {
                "mtta_s": self.mtta[0] / self.mtta[1] if self.mtta[1] else None, "mtta_n": self.mtta[1],
                "mttr_s": self.mttr[0] / self.mttr[1] if self.mttr[1] else None, "mttr_n": self.mttr[1],
                "unaudited_closures": self.unaudited,
            },
            "top_assets": [{"asset_id": aid, "name": getattr(assets.get(aid), "name", None), "center": s[3] or None,
                            "criticality": self.crit.get(aid), "risk": risk, "alerts": s[1], "max_level": s[2]}
                           for risk, aid, s in top if risk > 0],
        }


def _availability(store: AssetStore, silent: dict[str, dict[str, int]], now: float) -> dict[str, Any]:
    assets = store.list()
    health = store.health()
    centers: dict[str, dict[str, Any]] = {}
    names = {a.id: a.name for a in assets}
    for a in assets:
        c = centers.setdefault(a.center, {"center": a.center, "assets": 0, **dict.fromkeys(HEALTH_STATUSES, 0)})
        c["assets"] += 1
        c[health_status(a, health.get(a.id), now)] += 1
    # Silent alerts count for the asset's center in the inventory (the alert's own as a fallback).
    home = {a.id: a.center for a in assets}
    by_home: dict[str, dict[str, int]] = {}
    for center, per_asset in silent.items():
        for aid, n in per_asset.items():
            c = by_home.setdefault(home.get(aid, center), {})
            c[aid] = c.get(aid, 0) + n
    rows = []
    for name in sorted(set(centers) | {c for c in by_home if c}):
        row = centers.get(name) or {"center": name, "assets": 0, **dict.fromkeys(HEALTH_STATUSES, 0)}
        per = by_home.get(name, {})
        row["silent_alerts"] = sum(per.values())
        row["silent_assets"] = [{"asset_id": k, "name": names.get(k), "alerts": n}
                                for k, n in sorted(per.items(), key=lambda kv: (-kv[1], kv[0]))[:10]]
        rows.append(row)
    return {"centers": rows, "assets_total": len(assets), "checked_at": to_utc_iso(
        _dt.datetime.fromtimestamp(now, _dt.timezone.utc))}


def _runs(runs: Any, period: Period) -> dict[str, Any]:
    out: list[dict[str, Any]] = []
    total = 0
    by_status: dict[str, int] = {}
    by_playbook: dict[str, int] = {}
    actions: dict[str, int] = {}
    offset = 0
    while True:
        _n, page = runs.list_runs(limit=200, offset=offset)
        if not page:
            break
        offset += len(page)
        older = 0
        for r in page:
            t = r.created_at or r.started_at
            if t < period.start_iso:
                older += 1
                continue
            if t >= period.end_iso:
                continue
            total += 1
            by_status[r.status] = by_status.get(r.status, 0) + 1
            by_playbook[r.playbook] = by_playbook.get(r.playbook, 0) + 1
            steps = [{"name": s.name, "action": s.action, "status": s.status, "dry_run": r.dry_run,
                      "would": s.would, "error": s.error, "approved_by": s.approved_by}
                     for s in r.steps if s.status not in ("pending",)]
            for s in steps:
                if s["status"] == "succeeded" and not r.dry_run:
                    actions[s["action"]] = actions.get(s["action"], 0) + 1
            if len(out) < MAX_RUNS:
                out.append({"id": r.id, "playbook": r.playbook, "status": r.status, "trigger": r.trigger,
                            "actor": r.actor, "alert_id": r.alert_id, "dry_run": r.dry_run, "created_at": t,
                            "steps": steps})
        if older == len(page):  # newest first: a page wholly before the period ends the walk
            break
    return {"total": total, "by_status": by_status, "by_playbook": by_playbook, "actions": actions,
            "runs": out, "truncated": total > len(out)}


def _coverage(rules: RuleCatalog) -> dict[str, Any]:
    enabled = [r for r in rules.list_rules() if r.enabled]
    tactics: dict[str, dict[str, Any]] = {}
    techniques: set[str] = set()
    unmapped = 0
    for r in enabled:
        tags = [t.lower() for t in r.tags if t.lower().startswith("attack.")]
        techs = {t[7:].upper() for t in tags if t[7:8] == "t" and t[8:9].isdigit()}
        tacs = {t[7:] for t in tags if not (t[7:8] == "t" and t[8:9].isdigit()) and not t[7:8].isdigit()
                and not t[7:].startswith(("g0", "s0"))}
        techniques |= techs
        if not techs and not tacs:
            unmapped += 1
        for tac in tacs or {"(none)"}:
            row = tactics.setdefault(tac, {"tactic": tac, "rules": 0, "techniques": set()})
            row["rules"] += 1
            row["techniques"] |= techs
    return {"rules_enabled": len(enabled), "techniques": sorted(techniques), "unmapped_rules": unmapped,
            "tactics": [{"tactic": k, "rules": v["rules"], "techniques": sorted(v["techniques"])}
                        for k, v in sorted(tactics.items())]}


def _open_cases(cases: CaseStore) -> dict[str, Any]:
    items: list[dict[str, Any]] = []
    total = 0
    for status in ("open", "in_progress"):
        n, page = cases.list_cases(status=status, limit=MAX_CASES)
        total += n
        items += [{"id": c.id, "title": c.title, "status": c.status, "severity": c.severity, "assignee": c.assignee,
                   "created_at": c.created_at, "updated_at": c.updated_at, "alerts": len(c.alert_ids)} for c in page]
    return {"total": total, "cases": items[:MAX_CASES], "truncated": total > MAX_CASES}


def collect(src: Sources, period: Period, *, on_alert: Callable[[Alert, AlertTimes | None], None] | None = None,
            generated_by: str = "", page_size: int = 2000) -> dict[str, Any]:
    """The report's data (JSON-ready, language-neutral); ``on_alert`` sees every alert."""
    now = src.clock()
    catalog = src.rule_catalog()
    generated_at = utc_now_iso()
    audit_pass = _AuditPass(period)
    audit = audit_pass.run(src.audit)
    assets_by_id: dict[str, Any] = {a.id: a for a in src.assets.list()} if src.assets is not None else {}
    crit = {k: a.criticality for k, a in assets_by_id.items()}
    ap = _AlertPass(period, audit_pass.times, crit, now)
    for a in iter_alerts(src.alerts, period, page_size):
        t = ap.add(a)
        if on_alert is not None:
            on_alert(a, t)
    data: dict[str, Any] = {
        "schema": SCHEMA,
        "period": {"start": period.start_iso, "end": period.end_iso, "tz": period.tz, "days": period.days()},
        "generated_at": generated_at, "generated_by": generated_by, "audit": audit,
        **ap.result(assets_by_id),
        "availability": _availability(src.assets, ap.silent, now) if src.assets is not None else None,
        "playbook_runs": _runs(src.runs, period) if src.runs is not None else None,
        "rule_changes": audit_pass.rule_changes,
        "rule_changes_total": audit_pass.rule_changes_total,
        "account_changes": audit_pass.account_changes,
        "account_changes_total": audit_pass.account_changes_total,
        "coverage": _coverage(catalog) if catalog is not None else None,
        "open_cases": _open_cases(src.cases),
    }
    data["not_available"] = [s for s in SECTIONS if data[s] is None]
    return data
