"""Issue 13 item 7: mutated real lines never crash a parser (property test, hypothesis).

Each registered format gets its seed lines: the real inputs of Elastic's pipeline tests
for the formats the ECS-parity corpus covers (lines we did not write), our golden cases
for the rest. Hypothesis mutates a seed (truncation, deleted or duplicated spans, bytes
and structural characters inserted or replaced, digits blown up past any integer width,
invalid UTF-8) and the record goes through the worker's own steps, ``parse_record``
then ``stamp`` then ``orjson.dumps``: each must return, or refuse with ``ParseError``
(the record is then dead-lettered with its reason). Anything else is a parser bug: an
exception inside a parser (``parse_record`` keeps the line as a generic event tagged
``parser_failure``, losing its fields), a ``@timestamp`` that stamping refuses, or a value
the store cannot serialise (an integer past 64 bits): the last two dead-letter a line
that should have been kept.

Deterministic (``derandomize``) so CI sees the same cases; ``CITYSOC_PROPERTY_EXAMPLES``
raises the count for a longer local hunt.
"""
from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench import parity
from collectors.parsers import PARSERS, parse_record
from core.events import stamp
from core.protocols import ParseError, RawRecord

NOW = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.timezone.utc)
GOLDEN = Path(__file__).resolve().parent / "golden"
EXAMPLES = int(os.environ.get("CITYSOC_PROPERTY_EXAMPLES", "60"))
_STRUCTURAL = [b"=", b"|", b",", b'"', b"'", b"{", b"}", b"[", b"]", b"\\", b":", b" ", b"\t", b"\n", b"\r",
               b"\x00", b"%", b"<", b">", b"\xff", b"\xc3", b"\\|", b"\\=", b"#", b"-", b"."]


def _seeds() -> dict[str, list[bytes]]:
    """Format id -> seed lines: corpus inputs where the corpus has the format, else golden lines."""
    seeds: dict[str, list[bytes]] = {}
    base = parity.corpus_dir()
    if base is not None:
        for stream, fmt in parity.STREAMS.items():
            if (base / stream).is_dir():
                seeds.setdefault(fmt, []).extend(x.encode() for x in parity.stream_inputs(stream, base) if x)
    for fmt in sorted(PARSERS):
        if seeds.get(fmt):
            continue
        folder = GOLDEN / ("json" if fmt == "ndjson" else "apache" if fmt == "access" else fmt)
        lines: list[bytes] = []
        for path in sorted(folder.glob("*")) if folder.is_dir() else []:
            if path.suffix == ".xml":
                lines.append(path.read_bytes())
            elif path.suffix == ".log":
                lines += [ln for ln in path.read_bytes().split(b"\n") if ln.strip()]
        if lines:
            seeds[fmt] = lines
    return seeds


SEEDS = _seeds()


@st.composite
def _mutated(draw: st.DrawFn, lines: list[bytes]) -> bytes:
    data = bytearray(draw(st.sampled_from(lines)))
    for _ in range(draw(st.integers(1, 4))):
        n = len(data)
        i = draw(st.integers(0, n))
        j = draw(st.integers(i, min(n, i + 40)))
        op = draw(st.sampled_from(["truncate", "delete", "insert", "replace", "duplicate", "digits", "structural"]))
        if op == "truncate":
            del data[i:]
        elif op == "delete":
            del data[i:j]
        elif op == "insert":
            data[i:i] = draw(st.binary(min_size=1, max_size=8))
        elif op == "replace" and i < n:
            data[i] = draw(st.integers(0, 255))
        elif op == "duplicate":
            data[i:i] = data[i:j]
        elif op == "digits":
            k = next((p for p in range(i, n) if 48 <= data[p] <= 57), None)
            if k is not None:
                data[k:k + 1] = draw(st.sampled_from([b"9" * 40, b"-1", b"0" * 25, b"1e309", b"NaN", b"", b"99999"]))
        else:
            data[i:j] = draw(st.sampled_from(_STRUCTURAL))
    return bytes(data)


def _survives(raw: bytes, fmt: str) -> None:
    try:
        ev = parse_record(RawRecord(raw, format=fmt, source="property"), now=NOW)
    except ParseError:
        return
    assert isinstance(ev, dict)
    # parse_record turns a parser's exception into a generic event tagged parser_failure:
    # nothing is lost, but it is a bug in that parser, and this test is there to find it.
    assert "parser_failure" not in (ev.get("tags") or []), (ev.get("error") or {}).get("message")
    stamped = stamp(ev, now_ms=int(NOW.timestamp() * 1000))
    orjson.dumps(stamped, option=orjson.OPT_NON_STR_KEYS)


def test_every_format_has_seed_lines() -> None:
    missing = sorted(set(PARSERS) - set(SEEDS))
    assert not missing, f"formats without seed lines: {missing}"


@pytest.mark.parametrize("fmt", sorted(SEEDS))
def test_mutated_lines_never_crash(fmt: str) -> None:
    @settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(_mutated(SEEDS[fmt]))
    def run(raw: bytes) -> None:
        _survives(raw, fmt)
        _survives(raw, "auto")

    run()
