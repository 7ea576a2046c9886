"""Scheduled runs end to end: the real SQLite event store, the real alert recorder and
alert store, the run state file. Time is a fixed clock the tests move."""
from __future__ import annotations

import asyncio
import datetime as _dt
from pathlib import Path

import pytest

from core.alerts import AlertFilter, AlertRecorder
from detections.scheduled import RunState, ScheduledRunner, build_scheduled, convert_file, state_path
from detections.scheduled.runner import ENGINE, ScheduledRule
from storage.socdb import open_socdb
from storage.sqlite import SQLiteEventStore

PACK = Path(__file__).resolve().parents[2] / "detections" / "rules" / "sigma"
RULE = PACK / "camera" / "camera_telnet_enabled.yml"
RULE_ID = "dc6f987d-bbb1-4b10-97fb-cead3bec1e91"
T0 = _dt.datetime(2026, 11, 25, 12, 0, tzinfo=_dt.timezone.utc)
MIN = 60_000


def ms(ts: _dt.datetime) -> int:
    return int(ts.timestamp() * 1000)


def iso(ts: _dt.datetime) -> str:
    return ts.isoformat().replace("+00:00", "Z")


def telnet_on(ts: _dt.datetime, host: str) -> dict:
    return {"@timestamp": iso(ts), "host": {"name": host}, "source": {"ip": "10.20.1.15"},
            "event": {"action": "device-config-change", "category": ["configuration"]},
            "hikvision": {"parameter_type": "Telnet Service"}}


def harmless(ts: _dt.datetime, host: str) -> dict:
    return {"@timestamp": iso(ts), "host": {"name": host},
            "event": {"action": "device-config-change"}, "hikvision": {"parameter_type": "Video Encoding"}}


class Clock:
    def __init__(self, now: _dt.datetime):
        self.now = now

    def __call__(self) -> int:
        return ms(self.now)


@pytest.fixture
def env(tmp_path):
    store = SQLiteEventStore(tmp_path / "events.db")
    soc = open_socdb(tmp_path)
    recorder = AlertRecorder(soc.alerts, window_s=0)  # one alert per detection: counts are exact
    yield tmp_path, store, soc, recorder
    store.close()
    soc.close()


def make_runner(tmp_path, store, recorder, clock, **kw) -> ScheduledRunner:
    [q] = list(convert_file(RULE))
    rule = ScheduledRule(q, interval_ms=5 * MIN, lookback_ms=kw.pop("lookback_ms", 10 * MIN))
    opts = {"ingest_delay_ms": 30_000, "max_catchup_chunks": 12, **kw}
    return ScheduledRunner([rule], store, recorder, RunState(state_path(tmp_path)), clock=clock, **opts)


def alerted_hosts(soc) -> list[str]:
    _total, items = soc.alerts.list(AlertFilter(limit=1000))
    hosts = []
    for a in items:
        full = soc.alerts.get(a.id)
        hosts.extend(e["host"]["name"] for e in full.events)
    return sorted(hosts)


def test_late_events_alert_once_and_the_overlap_does_not_alert_twice(env):
    tmp_path, store, soc, recorder = env
    clock = Clock(T0)
    runner = make_runner(tmp_path, store, recorder, clock)
    store.ingest([telnet_on(T0 - _dt.timedelta(minutes=3), "cam-01"), harmless(T0 - _dt.timedelta(minutes=2), "cam-02")])
    [first] = runner.run_due()
    assert (first.kind, first.hits, first.alerts, first.status) == ("run", 1, 1, "ok")
    assert first.window == (ms(T0) - 30_000 - 10 * MIN, ms(T0) - 30_000)
    # Not due yet: nothing runs.
    clock.now = T0 + _dt.timedelta(minutes=2)
    assert runner.run_due() == []
    # A device that buffered its logs delivers an event of 4 minutes ago, after the first run.
    store.ingest([telnet_on(T0 - _dt.timedelta(minutes=4), "cam-late")])
    clock.now = T0 + _dt.timedelta(minutes=5, seconds=30)
    [second] = runner.run_due()
    assert second.hits == 2 and second.alerts == 1  # cam-01 is in the overlap again: not re-alerted
    assert alerted_hosts(soc) == ["cam-01", "cam-late"]
    _total, items = soc.alerts.list(AlertFilter(limit=10))
    assert {soc.alerts.get(a.id).rule_id for a in items} == {RULE_ID}


