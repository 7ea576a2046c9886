"""Catalogs, dates and periods: every label exists in both languages, dates print as each
reader expects, and bad periods or languages are refused with a clear reason."""
from __future__ import annotations

import datetime as _dt
import json
import re
from pathlib import Path

import pytest

from core.alerts import LEVELS, RESOLUTIONS, STATUSES
from core.reports import LANGS, ReportError
from reports.i18n import Translator, catalog
from reports.period import parse_period, schedule_period

CATALOGS = Path(__file__).resolve().parents[2] / "reports" / "catalogs"


def test_catalogs_have_identical_keys_and_no_empty_label() -> None:
    keys = {lang: set(json.loads((CATALOGS / f"{lang}.json").read_text(encoding="utf-8"))) for lang in LANGS}
    assert keys["vi"] == keys["en"], keys["vi"] ^ keys["en"]
    for lang in LANGS:
        assert all(v.strip() for v in catalog(lang).values()), lang


def test_every_label_is_translated() -> None:
    vi, en = catalog("vi"), catalog("en")
    same = sorted(k for k in vi if vi[k] == en[k] and not k.startswith("col_") and "ATT&CK" not in vi[k])
    assert same == [], f"labels left in English in vi.json: {same}"
    # Vietnamese text really carries its diacritics (not ASCII-folded).
    assert re.search("[ạếữđảờ]", " ".join(vi.values()))


def test_levels_statuses_resolutions_have_labels() -> None:
    for lang in LANGS:
        tr = Translator(lang)
        for lv in LEVELS:
            assert tr.level(lv) != lv
        for st in STATUSES:
            assert tr.status(st) != st
        for res in RESOLUTIONS:
            assert tr.resolution(res) != res


def test_dates_per_language_in_city_time() -> None:
    ts = "2026-11-16T17:30:00.000Z"  # 00:30 on the 17th in Ho Chi Minh City
    assert Translator("vi").date(ts) == "17/11/2026"
    assert Translator("en").date(ts) == "2026-11-17"
    assert Translator("vi").datetime(ts) == "00:30 17/11/2026"
    assert Translator("vi").number(1234567) == "1.234.567"
    assert Translator("en").number(1234567) == "1,234,567"
    assert Translator("vi").duration(5400) == "1,5 giờ"
    assert Translator("en").duration(600) == "10 min"


def test_unknown_language_and_zone_are_refused() -> None:
    with pytest.raises(ReportError, match="unknown language 'fr'"):
        Translator("fr")
    with pytest.raises(ReportError, match="unknown time zone"):
        Translator("vi", "Mars/Olympus")


def test_period_days_are_whole_local_days() -> None:
    p = parse_period("2026-11-16", "2026-11-22")
    assert p.start_iso == "2026-11-15T17:00:00.000Z"
    assert p.end_iso == "2026-11-22T17:00:00.000Z"
    assert p.days() == [f"2026-11-{d}" for d in range(16, 23)]
    one = parse_period("2026-11-16", "2026-11-16")
    assert one.days() == ["2026-11-16"]


def test_reversed_and_malformed_periods_are_refused() -> None:
    with pytest.raises(ReportError, match="swap --from and --to"):
        parse_period("2026-11-22", "2026-11-16")
    with pytest.raises(ReportError, match="neither a date"):
        parse_period("last week", "2026-11-16")
    with pytest.raises(ReportError, match="not a date"):
        parse_period("2026-02-30", "2026-03-01")


def test_schedule_periods_are_the_last_completed_ones() -> None:
    now = _dt.datetime(2026, 11, 25, 3, 0, tzinfo=_dt.timezone.utc)  # Wednesday 10:00 in the city
    d = schedule_period("daily", now, "Asia/Ho_Chi_Minh")
    assert (d.start_iso, d.end_iso) == ("2026-11-23T17:00:00.000Z", "2026-11-24T17:00:00.000Z")
    w = schedule_period("weekly", now, "Asia/Ho_Chi_Minh")
    assert w.days()[0] == "2026-11-16" and w.days()[-1] == "2026-11-22"
    m = schedule_period("monthly", now, "Asia/Ho_Chi_Minh")
    assert m.days()[0] == "2026-10-01" and m.days()[-1] == "2026-10-31"
