"""Helpers for the playbook tests: alerts recorded through the real AlertRecorder into a real
soc.db, a runner over the real run store, and the audit trail of a run."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from core.alerts import Alert, AlertRecorder
from core.playbooks import NftSettings, PlaybookSettings
from core.protocols import Detection
from playbooks.actions import ACTIONS, ActionContext
from playbooks.runner import Runner, real_execute
from playbooks.spec import LIBRARY, load_folders
from storage.playbook_runs import SQLiteRunStore


def record_alert(soc: Any, *, rule_id: str = "citysoc-camera-bruteforce", tags: list[str] | None = None,
                 level: str = "high", source_ip: str = "10.99.40.2", host: str = "cam-q1-017",
                 user: str | None = None, extra: dict[str, Any] | None = None, listeners: list | None = None) -> Alert:
    """Record one detection through the real AlertRecorder; returns the stored alert."""
    ev: dict[str, Any] = {"@timestamp": "2026-11-25T08:00:00.000Z", "source": {"ip": source_ip},
                          "host": {"name": host}, "event": {"action": "failed-login"},
                          "citysoc": {"center": "camera-ops", "asset": {"type": "camera"}}}
    if user:
        ev["user"] = {"name": user}
    for k, v in (extra or {}).items():
        ev[k] = v
    rec = AlertRecorder(soc.alerts, listeners=listeners or [])
    changes: list = []
    rec.listeners.append(changes.extend)
    rec.emit([Detection(rule_id=rule_id, title="Camera login brute force", level=level, events=[ev],
                        tags=tags if tags is not None else ["citysoc.camera.bruteforce", "attack.t1110"])])
    return changes[-1].alert


LAB_ALLOW_BLOCK = ["0.0.0.0/0", "::/0", "10.99.0.0/16"]
"""The test lab (tests/playbooks/netns_gateway.py) lives in 10.99.0.0/16, an internal range:
listed here the way a city lists its camera network, so playbooks may act on it."""


def lab_settings(*, nft: dict[str, Any] | None = None, **kw: Any) -> PlaybookSettings:
    """PlaybookSettings whose nft guard lets the playbooks act on the test lab's addresses."""
    return PlaybookSettings(nft=NftSettings(**{"allow_block": LAB_ALLOW_BLOCK, **(nft or {})}), **kw)


def make_runner(soc: Any, tmp_path: Path, *, execute: Any = real_execute, settings: PlaybookSettings | None = None,
                folders: list[Path] | None = None, rescan: Any = None, playbooks: dict | None = None) -> Runner:
    ps = settings or lab_settings()
    catalog = load_folders(folders or [LIBRARY], ACTIONS)
    assert not catalog.errors, [str(e) for e in catalog.errors]
    ctx = ActionContext(settings=ps, data_dir=tmp_path / "data", alerts=soc.alerts, cases=soc.cases, rescan=rescan)
    store = SQLiteRunStore(tmp_path / "data" / "playbooks.db")
    return Runner(playbooks or catalog.playbooks, store, ACTIONS, ctx, settings=ps, audit=soc.audit,
                  alerts=soc.alerts, execute=execute)


def audit_actions(soc: Any, run_id: int) -> list[tuple[str, dict]]:
    _total, entries = soc.audit.list(target=f"playbook_run:{run_id}", limit=1000)
    return [(e.action, {**(e.details or {}), **({"status": e.after.get("status")} if isinstance(e.after, dict) else {})})
            for e in sorted(entries, key=lambda e: e.seq)]
