"""The detect stage with its stateful detectors in the server's thread (N = 0, the
baseline, same run) against N detector processes (``pipeline.detector_processes``).

Events: every line of Elastic's pipeline-test logs for Linux auth (``shared/corpora/
ecs-parity/system.auth``, parsed by our parser), repeated with the source address spread
over 2,000 attackers and the time advanced, plus flows of port scans from 500 sources:
events that feed state (correlations grouped by source or user, brute force, scans).
Rules: our pack plus SigmaHQ ``rules/linux`` and ``rules/network``. The base-rule matches
are made beforehand, as the parse workers make them (``core.events`` invariant 5), so
what is timed is the detect stage alone, in batches of 1,000 as the pipeline hands them.

Figures per N: events/s through the stage; the server thread's CPU µs per event (what the
serial main process still pays: routing, pipes, base-rule emission); the detections,
which must equal N = 0's (``same_detections``).
"""
from __future__ import annotations

import copy
import os
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from citysoc.testing import corpora_dir, parity_syslog_events

BATCH = 1_000


def _events(n: int) -> list[Any]:
    from core.events import stamp

    parsed = [ev for ev in parity_syslog_events(("system.auth",)) if ev.get("@timestamp")]
    t0 = 1_764_489_600_000
    out: list[Any] = []
    k = 0
    while len(out) < n:
        for ev in parsed:
            e = copy.deepcopy(ev)
            if "source" in e and "ip" in e["source"]:
                e["source"]["ip"] = f"10.{(k % 2000) // 250}.{(k % 250)}.{7 + k % 3}"
            out.append(stamp(e, t0 + k * 5))
            k += 1
        for s in range(50):
            src = f"203.0.{(k + s) % 500 // 250}.{(k + s) % 250}"
            for port in range(1, 9):
                out.append(stamp({"@timestamp": "", "event": {"action": "network_flow", "category": ["network"],
                                                           "duration": 2_000_000},
                                  "source": {"ip": src, "port": 40000 + port},
                                  "destination": {"ip": f"10.20.0.{port}", "port": 20 + port},
                                  "network": {"transport": "tcp"}}, t0 + k * 5))
                k += 1
    return out[:n]


def _runtime(data: Path, n: int, folders: list[str]) -> Any:
    from citysoc.detection import build_detection
    from core.settings import Settings

    return build_detection(Settings(data=str(data), rules=folders,
                                    pipeline={"detector_processes": n, "workers": 0}), start_feeds=False)


def _stage(rt: Any, events: list[Any]) -> tuple[float, float, Counter[str]]:
    from core.protocols import BatchDetector

    plain = [d for d in rt.detectors if not isinstance(d, BatchDetector)]
    batch = [d for d in rt.detectors if isinstance(d, BatchDetector)]
    found: Counter[str] = Counter()
    cpu0, t0 = time.thread_time(), time.perf_counter()
    for i in range(0, len(events), BATCH):
        chunk = events[i:i + BATCH]
        for ev in chunk:
            for d in plain:
                for det in d.process(ev):
                    found[det.rule_id] += 1
        for d in batch:
            for det in d.process_batch(chunk):
                found[det.rule_id] += 1
    return time.perf_counter() - t0, time.thread_time() - cpu0, found


def _fresh(events: list[Any]) -> list[Any]:
    """Shallow copies carrying the epoch and the matches (the server's engine may record
    matches on an event; the detectors read, never write, the nested fields)."""
    out = []
    for ev in events:
        c = copy.copy(ev)
        c.ts_ms, c.matched = ev.ts_ms, ev.matched
        out.append(c)
    return out


def run(quick: bool = False) -> dict[str, Any]:
    from detections.packs import SIGMA_PACK
    from detections.sigma import SigmaEngine, load_rules

    base = corpora_dir()
    folders = [str(base / "sigma" / "rules" / "linux"), str(base / "sigma" / "rules" / "network")]
    n_events = 20_000 if quick else 120_000
    tmp = Path(tempfile.mkdtemp(prefix="citysoc-bench-detproc-"))
    events = _events(n_events)
    # The parse workers' half: base-rule matches carried beside each event.
    ruleset = load_rules([SIGMA_PACK, *map(Path, folders)], cache_dir=tmp / "cache" / "sigma")  # = sigma_cache
    worker = SigmaEngine(ruleset.rules, include_events=False)
    for ev in events:
        ev.matched = worker.match_ids(ev)
    cpus = len(os.sched_getaffinity(0))
    figures: dict[str, Any] = {"events": len(events), "rules": len(ruleset.rules), "cpus": cpus, "runs": {}}
    baseline: Counter[str] | None = None
    base_rate = 0.0
    for n in (0, 1, 2, *((4,) if cpus >= 4 else ())):
        rt = _runtime(tmp, n, folders)  # one data folder: every run reads the same plan cache
        if rt.partitions is not None:
            rt.partitions.start()
        try:
            wall, cpu, found = _stage(rt, _fresh(events))
        finally:
            if rt.partitions is not None:
                rt.partitions.stop()
            rt.close()
        rate = len(events) / wall
        if baseline is None:
            baseline, base_rate = found, rate
        row = {"events_per_s": round(rate), "server_thread_cpu_us_per_event": round(cpu / len(events) * 1e6, 1),
               "detections": sum(found.values()), "same_detections": found == baseline,
               "ratio_to_in_thread": round(rate / base_rate, 3)}
        figures["runs"][f"detector_processes={n}"] = row
        print(f"   detector_processes={n}: {row}", flush=True)
    return figures