def test_a_restart_with_the_same_state_file_does_not_alert_again(env):
    tmp_path, store, soc, recorder = env
    clock = Clock(T0)
    store.ingest([telnet_on(T0 - _dt.timedelta(minutes=3), "cam-01")])
    runner = make_runner(tmp_path, store, recorder, clock)
    assert [o.alerts for o in runner.run_due()] == [1]
    runner.state.close()
    clock.now = T0 + _dt.timedelta(minutes=6)
    again = make_runner(tmp_path, store, recorder, clock)
    [run] = again.run_due()
    assert run.hits == 1 and run.alerts == 0
    assert alerted_hosts(soc) == ["cam-01"]


def test_downtime_becomes_a_gap_that_is_caught_up_in_chunks_and_reported(env):
    tmp_path, store, soc, recorder = env
    clock = Clock(T0)
    state = RunState(state_path(tmp_path))
    state.set_covered_end(RULE_ID, ms(T0 - _dt.timedelta(hours=3)))  # the server was down 3 hours
    state.close()
    # One matching event every 10 minutes during the downtime, plus a harmless one each time.
    events = []
    for i in range(18):
        ts = T0 - _dt.timedelta(hours=3) + _dt.timedelta(minutes=10 * i + 1)
        events += [telnet_on(ts, f"cam-{i:02d}"), harmless(ts, f"cam-x{i:02d}")]
    store.ingest(events)
    runner = make_runner(tmp_path, store, recorder, clock)
    first = runner.run_due()
    [gap] = runner.list_gaps()
    assert gap["open"] and gap["gap_start"] == "2026-11-25T09:00:00Z"
    assert gap["gap_end"] == "2026-11-25T11:54:30Z" and gap["minutes"] == 174.5
    assert [o.kind for o in first] == ["run"] + ["catchup"] * 12  # the latest interval first, then 12 chunks
    assert gap["covered_until"] == "2026-11-25T10:00:00Z"
    rounds = 1
    while runner.list_gaps(open_only=True):
        clock.now += _dt.timedelta(minutes=5)
        runner.run_due()
        rounds += 1
    assert rounds == 3  # 35 chunks of 5 minutes, at most 12 per run
    [closed] = runner.list_gaps()
    assert not closed["open"] and closed["covered_until"] == closed["gap_end"]
    assert alerted_hosts(soc) == sorted(f"cam-{i:02d}" for i in range(18))  # each exactly once
    runs = runner.list_runs(limit=1000)
    assert {r["kind"] for r in runs} == {"run", "catchup"}
    assert sum(r["alerts"] for r in runs) == 18
    assert all(r["status"] == "ok" for r in runs)
    assert all(r["gap_id"] == closed["id"] for r in runs if r["kind"] == "catchup")


def test_seen_keys_are_pruned_to_the_lookback_horizon(env):
    tmp_path, store, soc, recorder = env
    clock = Clock(T0)
    store.ingest([telnet_on(T0 - _dt.timedelta(minutes=3, seconds=i), f"cam-{i}") for i in range(20)])
    runner = make_runner(tmp_path, store, recorder, clock)
    runner.run_due()
    assert runner.state.seen_count(RULE_ID) == 20
    for _ in range(3):  # 15 minutes later the events are older than covered end - lookback
        clock.now += _dt.timedelta(minutes=5)
        runner.run_due()
    assert runner.state.seen_count(RULE_ID) == 0
    assert len(alerted_hosts(soc)) == 20


