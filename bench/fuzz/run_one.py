"""``python -m bench.fuzz.run_one TARGET SECONDS OUTDIR``: atheris on one target, bounded in time.

Runs in its own process (atheris instruments and owns the interpreter); prints the
executions count and writes any crashing input to ``OUTDIR`` (libFuzzer ``crash-*``).
"""
from __future__ import annotations

import sys


def main() -> None:
    import atheris

    name, seconds, outdir = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    # the web framework is imported first, uninstrumented: instrumenting fastapi and
    # pydantic takes minutes and fuzzes their code, not ours
    import fastapi  # noqa: F401
    import pydantic  # noqa: F401
    import starlette.requests  # noqa: F401

    with atheris.instrument_imports():
        from bench.fuzz.targets import TARGETS
        target = TARGETS[name]
        target(b"\x00warm up")  # import everything the target reaches, instrumented
    atheris.Setup([sys.argv[0], f"-max_total_time={seconds}", f"-artifact_prefix={outdir}/{name}-",
                   "-print_final_stats=1", "-rss_limit_mb=2048", "-timeout=10"], target)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
