"""Field parity with Elastic's ingest pipelines, measured on Elastic's own pipeline-test logs.

``python -m bench.parity [STREAM ...] [--json PATH] [--misses N]``

For each stream folder of ``shared/corpora/ecs-parity/`` (``<pkg>.<stream>/``, laid out
as in elastic/integrations' ``_dev/test/pipeline/``: ``test-*.log`` raw lines or
``test-*.json`` pre-decoded documents, ``<input>-expected.json`` and optional
``<input>-config.yml`` / ``test-common-config.yml``), every input event is parsed by
our parser for that stream (:data:`STREAMS`: stream -> our format id) and compared
with Elastic's expected document on the fields detections use (:func:`wanted`).

* Multiline: the configs' ``multiline.first_line_pattern`` joins continuation lines
  with ``\\n``, as elastic-package does; a config's ``event.timezone`` becomes the
  record's zone (``meta["timezone"]``) when it names one.
* Pairing: by ``event.original`` when the expected docs carry it, else by position;
  inputs with no expected document (the corpus' SOURCES.md lists the stale pairs) are
  counted as ``unpaired`` and not scored.
* Lists compare as sets; GeoIP/ASN fields (``*.geo.*``, ``*.as.*``) are left out: they
  come from Elastic's test MaxMind databases, not from the log.
* Exceptions: where Elastic's value contradicts ECS or is a quirk, the (stream, field)
  is written in ``bench/parity_exceptions.json`` (the appliance streams' in
  ``tests/collectors/parity/appliance_exceptions.json``) with the reason and left out of the
  score; the table prints how many values each exception removed, so nothing is skipped
  silently. An exception with ``"stream": "*"`` applies to every stream; one with a
  ``"value"`` removes only the values where Elastic wrote exactly that (``user.name: "-"``),
  one with an ``"input"`` regex only those of input events it finds, one with a ``"test"``
  only those of that input file, so the field's other values are still scored.

The score of a stream is agreeing values / compared values. The table goes to stdout,
the full result (per stream, per field, first misses) to ``bench/results/parity.json``.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from collectors.parsers import parse_record
from core.events import flatten
from core.protocols import ParseError, RawRecord
from citysoc.testing import corpora_dir

__all__ = ["STREAMS", "OWNED_STREAMS", "corpus_dir", "stream_inputs", "wanted", "load_exceptions", "measure_stream", "measure",
           "StreamResult", "main"]

ROOT = Path(__file__).resolve().parents[1]
EXCEPTION_FILES = (Path(__file__).resolve().parent / "parity_exceptions.json",
                   ROOT / "tests" / "collectors" / "parity" / "appliance_exceptions.json")
"""Ours (beside the tool) and the appliance parsers' (beside their golden tests): one format, read together."""
RESULTS = Path(__file__).resolve().parent / "results"

STREAMS: dict[str, str] = {
    # parsers-core's streams
    "apache.access": "apache",
    "apache.error": "apache",
    "auditd.log": "auditd",
    "haproxy.log": "haproxy",
    "nginx.access": "nginx",
    "nginx.error": "nginx",
    "postgresql.log": "postgres",
    "system.auth": "syslog",
    "system.syslog": "syslog",
    # the appliance / IDS streams (parsers-appliance)
    "cef.log": "cef",
    "cisco_asa.log": "cisco_asa",
    "fortinet_fortigate.log": "fortigate",
    "iptables.log": "netfilter",
    "panw.panos": "panos",
    "suricata.eve": "suricata",
    "zeek.connection": "zeek",
    "zeek.dns": "zeek",
    "zeek.http": "zeek",
    "zeek.ssh": "zeek",
}
"""Corpus stream -> the format id our parser is run with (as a source would be configured)."""

OWNED_STREAMS = ("apache.access", "apache.error", "auditd.log", "haproxy.log", "nginx.access", "nginx.error",
                 "postgresql.log", "system.auth", "system.syslog")

