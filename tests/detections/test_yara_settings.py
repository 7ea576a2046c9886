"""YARA settings: validated as data, built into a scanner and a file-event detector."""
from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from detections.yara import YaraCompileError
from detections.yara.settings import YaraSettings, build_file_event_scanner, build_scanner

FIX = Path(__file__).parent / "fixtures_yara"


def test_settings_build_scanner_with_limits_and_watcher(tmp_path: Path):
    s = YaraSettings.model_validate({"max_file_size_mb": 1, "timeout_s": 3, "watch_prefixes": [str(FIX)]})
    scanner, compiled = build_scanner(s, cache_dir=tmp_path)
    assert scanner.limits.max_file_size == 1024 * 1024 and scanner.limits.timeout == 3
    assert compiled.rule_count == 10
    det = build_file_event_scanner(s, scanner)
    [d] = det.process({"event": {"category": "file"}, "file": {"path": str(FIX / "cmd.jsp")}})
    assert d.rule_id == "yara:webshells.citysoc_webshell_jsp_runtime_exec"
    assert build_file_event_scanner(YaraSettings(), scanner) is None


def test_bad_rules_refuse_to_build_unless_skipping(tmp_path: Path):
    (tmp_path / "bad.yar").write_text("rule x { condition: nope }\n")
    with pytest.raises(YaraCompileError, match="bad.yar:1"):
        build_scanner(YaraSettings(rules=[tmp_path]))
    _, compiled = build_scanner(YaraSettings(rules=[tmp_path], skip_bad_rules=True))
    assert compiled.rule_count == 10 and len(compiled.errors) == 1


def test_unknown_keys_and_bad_values_are_errors():
    with pytest.raises(ValidationError, match="max_size"):
        YaraSettings.model_validate({"max_size": 3})
    with pytest.raises(ValidationError, match="timeout_s"):
        YaraSettings.model_validate({"timeout_s": 0})
