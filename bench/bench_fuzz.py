"""Fuzzing the parsers, the query parser and ingest body splitting with atheris, for a bounded time (``make bench``, not CI).

Each target runs in its own process for ``SECONDS`` (60, or 10 with ``--quick``); the
figures are executions per second beside the baseline target (the fuzzer's own cost, no
work) in the same run, and the crashes found. A crash input is kept in
``bench/results/fuzz-crashes/``: copy it into ``tests/collectors/fuzz_cases/`` (named
``<target>-<what>``) once fixed, and ``make test`` replays it for ever.
"""
from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
FUZZED = ("parsers", "query", "bodies")
"""Targets of :mod:`bench.fuzz.targets` fuzzed here (beside the no-work ``baseline``)."""
ROOT = HERE.parent


def _one(name: str, seconds: int, outdir: Path) -> dict:
    t0 = time.perf_counter()
    cp = subprocess.run([sys.executable, "-m", "bench.fuzz.run_one", name, str(seconds), str(outdir)],
                        cwd=ROOT, capture_output=True, text=True, timeout=seconds + 120)
    wall = time.perf_counter() - t0
    text = cp.stdout + cp.stderr
    m = re.search(r"stat::number_of_executed_units:\s*(\d+)", text)
    execs = int(m.group(1)) if m else 0
    crashes = sorted(p.name for p in outdir.glob(f"{name}-crash-*"))
    return {"target": name, "seconds": seconds, "executions": execs, "execs_per_s": round(execs / max(wall, 1e-9)),
            "crashes": crashes, "exit": cp.returncode,
            "tail": "" if cp.returncode == 0 else text[-1500:]}


def run(quick: bool = False) -> dict:
    try:
        import atheris  # noqa: F401
    except ImportError:
        return {"skipped": "atheris is not installed (pip install atheris; make bench installs the fuzz extra)"}
    seconds = 10 if quick else 60
    outdir = ROOT / "bench" / "results" / "fuzz-crashes"
    outdir.mkdir(parents=True, exist_ok=True)
    figures = {name: _one(name, seconds, outdir) for name in ("baseline", *FUZZED)}
    base = figures["baseline"]["execs_per_s"] or 1
    for name in FUZZED:
        figures[name]["ratio_to_baseline"] = round(figures[name]["execs_per_s"] / base, 4)
        print(f"   {name}: {figures[name]['executions']} inputs in {seconds} s "
              f"({figures[name]['execs_per_s']}/s, baseline {base}/s), crashes: {len(figures[name]['crashes'])}")
    return figures
