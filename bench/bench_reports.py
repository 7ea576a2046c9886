"""Report generation: time and peak Python memory for a period of N alerts, against a
bare ``SELECT`` of the same rows with sqlite3 in the same run.

Alerts are recorded through the real soc.db store (``AlertStore.record``), spread over a
week, with 0.5 % triaged through the audited path (so MTTA/MTTR have work to do). Then:

* **baseline**: ``SELECT <the store's columns> FROM alerts WHERE last_seen >= ? AND
  last_seen < ?`` iterated row by row with plain sqlite3 (the floor: reading the rows);
* **csv** / **json** / **pdf**: ``reports.generate.generate_report`` for the same week.

Each is run twice: once for wall time, once under ``tracemalloc`` for the peak of Python
allocations (bounded memory is the point: a CSV of 1M alerts must not hold them).
N = 100k and 1M (``--quick``: 10k and 100k).

Run: ``.venv/bin/python -m bench.run reports [--quick]``.
"""
from __future__ import annotations

import datetime as _dt
import shutil
import sqlite3
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

from citysoc.wiring import build_reports, open_soc
from core.alerts import Alert
from core.events import to_utc_iso
from core.protocols import Detection
from core.settings import Settings
from reports.generate import generate_report
from reports.period import parse_period

__all__ = ["run"]

START = _dt.datetime(2026, 11, 15, 17, 0, tzinfo=_dt.timezone.utc)  # 2026-11-16 00:00 in the city
LEVELS = ("informational", "low", "medium", "high", "critical")
CENTERS = ("operations", "warehouse", "forecasting", "security")
BATCH = 5000
COLS = ("id, dedupe_key, rule_id, rule_title, level, tags, engine, description, host, user_name, source_ip, "
        "destination_ip, asset_id, center, criticality, risk_score, status, resolution, assignee, first_seen, "
        "last_seen, count, created_at, updated_at, events_query, case_id")


def _fill(soc: Any, n: int) -> float:
    t0 = time.perf_counter()
    step = 7 * 86400 / n
    now = to_utc_iso(START + _dt.timedelta(days=8))
    for b in range(0, n, BATCH):
        alerts = []
        for i in range(b, min(n, b + BATCH)):
            ts = to_utc_iso(START + _dt.timedelta(seconds=i * step))
            ev = {"@timestamp": ts, "host": {"name": f"cam-{i}"}, "source": {"ip": f"10.{i % 250}.{i // 250 % 250}.1"},
                  "citysoc": {"center": CENTERS[i % 4], "asset": {"id": f"asset-{i % 500}", "criticality": 1 + i % 5}}}
            alerts.append(Alert.from_detection(Detection(rule_id=f"rule-{i % 40}", title=f"Rule {i % 40}",
                                                         level=LEVELS[i % 5], events=[ev], tags=["attack.t1110"]), now))
        soc.alerts.record(alerts, window_s=1)
    for aid in range(1, n + 1, 200):
        before, after = soc.alerts.update(aid, status="closed", resolution="true_positive")
        soc.audit.append("user:bench", "alert.update", f"alert:{aid}", before={"status": before.status},
                         after={"status": after.status})
    return time.perf_counter() - t0


def _measure(fn: Callable[[], Any]) -> dict[str, float]:
    t0 = time.perf_counter()
    fn()
    wall = time.perf_counter() - t0
    tracemalloc.start()
    fn()
    _cur, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {"s": round(wall, 3), "peak_mib": round(peak / 2**20, 2)}


def _one(n: int) -> dict[str, Any]:
    d = Path(tempfile.mkdtemp(prefix="bench-reports-"))
    try:
        settings = Settings(data=d)
        soc = open_soc(settings)
        fill_s = _fill(soc, n)
        gen, _ev = build_reports(settings, soc)
        period = parse_period("2026-11-16", "2026-11-22")

        def baseline() -> None:
            conn = sqlite3.connect(d / "soc.db")
            rows = 0
            for _row in conn.execute(f"SELECT {COLS} FROM alerts WHERE last_seen >= ? AND last_seen < ?",
                                     (period.start_iso, period.end_iso)):
                rows += 1
            conn.close()
            assert rows == n, (rows, n)

        def report(fmt: str) -> Callable[[], None]:
            def go() -> None:
                m = generate_report(gen.sources, period, d / f"week.{fmt}", fmt=fmt, lang="vi", actor="bench")
                assert m["figures"]["alerts"] == n

            return go

        out: dict[str, Any] = {"alerts": n, "fill_s": round(fill_s, 1), "baseline_select": _measure(baseline)}
        for fmt in ("csv", "json", "pdf"):
            out[fmt] = _measure(report(fmt))
            out[fmt]["x_baseline_time"] = round(out[fmt]["s"] / max(out["baseline_select"]["s"], 1e-9), 1)
            out[fmt]["bytes"] = (d / f"week.{fmt}").stat().st_size
        soc.close()
        return out
    finally:
        shutil.rmtree(d, ignore_errors=True)


def run(quick: bool = False) -> dict[str, Any]:
    sizes = (10_000, 100_000) if quick else (100_000, 1_000_000)
    return {f"{n}": _one(n) for n in sizes}
