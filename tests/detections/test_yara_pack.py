"""Our YARA pack: compiles, every rule carries its evidence metadata, and each fixture
sample matches the rule written for it (with offsets) while benign samples match nothing."""
from __future__ import annotations

from pathlib import Path

import pytest

from detections.yara import PACK_DIR, YaraScanner, compile_rules, scan_bytes

FIX = Path(__file__).parent / "fixtures_yara"


@pytest.fixture(scope="module")
def scanner() -> YaraScanner:
    return YaraScanner(compile_rules(include_pack=True).rules)


def test_pack_compiles_with_every_file_in_its_namespace():
    compiled = compile_rules()
    assert set(compiled.namespaces) == {"webshells", "camera_firmware", "etl_scripts"}
    assert compiled.rule_count == 10
    assert compiled.errors == [] and compiled.warnings == []


def test_every_pack_rule_has_description_author_level_and_attack_tags():
    compiled = compile_rules()
    for rule in compiled.rules:
        meta = rule.meta
        assert meta.get("description") and meta.get("author") and meta.get("triage"), rule.identifier
        assert meta.get("level") in ("low", "medium", "high", "critical"), rule.identifier
        tags = meta.get("tags", "").split()
        assert any(t.startswith("attack.t") for t in tags), rule.identifier
        assert rule.identifier.startswith("citysoc_")


EXPECTED = {
    "upload_webshell.php": {"citysoc_webshell_php_eval_request"},
    "cmd.jsp": {"citysoc_webshell_jsp_runtime_exec"},
    "status.aspx": {"citysoc_webshell_aspx_process_start"},
    "sync_partner.sh": {"citysoc_etl_reverse_shell"},
    "bootstrap_job.sh": {"citysoc_etl_download_pipe_to_shell"},
    "rcS": {"citysoc_firmware_busybox_telnetd_backdoor"},
    "cam_fw_mirai.elf": {"citysoc_firmware_mirai_bot_strings", "citysoc_firmware_default_credential_list"},
    "nvr_fw_gafgyt.elf": {"citysoc_firmware_gafgyt_bot_commands"},
    "report_cache.php": {"citysoc_webshell_php_obfuscated_loader"},
    "benign_export.php": set(),
    "benign_etl.py": set(),
    "cam_fw_clean.elf": set(),
}


def test_every_pack_rule_has_a_sample_that_must_match_and_benign_ones_that_must_not():
    covered = set().union(*EXPECTED.values())
    assert covered == {r.identifier for r in compile_rules().rules}
    assert sum(1 for v in EXPECTED.values() if not v) >= 3
    assert sorted(p.name for p in FIX.iterdir()) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_matches_exactly_its_rules(scanner: YaraScanner, name: str):
    [res] = scanner.scan_file(FIX / name)
    assert res.skipped is None
    assert {m.rule for m in res.matches} == EXPECTED[name]


def test_php_webshell_match_reports_string_offsets_and_snippets(scanner: YaraScanner):
    data = (FIX / "upload_webshell.php").read_bytes()
    [res] = scanner.scan_file(FIX / "upload_webshell.php")
    [m] = res.matches
    hits = {(s.id, s.offset, s.data) for s in m.strings}
    assert ("$php", 0, "<?php") in hits
    off = data.index(b"eval(base64_decode($_POST[")
    assert ("$exec1", off, "eval(base64_decode($_POST[") in hits
    assert res.sha256 and res.size == len(data)


def test_mirai_elf_offsets_point_at_the_strings(scanner: YaraScanner):
    data = (FIX / "cam_fw_mirai.elf").read_bytes()
    [res] = scanner.scan_file(FIX / "cam_fw_mirai.elf")
    mirai = next(m for m in res.matches if m.rule == "citysoc_firmware_mirai_bot_strings")
    by_id = {s.id: s for s in mirai.strings}
    assert by_id["$t1"].offset == data.index(b"LCOGQGPTGP")
    assert by_id["$wd1"].offset == data.index(b"/dev/watchdog")
    assert by_id["$wd1"].data == "/dev/watchdog"


def test_detections_carry_engine_rule_id_level_tags_and_file_facts():
    data = (FIX / "upload_webshell.php").read_bytes()
    [det] = scan_bytes(data, "ingest/upload_webshell.php")
    assert det.engine == "yara"
    assert det.rule_id == "yara:webshells.citysoc_webshell_php_eval_request"
    assert det.level == "critical"
    assert "attack.t1505.003" in det.tags
    assert det.extra["file.path"] == "ingest/upload_webshell.php"
    assert det.extra["file.size"] == len(data)
    assert len(det.extra["file.hash.sha256"]) == 64
    assert {s["id"] for s in det.extra["strings"]} == {"$php", "$exec1"}
    assert det.events[0]["file"]["hash"]["sha256"] == det.extra["file.hash.sha256"]


def test_level_defaults_to_high_and_snippets_are_escaped_and_bounded(tmp_path: Path):
    rule = tmp_path / "r.yar"
    rule.write_text('rule bin_blob { strings: $a = { 00 01 02 5C 41 42 } condition: $a }\n')
    from detections.yara import ScanLimits
    sc = YaraScanner(compile_rules([rule], include_pack=False).rules, ScanLimits(snippet_bytes=5))
    [det] = sc.scan_bytes(b"xx\x00\x01\x02\\AByy", "blob")
    assert det.level == "high" and det.rule_id == "yara:r.bin_blob"
    assert det.extra["strings"] == [{"id": "$a", "offset": 2, "data": "\\x00\\x01\\x02\\\\A..."}]


def test_pack_dir_is_inside_the_repository():
    assert PACK_DIR.is_dir() and sorted(p.name for p in PACK_DIR.glob("*.yar")) == [
        "camera_firmware.yar", "etl_scripts.yar", "webshells.yar"]


def test_attachment_scanner_implements_the_core_protocol(tmp_path: Path):
    import io
    import zipfile

    from core.protocols import AttachmentScanner
    from detections.yara import AttachmentScanError, ScanLimits, YaraAttachmentScanner

    att = YaraAttachmentScanner()
    assert isinstance(att, AttachmentScanner)
    [f] = att.scan_file(str(FIX / "upload_webshell.php"))
    assert (f.rule, f.namespace, f.meta["level"]) == ("citysoc_webshell_php_eval_request", "webshells", "critical")
    assert att.scan_file(str(FIX / "benign_etl.py")) == []
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("sub/cmd.jsp", (FIX / "cmd.jsp").read_bytes())
    (tmp_path / "evidence.zip").write_bytes(buf.getvalue())
    [f] = att.scan_file(str(tmp_path / "evidence.zip"))
    assert f.rule == "citysoc_webshell_jsp_runtime_exec" and f.meta["matched_in"].endswith("evidence.zip!sub/cmd.jsp")
    small = YaraAttachmentScanner(YaraScanner(compile_rules().rules, ScanLimits(max_file_size=10)))
    with pytest.raises(AttachmentScanError, match="not scanned: larger than max size"):
        small.scan_file(str(FIX / "cmd.jsp"))
