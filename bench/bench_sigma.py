"""Sigma engine benchmark: SigmaHQ Windows rules over the EVTX attack-samples corpus.

Measures, in one run: rules loaded; end-to-end detect rate (load rules, parse EVTX,
normalise to ECS, match); match-only rate on the corpus repeated (per-event cost); cost
with 100 / 1,000 / all rules; cold vs cached start; and a **baseline in the same run**:
the SQLite-per-rule approach (pySigma's sqlite backend converts each rule, events are
flattened into one SQLite table, each rule runs as a query), so the ratio is measured.
"""
from __future__ import annotations

import gc
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CORPORA = ROOT.parent / "shared" / "corpora"
EVTX = CORPORA / "evtx"
SIGMA = CORPORA / "sigma"
RULE_DIRS = [SIGMA / "rules" / "windows", SIGMA / "rules-emerging-threats", SIGMA / "rules-threat-hunting"]


def _events() -> list[dict[str, Any]]:
    from collectors.evtx import EvtxReader

    return [ev for f in sorted(EVTX.rglob("*.evtx")) for ev in EvtxReader(f)]


def _windows(specs: list[Any]) -> list[Any]:
    return [s for s in specs if (s.product or "") == "windows"]


def _start_time(cache: Path) -> float:
    code = (
        "import time;t=time.perf_counter();"
        "from detections.sigma import load_rules, SigmaEngine;"
        f"rs=load_rules({[str(d) for d in RULE_DIRS]!r}, cache_dir={str(cache)!r});"
        "SigmaEngine([s for s in rs.rules if (s.product or '')=='windows']);"
        "print(time.perf_counter()-t)"
    )
    outp = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    return float(outp.stdout.strip().splitlines()[-1])


def _sqlite_baseline(events: list[dict[str, Any]], limit_rules: int | None) -> dict[str, Any]:
    """Convert rules with pySigma's sqlite backend and run each as a query over a table of
    flattened events (Sigma field names as columns, as the sysmon/windows pipelines expect)."""
    from sigma.backends.sqlite import sqliteBackend
    from sigma.collection import SigmaCollection
    from sigma.pipelines.sysmon import sysmon_pipeline
    from sigma.pipelines.windows import windows_logsource_pipeline

    from detections.sigma.loader import rule_files

    t0 = time.perf_counter()
    files = rule_files(RULE_DIRS)
    queries: list[tuple[str, str]] = []
    failed = 0
    for f in files:
        try:
            coll = SigmaCollection.from_yaml(f.read_text(encoding="utf-8"))
        except Exception:
            failed += 1
            continue
        for rule in coll.rules:
            if getattr(rule.logsource, "product", None) != "windows":
                continue
            backend = sqliteBackend(sysmon_pipeline() + windows_logsource_pipeline())
            try:
                q = backend.convert_rule(rule)
            except Exception:
                failed += 1
                continue
            for sql in q:
                queries.append((str(rule.id), sql))
        if limit_rules and len(queries) >= limit_rules:
            break
    convert_s = time.perf_counter() - t0

    t1 = time.perf_counter()
    rows = []
    cols: dict[str, None] = {}
    canon: dict[str, str] = {}
    for ev in events:
        w = ev.get("winlog", {})
        row = dict(w.get("event_data", {}))
        row.update(w.get("user_data", {}))
        row["EventID"] = int(w["event_id"]) if str(w.get("event_id", "")).isdigit() else w.get("event_id")
        row["Channel"] = w.get("channel")
        row["Provider_Name"] = w.get("provider_name")
        row["Computer"] = w.get("computer_name")
        # SQLite column names are case-insensitive: fold SourceProcessGUID/SourceProcessGuid.
        row = {canon.setdefault(k.lower(), k): v for k, v in row.items()}
        rows.append(row)
        for k in row:
            cols.setdefault(k, None)
    db = sqlite3.connect(":memory:")
    db.create_function("REGEXP", 2, lambda p, v: v is not None and re.search(p, str(v)) is not None, deterministic=True)
    names = list(cols)
    db.execute("CREATE TABLE logs (" + ", ".join(f'"{c}"' for c in names) + ")")
    db.executemany(
        "INSERT INTO logs VALUES (" + ", ".join("?" for _ in names) + ")", [[r.get(c) for c in names] for r in rows]
    )
    load_s = time.perf_counter() - t1
    t2 = time.perf_counter()
    hits = 0
    errors = 0
    for _rid, sql in queries:
        try:
            hits += len(db.execute(sql.replace("<TABLE_NAME>", "logs")).fetchall())
        except sqlite3.Error:
            errors += 1
    query_s = time.perf_counter() - t2
    return {
        "rules": len(queries),
        "rule_failures": failed,
        "query_errors": errors,
        "hits": hits,
        "convert_s": round(convert_s, 2),
        "load_events_s": round(load_s, 3),
        "query_s": round(query_s, 2),
        "match_events_per_s": round(len(events) / query_s, 1) if query_s else None,
        "end_to_end_s": round(convert_s + load_s + query_s, 2),
    }


