"""Bad input: every record gets a clear per-item result, nothing crashes, nothing is lost."""
from __future__ import annotations

import datetime as dt
import doctest
import json
import random

import pytest

import collectors.parsers as parsers
from collectors.parsers import PARSERS, parse_record
from core.protocols import ParseError, RawRecord

NOW = dt.datetime(2026, 11, 25, 12, 0, 0, tzinfo=dt.timezone.utc)
BIG = 1_500_000


def _parse(data: bytes, fmt: str = "auto", **kw) -> dict:
    return parse_record(RawRecord(data, format=fmt, **kw), now=NOW)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("fmt,prefix", [
    ("auto", b"<13>Nov 25 10:00:00 host app: "),
    ("auto", b"<13>1 2026-11-25T10:00:00Z host app - - - "),
    ("auto", b'10.0.0.1 - - [25/Nov/2026:10:00:00 +0000] "GET /'),
    ("auto", b"2026-11-25 10:00:00.000 UTC [1] a@b LOG:  statement: SELECT '"),
    ("auto", b"type=EXECVE msg=audit(1795600800.000:1): argc=1 a0="),
    ("hikvision", b"<13>Nov 25 10:00:00 cam HIKVISION: Major Type: Alarm, Minor Type: Motion, Description: "),
    ("dahua", b"<13>Nov 25 10:00:00 nvr Dahua: [Event] Motion Detect Start. Channel: "),
    ("sudo", b"<13>Nov 25 10:00:00 h sudo: alice : TTY=pts/0 ; PWD=/ ; USER=root ; COMMAND="),
    ("sshd", b"<13>Nov 25 10:00:00 h sshd[1]: Failed password for "),
    ("generic", b""),
])
def test_megabyte_lines_parse_whole(fmt: str, prefix: bytes) -> None:
    data = prefix + b"x" * BIG
    ev = _parse(data, fmt)
    assert len(ev["event"]["original"]) == len(data)
    assert ev["@timestamp"]


def test_megabyte_json_string_value() -> None:
    data = json.dumps({"message": "y" * BIG, "ts": "2026-11-25T10:00:00Z"}).encode()
    ev = _parse(data)
    assert len(ev["message"]) == BIG and ev["@timestamp"] == "2026-11-25T10:00:00.000Z"


def test_nesting_is_cut_not_lost() -> None:
    doc: dict = {"leaf": 1}
    for i in range(60):
        doc = {f"k{i}": doc}
    ev = _parse(json.dumps(doc).encode())
    assert "json_depth_truncated" in ev["tags"]
    node = ev["json"]
    depth = 0
    while isinstance(node, dict):
        node = next(iter(node.values()))
        depth += 1
    assert isinstance(node, str) and '"leaf":1' in node  # the cut part is kept as JSON text
    assert depth < 25


def test_pathological_nesting_is_dead_lettered() -> None:
    data = b'{"a":' * 5000 + b"1" + b"}" * 5000
    with pytest.raises(ParseError, match="invalid JSON"):
        _parse(data)


def test_random_binary_never_crashes() -> None:
    rng = random.Random(7)
    outcomes = {"event": 0, "parse_error": 0}
    for _ in range(3000):
        n = rng.randint(0, 300)
        lead = rng.choice([b"", b"<", b"{", b"<13>", b"<13>1 ", b"type=", b"<?xml"])
        data = lead + bytes(rng.getrandbits(8) for _ in range(n))
        try:
            ev = _parse(data)
        except ParseError as exc:
            assert str(exc)
            outcomes["parse_error"] += 1
            continue
        assert "parser_failure" not in ev.get("tags", []), ev.get("error")
        assert ev["event"]["original"] is not None and ev["@timestamp"]
        outcomes["event"] += 1
    assert outcomes["event"] > 1000 and outcomes["parse_error"] > 100


def test_good_lines_around_bad_ones_survive() -> None:
    lines = [
        b"<38>Nov 25 10:00:01 h sshd[1]: Accepted password for a from 10.0.0.1 port 1 ssh2",
        b'{"broken": ',
        b"<38>Nov 25 10:00:02 h sshd[1]: Failed password for b from 10.0.0.2 port 2 ssh2",
        b"\xff\xfe\x00garbage",
        b"<999>",
        b'{"job_id": "7", "event": "fail", "time": "2026-11-25T10:00:03Z"}',
    ]
    results = []
    for line in lines:
        try:
            results.append(_parse(line)["event"].get("action", "generic"))
        except ParseError:
            results.append("dead-letter")
    assert results == ["ssh-login", "dead-letter", "ssh-login", "generic", "generic", "job-failed"]