def test_more_hits_than_max_hits_is_reported_as_truncated(env):
    tmp_path, store, _soc, recorder = env
    clock = Clock(T0)
    store.ingest([telnet_on(T0 - _dt.timedelta(minutes=3, seconds=i), f"cam-{i}") for i in range(7)])
    runner = make_runner(tmp_path, store, recorder, clock, max_hits=5, page_size=2)
    [run] = runner.run_due()
    assert (run.hits, run.alerts, run.status) == (5, 5, "truncated")
    assert "7 events matched" in runner.list_runs()[0]["error"]


def test_a_failing_store_does_not_advance_coverage_so_nothing_is_lost(env):
    tmp_path, store, _soc, recorder = env
    clock = Clock(T0)
    runner = make_runner(tmp_path, store, recorder, clock)
    runner.run_due()
    covered = runner.state.covered_end(RULE_ID)
    store.ingest([telnet_on(T0 + _dt.timedelta(minutes=1), "cam-01")])
    store.close()  # the store goes away
    clock.now += _dt.timedelta(minutes=6)
    [failed] = runner.run_due()
    assert failed.status == "error" and runner.state.covered_end(RULE_ID) == covered
    runner.store = SQLiteEventStore(tmp_path / "events.db")  # back again
    try:
        clock.now += _dt.timedelta(minutes=1)
        [ok] = runner.run_due()
        assert ok.alerts == 1 and ok.window[0] == covered - 10 * MIN
    finally:
        runner.store.close()


def test_build_from_settings_reports_what_is_not_scheduled(env):
    tmp_path, store, _soc, recorder = env
    regex_rule = PACK / "forecasting" / "job_command_downloads_or_shell.yml"
    runner = build_scheduled(
        {"rules": [{"id": RULE_ID, "interval": "1m"}, {"path": str(regex_rule)},
                   {"id": "00000000-0000-0000-0000-000000000000"}], "lookback": "15m"},
        store, recorder, tmp_path, search_paths=[PACK])
    assert list(runner.rules) == [RULE_ID]
    assert runner.rules[RULE_ID].interval_ms == MIN and runner.rules[RULE_ID].lookback_ms == 15 * MIN
    reasons = " | ".join(f.reason for f in runner.failures)
    assert "regular expressions are not supported" in reasons
    assert "rule id 00000000-0000-0000-0000-000000000000 not found" in reasons
    with pytest.raises(ValueError, match="detection.scheduled.interval"):
        build_scheduled({"interval": "often"}, store, recorder, tmp_path)
    with pytest.raises(ValueError, match="exactly one of"):
        build_scheduled({"rules": [{"interval": "5m"}]}, store, recorder, tmp_path)


def test_run_forever_alerts_through_the_recorder_with_the_scheduled_engine(env):
    tmp_path, store, soc, recorder = env
    now = _dt.datetime.now(_dt.timezone.utc)
    store.ingest([telnet_on(now - _dt.timedelta(minutes=2), "cam-live")])
    runner = make_runner(tmp_path, store, recorder, None)

    async def main() -> None:
        task = asyncio.create_task(runner.run_forever())
        for _ in range(100):
            await asyncio.sleep(0.05)
            if soc.alerts.list(AlertFilter())[0]:
                break
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    _total, [alert] = soc.alerts.list(AlertFilter())
    full = soc.alerts.get(alert.id)
    assert full.rule_id == RULE_ID and full.engine == ENGINE


def test_a_failed_run_right_after_a_gap_does_not_record_the_gap_twice(env):
    tmp_path, store, _soc, recorder = env
    clock = Clock(T0)
    state = RunState(state_path(tmp_path))
    state.set_covered_end(RULE_ID, ms(T0 - _dt.timedelta(hours=1)))
    state.close()
    runner = make_runner(tmp_path, store, recorder, clock)
    store.close()  # every query of this pass fails
    outcomes = runner.run_due()
    assert {o.status for o in outcomes} == {"error"}
    runner.store = SQLiteEventStore(tmp_path / "events.db")
    try:
        clock.now += _dt.timedelta(minutes=1)
        runner.run_due()
        [gap] = runner.list_gaps()
        assert gap["gap_start"] == "2026-11-25T11:00:00Z" and not gap["open"]
    finally:
        runner.store.close()
