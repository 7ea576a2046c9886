"""Bad input gets a clear answer and never leaves a half-written file: empty periods,
reversed dates, unknown languages, a store failing half-way; and paging stays exact when
many alerts share one ``last_seen``."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from citysoc.wiring import open_soc
from core.alerts import Alert
from core.protocols import Detection
from core.reports import ReportError
from core.settings import Settings
from reports.collect import Sources, iter_alerts
from reports.generate import generate_report
from reports.period import parse_period


def citysoc(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CITYSOC_DATA": str(data)}
    return subprocess.run([sys.executable, "-m", "citysoc.cli", *args], env=env, capture_output=True, text=True,
                          timeout=120)


def test_empty_period_gives_a_report_of_zeros(week, tmp_path) -> None:
    out = tmp_path / "empty.json"
    m = generate_report(week.sources(), parse_period("2020-01-01", "2020-01-07"), out, fmt="json", lang="vi",
                        actor="test")
    d = orjson.loads(out.read_bytes())
    assert d["alerts"]["total"] == 0 and m["figures"]["alerts"] == 0
    assert [x["count"] for x in d["alerts"]["per_day"]] == [0] * 7
    assert d["response"]["mtta_s"] is None and d["top_assets"] == []
    pdf = tmp_path / "empty.pdf"
    generate_report(week.sources(), parse_period("2020-01-01", "2020-01-07"), pdf, fmt="pdf", lang="en", actor="t")
    assert pdf.read_bytes().startswith(b"%PDF")


@pytest.mark.parametrize(("args", "message"), [
    (["--from", "2026-11-22", "--to", "2026-11-16"], "swap --from and --to"),
    (["--from", "2026-11-16", "--to", "2026-11-22", "--lang", "fr"], "unknown language 'fr'"),
    (["--from", "tuần trước", "--to", "2026-11-22"], "neither a date"),
    (["--from", "2026-11-16", "--to", "2026-11-22", "--tz", "Nowhere/City"], "unknown time zone"),
])
def test_cli_refuses_with_the_reason_and_writes_nothing(week, tmp_path, args, message) -> None:
    out = tmp_path / "r.pdf"
    r = citysoc(week.data, "report", *args, "-o", str(out))
    assert r.returncode == 1 and message in r.stderr, r.stderr
    assert list(tmp_path.iterdir()) == []


class FailingAlertStore:
    """The real store, failing after ``n`` alerts have been read (a disk error half-way)."""

    def __init__(self, real, n: int):
        self.real, self.n = real, n

    def list(self, flt):
        total, page = self.real.list(flt)
        self.n -= len(page)
        if self.n < 0:
            raise OSError("disk I/O error")
        return total, page


@pytest.mark.parametrize("fmt", ["csv", "pdf", "json"])
def test_failure_half_way_leaves_no_file_and_keeps_the_old_one(week, tmp_path, fmt) -> None:
    src = week.sources()
    period = parse_period(week.first_day.isoformat(), week.last_day.isoformat())
    out = tmp_path / f"r.{fmt}"
    out.write_bytes(b"previous report")
    broken = Sources(alerts=FailingAlertStore(week.soc.alerts, 5), cases=src.cases, audit=src.audit)
    with pytest.raises(OSError, match="disk I/O"):
        generate_report(broken, period, out, fmt=fmt, lang="vi", actor="test", page_size=4)
    assert out.read_bytes() == b"previous report"
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"r.{fmt}"]  # no temp file, no manifest


def test_unknown_format_is_refused(week, tmp_path) -> None:
    with pytest.raises(ReportError, match="unknown format 'docx'"):
        generate_report(week.sources(), parse_period("2026-11-16", "2026-11-22"), tmp_path / "r.docx", fmt="docx",
                        lang="vi", actor="t")


def test_keyset_paging_is_exact_when_many_alerts_share_last_seen(tmp_path) -> None:
    soc = open_soc(Settings(data=tmp_path))
    try:
        ts = "2026-11-18T03:00:00.000Z"
        dets = [Detection(rule_id="r", title="t", level="low", events=[
            {"@timestamp": ts if i < 23 else f"2026-11-18T03:00:{i:02d}.000Z", "host": {"name": f"h{i}"}}])
            for i in range(40)]
        soc.alerts.record([Alert.from_detection(d, "2026-11-18T04:00:00.000Z") for d in dets], window_s=60)
        period = parse_period("2026-11-18", "2026-11-18")
        for size in (1, 3, 7, 23, 100):
            ids = [a.id for a in iter_alerts(soc.alerts, period, page_size=size)]
            assert sorted(ids) == list(range(1, 41)) and len(ids) == 40, size
    finally:
        soc.close()
