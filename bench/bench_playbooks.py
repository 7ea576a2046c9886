"""Playbooks: time from an alert to the first action, against a direct call of that action.

Each iteration records one detection through the real ``AlertRecorder`` (soc.db), whose
listener hands the new alert to the runner (trigger match, input resolution, run and
step records in playbooks.db, audit entries), which then starts ``block_ip``. Measured:

* ``alert_to_action_start``: from ``emit`` of the detection to the moment the runner
  calls the action (what the runner adds before acting, including the alert write);
* ``alert_to_action_done``: until the action returned;
* baseline ``direct_action``: the same ``block_ip`` called directly, in the same run.

With root and nftables the action is the real ``block_ip`` in a network namespace made
for the benchmark (each iteration blocks a new 10.99.50.x address); without them it
falls back to ``create_case`` (also real: a row in soc.db), and says so.

Run: ``.venv/bin/python -m bench.run playbooks [--quick]``.
"""
from __future__ import annotations

import asyncio
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from core.alerts import AlertRecorder
from core.playbooks import NftSettings, PlaybookSettings
from core.protocols import Detection
from playbooks.actions import ACTIONS, ActionContext
from playbooks.runner import Runner
from playbooks.spec import load_folders
from storage.playbook_runs import SQLiteRunStore
from storage.socdb import open_socdb

__all__ = ["run"]

PLAYBOOK_NFT = """
name: bench-block
trigger: {alert: {tags: [bench.block]}}
inputs: {ip: {type: ip, default: "{{ alert.entities.source_ip }}"}}
steps:
  - name: act
    action: block_ip
    with: {ip: "{{ inputs.ip }}", ttl_s: 60}
    approval: {auto: "benchmark: blocks addresses inside a throw-away namespace"}
  - name: case
    action: create_case
    with: {title: "bench {{ inputs.ip }}", alert_ids: ["{{ alert.id }}"]}
"""

PLAYBOOK_CASE = """
name: bench-block
trigger: {alert: {tags: [bench.block]}}
inputs: {ip: {type: ip, default: "{{ alert.entities.source_ip }}"}}
steps:
  - name: act
    action: create_case
    with: {title: "bench {{ inputs.ip }}", alert_ids: ["{{ alert.id }}"]}
"""


def _pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return round(xs[min(len(xs) - 1, round(p / 100 * (len(xs) - 1)))], 3)


def _summary(xs: list[float]) -> dict[str, float]:
    return {"p50_ms": _pct(xs, 50), "p95_ms": _pct(xs, 95), "mean_ms": round(statistics.fmean(xs), 3),
            "n": len(xs)}


def _netns() -> str | None:
    if os.geteuid() != 0 or not shutil.which("nft") or not shutil.which("ip"):
        return None
    name = f"cspb-bench-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", name], check=True, capture_output=True)
    return name


def run(quick: bool = False) -> dict[str, Any]:
    n = 15 if quick else 60
    ns = _netns()
    tmp = Path(tempfile.mkdtemp(prefix="citysoc-bench-pb-"))
    try:
        settings = PlaybookSettings(nft=NftSettings(command_prefix=["ip", "netns", "exec", ns] if ns else []))
        folder = tmp / "pb"
        folder.mkdir()
        (folder / "bench.yml").write_text(PLAYBOOK_NFT if ns else PLAYBOOK_CASE)
        cat = load_folders([folder], ACTIONS)
        assert not cat.errors, cat.errors
        soc = open_socdb(tmp / "data")
        ctx = ActionContext(settings=settings, data_dir=tmp / "data", alerts=soc.alerts, cases=soc.cases)
        runner = Runner(cat.playbooks, SQLiteRunStore(tmp / "data" / "playbooks.db"), ACTIONS, ctx,
                        settings=settings, audit=soc.audit, alerts=soc.alerts)
        action = "block_ip" if ns else "create_case"
        start_lat: list[float] = []
        done_lat: list[float] = []
        emit_ms: list[float] = []
        direct: list[float] = []

        async def main() -> None:
            recorder = AlertRecorder(soc.alerts, listeners=[runner.alert_listener(asyncio.get_running_loop())])
            began: dict[int, float] = {}
            runner.on_action_start = lambda run_id, step: began.setdefault(run_id, time.perf_counter())
            for i in range(n):
                ip = f"10.99.50.{i + 1}"
                det = Detection(rule_id="bench", title="bench", level="high", tags=["bench.block"],
                                events=[{"@timestamp": "2026-11-25T08:00:00Z", "source": {"ip": ip}}])
                t0 = time.perf_counter()
                await asyncio.to_thread(recorder.emit, [det])
                emit_ms.append((time.perf_counter() - t0) * 1000)
                deadline = time.monotonic() + 30
                while not runner._tasks and time.monotonic() < deadline:
                    await asyncio.sleep(0)
                await runner.drain()
                _total, runs = runner.list_runs(limit=1)
                r = runs[0]
                assert r.status == "succeeded", r.reason
                start_lat.append((began[r.id] - t0) * 1000)
                done_lat.append((began[r.id] - t0) * 1000 + r.steps[0].duration_ms)
                # baseline: the same action, called directly
                dctx = ctx.for_step(run_id=0, playbook="bench", step="direct", actor="bench", timeout=30)
                t1 = time.perf_counter()
                if ns:
                    ACTIONS["block_ip"].run(dctx, ip=f"10.99.51.{i + 1}", ttl_s=60)
                else:
                    ACTIONS["create_case"].run(dctx, title=f"direct {i}", alert_ids=[r.alert_id])
                direct.append((time.perf_counter() - t1) * 1000)

        asyncio.run(main())
        soc.close()
        d50, s50 = _pct(direct, 50), _pct(start_lat, 50)
        return {
            "action": action,
            "real_nftables": bool(ns),
            "iterations": n,
            "alert_to_action_start": _summary(start_lat),
            "alert_to_action_done": _summary(done_lat),
            "alert_write_emit": _summary(emit_ms),
            "baseline_direct_action": _summary(direct),
            "runner_overhead_p50_ms": round(s50, 3),
            "done_vs_direct_p50_ratio": round(_pct(done_lat, 50) / d50, 2) if d50 else None,
        }
    finally:
        if ns:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)