PREFIXES = ("source.", "destination.", "client.", "server.", "user.", "group.", "process.", "http.", "url.",
            "network.", "observer.", "rule.", "dns.", "tls.", "file.")
EXACT = frozenset({"event.outcome", "event.category", "event.type", "event.action", "event.code",
                   "user_agent.original", "log.level"})
NOW = dt.datetime(2026, 11, 25, 12, 0, 0, tzinfo=dt.timezone.utc)
"""Fixed ingest time so year-less timestamps resolve the same way on every run."""


def corpus_dir() -> Path | None:
    """The ecs-parity corpus (``citysoc.testing.corpora_dir``); None when absent."""
    base = corpora_dir() / "ecs-parity"
    return base if base.is_dir() else None


def wanted(key: str) -> bool:
    """True for the flattened ECS keys detections use (and the parity score compares)."""
    dotted = f".{key}."
    if ".geo." in dotted or ".as." in dotted:
        return False
    return key.startswith(PREFIXES) or key in EXACT or key.endswith(".bytes")


def load_exceptions(paths: tuple[Path, ...] = EXCEPTION_FILES) -> list[dict[str, str]]:
    """The documented exceptions: ``[{stream, field, elastic, reason}]`` from every file that exists."""
    out: list[dict[str, str]] = []
    for path in paths:
        if path.is_file():
            out.extend(json.loads(path.read_text(encoding="utf-8")))
    return out


def _norm(value: Any) -> Any:
    if isinstance(value, list):
        return sorted({json.dumps(v, sort_keys=True) for v in value})
    return value


_TZ_OFFSET = re.compile(r"^(?:GMT|UTC)?\s*([+-])(\d{1,2}):?(\d\d)?$")


def _zone_name(value: Any) -> str | None:
    """A config's ``event.timezone`` (``+0000``, ``GMT+2``, ``GMT-0200``, ``Europe/Paris``) as a zone name."""
    if not isinstance(value, str) or not value:
        return None
    m = _TZ_OFFSET.match(value.strip())
    if m:
        hours = int(m.group(2))
        minutes = int(m.group(3) or 0)
        if minutes:
            return None  # no Etc/ zone for it; our parser falls back to UTC
        if hours == 0:
            return "UTC"
        # Etc/GMT signs are inverted (POSIX): UTC+2 is Etc/GMT-2.
        return f"Etc/GMT{'-' if m.group(1) == '+' else '+'}{hours}"
    return value.strip()


def _read_config(path: Path) -> dict[str, Any]:
    """``multiline`` pattern and ``event.timezone`` of an elastic-package test config.

    Some upstream configs are not valid YAML (an unquoted ``@timestamp`` key): those
    are read line by line for the two settings we use."""
    out: dict[str, Any] = {}
    if not path.is_file():
        return out
    text = path.read_text(encoding="utf-8")
    docs: list[Any]
    try:
        docs = [d for d in yaml.safe_load_all(text) if isinstance(d, dict)]
    except yaml.YAMLError:
        docs = []
    for doc in docs:
        ml = doc.get("multiline")
        if isinstance(ml, dict) and ml.get("first_line_pattern"):
            out["multiline"] = ml["first_line_pattern"]
        fields = doc.get("fields") or {}
        if isinstance(fields, dict):
            event = fields.get("event")
            tz = fields.get("event.timezone") or (event.get("timezone") if isinstance(event, dict) else None)
            if tz:
                out["timezone"] = tz
    if not docs:
        m = re.search(r"first_line_pattern:\s*(['\"])(.*)\1", text)
        if m:
            out["multiline"] = yaml.safe_load(m.group(0))["first_line_pattern"]
        m = re.search(r"timezone:\s*['\"]?([^'\"\n]+)", text)
        if m:
            out["timezone"] = m.group(1).strip()
    return out


