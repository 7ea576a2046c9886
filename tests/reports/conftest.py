"""A week of real SOC activity for the report tests: alerts recorded through soc.db's
store, triage as the API does it (store update + audit entry), an asset inventory with
health counters, a playbook run, a rule change, user and API-key changes, a case.

The week is the seven local days ending today (so the audit entries written "now" fall
inside it). Expected figures are known by construction and kept on :class:`Week`.
"""
from __future__ import annotations

import datetime as _dt
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from citysoc.wiring import build_reports, open_soc
from core.alerts import Alert, LEVELS
from core.assets import Asset, AssetHealth
from core.events import to_utc_iso
from core.playbooks import Run, StepState
from core.protocols import Detection, RuleInfo
from core.settings import Settings
from storage.assets import SQLiteAssetStore
from storage.playbook_runs import SQLiteRunStore
from storage.sqlite import SQLiteEventStore

HCM = ZoneInfo("Asia/Ho_Chi_Minh")
LEVEL_CYCLE = ("critical", "high", "medium", "low", "informational", "high")
CENTERS = ("operations", "warehouse", "forecasting")
RULES = (("citysoc-cam-bruteforce", "Dò mật khẩu camera"), ("citysoc-db-exfil", "Warehouse bulk export"),
         ("asset:silent", "Asset stopped logging"))


class MemoryRuleCatalog:
    """A real in-memory :class:`core.protocols.RuleCatalog` (the Sigma engine implements the same)."""

    def __init__(self) -> None:
        self.rules = {
            "citysoc-cam-bruteforce": RuleInfo("citysoc-cam-bruteforce", "Camera brute force", "high", True,
                                               ["attack.credential_access", "attack.t1110"]),
            "citysoc-db-exfil": RuleInfo("citysoc-db-exfil", "Warehouse export", "high", True,
                                         ["attack.exfiltration", "attack.t1567", "attack.collection", "attack.t1005"]),
            "citysoc-disabled": RuleInfo("citysoc-disabled", "Disabled", "low", False, ["attack.t1059"]),
        }

    def list_rules(self) -> list[RuleInfo]:
        return list(self.rules.values())

    def get_rule(self, rule_id: str) -> RuleInfo | None:
        return self.rules.get(rule_id)

    def set_enabled(self, rule_id: str, enabled: bool) -> RuleInfo:
        self.rules[rule_id].enabled = enabled
        return self.rules[rule_id]


@dataclass
class Week:
    data: Path
    settings: Settings
    soc: Any
    first_day: _dt.date
    last_day: _dt.date
    per_day: list[int]
    by_level: dict[str, int]
    by_center: dict[str, int]
    alert_ids: list[int]
    closed_unaudited: int
    assets: SQLiteAssetStore
    runs: SQLiteRunStore
    events: SQLiteEventStore
    case_id: int
    rules: MemoryRuleCatalog = field(default_factory=MemoryRuleCatalog)

    @property
    def total(self) -> int:
        return sum(self.per_day)

    def sources(self) -> Any:
        gen, _ev = build_reports(self.settings, self.soc, events=self.events, assets=self.assets, runs=self.runs,
                                 rules=self.rules)
        return gen.sources

    def evidence_sources(self) -> Any:
        return build_reports(self.settings, self.soc, events=self.events, assets=self.assets, runs=self.runs)[1]


def triage(soc: Any, alert_id: int, status: str, resolution: str | None = None, actor: str = "user:an") -> None:
    """What ``PATCH /api/v1/alerts/{id}`` does: the store update plus its audit entry."""
    before, after = soc.alerts.update(alert_id, status=status, resolution=resolution)
    view = lambda a: {"status": a.status, "resolution": a.resolution, "assignee": a.assignee}  # noqa: E731
    soc.audit.append(actor, "alert.update", f"alert:{alert_id}", source_ip="10.10.0.5", before=view(before),
                     after=view(after))


def asset_of(i: int) -> str:
    """The inventory asset of alert ``i``, in the same center as the alert (asset-n is in CENTERS[n % 3])."""
    return {0: "asset-3", 1: "asset-1" if i % 2 else "asset-4", 2: "asset-2"}[i % 3]


def _detection(i: int, ts: _dt.datetime, level: str, center: str, rule: tuple[str, str]) -> Detection:
    ev = {"@timestamp": to_utc_iso(ts), "event": {"action": "failed-login", "dataset": "hikvision"},
          "host": {"name": f"cam-{i:04d}"}, "source": {"ip": f"10.20.{i // 200}.{i % 200 + 1}"},
          "citysoc": {"center": center, "asset": {"id": asset_of(i), "criticality": 4}}}
    return Detection(rule_id=rule[0], title=rule[1], level=level, events=[ev], tags=["attack.t1110"])


