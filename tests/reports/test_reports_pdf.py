"""An auditor exports a week as PDF, in Vietnamese and in English, with the CLI, and
reads it: pdftotext must show the labels (with their diacritics), the week's days in the
reader's date form and the figures we put in; pdftoppm must render every page."""
from __future__ import annotations

import datetime as _dt
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from core.events import parse_timestamp
from reports.i18n import Translator

pytestmark = pytest.mark.skipif(not (shutil.which("pdftotext") and shutil.which("pdftoppm")),
                                reason="poppler-utils not installed (scripts/system-deps.sh)")


def citysoc(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CITYSOC_DATA": str(data)}
    return subprocess.run([sys.executable, "-m", "citysoc.cli", *args], env=env, capture_output=True, text=True,
                          timeout=120)


def pdf_text(path: Path) -> str:
    out = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True).stdout
    return re.sub(r"[ \t]+", " ", out)


def expected_mtta_mttr(week) -> tuple[float, float]:
    """Computed here from the audit entries and alerts directly, not by the report code."""
    ack: dict[int, str] = {}
    close: dict[int, str] = {}
    for e in week.soc.audit.iter_all():
        if e.action != "alert.update":
            continue
        aid = int(e.target.split(":")[1])
        if e.before["status"] == "new" and e.after["status"] != "new":
            ack.setdefault(aid, e.time)
        if e.after["status"] == "closed":
            close[aid] = e.time
    a_d, c_d = [], []
    for aid in week.alert_ids:
        al = week.soc.alerts.get(aid)
        fs = parse_timestamp(al.first_seen)
        if aid in ack:
            a_d.append((parse_timestamp(ack[aid]) - fs).total_seconds())
        if al.status == "closed" and aid in close:
            c_d.append((parse_timestamp(close[aid]) - fs).total_seconds())
    return sum(a_d) / len(a_d), sum(c_d) / len(c_d)


@pytest.fixture(scope="module")
def pdfs(week, tmp_path_factory):
    out = tmp_path_factory.mktemp("pdf")
    made = {}
    for lang in ("vi", "en"):
        f = out / f"tuan-{lang}.pdf"
        r = citysoc(week.data, "report", "--from", week.first_day.isoformat(), "--to", week.last_day.isoformat(),
                    "--format", "pdf", "--lang", lang, "-o", str(f))
        assert r.returncode == 0, r.stderr
        assert f"{week.total} alerts" in r.stdout
        made[lang] = f
    return made


def test_vietnamese_pdf_shows_labels_dates_and_figures(week, pdfs) -> None:
    text = pdf_text(pdfs["vi"])
    tr = Translator("vi")
    for label in ("Báo cáo vận hành an ninh mạng", "Cảnh báo theo mức độ", "Số cảnh báo theo ngày",
                  "Thời gian tiếp nhận trung bình (MTTA)", "Tài sản có rủi ro cao nhất", "Hồ sơ sự cố đang mở",
                  "Thay đổi người dùng và khóa API", "Nghiêm trọng", "Đã tiếp nhận"):
        assert label in text, label
    first = week.first_day.strftime("%d/%m/%Y")
    last = week.last_day.strftime("%d/%m/%Y")
    assert f"{first} – {last}" in text
    assert re.search(rf"Số cảnh báo trong kỳ {week.total}\b", text)
    assert re.search(rf"Nghiêm trọng {week.by_level['critical']} ", text)
    assert re.search(rf"Cao {week.by_level['high']} ", text)
    for center, n in week.by_center.items():
        assert re.search(rf"{tr.center(center)} {n} ", text), center
    assert "Kho dữ liệu dùng chung" in text  # center names in Vietnamese
    mtta, mttr = expected_mtta_mttr(week)
    assert f"Thời gian tiếp nhận trung bình (MTTA) {tr.duration(mtta)}" in text
    assert tr.duration(mttr) in text
    # Every day of the week under the bars, in dd/mm/yyyy.
    for d in range(7):
        assert (week.first_day + _dt.timedelta(days=d)).strftime("%d/%m/%Y") in text
    # Data from the stores, with Vietnamese text intact.
    assert "Tấn công dò mật khẩu camera Quận 1" in text
    assert "chan-ip-do" in text and "block_ip (đã làm)" in text and "Thành công" in text
    assert "kiemtoan" in text and "rsyslog-kho" in text
    # The CLI builds the installation's rule catalog (our pack): coverage has real techniques.
    assert "Độ bao phủ ATT&CK của các luật đang bật" in text
    assert "T1110" in text  # brute force: our camera rules cover it


def test_english_pdf_has_the_same_figures(week, pdfs) -> None:
    text = pdf_text(pdfs["en"])
    assert "Security operations report" in text
    assert f"{week.first_day.isoformat()} – {week.last_day.isoformat()}" in text
    assert re.search(rf"Alerts in the period {week.total}\b", text)
    assert re.search(rf"Critical {week.by_level['critical']} ", text)
    assert "ATT&CK coverage of enabled rules" in text and "T1110" in text
    assert "Báo cáo" not in text  # no Vietnamese label leaks into the English report
    assert re.search(rf"Shared data warehouse {week.by_center['warehouse']} ", text)


def test_pdf_pages_render_and_fonts_are_embedded(pdfs, tmp_path) -> None:
    fonts = subprocess.run(["pdffonts", str(pdfs["vi"])], capture_output=True, text=True).stdout
    # Text is set in the embedded DejaVu Sans (reportlab lists Helvetica/Times as unused defaults).
    assert re.search(r"DejaVuSans\s+TrueType\s+\S+\s+yes", fonts), fonts
    subprocess.run(["pdftoppm", "-r", "60", "-png", str(pdfs["vi"]), str(tmp_path / "page")], check=True)
    pages = sorted(tmp_path.glob("page-*.png"))
    info = subprocess.run(["pdfinfo", str(pdfs["vi"])], capture_output=True, text=True).stdout
    n = int(re.search(r"Pages:\s+(\d+)", info).group(1))
    assert len(pages) == n >= 2
    assert all(p.stat().st_size > 5000 for p in pages)  # drawn, not blank
    keep = os.environ.get("REPORTS_KEEP_PAGE")
    if keep:
        shutil.copy(pages[0], keep)


def test_report_verify_accepts_the_pdf_and_catches_one_changed_byte(week, pdfs, tmp_path) -> None:
    f = tmp_path / "copy.pdf"
    shutil.copy(pdfs["vi"], f)
    shutil.copy(str(pdfs["vi"]) + ".manifest.json", str(f) + ".manifest.json")
    # The manifest names its file: a renamed copy is reported, so verify the original.
    ok = citysoc(week.data, "report", "verify", str(pdfs["vi"]))
    assert ok.returncode == 0, ok.stderr
    assert "intact" in ok.stdout and "audit log vouches" in ok.stdout
    data = bytearray(pdfs["vi"].read_bytes())
    original = bytes(data)
    data[len(data) // 2] ^= 0x01
    pdfs["vi"].write_bytes(bytes(data))
    try:
        bad = citysoc(week.data, "report", "verify", str(pdfs["vi"]))
        assert bad.returncode == 1
        assert "TAMPERED" in bad.stderr and "content changed" in bad.stderr
    finally:
        pdfs["vi"].write_bytes(original)
    renamed = citysoc(week.data, "report", "verify", str(f))
    assert renamed.returncode == 1 and "manifest names file" in renamed.stderr
