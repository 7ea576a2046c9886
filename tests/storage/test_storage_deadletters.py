"""Dead letters keep the raw bytes exactly, with stage, reason, source, time and meta."""
from __future__ import annotations

import sqlite3

from core.protocols import DeadLetter, DeadLetterStore
from storage.deadletters import SQLiteDeadLetterStore
from storage.sqlite import SQLiteEventStore


def test_put_list_count_roundtrip(tmp_path):
    dl = SQLiteDeadLetterStore(tmp_path / "dl.db")
    assert isinstance(dl, DeadLetterStore)
    raw = b"\xff\xfe<13>bad \x00 utf-8 \xc3\x28"
    dl.put(
        [
            DeadLetter(stage="parse", reason="not syslog", raw=raw, source="syslog-udp", meta={"peer": "10.0.0.5:514"}),
            DeadLetter(stage="store", reason="disk full", raw=b"{}", source="bulk", time="2026-05-01T00:00:00.000Z"),
            DeadLetter(stage="parse", reason="bad json", raw=b"{", source="http"),
        ]
    )
    assert dl.count() == 3
    assert dl.count(stage="parse") == 2
    assert dl.count(stage="enrich") == 0
    newest_first = dl.list()
    assert [d.reason for d in newest_first] == ["bad json", "disk full", "not syslog"]
    oldest = newest_first[-1]
    assert oldest.raw == raw and isinstance(oldest.raw, bytes)
    assert oldest.meta == {"peer": "10.0.0.5:514"} and oldest.source == "syslog-udp" and oldest.stage == "parse"
    assert oldest.time.endswith("Z") and oldest.id is not None
    assert newest_first[1].time == "2026-05-01T00:00:00.000Z"
    assert [d.reason for d in dl.list(stage="parse")] == ["bad json", "not syslog"]
    assert [d.reason for d in dl.list(limit=1, offset=1)] == ["disk full"]
    dl.put([])
    assert dl.count() == 3
    dl.close()


def test_survives_reopen_and_shares_a_file_with_the_event_store(tmp_path):
    path = tmp_path / "citysoc.db"
    events = SQLiteEventStore(path)
    dl = SQLiteDeadLetterStore(path)
    events.ingest([{"@timestamp": "2026-05-01T00:00:00Z", "x": 1}])
    dl.put([DeadLetter(stage="parse", reason="r", raw=b"\x00\x01")])
    dl.close()
    events.close()
    dl2 = SQLiteDeadLetterStore(path)
    assert dl2.list()[0].raw == b"\x00\x01"
    with sqlite3.connect(path) as c:
        assert c.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    with SQLiteEventStore(path) as ev2:
        assert ev2.count() == 1
    dl2.close()


def test_text_raw_and_odd_meta_are_kept(tmp_path):
    dl = SQLiteDeadLetterStore(tmp_path / "dl.db")
    dl.put([DeadLetter(stage="parse", reason="r", raw="tiếng Việt", meta={1: "int key", "b": b"x".hex()})])  # type: ignore[arg-type]
    got = dl.list()[0]
    assert got.raw == "tiếng Việt".encode()
    assert got.meta == {"1": "int key", "b": "78"}
