"""CSV, JSON and HTML of the same week: the CSV has one row per alert with the expected
columns, the JSON holds the full data with the same figures, the HTML escapes what it
shows; and the figures match what the alerts API answers for the same period."""
from __future__ import annotations

import csv
import io

import orjson
import pytest

from core.alerts import AlertFilter
from reports.generate import generate_report
from reports.period import parse_period
from reports.render_csv import COLUMNS


@pytest.fixture(scope="module")
def period(week):
    return parse_period(week.first_day.isoformat(), week.last_day.isoformat())


def test_csv_has_one_row_per_alert_with_the_expected_columns(week, period, tmp_path) -> None:
    for lang, first_cols in (("en", ["id", "rule_id", "rule_title", "level"]), ("vi", ["Mã", "Mã luật", "Tên luật",
                                                                                       "Mức độ"])):
        out = tmp_path / f"alerts-{lang}.csv"
        m = generate_report(week.sources(), period, out, fmt="csv", lang=lang, actor="test")
        raw = out.read_bytes()
        assert raw.startswith(b"\xef\xbb\xbf")  # BOM: spreadsheets show the diacritics
        rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
        assert rows[0][:4] == first_cols and len(rows[0]) == len(COLUMNS)
        body = rows[1:]
        assert len(body) == week.total == m["figures"]["alerts"]
        assert sorted(int(r[0]) for r in body) == sorted(week.alert_ids)
        levels = [r[3] for r in body]
        assert {lv: levels.count(lv) for lv in week.by_level} == week.by_level
        by_id = {int(r[0]): r for r in body}
        acked = by_id[week.alert_ids[3]]  # k=3: acknowledged through the audited path
        assert acked[COLUMNS.index("acknowledged_at")] != "" and acked[COLUMNS.index("closed_at")] == ""
        unaudited = by_id[week.alert_ids[1]]  # closed straight in the store: no audited close time
        assert unaudited[COLUMNS.index("status")] == "closed" and unaudited[COLUMNS.index("closed_at")] == ""
        assert "Dò mật khẩu camera" in {r[2] for r in body}


def test_json_holds_the_full_data_and_matches_the_construction(week, period, tmp_path) -> None:
    out = tmp_path / "week.json"
    generate_report(week.sources(), period, out, fmt="json", lang="en", actor="test")
    d = orjson.loads(out.read_bytes())
    assert d["schema"] == "citysoc.report/1" and d["lang"] == "en"
    assert d["alerts"]["total"] == week.total
    assert d["alerts"]["by_level"] == week.by_level
    assert {c["center"]: c["count"] for c in d["alerts"]["by_center"]} == week.by_center
    assert [x["count"] for x in d["alerts"]["per_day"]] == week.per_day
    assert d["response"]["unaudited_closures"] == week.closed_unaudited
    head_entry = next(e for e in week.soc.audit.iter_all() if e.seq == d["audit"]["head_seq"])
    assert d["audit"]["ok"] and d["audit"]["head"] == head_entry.hash and d["audit"]["entries"] == head_entry.seq
    assert [c["action"] for c in d["rule_changes"]] == ["rule.disable"]
    assert d["rule_changes_total"] == 1 and d["account_changes_total"] == len(d["account_changes"]) >= 2
    assert {c["action"] for c in d["account_changes"]} >= {"user.create", "apikey.create"}
    assert d["playbook_runs"]["actions"] == {"block_ip": 1, "send_email": 1}
    cov = d["coverage"]
    assert cov["rules_enabled"] == 2 and cov["techniques"] == ["T1005", "T1110", "T1567"]
    assert d["open_cases"]["total"] == 1
    assert d["not_available"] == []
    silent = {c["center"]: c for c in d["availability"]["centers"]}
    assert silent["forecasting"]["silent"] == 1  # asset-2 last heard three days ago
    assert sum(c["silent_alerts"] for c in silent.values()) == sum(
        1 for k in range(week.total) if k % 3 == 2)  # every third alert is asset:silent


def test_figures_match_the_alerts_api_filters(week, period, tmp_path) -> None:
    """The report counts what ``GET /api/v1/alerts?since=&until=`` counts (same store query)."""
    out = tmp_path / "week.json"
    generate_report(week.sources(), period, out, fmt="json", lang="vi", actor="test")
    d = orjson.loads(out.read_bytes())
    api_total, _ = week.soc.alerts.list(AlertFilter(since=period.start_iso, until=period.end_iso, count_up_to=None))
    assert d["alerts"]["total"] == api_total
    for lv, n in d["alerts"]["by_level"].items():
        got, _ = week.soc.alerts.list(AlertFilter(since=period.start_iso, until=period.end_iso, level=[lv],
                                                  count_up_to=None))
        assert got == n, lv


def test_html_is_escaped_and_carries_the_audit_head(week, period, tmp_path) -> None:
    out = tmp_path / "week.html"
    m = generate_report(week.sources(), period, out, fmt="html", lang="vi", actor="<script>x</script>")
    html = out.read_text(encoding="utf-8")
    assert '<html lang="vi">' in html and "Cảnh báo theo mức độ" in html
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert f'content="{m["audit_head"]}"' in html


def test_without_optional_sources_sections_say_not_available(week, period, tmp_path) -> None:
    from reports.collect import Sources

    src = Sources(alerts=week.soc.alerts, cases=week.soc.cases, audit=week.soc.audit)
    out = tmp_path / "bare.html"
    m = generate_report(src, period, out, fmt="html", lang="en", actor="test")
    assert m["figures"]["not_available"] == ["availability", "playbook_runs", "coverage"]
    html = out.read_text(encoding="utf-8")
    assert html.count("not available: Data source not available in this deployment") == 3
