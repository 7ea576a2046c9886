"""Scheduled Sigma query rules: one scheduled pass over our pack on 1M stored events,
against the same queries run directly through ``store.count`` in the same run.

What is measured:

1. **Pass vs count**: 1M events (100k quick) over the last 6 hours in a SQLite store;
   0.1 % are copies of our pack's ``match`` test events (hits), 30 % copies of the
   ``nomatch`` events, the rest generic noise. One pass of :class:`ScheduledRunner` over
   every schedulable pack rule (search paging, dedupe against the state file, detections
   into the real alert recorder and soc.db) against ``store.count`` of every branch
   query over the same window: the difference is what fetching hits, keying, dedupe and
   alerting cost on top of the store's own query time. Windows: a normal run (5 min
   interval + 10 min lookback) and a one-hour (catch-up sized) window. A second pass
   over the same window shows the dedupe path (hits found, nothing alerted). With and
   without case variants (they multiply the wildcard tests).
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
from detections.packs import SIGMA_PACK

__all__ = ["run"]

UTC = dt.timezone.utc
ROOT = Path(__file__).resolve().parents[1]
PACK = SIGMA_PACK
CORPUS = Path("/work/shared/corpora/sigma/rules/windows")
BATCH = 10_000


SPAN = dt.timedelta(hours=6)


def _templates() -> tuple[list[dict], list[dict]]:
    hits, misses = [], []
    for t in sorted(PACK.rglob("*.tests.yml")):
        doc = yaml.safe_load(t.read_text()) or {}
        hits += doc.get("match") or []
        misses += doc.get("nomatch") or []
    return hits, misses


def _events(n: int, now: dt.datetime, rng: random.Random, hits: list[dict], misses: list[dict]) -> list[dict]:
    out = []
    span_s = SPAN.total_seconds() - 60
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
        ev["@timestamp"] = (now - dt.timedelta(seconds=60 + rng.random() * span_s)).isoformat().replace("+00:00", "Z")
        ev["host"] = {**(ev.get("host") if isinstance(ev.get("host"), dict) else {}), "name": f"cam-{i % 5000:04d}"}
        ev.setdefault("labels", {})["seq"] = i  # every document distinct
        out.append(ev)
    return out


def _direct_counts(store: Any, queries: list[Any], start: dt.datetime, end: dt.datetime) -> tuple[float, int, int]:
    """(seconds, matched, queries the store stopped at its timeout) for every branch."""
    from core.protocols import QueryError

    t0 = time.perf_counter()
    total = timeouts = 0
    for q in queries:
        for b in q.branches:
            try:
                total += store.count(b.query, start=start, end=end)
            except QueryError:
                timeouts += 1
    return time.perf_counter() - t0, total, timeouts


def _one_pass(store: Any, soc: Any, queries: list[Any], tmp: Path, now: dt.datetime, lookback: dt.timedelta,
              name: str) -> dict[str, Any]:
    """A first pass (window = lookback, alerts) and the same window again (dedupe only),
    against store.count of the same queries over the same window."""
    from citysoc.wiring import build_alerting
    from detections.scheduled import RunState, ScheduledRule, ScheduledRunner

    sink, _services = build_alerting(soc)
    now_ms = int(now.timestamp() * 1000)
    rules = [ScheduledRule(q, interval_ms=300_000, lookback_ms=int(lookback.total_seconds() * 1000)) for q in queries]
    runner = ScheduledRunner(rules, store, sink, RunState(tmp / f"scheduled-{name}.db"), ingest_delay_ms=0,
                             max_hits=100_000, clock=lambda: now_ms)
    t0 = time.perf_counter()
    first = runner.run_due()
    pass_s = time.perf_counter() - t0
    start_ms = now_ms - rules[0].lookback_ms
    t0 = time.perf_counter()
    second = [runner._window(r, "run", start_ms, now_ms, now_ms) for r in rules]
    second_s = time.perf_counter() - t0
    count_s, counted, timeouts = _direct_counts(store, queries, now - lookback, now)
    runner.state.close()
    return {
        "window_min": lookback.total_seconds() / 60,
        "events_in_window": store.count("*", start=now - lookback, end=now),
        "scheduled_pass_s": round(pass_s, 2),
        "direct_count_s": round(count_s, 2),
        "pass_over_count": round(pass_s / count_s, 2) if count_s else None,
        "hits_first_pass": sum(o.hits for o in first), "alerts_first_pass": sum(o.alerts for o in first),
        "direct_count_total": counted,
        "run_errors_first_pass": [f"{o.rule_id[:8]}: {o.error[:80]}" for o in first if o.status == "error"],
        "count_timeouts": timeouts,
        "second_pass_same_window_s": round(second_s, 2),
        "alerts_second_pass": sum(o.alerts for o in second),
    }


def _pass_vs_count(n: int) -> dict[str, Any]:
    from citysoc.wiring import open_soc
    from detections.scheduled import convert_files, validate_queries
    from storage.sqlite import SQLiteEventStore

    tmp = Path(tempfile.mkdtemp(prefix="bench-scheduled-"))
    try:
        store = SQLiteEventStore(tmp / "events.db")
        now = dt.datetime.now(UTC)
        rng = random.Random(7)
        hits, misses = _templates()
        t0 = time.perf_counter()
        for k in range(0, n, BATCH):
            store.ingest(_events(min(BATCH, n - k), now, rng, hits, misses))
        ingest_s = time.perf_counter() - t0
        res: dict[str, Any] = {"events": n, "span_h": SPAN.total_seconds() / 3600, "ingest_s": round(ingest_s, 1)}
        for variants in (True, False):
            queries, conv_fail = convert_files([PACK], case_variants=variants)
            ok, refused = validate_queries(store, queries)
            soc = open_soc(Settings(data=tmp / f"soc-{variants}"))
            key = "case_variants" if variants else "no_case_variants"
            res[key] = {
                "rules_scheduled": len(ok), "branches": sum(len(q.branches) for q in ok),
                "pack_not_convertible": len(conv_fail), "pack_refused_by_store": len(refused),
                # a normal run: interval 5 min + lookback 10 min
                "normal_15min": _one_pass(store, soc, ok, tmp, now, dt.timedelta(minutes=15), f"n{variants}"),
                # a catch-up-sized window
                "window_1h": _one_pass(store, soc, ok, tmp, now, dt.timedelta(hours=1), f"h{variants}"),
            }
            soc.close()
        store.close()
        return res
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
