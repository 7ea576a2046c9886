"""Golden tests: raw input files in, exact ECS documents out.

Each ``golden/<format>/<case>.log`` is read as one record per line (``.xml`` files are
one record each) and parsed with ``format=<format>`` (``auto`` sniffs). The results
are compared with ``<case>.expected.json``: a list holding, per record, the event or
``{"parse_error": "<reason>"}``. Ingest time is fixed, so the files are exact.

To regenerate after an intended change: ``CITYSOC_UPDATE_GOLDEN=1 pytest
tests/collectors/test_collectors_golden.py``, then read the diff before committing.
"""
from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import pytest

from collectors.parsers import PARSERS, parse_record
from core.protocols import ParseError, RawRecord

GOLDEN = Path(__file__).parent / "golden"
NOW = dt.datetime(2026, 11, 25, 12, 0, 0, tzinfo=dt.timezone.utc)


def _cases() -> list[Path]:
    out = []
    for d in sorted(GOLDEN.iterdir()):
        if d.is_dir() and (d.name in PARSERS or d.name == "auto"):
            out += sorted(p for p in d.iterdir() if p.suffix in (".log", ".xml"))
    return out


def _records(path: Path) -> list[bytes]:
    data = path.read_bytes()
    if path.suffix == ".xml":
        return [data]
    return [line for line in data.split(b"\n") if line.strip()]


def _run(path: Path) -> list[dict]:
    fmt = path.parent.name
    results = []
    for raw in _records(path):
        rec = RawRecord(raw, format=fmt, source="golden")
        try:
            results.append(parse_record(rec, now=NOW))
        except ParseError as exc:
            results.append({"parse_error": str(exc)})
    return results


@pytest.mark.parametrize("path", _cases(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_golden(path: Path) -> None:
    expected_path = path.with_suffix(".expected.json")
    got = json.loads(json.dumps(_run(path)))
    if os.environ.get("CITYSOC_UPDATE_GOLDEN"):
        expected_path.write_text(json.dumps(got, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    assert expected_path.exists(), f"{expected_path} missing: run with CITYSOC_UPDATE_GOLDEN=1 and review it"
    expected = json.loads(expected_path.read_text(encoding="utf-8"))
    assert len(got) == len(expected), f"{path.name}: {len(got)} results, expected {len(expected)}"
    for i, (g, e) in enumerate(zip(got, expected)):
        assert g == e, f"{path.name} record {i + 1} differs"


def test_every_registered_format_has_golden_cases() -> None:
    have = {p.parent.name for p in _cases()}
    missing = sorted(set(PARSERS) - have - {"ndjson", "access"})
    assert not missing, f"formats without golden files: {missing}"
