"""Manifests and verification: what an auditor relies on. A changed byte, a changed
sidecar, a report and sidecar both replaced, an evidence member changed: each is caught
and named; an intact file passes (exit 0)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import orjson
import pytest

from reports.evidence import export_evidence
from reports.generate import generate_report
from reports.manifest import sidecar_of, verify, write_manifest
from reports.period import parse_period


def citysoc(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CITYSOC_DATA": str(data)}
    return subprocess.run([sys.executable, "-m", "citysoc.cli", *args], env=env, capture_output=True, text=True,
                          timeout=120)


@pytest.fixture()
def report(week, tmp_path) -> Path:
    out = tmp_path / "week.csv"
    generate_report(week.sources(), parse_period(week.first_day.isoformat(), week.last_day.isoformat()), out,
                    fmt="csv", lang="vi", actor="user:kiemtoan")
    return out


def test_manifest_records_hash_audit_head_and_generation_is_audited(week, report) -> None:
    m = json.loads(sidecar_of(report).read_text())
    assert m["file"] == report.name and m["format"] == "csv" and m["lang"] == "vi"
    assert len(m["sha256"]) == 64 and m["size"] == report.stat().st_size
    _n, entries = week.soc.audit.list(action="report.generate", limit=50)
    mine = [e for e in entries if e.details.get("sha256") == m["sha256"]]
    assert len(mine) == 1 and mine[0].actor == "user:kiemtoan"
    assert mine[0].seq == m["audit_seq"] + 1  # the head recorded is the one just before generation


def test_intact_report_verifies_with_and_without_the_audit_log(week, report) -> None:
    r = verify(report, audit=week.soc.audit)
    assert r.ok, r.problems
    assert any("vouches" in n for n in r.notes)
    assert verify(report).ok
    assert verify(sidecar_of(report)).ok  # the manifest's path works too


def test_changed_byte_is_named(report) -> None:
    data = bytearray(report.read_bytes())
    data[-3] ^= 0x20
    report.write_bytes(bytes(data))
    r = verify(report)
    assert not r.ok and any("content changed" in p for p in r.problems)


def test_truncated_file_names_size_and_hash(report) -> None:
    report.write_bytes(report.read_bytes()[:-10])
    r = verify(report)
    assert any("size changed" in p for p in r.problems) and any("content changed" in p for p in r.problems)


def test_report_and_sidecar_both_replaced_is_caught_by_the_audit_log(week, report) -> None:
    report.write_bytes(report.read_bytes().replace(b"closed", b"new\x00\x00\x00"))
    write_manifest(report, {"kind": "report", "format": "csv", "audit_head": "0" * 64})  # a forger's new manifest
    assert verify(report).ok  # the file matches the forged manifest...
    r = verify(report, audit=week.soc.audit)  # ...but no audit entry vouches for that hash
    assert not r.ok and any("no audit entry records" in p for p in r.problems)


def test_missing_manifest_is_a_failure(report) -> None:
    sidecar_of(report).unlink()
    r = verify(report)
    assert not r.ok and any("no manifest" in p for p in r.problems)


def test_cli_verify_without_a_manifest_is_not_verified_not_tampered(week, report) -> None:
    """A report downloaded from the console without its manifest (issue 16): exit 2, says
    what to fetch, never "TAMPERED"."""
    sidecar_of(report).unlink()
    r = citysoc(week.data, "report", "verify", str(report))
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert "NOT VERIFIED" in r.stderr and "TAMPERED" not in r.stderr
    assert f"{report.name}.manifest.json" in r.stderr.replace("\n", "")


def test_cli_verify_exit_codes(week, report) -> None:
    ok = citysoc(week.data, "report", "verify", str(report))
    assert ok.returncode == 0, ok.stderr
    m = json.loads(sidecar_of(report).read_text())
    m["size"] += 1
    sidecar_of(report).write_text(json.dumps(m))
    bad = citysoc(week.data, "report", "verify", str(report))
    assert bad.returncode == 1 and "size changed" in bad.stderr


def test_evidence_for_an_alert_has_its_events_runs_and_audit(week, tmp_path) -> None:
    out = tmp_path / "alert.zip"
    aid = week.alert_ids[0]
    m = export_evidence(week.evidence_sources(), out, actor="user:kiemtoan", alert_id=aid)
    assert m["kind"] == "evidence" and verify(out, audit=week.soc.audit).ok
    with zipfile.ZipFile(out) as zf:
        names = set(zf.namelist())
        assert {f"alert-{aid}/alert.json", f"alert-{aid}/events.ndjson", f"alert-{aid}/audit.json",
                f"alert-{aid}/playbook_runs.json", "evidence.json", "manifest.json"} <= names
        events = [orjson.loads(x) for x in zf.read(f"alert-{aid}/events.ndjson").splitlines()]
        assert [e["host"]["name"] for e in events] == ["cam-0000"]  # its own event, not its neighbours'
        audit = orjson.loads(zf.read(f"alert-{aid}/audit.json"))
        assert [a["after"]["status"] for a in audit] == ["acknowledged", "closed"]
        assert orjson.loads(zf.read(f"alert-{aid}/playbook_runs.json"))[0]["playbook"] == "chan-ip-do-mat-khau"


def test_evidence_for_a_case_and_a_changed_member_is_named(week, tmp_path) -> None:
    week.soc.cases.add_attachment(week.case_id, "ảnh-camera.jpg", "image/jpeg", b"\xff\xd8 jpeg bytes", "user:an")
    out = tmp_path / "case.zip"
    r = citysoc(week.data, "report", "evidence", "--case", str(week.case_id), "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert citysoc(week.data, "report", "verify", str(out)).returncode == 0
    with zipfile.ZipFile(out) as zf:
        names = zf.namelist()
        assert "case/case.json" in names and "case/timeline.json" in names
        assert any(n.startswith("case/attachments/") and n.endswith("ảnh-camera.jpg") for n in names)
        members = {n: zf.read(n) for n in names}
    # Rewrite the archive with one member changed (a valid zip: only our manifest can tell).
    forged = tmp_path / "forged.zip"
    with zipfile.ZipFile(forged, "w") as zf:
        for n, data in members.items():
            zf.writestr(n, data.replace(b"Qu\xe1\xba\xadn 1", b"Qu\xe1\xba\xadn 9") if n == "case/case.json" else data)
    r = verify(forged)
    assert not r.ok and any("member case/case.json: content changed" in p for p in r.problems), r.problems
    bad = citysoc(week.data, "report", "verify", "--no-audit", str(forged))
    assert bad.returncode == 1 and "case/case.json" in bad.stderr


def test_evidence_needs_exactly_one_subject_and_an_existing_one(week, tmp_path) -> None:
    r = citysoc(week.data, "report", "evidence", "-o", str(tmp_path / "x.zip"))
    assert r.returncode == 1 and "exactly one of --case ID or --alert ID" in r.stderr
    r = citysoc(week.data, "report", "evidence", "--alert", "999999", "-o", str(tmp_path / "x.zip"))
    assert r.returncode == 1 and "999999" in r.stderr
    assert not list(tmp_path.iterdir())
