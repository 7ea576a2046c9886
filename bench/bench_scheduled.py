"""Scheduled Sigma query rules: one scheduled pass over our pack on 1M stored events,
against the same queries run directly through ``store.count`` in the same run.

What is measured:

1. **Pass vs count**: 1M events (100k quick) of the last hour in a SQLite store; 0.1 %
   are copies of our pack's ``match`` test events (hits), the rest copies of the
   ``nomatch`` events and generic noise. One pass of :class:`ScheduledRunner` (every
   schedulable pack rule, a one-hour lookback so the window holds every event: search
   paging, dedupe against the state file, detections into the real alert recorder and
   soc.db) against ``store.count`` of every branch query over the same window: the
   difference is what fetching hits, keying, dedupe and alerting cost on top of the
   store's own query time. A second pass (same window again) shows the dedupe path
   (hits found, nothing alerted).
2. **Conversion coverage** (not quick): our pack and SigmaHQ ``rules/windows``: how many
   rules convert, how many queries our parser and store accept, the refusal reasons;
   with case variants (default) and without.

Run: ``.venv/bin/python -m bench.run scheduled [--quick]``.
"""
from __future__ import annotations

import collections
import copy
import datetime as dt
import random
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from core.settings import Settings

__all__ = ["run"]

UTC = dt.timezone.utc
ROOT = Path(__file__).resolve().parents[1]
PACK = ROOT / "detections" / "rules" / "sigma"
CORPUS = Path("/work/shared/corpora/sigma/rules/windows")
BATCH = 10_000


def _templates() -> tuple[list[dict], list[dict]]:
    hits, misses = [], []
    for t in sorted(PACK.rglob("*.tests.yml")):
        doc = yaml.safe_load(t.read_text()) or {}
        hits += doc.get("match") or []
        misses += doc.get("nomatch") or []
    return hits, misses


def _events(n: int, now: dt.datetime, rng: random.Random) -> list[dict]:
    hits, misses = _templates()
    out = []
    for i in range(n):
        r = rng.random()
        if r < 0.001:
            ev = copy.deepcopy(rng.choice(hits))
        elif r < 0.3:
            ev = copy.deepcopy(rng.choice(misses))
        else:
            ev = {"event": {"action": rng.choice(["login", "stream-start", "heartbeat", "device-config-change"]),
                            "outcome": rng.choice(["success", "failure"]), "dataset": "camera.log"},
                  "source": {"ip": f"10.20.{rng.randrange(256)}.{rng.randrange(256)}"},
                  "message": f"camera event {i}"}
        ev["@timestamp"] = (now - dt.timedelta(seconds=60 + rng.random() * 3240)).isoformat().replace("+00:00", "Z")
        ev.setdefault("host", {})
        ev["host"] = {**(ev["host"] if isinstance(ev["host"], dict) else {}), "name": f"cam-{i % 5000:04d}"}
        ev.setdefault("labels", {})["seq"] = i  # every document distinct
        out.append(ev)
    return out


def _pass_vs_count(n: int) -> dict[str, Any]:
    from citysoc.wiring import build_alerting, open_soc
    from detections.scheduled import RunState, ScheduledRule, ScheduledRunner, convert_files, validate_queries
    from storage.sqlite import SQLiteEventStore

    tmp = Path(tempfile.mkdtemp(prefix="bench-scheduled-"))
    try:
        store = SQLiteEventStore(tmp / "events.db")
        now = dt.datetime.now(UTC)
        rng = random.Random(7)
        t0 = time.perf_counter()
        for k in range(0, n, BATCH):
            store.ingest(_events(min(BATCH, n - k), now, rng))
        ingest_s = time.perf_counter() - t0
        queries, conv_fail = convert_files([PACK])
        ok, refused = validate_queries(store, queries)
        soc = open_soc(Settings(data=tmp))
        sink, _services = build_alerting(soc)
        rules = [ScheduledRule(q, interval_ms=300_000, lookback_ms=3_600_000) for q in ok]
        runner = ScheduledRunner(rules, store, sink, RunState(tmp / "scheduled.db"), ingest_delay_ms=0,
                                 max_hits=100_000, clock=lambda: int(now.timestamp() * 1000))
        t0 = time.perf_counter()
        first = runner.run_due()
        pass_s = time.perf_counter() - t0
        start, end = now - dt.timedelta(hours=1), now
        t0 = time.perf_counter()
        counted = sum(store.count(b.query, start=start, end=end) for q in ok for b in q.branches)
        count_s = time.perf_counter() - t0
        runner.state.set_covered_end(rules[0].id, int(now.timestamp() * 1000) - 3_600_000)  # not a gap: < 2 intervals
        for r in rules:
            runner.state.set_covered_end(r.id, int(now.timestamp() * 1000))
        t0 = time.perf_counter()
        second = [runner._window(r, "run", int(start.timestamp() * 1000), int(end.timestamp() * 1000),
                                 int(now.timestamp() * 1000)) for r in rules]
        second_s = time.perf_counter() - t0
        per_rule = sorted(((o.rule_id[:8], o.hits) for o in first if o.hits), key=lambda x: -x[1])
        runner.state.close()
        soc.close()
        store.close()
        return {
            "events": n, "ingest_s": round(ingest_s, 1),
            "rules_scheduled": len(ok), "pack_not_convertible": len(conv_fail), "pack_refused_by_store": len(refused),
            "branches": sum(len(q.branches) for q in ok),
            "scheduled_pass_s": round(pass_s, 3),
            "direct_count_s": round(count_s, 3),
            "pass_over_count": round(pass_s / count_s, 2) if count_s else None,
            "hits_first_pass": sum(o.hits for o in first), "alerts_first_pass": sum(o.alerts for o in first),
            "direct_count_total": counted,
            "second_pass_same_window_s": round(second_s, 3),
            "alerts_second_pass": sum(o.alerts for o in second),
            "rules_with_hits": per_rule[:10],
        }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _coverage(root: Path, case_variants: bool) -> dict[str, Any]:
    from detections.scheduled import convert_files, validate_queries
    from storage.sqlite import SQLiteEventStore

    tmp = Path(tempfile.mkdtemp(prefix="bench-scheduled-cov-"))
    try:
        store = SQLiteEventStore(tmp / "events.db")
        t0 = time.perf_counter()
        rules, fails = convert_files([root], case_variants=case_variants)
        conv_s = time.perf_counter() - t0
        ok, refused = validate_queries(store, rules)
        store.close()
        reasons = collections.Counter(f.reason.split(" at position")[0][:90] for f in fails + refused)
        return {"rules": len(rules) + len(fails), "converted": len(rules), "run_on_our_parser": len(ok),
                "convert_s": round(conv_s, 1), "reasons": reasons.most_common(12),
                "refused_examples": [f"{Path(f.path).name}: {f.reason[:100]}" for f in (fails + refused)[:8]]}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run(quick: bool) -> dict[str, Any]:
    res: dict[str, Any] = {"pass_vs_count": _pass_vs_count(100_000 if quick else 1_000_000)}
    res["coverage_pack"] = _coverage(PACK, True)
    if not quick and CORPUS.is_dir():
        res["coverage_windows"] = _coverage(CORPUS, True)
        res["coverage_windows_no_case_variants"] = _coverage(CORPUS, False)
    return res
