"""Public rule sets compile (with the externals they need) and match real-looking samples;
failing rule files are reported with file and line; compiled rules are cached."""
from __future__ import annotations

from pathlib import Path

import pytest

from detections.yara import CompiledRules, YaraCompileError, YaraScanner, compile_rules, discover_rule_files
from citysoc.testing import corpora_dir

CORPORA = corpora_dir()
SIGBASE = CORPORA / "yara"
IOT = CORPORA / "yara-iot"
FIX = Path(__file__).parent / "fixtures_yara"

needs_corpora = pytest.mark.skipif(not SIGBASE.is_dir() or not IOT.is_dir(),
                                   reason=f"public YARA corpora not found at {CORPORA}")


@pytest.fixture(scope="module")
def big(tmp_path_factory) -> CompiledRules:
    if not SIGBASE.is_dir() or not IOT.is_dir():
        pytest.skip(f"public YARA corpora not found at {CORPORA}")
    return compile_rules([SIGBASE, IOT], cache_dir=tmp_path_factory.mktemp("cache"))


@needs_corpora
def test_signature_base_compiles_all_312_files_with_externals(big):
    sig_ns = {ns for ns, p in big.namespaces.items() if p.parent == SIGBASE}
    assert len(sig_ns) == 312
    assert big.errors == []
    # 2,387 signature-base rules + 52 yara-iot rules (private ones included) + our 10
    assert big.rule_count == 2387 + 52 + 10


@needs_corpora
def test_yara_iot_compiles_through_its_index_as_one_namespace():
    ns = discover_rule_files([IOT])
    assert ns == {"yara-iot": IOT / "index.yar"}
    compiled = compile_rules([IOT], include_pack=False)
    assert compiled.rule_count == 52


@needs_corpora
def test_real_signature_base_rules_match_our_samples(big):
    sc = YaraScanner(big.rules)
    [res] = sc.scan_file(FIX / "cam_fw_mirai.elf")
    ids = {f"{m.namespace}.{m.rule}" for m in res.matches}
    assert "crime_mirai.Mirai_Botnet_Malware" in ids  # signature-base's own Mirai rule
    [res] = sc.scan_file(FIX / "upload_webshell.php")
    assert any(m.namespace == "gen_webshells" for m in res.matches)


@needs_corpora
def test_externals_are_filled_per_file(tmp_path: Path, big):
    # gen_webshells_ext_vars rules look at the extension external; the scanner passes it.
    rule = tmp_path / "ext.yar"
    rule.write_text('rule by_ext { condition: extension == ".php" and filename == "a.php" }\n')
    sc = YaraScanner(compile_rules([rule], include_pack=False).rules)
    (tmp_path / "a.php").write_text("hello")
    (tmp_path / "a.txt").write_text("hello")
    assert [m.rule for m in sc.scan_file(tmp_path / "a.php")[0].matches] == ["by_ext"]
    assert sc.scan_file(tmp_path / "a.txt")[0].matches == []


def test_failing_files_are_all_reported_with_file_and_line(tmp_path: Path):
    (tmp_path / "good.yar").write_text('rule ok { strings: $a = "x" condition: $a }\n')
    (tmp_path / "bad1.yar").write_text('rule b1 {\n  strings: $a = "x"\n  condition: $b\n}\n')
    (tmp_path / "bad2.yar").write_text('rule b2 {\n condition:\n  filesize <\n}\n')
    with pytest.raises(YaraCompileError) as ei:
        compile_rules([tmp_path], include_pack=False)
    errs = {Path(e.file).name: e for e in ei.value.errors}
    # yara reports an undefined string at the line where the rule's condition ends
    assert set(errs) == {"bad1.yar", "bad2.yar"}
    assert errs["bad1.yar"].line == 4 and "$b" in errs["bad1.yar"].message
    assert errs["bad2.yar"].line == 4
    assert "bad1.yar:4" in str(ei.value)
    lenient = compile_rules([tmp_path], include_pack=False, strict=False)
    assert set(lenient.namespaces) == {"good"} and lenient.rule_count == 1
    assert len(lenient.errors) == 2


def test_missing_and_empty_sources_are_errors(tmp_path: Path):
    with pytest.raises(YaraCompileError, match="no such file"):
        compile_rules([tmp_path / "nope"])
    with pytest.raises(YaraCompileError, match="no .yar"):
        compile_rules([tmp_path])


def test_cache_reuses_compiled_rules_until_a_file_changes(tmp_path: Path):
    rules = tmp_path / "rules"
    rules.mkdir()
    f = rules / "one.yar"
    f.write_text('rule one { strings: $a = "needle1" condition: $a }\n')
    cache = tmp_path / "cache"
    first = compile_rules([rules], include_pack=False, cache_dir=cache)
    second = compile_rules([rules], include_pack=False, cache_dir=cache)
    assert not first.cache_hit and second.cache_hit and second.cache_key == first.cache_key
    assert [m.rule for m in second.rules.match(data=b"a needle1")] == ["one"]
    f.write_text('rule two { strings: $a = "needle2" condition: $a }\n')
    third = compile_rules([rules], include_pack=False, cache_dir=cache)
    assert not third.cache_hit
    assert [m.rule for m in third.rules.match(data=b"a needle2")] == ["two"]


@needs_corpora
def test_the_big_set_loads_from_cache(tmp_path: Path):
    compile_rules([SIGBASE, IOT], cache_dir=tmp_path)
    again = compile_rules([SIGBASE, IOT], cache_dir=tmp_path)
    assert again.cache_hit and again.rule_count == 2449
    assert len(list(tmp_path.glob("yara-*.yarc"))) == 1
