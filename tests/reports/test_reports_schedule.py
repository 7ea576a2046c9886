"""Scheduled reports: each configured schedule makes the last completed period's report
once per format and language, kept in ``<data>/reports/``, listed from its manifest."""
from __future__ import annotations

import datetime as _dt
import re

import orjson

from core.reports import ReportRequest, ReportSettings
from reports.manifest import verify
from reports.service import ReportGenerator


def test_run_due_makes_each_missing_report_once(week, tmp_path) -> None:
    now = _dt.datetime.combine(week.last_day + _dt.timedelta(days=1), _dt.time(3, 0), _dt.timezone.utc)
    settings = ReportSettings(schedules=["daily", "weekly"], formats=["json", "csv"], langs=["vi", "en"])
    gen = ReportGenerator(tmp_path / "reports", week.sources(), settings, clock=lambda: now)
    made = gen.run_due()
    assert len(made) == 2 * 2 * 2
    assert {(i.kind, i.fmt, i.lang) for i in made} == {(k, f, lang) for k in ("daily", "weekly") for f in ("json", "csv")
                                                       for lang in ("vi", "en")}
    assert gen.run_due() == []  # already there: nothing new
    daily = next(i for i in made if i.kind == "daily" and i.fmt == "json")
    data = orjson.loads(gen.path_of(daily.name).read_bytes())
    assert data["period"]["days"] == [week.last_day.isoformat()]
    assert daily.name.startswith(f"daily-{week.last_day:%Y%m%d}_{week.last_day:%Y%m%d}-")  # local days in names
    assert data["alerts"]["total"] == week.per_day[-1]
    assert all(verify(gen.path_of(i.name), audit=week.soc.audit).ok for i in made)
    assert {i.name for i in gen.list()} == {i.name for i in made}
    _n, entries = week.soc.audit.list(actor="system:schedule-daily", limit=10)
    assert len(entries) == 4 and {e.action for e in entries} == {"report.generate"}


def test_adhoc_reports_and_names(week, tmp_path) -> None:
    gen = ReportGenerator(tmp_path / "reports", week.sources())
    info = gen.generate(ReportRequest(start=week.first_day.isoformat(), end=week.last_day.isoformat(), fmt="html",
                                      lang="en"), actor="user:kiemtoan")
    assert re.fullmatch(r"report-\d{8}_\d{8}-en-\d{8}T\d{6}Z\d{3}\.html", info.name), info.name
    assert gen.path_of(info.name).is_file() and gen.manifest_path(info.name).is_file()
    assert info.figures["alerts"] == week.total