def run(quick: bool) -> dict[str, Any]:
    if not EVTX.is_dir() or not SIGMA.is_dir():
        return {"skipped": f"corpora not found under {CORPORA}"}
    from detections.sigma import SigmaEngine, load_rules

    repeat = 5 if quick else 50
    res: dict[str, Any] = {}
    cache = Path(tempfile.mkdtemp(prefix="bench-sigma-cache-"))
    try:
        # -- end to end, cold: load rules (no cache), parse EVTX, normalise, match ----------
        t0 = time.perf_counter()
        rs = load_rules(RULE_DIRS, cache_dir=cache)
        specs = _windows(rs.rules)
        engine = SigmaEngine(specs)
        gc.freeze()  # as `citysoc detect` does: loaded plans never become garbage
        t_load = time.perf_counter() - t0
        t1 = time.perf_counter()
        events = _events()
        t_parse = time.perf_counter() - t1
        t2 = time.perf_counter()
        hits = sum(len(engine.process(ev)) for ev in events)
        t_match_first = time.perf_counter() - t2
        e2e = t_load + t_parse + t_match_first
        res["rules_loaded"] = len(engine.rules)
        res["rule_failures"] = len(rs.failures) + len(engine.failures)
        res["events"] = len(events)
        res["end_to_end"] = {
            "load_rules_s": round(t_load, 2),
            "parse_normalize_s": round(t_parse, 3),
            "match_s": round(t_match_first, 3),
            "total_s": round(e2e, 2),
            "events_per_s": round(len(events) / e2e, 1),
            "hits": hits,
        }
        res["top_rules"] = [
            {"hits": n, "title": next(s.title for s in specs if s.id == rid)} for rid, n in engine.hits.most_common(10)
        ]

        # -- matching rate on the corpus repeated ---------------------------------------
        t3 = time.perf_counter()
        for _ in range(repeat):
            for ev in events:
                engine.process(ev)
        dt = time.perf_counter() - t3
        res["repeated"] = {"repeat": repeat, "events": repeat * len(events), "s": round(dt, 2),
                           "events_per_s": round(repeat * len(events) / dt, 1)}

        # -- cost by rule count -------------------------------------------------------
        scaling = {}
        for n in (100, 1000, len(specs)):
            eng = SigmaEngine(specs[:n])
            for ev in events:  # warm the route cache
                eng.process(ev)
            reps = max(1, repeat // 5)
            t = time.perf_counter()
            for _ in range(reps):
                for ev in events:
                    eng.process(ev)
            d = time.perf_counter() - t
            scaling[str(n)] = {"events_per_s": round(reps * len(events) / d, 1), "us_per_event": round(1e6 * d / (reps * len(events)), 1)}
        res["by_rule_count"] = scaling

        # -- literal prefilter off (what routing alone gives), same run -----------------
        eng = SigmaEngine(specs)
        n_rules = 0
        t = time.perf_counter()
        from detections.sigma.logsources import event_route_key
        from detections.sigma.matchers import EventView

        for ev in events:
            key = event_route_key(ev)
            view = EventView(ev, key)
            for r in eng.rules_for(key):
                n_rules += 1
                r.match(view)
        d = time.perf_counter() - t
        res["routing_only_events_per_s"] = round(len(events) / d, 1)

        # -- cold vs cached start (fresh processes) -------------------------------------
        res["start"] = {"cached_s": round(_start_time(cache), 3)}
        shutil.rmtree(cache, ignore_errors=True)
        res["start"]["cold_s"] = round(_start_time(cache), 3)

        # -- baseline: SQLite per rule, same corpus, same run ---------------------------
        base = _sqlite_baseline(events, limit_rules=200 if quick else None)
        res["sqlite_baseline"] = base
        if not quick:
            res["ratio_end_to_end"] = round(base["end_to_end_s"] / e2e, 2)
            res["ratio_match_only"] = round((base["query_s"] / len(events)) / (dt / (repeat * len(events))), 1)
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    for k, v in res.items():
        print(f"{k}: {v}")
    return res


if __name__ == "__main__":  # pragma: no cover
    run("--quick" in sys.argv)
