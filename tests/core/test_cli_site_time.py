"""``citysoc alerts list`` and ``citysoc search`` print times in the site zone with the zone
named, and their tables fit an 80-column terminal: one line per row, long titles cut with
an ellipsis (``port 8000`` never silently becomes ``port 80``)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson

from core.alerts import Alert
from core.protocols import Detection
from core.timezones import format_site_time, offset_label

ROOT = Path(__file__).resolve().parents[2]
TITLE = "Brute force from 10.20.5.11 against CAM-Q7-0001: 30 short connections to port 8000"


def _cli(data: Path, *args: str, columns: int = 80) -> str:
    env = {**os.environ, "CITYSOC_DATA": str(data), "COLUMNS": str(columns), "TERM": "dumb"}
    env.pop("CITYSOC_CONFIG", None)
    r = subprocess.run([sys.executable, "-m", "citysoc.cli", *args], env=env, capture_output=True, text=True,
                       timeout=60, cwd=str(data))
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_format_site_time_keeps_seconds_and_names_the_zone() -> None:
    assert format_site_time("2026-12-03T01:49:05Z", "Asia/Ho_Chi_Minh") == "2026-12-03 08:49:05 (UTC+07)"
    assert format_site_time("2026-12-03T01:49:05.999+00:00", "UTC") == "2026-12-03 01:49:05 (UTC+00)"
    assert format_site_time("2026-12-03T01:49:05", "Asia/Kolkata") == "2026-12-03 07:19:05 (UTC+05:30)"
    assert format_site_time("not a time") == "not a time" and format_site_time(None) == ""
    assert offset_label("America/Sao_Paulo").startswith("UTC-03")


def test_alerts_list_at_80_columns_in_site_time(tmp_path: Path) -> None:
    from citysoc.wiring import open_soc
    from core.settings import Settings

    soc = open_soc(Settings(data=tmp_path))
    ev = {"@timestamp": "2026-12-03T01:49:05.000Z", "source": {"ip": "10.20.5.11"}, "host": {"name": "CAM-Q7-0001"},
          "user": {"name": "admin"}}
    det = Detection(rule_id="net:brute_force", title=TITLE, level="high", events=[ev], engine="network")
    soc.alerts.record([Alert.from_detection(det, "2026-12-03T01:49:05.000Z")], window_s=0)
    soc.close()
    text = _cli(tmp_path, "alerts", "list")
    lines = text.splitlines()
    assert all(len(line) <= 80 for line in lines), text
    rows = [line for line in lines if "CAM-Q7" in line or "Brute" in line]
    assert len(rows) == 1, text  # the row did not wrap onto more lines
    row = rows[0]
    assert "…" in row and "port 80 " not in row and not row.rstrip(" │|").endswith("port 80"), row
    assert "12-03 08:49:05" in row  # site time (Asia/Ho_Chi_Minh), seconds kept; month-day at 80 columns
    assert "times: Asia/Ho_Chi_Minh (UTC+07)" in text
    wide = _cli(tmp_path, "alerts", "list", columns=260)
    assert TITLE in wide and "admin" in wide and "2026-12-03 08:49:05" in wide


def test_search_prints_site_time(tmp_path: Path) -> None:
    ev = {"@timestamp": "2026-12-03T01:49:05.000Z", "event": {"dataset": "test"}, "host": {"name": "cam-1"},
          "message": "hello"}
    f = tmp_path / "ev.ndjson"
    f.write_bytes(orjson.dumps(ev) + b"\n")
    _cli(tmp_path, "ingest", str(f), "--format", "ecs")
    text = _cli(tmp_path, "search", "message:hello", "--from", "2026-12-01T00:00:00Z", columns=100)
    assert "2026-12-03 08:49:05" in text and "times: Asia/Ho_Chi_Minh (UTC+07)" in text, text
