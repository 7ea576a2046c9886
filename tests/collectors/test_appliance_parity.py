"""Field parity of the appliance/IDS parsers with Elastic's pipelines, measured on Elastic's own test logs.

For each stream of ``shared/corpora/ecs-parity/`` that an appliance parser reads, every
input (a raw line, or the ``event.original`` of a pre-decoded ``.json`` input) is parsed
with the stream's format and compared with the ``-expected.json`` document (paired by
``event.original``, else by position) on the fields detections use: the ``source``,
``destination``, ``client``, ``server``, ``user``, ``group``, ``process``, ``http``,
``url``, ``network``, ``observer``, ``rule``, ``dns``, ``tls`` and ``file`` field sets,
``user_agent.original``, every ``*.bytes``, and ``event.outcome/category/type/action/code``.
GeoIP/ASN fields (``*.geo.*``, ``*.as.*``) are left out: they come from Elastic's test
MaxMind databases, not from the log. Lists compare as sets.

Where Elastic's value contradicts ECS or is a quirk, the field is listed with the reason
in ``parity/appliance_exceptions.json`` and left out of the score (never copied).
The figures print with ``-s``; each stream must score at least 0.95.
"""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from collectors.parsers import parse_record
from core.events import flatten
from core.protocols import ParseError, RawRecord
from citysoc.testing import corpora_dir

EXCEPTIONS = json.loads((Path(__file__).parent / "parity" / "appliance_exceptions.json").read_text())
STREAMS = {"cef.log": "cef", "cisco_asa.log": "cisco_asa", "fortinet_fortigate.log": "fortigate",
           "iptables.log": "netfilter", "panw.panos": "panos", "suricata.eve": "suricata",
           "zeek.connection": "zeek", "zeek.dns": "zeek", "zeek.http": "zeek", "zeek.ssh": "zeek"}
PREFIXES = ("source.", "destination.", "client.", "server.", "user.", "group.", "process.", "http.", "url.",
            "network.", "observer.", "rule.", "dns.", "tls.", "file.")
EXACT = frozenset({"event.outcome", "event.category", "event.type", "event.action", "event.code",
                   "user_agent.original"})
NOW = dt.datetime(2026, 11, 25, 12, 0, 0, tzinfo=dt.timezone.utc)


def _corpus() -> Path | None:
    base = corpora_dir() / "ecs-parity"
    return base if base.is_dir() else None


def _wanted(key: str) -> bool:
    if ".geo." in f".{key}." or ".as." in f".{key}.":
        return False
    return key.startswith(PREFIXES) or key in EXACT or key.endswith(".bytes")


def _norm(value: Any) -> Any:
    return sorted(json.dumps(v, sort_keys=True) for v in value) if isinstance(value, list) else value


def _pairs(stream_dir: Path) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for inp in sorted(stream_dir.glob("test-*")):
        if inp.name.endswith(("-expected.json", ".yml")):
            continue
        expected = json.loads(Path(f"{inp}-expected.json").read_text())["expected"]
        if inp.suffix == ".json":
            lines = [e.get("event", {}).get("original") or e.get("message") for e in
                     json.loads(inp.read_text())["events"]]
        else:
            lines = [ln for ln in inp.read_text().split("\n") if ln.strip()]
        by_original = {e.get("event", {}).get("original"): e for e in expected}
        has_original = any("original" in e.get("event", {}) for e in expected)
        for i, line in enumerate(lines):
            doc = by_original.get(line)
            if doc is None and not has_original and i < len(expected):
                doc = expected[i]
            if doc is not None:
                out.append((line, doc))
    return out


def measure(stream: str, fmt: str, base: Path) -> tuple[int, int, dict[str, list[tuple[Any, Any]]]]:
    """``(agreeing, compared, misses by field)`` for one stream, exceptions left out."""
    skip = {x["field"] for x in EXCEPTIONS if x["stream"] == stream}
    agree = total = 0
    misses: dict[str, list[tuple[Any, Any]]] = {}
    for line, doc in _pairs(base / stream):
        try:
            got = flatten(parse_record(RawRecord(line.encode(), format=fmt, source="parity"), now=NOW))
        except ParseError:
            got = {}
        for key, want in flatten(doc).items():
            if not _wanted(key) or key in skip:
                continue
            total += 1
            if _norm(got.get(key)) == _norm(want):
                agree += 1
            else:
                misses.setdefault(key, []).append((want, got.get(key)))
    return agree, total, misses


@pytest.mark.parametrize("stream", sorted(STREAMS))
def test_appliance_stream_parity_at_least_095(stream: str) -> None:
    base = _corpus()
    if base is None:
        pytest.skip("shared/corpora/ecs-parity not found beside the repo or at /work/shared")
    agree, total, misses = measure(stream, STREAMS[stream], base)
    assert total > 0, f"{stream}: nothing compared"
    score = agree / total
    print(f"{stream}: {agree}/{total} = {score:.3f}")
    assert score >= 0.95, f"{stream}: parity {score:.3f}; misses: {dict(list(misses.items())[:8])}"


def test_every_exception_names_a_stream_field_and_reason() -> None:
    for x in EXCEPTIONS:
        assert x["stream"] in STREAMS and x["field"] and len(x["reason"]) > 40, x
