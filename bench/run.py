"""Run the benchmarks: ``python -m bench.run [NAME ...] [--quick]``.

Each module ``bench/bench_<name>.py`` exposes ``run(quick: bool) -> dict``; the dict is
printed and written to ``bench/results/<name>.json`` with the machine facts, so figures
from noisy machines can be compared with their same-run baselines.
"""
from __future__ import annotations

import argparse
import importlib
import inspect
import json
import os
import platform
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"


def available() -> list[str]:
    return sorted(p.stem[len("bench_"):] for p in HERE.glob("bench_*.py"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("names", nargs="*", help=f"benchmarks to run (default all: {', '.join(available())})")
    ap.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    ap.add_argument("--soak-seconds", type=float, default=None,
                    help="length of the soak phases of benchmarks that have one (ingest_paths: issue 14 asks 600)")
    args = ap.parse_args(argv)
    names = args.names or available()
    unknown = sorted(set(names) - set(available()))
    if unknown:
        ap.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(available())}")
    RESULTS.mkdir(exist_ok=True)
    failed = 0
    for name in names:
        mod = importlib.import_module(f"bench.bench_{name}")
        print(f"== {name} ==", flush=True)
        t0 = time.perf_counter()
        try:
            extra = {}
            if args.soak_seconds is not None and "soak_seconds" in inspect.signature(mod.run).parameters:
                extra["soak_seconds"] = args.soak_seconds
            figures = mod.run(quick=args.quick, **extra)
        except Exception as exc:  # a broken benchmark must not hide the others' figures
            failed += 1
            print(f"   FAILED: {type(exc).__name__}: {exc}", file=sys.stderr)
            continue
        doc = {
            "benchmark": name,
            "quick": args.quick,
            "wall_s": round(time.perf_counter() - t0, 2),
            "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()},
            "figures": figures,
        }
        out = RESULTS / f"{name}.json"
        out.write_text(json.dumps(doc, indent=2, default=str))
        print(json.dumps(figures, indent=2, default=str))
        print(f"   -> {out}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