def _events(inp: Path, config: dict[str, Any]) -> list[str]:
    if inp.suffix == ".json":
        docs = json.loads(inp.read_text(encoding="utf-8"))["events"]
        return [d.get("event", {}).get("original") or d.get("message") or "" for d in docs]
    lines = inp.read_text(encoding="utf-8").split("\n")
    pattern = config.get("multiline")
    if not pattern:
        return [ln for ln in lines if ln.strip()]
    first = re.compile(pattern)
    events: list[str] = []
    for ln in lines:
        if first.search(ln) or not events:
            if ln.strip() or events:
                events.append(ln)
        else:
            events[-1] += "\n" + ln
    return [e.rstrip("\n") for e in events if e.strip()]


@dataclass
class StreamResult:
    stream: str
    format: str
    agree: int = 0
    compared: int = 0
    events: int = 0
    unpaired: int = 0
    parse_errors: int = 0
    excepted: dict[str, int] = field(default_factory=dict)
    fields: dict[str, list[int]] = field(default_factory=dict)  # field -> [agree, compared]
    misses: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    @property
    def score(self) -> float:
        return self.agree / self.compared if self.compared else 0.0

    def to_json(self, max_misses: int) -> dict[str, Any]:
        return {"stream": self.stream, "format": self.format, "score": round(self.score, 4), "agree": self.agree,
                "compared": self.compared, "events": self.events, "unpaired": self.unpaired,
                "parse_errors": self.parse_errors, "excepted": self.excepted,
                "fields": {k: {"agree": a, "compared": c, "score": round(a / c, 4)}
                           for k, (a, c) in sorted(self.fields.items())},
                "misses": {k: v[:max_misses] for k, v in sorted(self.misses.items())}}


def _pairs(stream_dir: Path) -> tuple[list[tuple[str, dict[str, Any], str | None, str]], int]:
    """``([(input event, expected doc, zone, test file name)], unpaired count)`` for one stream folder."""
    common = _read_config(stream_dir / "test-common-config.yml")
    out: list[tuple[str, dict[str, Any], str | None, str]] = []
    unpaired = 0
    for inp in sorted(stream_dir.glob("test-*")):
        if inp.name.endswith(("-expected.json", ".yml")):
            continue
        exp_path = Path(f"{inp}-expected.json")
        if not exp_path.is_file():
            continue
        config = {**common, **_read_config(Path(f"{inp}-config.yml"))}
        expected = json.loads(exp_path.read_text(encoding="utf-8"))["expected"]
        has_original = any("original" in (e.get("event") or {}) for e in expected)
        by_original = {(e.get("event") or {}).get("original"): e for e in expected}
        zone = _zone_name(config.get("timezone"))
        for i, line in enumerate(_events(inp, config)):
            doc = by_original.get(line) if has_original else (expected[i] if i < len(expected) else None)
            if doc is None:
                unpaired += 1
                continue
            out.append((line, doc, zone, inp.name))
    return out, unpaired


def stream_inputs(stream: str, base: Path) -> list[str]:
    """Every input event of ``stream`` (paired with an expected document or not), in file order.

    The raw material for tests that need real lines of a format (the property test
    mutates them), read with the same multiline rules as the parity measurement."""
    stream_dir = base / stream
    common = _read_config(stream_dir / "test-common-config.yml")
    out: list[str] = []
    for inp in sorted(stream_dir.glob("test-*")):
        if inp.name.endswith(("-expected.json", ".yml")):
            continue
        out += _events(inp, {**common, **_read_config(Path(f"{inp}-config.yml"))})
    return out


def _excepted(rules: list[dict[str, Any]], want: Any, line: str, test: str = "") -> bool:
    """True when one of a field's exceptions covers this value: every selector it has must hold
    (``value``: Elastic wrote exactly this; ``input``: a regex found in the input event;
    ``test``: the input file it came from)."""
    for x in rules:
        if "test" in x and x["test"] != test:
            continue
        if "value" in x and _norm(x["value"]) != _norm(want):
            continue
        if "input" in x and not re.search(x["input"], line):
            continue
        return True
    return False