def build_week(data: Path) -> Week:
    settings = Settings(data=data)
    soc = open_soc(settings)
    today = _dt.datetime.now(HCM).date()
    first = today - _dt.timedelta(days=6)
    per_day = [3, 5, 2, 7, 4, 6, 3]
    by_level = dict.fromkeys(LEVELS, 0)
    by_center = dict.fromkeys(CENTERS, 0)
    dets: list[Detection] = []
    i = 0
    for d, n in enumerate(per_day):
        day0 = _dt.datetime.combine(first + _dt.timedelta(days=d), _dt.time(1, 0), HCM)
        for j in range(n):
            level, center = LEVEL_CYCLE[i % len(LEVEL_CYCLE)], CENTERS[i % len(CENTERS)]
            by_level[level] += 1
            by_center[center] += 1
            dets.append(_detection(i, day0 + _dt.timedelta(minutes=13 * j), level, center, RULES[i % len(RULES)]))
            i += 1
    now = to_utc_iso(_dt.datetime.now(_dt.timezone.utc))
    changes = soc.alerts.record([Alert.from_detection(x, now) for x in dets], window_s=900)
    ids = [c.alert.id for c in changes]
    assert len(ids) == len(dets) and all(c.created for c in changes)
    # An alert just outside the week (the day before): must not count.
    before = _dt.datetime.combine(first - _dt.timedelta(days=1), _dt.time(12, 0), HCM)
    soc.alerts.record([Alert.from_detection(_detection(9999, before, "critical", "operations", RULES[0]), now)],
                      window_s=900)
    for k, aid in enumerate(ids):
        if k % 3 == 0:
            triage(soc, aid, "acknowledged")
        if k % 4 == 0:
            triage(soc, aid, "closed", "true_positive" if k % 8 == 0 else "false_positive")
    soc.alerts.update(ids[1], status="closed", resolution="benign")  # closed without an audit entry
    soc.audit.append("user:admin", "rule.disable", "rule:citysoc-disabled", before={"enabled": True},
                     after={"enabled": False})
    soc.users.create_user("kiemtoan", "auditor", "mật-khẩu-rất-dài-2026")
    soc.audit.append("user:admin", "user.create", "user:kiemtoan", after={"name": "kiemtoan", "role": "auditor"})
    key, _secret = soc.users.create_api_key("rsyslog-kho", "ingest", "user:admin")
    soc.audit.append("user:admin", "apikey.create", f"apikey:{key.id}", after={"id": key.id, "name": key.name,
                                                                               "role": key.role})
    assets = SQLiteAssetStore(data / "assets.db")
    assets.put_many([Asset(id=f"asset-{n}", name=f"Camera Quận {n}", type="camera", center=CENTERS[n % 3], ips=[f"10.20.0.{n}"],
                           criticality=4) for n in range(1, 5)])
    t = time.time()
    assets.save_health([AssetHealth("asset-1", last_seen=t - 60), AssetHealth("asset-2", last_seen=t - 86400 * 3)])
    runs = SQLiteRunStore(data / "playbooks.db")
    runs.create_run(Run(id=0, playbook="chan-ip-do-mat-khau", status="succeeded", trigger="alert", actor="system:playbooks",
                        alert_id=ids[0], steps=[
                            StepState(index=0, name="block", action="block_ip", status="succeeded"),
                            StepState(index=1, name="notify", action="send_email", status="succeeded")]))
    case = soc.cases.create_case("Tấn công dò mật khẩu camera Quận 1", "điều tra", "high", "user:an",
                                 alert_ids=ids[:2])
    events = SQLiteEventStore(data / "events.db")
    events.ingest([x.events[0] for x in dets[:3]] + [
        {"@timestamp": dets[0].events[0]["@timestamp"], "event": {"action": "other"}, "host": {"name": "elsewhere"}}])
    return Week(data=data, settings=settings, soc=soc, first_day=first, last_day=today, per_day=per_day,
                by_level=by_level, by_center=by_center, alert_ids=ids, closed_unaudited=1, assets=assets,
                runs=runs, events=events, case_id=case.id)


@pytest.fixture(scope="module")
def week(tmp_path_factory: pytest.TempPathFactory) -> Week:
    w = build_week(tmp_path_factory.mktemp("week"))
    yield w
    w.events.close()
    w.soc.close()
