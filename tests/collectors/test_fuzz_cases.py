"""Every input the fuzzer (``bench/bench_fuzz.py``) ever crashed on stays a test case.

Files in ``fuzz_cases/`` are named ``<target>-<what>``; each is replayed through its
target, which may refuse it only with its expected error (ParseError, QueryError).
The seed cases are attacker shapes from the red-team pass of issue 18.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from bench.fuzz.targets import TARGETS

CASES = sorted((Path(__file__).parent / "fuzz_cases").glob("*-*"))


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_kept_fuzz_case_does_not_crash(case: Path):
    target = TARGETS[case.name.split("-", 1)[0]]
    target(case.read_bytes())


def test_there_are_cases():
    assert CASES, "fuzz_cases/ is empty"