def measure_stream(stream: str, base: Path, exceptions: list[dict[str, str]] | None = None,
                   fmt: str | None = None) -> StreamResult:
    """Parse every paired input of ``stream`` and count agreeing field values."""
    fmt = fmt or STREAMS[stream]
    exceptions = load_exceptions() if exceptions is None else exceptions
    by_field: dict[str, list[dict[str, Any]]] = {}
    for x in exceptions:
        if x["stream"] in (stream, "*"):
            by_field.setdefault(x["field"], []).append(x)
    res = StreamResult(stream, fmt)
    pairs, res.unpaired = _pairs(base / stream)
    for line, doc, zone, test in pairs:
        res.events += 1
        meta = {"timezone": zone} if zone else {}
        try:
            got = flatten(parse_record(RawRecord(line.encode(), format=fmt, source="parity", meta=meta), now=NOW))
        except ParseError:
            res.parse_errors += 1
            got = {}
        for key, want in flatten(doc).items():
            if not wanted(key):
                continue
            if key in by_field and _excepted(by_field[key], want, line, test):
                res.excepted[key] = res.excepted.get(key, 0) + 1
                continue
            ok = _norm(got.get(key)) == _norm(want)
            counts = res.fields.setdefault(key, [0, 0])
            counts[1] += 1
            res.compared += 1
            if ok:
                counts[0] += 1
                res.agree += 1
            else:
                res.misses.setdefault(key, []).append({"elastic": want, "ours": got.get(key), "input": line[:200]})
    return res


def measure(streams: list[str] | None = None, base: Path | None = None) -> list[StreamResult]:
    """All (or the named) streams of the corpus; raises FileNotFoundError without a corpus."""
    base = base or corpus_dir()
    if base is None:
        raise FileNotFoundError("shared/corpora/ecs-parity not found beside the repo or at /work/shared")
    exceptions = load_exceptions()
    names = streams or sorted(p.name for p in base.iterdir() if p.is_dir() and p.name in STREAMS)
    return [measure_stream(s, base, exceptions) for s in names]


def _table(results: list[StreamResult], show_fields: bool) -> str:
    rows = [f"{'stream':24} {'format':10} {'score':>6} {'agree':>6} {'total':>6} {'events':>6} {'unpaired':>8} "
            f"{'excepted':>8}"]
    agree = total = 0
    for r in results:
        agree += r.agree
        total += r.compared
        rows.append(f"{r.stream:24} {r.format:10} {r.score:6.3f} {r.agree:6d} {r.compared:6d} {r.events:6d} "
                    f"{r.unpaired:8d} {sum(r.excepted.values()):8d}")
        if show_fields:
            for key, (a, c) in sorted(r.fields.items(), key=lambda kv: kv[1][0] / kv[1][1]):
                if a < c:
                    rows.append(f"    {key:40} {a}/{c}")
    rows.append(f"{'all':24} {'':10} {agree / total if total else 0:6.3f} {agree:6d} {total:6d}")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.parity", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("streams", nargs="*", help=f"streams to measure (default all: {', '.join(sorted(STREAMS))})")
    ap.add_argument("--json", type=Path, default=RESULTS / "parity.json", help="where to write the full result")
    ap.add_argument("--misses", type=int, default=5, help="misses kept per field in the JSON")
    ap.add_argument("--fields", action="store_true", help="list the fields below 1.0 under each stream")
    args = ap.parse_args(argv)
    unknown = sorted(set(args.streams) - set(STREAMS))
    if unknown:
        ap.error(f"unknown stream(s) {', '.join(unknown)}; known: {', '.join(sorted(STREAMS))}")
    try:
        results = measure(args.streams or None)
    except FileNotFoundError as exc:
        print(f"parity: {exc}", file=sys.stderr)
        return 2
    print(_table(results, args.fields))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"now": NOW.isoformat(), "streams": [r.to_json(args.misses) for r in results]},
                                    indent=2, default=str), encoding="utf-8")
    print(f"-> {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