def test_invalid_utf8_keeps_exact_bytes() -> None:
    raw = b"<13>Nov 25 10:00:00 cam app: caf\xe9 \xff"
    ev = _parse(raw)
    assert "invalid_utf8" in ev["tags"]
    import base64
    assert base64.b64decode(ev["citysoc"]["original_base64"]) == raw
    assert ev["message"] == "caf\ufffd \ufffd"


def test_unknown_format_names_the_known_ones() -> None:
    with pytest.raises(ParseError, match="unknown log format 'cisco'.*syslog"):
        _parse(b"x", "cisco")


def test_transport_meta_and_dataset_override() -> None:
    meta = {"log.source.address": "10.20.1.44:40001", "network.transport": "tcp", "truncated": True,
            "offset": 12, "timezone": "Asia/Ho_Chi_Minh"}
    ev = _parse(b"<134>Nov 25 17:15:02 cam HIKVISION: Major Type: Alarm, Minor Type: Motion Detection Started",
                "auto", meta=meta, dataset="cameras.district1", source="syslog-tcp")
    assert ev["log"]["source"]["address"] == "10.20.1.44:40001"
    assert ev["network"]["transport"] == "tcp"
    assert "offset" not in ev and "truncated" in ev["tags"]
    assert ev["@timestamp"] == "2026-11-25T10:15:02.000Z"  # 17:15 in Ho Chi Minh City
    assert ev["event"]["dataset"] == "cameras.district1" and ev["event"]["module"] == "hikvision"
    assert ev["citysoc"]["source"] == "syslog-tcp"


def test_parser_bug_becomes_generic_event() -> None:
    class Broken:
        name = "broken_for_test"

        def parse(self, record, *, now=None):
            raise KeyError("boom")

    PARSERS["broken_for_test"] = Broken()
    try:
        ev = _parse(b"a line", "broken_for_test")
    finally:
        del PARSERS["broken_for_test"]
    assert "parser_failure" in ev["tags"] and "KeyError" in ev["error"]["message"]
    assert ev["message"] == "a line"


def test_onvif_size_limit() -> None:
    from collectors.parsers.onvif import MAX_XML_BYTES
    with pytest.raises(ParseError, match="limit"):
        _parse(b"<?xml version='1.0'?><a>" + b"x" * MAX_XML_BYTES + b"</a>", "onvif")


def test_registry_ids_are_stable() -> None:
    want = {"syslog", "rfc5424", "rfc3164", "json", "ndjson", "hikvision", "dahua", "onvif", "sshd", "sudo",
            "auditd", "postgres", "mysql_audit", "nginx", "apache", "etl_json", "jobs_json", "generic"}
    assert want <= set(PARSERS)
    for name, parser in PARSERS.items():
        assert parser.name == name


def test_module_example_runs() -> None:
    failures, _ = doctest.testmod(parsers, verbose=False)
    assert failures == 0


def test_postgres_csvlog_record_spanning_lines_is_one_event() -> None:
    """csvlog quotes a multi-line statement; the tail joins the lines and the parser keeps them in one value."""
    text = ('2026-11-25 10:31:12.800 UTC,"analyst","warehouse",4115,"10.30.0.9:40000",6805f351.627c7,4,"idle",'
            '2026-11-25 10:31:00 UTC,5/3,0,LOG,00000,"statement: SELECT id,\n\t       name\n\tFROM citizens;"'
            ',,,,,,,,,"psql","client backend",,0')
    ev = parse_record(RawRecord(text.encode(), format="postgres"), now=NOW)
    assert ev["db"]["statement"] == "SELECT id,\n\t       name\n\tFROM citizens;"
    assert ev["event"]["type"] == ["access"] and ev["log"]["level"] == "LOG" and "tags" not in ev
    assert ev["source"]["ip"] == "10.30.0.9" and ev["user"]["name"] == "analyst"
