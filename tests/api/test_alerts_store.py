"""The SQLite alert store behind the recorder: dedupe windows, suppressions, filters."""
from __future__ import annotations

import sqlite3

import pytest

from core.alerts import AlertFilter, AlertRecorder
from core.protocols import Detection
from storage.socdb import open_socdb


@pytest.fixture
def soc(tmp_path):
    s = open_socdb(tmp_path)
    yield s
    s.close()


def _det(host="cam-01", rule="r1", level="high", ts="2026-11-25T08:00:00Z"):
    return Detection(rule_id=rule, title=f"rule {rule}", level=level,
                     events=[{"@timestamp": ts, "host": {"name": host}, "source": {"ip": "10.0.0.9"}}])


def test_ten_identical_detections_make_one_alert_with_count_ten(soc):
    rec = AlertRecorder(soc.alerts)
    for i in range(10):
        rec.emit([_det(ts=f"2026-11-25T08:00:0{i}Z")])
    total, items = soc.alerts.list(AlertFilter())
    assert total == 1
    a = soc.alerts.get(items[0].id)
    assert a.count == 10
    assert (a.first_seen, a.last_seen) == ("2026-11-25T08:00:00.000Z", "2026-11-25T08:00:09.000Z")
    assert len(a.events) == 10
    assert rec.created == 1 and rec.updated == 9


def test_identical_detections_in_one_batch_merge_too(soc):
    AlertRecorder(soc.alerts).emit([_det() for _ in range(5)] + [_det(host="cam-02")])
    total, items = soc.alerts.list(AlertFilter(sort="id"))
    assert total == 2
    assert [a.count for a in items] == [5, 1]


def test_outside_window_or_after_close_a_new_alert_starts(soc):
    clock = iter(["2026-11-25T08:00:00.000Z", "2026-11-25T08:10:00.000Z", "2026-11-25T09:00:00.000Z",
                  "2026-11-25T09:01:00.000Z"])
    rec = AlertRecorder(soc.alerts, window_s=900, clock=lambda: next(clock))
    rec.emit([_det()])
    rec.emit([_det()])  # 10 min later: same alert
    rec.emit([_det()])  # 50 min after the last: new alert
    assert soc.alerts.list(AlertFilter())[0] == 2
    soc.alerts.update(2, status="closed", resolution="benign")
    rec.emit([_det()])  # the open one is closed now: new alert
    _total, items = soc.alerts.list(AlertFilter(sort="id"))
    assert [a.count for a in items] == [2, 1, 1]


def test_suppression_stops_alerts_and_counts_hits(soc):
    soc.alerts.add_suppression("r1", "host", "cam-0*", "user:alice", "firmware upgrade", "2099-01-01T00:00:00.000Z")
    rec = AlertRecorder(soc.alerts)
    rec.emit([_det(host="cam-01"), _det(host="cam-02"), _det(host="nvr-01"), _det(host="cam-01", rule="r2")])
    _total, items = soc.alerts.list(AlertFilter(sort="id"))
    assert [(a.rule_id, a.entities.host) for a in items] == [("r1", "nvr-01"), ("r2", "cam-01")]
    assert soc.alerts.suppressions()[0].hits == 2
    assert rec.suppressed == 2


def test_filters_sort_and_paging(soc):
    rec = AlertRecorder(soc.alerts)
    rec.emit([_det(host=f"h{i}", level="critical" if i % 2 else "low", ts=f"2026-11-25T08:00:{i:02d}Z")
              for i in range(30)])
    assert soc.alerts.list(AlertFilter(level=["critical"]))[0] == 15
    total, page = soc.alerts.list(AlertFilter(limit=10, offset=10))
    assert total == 30 and len(page) == 10
    assert page[0].last_seen == "2026-11-25T08:00:19.000Z"  # newest first
    assert soc.alerts.list(AlertFilter(host="h3"))[1][0].entities.host == "h3"
    top = soc.alerts.list(AlertFilter(sort="-risk_score", limit=1))[1][0]
    assert top.level == "critical"
    assert soc.alerts.list(AlertFilter(since="2026-11-25T08:00:25Z"))[0] == 5


def test_alerts_survive_reopen_of_the_file(tmp_path):
    s = open_socdb(tmp_path)
    AlertRecorder(s.alerts).emit([_det()])
    s.close()
    conn = sqlite3.connect(tmp_path / "soc.db")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("SELECT count(*) FROM alerts").fetchone()[0] == 1
