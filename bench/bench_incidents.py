"""Alert storms on the demo city: queue items per injected scenario, before and after
same-behaviour folding and incident grouping.

The demo (``citysoc demo``'s week, same seed, same parts) is replayed twice, each in its
own temporary folder:

* **before** (the baseline, measured in the same run): ``alerts.behaviours = {}`` and
  ``alerts.incidents.enabled = false``: every alert is its own queue item, as before.
* **after**: the shipped defaults (:class:`core.alerts.AlertSettings`).

For each scenario it counts the alerts whose stored events carry the scenario's
ground-truth label (``labels.demo_scenario``; the silent database: ``asset:silent`` on
its asset) and the incidents those alerts are in, and whether ``demo --check`` still
judges the scenario green (nothing lost). Also: alerts and incidents over the whole run,
wall and CPU time of each replay.

``python -m bench.run incidents`` (``--quick``: a smaller city, 60 cameras, 3 days), or
``python -m bench.bench_incidents`` to print the table alone.
"""
from __future__ import annotations

import asyncio
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

__all__ = ["run", "measure", "count_per_scenario"]


def count_per_scenario(soc_db: Path, scenarios: list[Any]) -> dict[str, dict[str, int]]:
    """scenario id -> {alerts, incidents} read back from a replayed ``soc.db``."""
    conn = sqlite3.connect(soc_db)
    conn.row_factory = sqlite3.Row
    rows = conn.execute("SELECT id, rule_id, asset_id, incident_id, events FROM alerts").fetchall()
    out: dict[str, dict[str, int]] = {}
    for s in scenarios:
        alerts: set[int] = set()
        incidents: set[int] = set()
        for r in rows:
            labels = {((e.get("labels") or {}).get("demo_scenario") if isinstance(e.get("labels"), dict)
                       else e.get("labels.demo_scenario")) for e in orjson.loads(r["events"])}
            mine = s.id in labels or (s.silent_host and r["rule_id"] == "asset:silent"
                                      and r["asset_id"] == s.silent_host)
            if mine:
                alerts.add(r["id"])
                incidents.add(r["incident_id"] if r["incident_id"] is not None else -r["id"])
        out[s.id] = {"alerts": len(alerts), "incidents": len(incidents)}
    n_alerts = conn.execute("SELECT count(*) FROM alerts").fetchone()[0]
    n_inc = conn.execute("SELECT count(*) FROM incidents").fetchone()[0]
    conn.close()
    out["(all)"] = {"alerts": n_alerts, "incidents": n_inc if n_inc else n_alerts}
    return out


def _replay(folder: Path, alerts_cfg: dict[str, Any], cameras: int, days: float) -> dict[str, Any]:
    from citysoc.demo.check import judge
    from citysoc.demo.run import build_world, demo_settings, replay_world
    from core.alerts import AlertSettings

    world = build_world(folder, cameras=cameras, days=days, seed=7)
    settings = demo_settings(folder, world.ingest_dir)
    settings = settings.model_copy(update={"alerts": AlertSettings.model_validate(alerts_cfg)})
    w0, c0 = time.perf_counter(), time.process_time()
    run = asyncio.run(replay_world(world, settings, None))
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    verdicts, unexplained = judge(run)
    counts = count_per_scenario(folder / "soc.db", world.scenarios)
    for v in verdicts:
        counts[v.id]["green"] = int(v.ok)
    return {"counts": counts, "wall_s": round(wall, 1), "cpu_s": round(cpu, 1),
            "unexplained": sum(unexplained.values()), "green": sum(v.ok for v in verdicts),
            "scenarios": len(verdicts)}


def measure(cameras: int = 240, days: float = 7.0) -> dict[str, Any]:
    """Both replays; the figures :func:`run` prints."""
    with tempfile.TemporaryDirectory(prefix="citysoc-bench-inc-") as tmp:
        before = _replay(Path(tmp) / "before", {"behaviours": {}, "incidents": {"enabled": False}}, cameras, days)
        after = _replay(Path(tmp) / "after", {}, cameras, days)
    return {"cameras": cameras, "days": days, "before": before, "after": after}


def table(fig: dict[str, Any]) -> str:
    b, a = fig["before"]["counts"], fig["after"]["counts"]
    lines = [f"{'scenario':28} {'alerts before':>13} {'alerts after':>12} {'queue items before':>18} "
             f"{'incidents after':>15}  green before/after"]
    for sid in b:
        lines.append(f"{sid:28} {b[sid]['alerts']:>13} {a[sid]['alerts']:>12} {b[sid]['incidents']:>18} "
                     f"{a[sid]['incidents']:>15}  {b[sid].get('green', '-')}/{a[sid].get('green', '-')}")
    for k in ("before", "after"):
        r = fig[k]
        lines.append(f"{k}: {r['green']}/{r['scenarios']} scenarios green, replay wall {r['wall_s']} s, "
                     f"CPU {r['cpu_s']} s")
    return "\n".join(lines)


def run(quick: bool = False) -> dict[str, Any]:
    fig = measure(cameras=60, days=3.0) if quick else measure()
    print(table(fig), flush=True)
    return fig


if __name__ == "__main__":
    run()
