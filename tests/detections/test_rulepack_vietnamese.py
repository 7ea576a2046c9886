"""Every rule of ours reads in Vietnamese on a Vietnamese page: each Sigma rule of the pack
carries ``title_vi`` and ``description_vi`` (custom fields the loader keeps), each YARA pack
rule ``title``/``title_vi``/``description_vi`` meta, each network and asset-health rule a
Vietnamese title (declared in their DetectorSpec); and the catalog the rules page reads lists all of them with ATT&CK tags.
SigmaHQ rules have no Vietnamese fields and stay English."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from citysoc.detection import build_detection
from core.settings import Settings
from detections.sigma import load_rules

PACK = Path(__file__).resolve().parents[2] / "detections" / "rules" / "sigma"
# Letters only Vietnamese uses (tones and hooks): a title without one is not Vietnamese.
VI_LETTERS = re.compile(r"[ăâđêôơưàáảãạằắẳẵặầấẩẫậèéẻẽẹềếểễệìíỉĩịòóỏõọồốổỗộờớởỡợùúủũụừứửữựỳýỷỹỵ]", re.I)


def _is_vietnamese(text: str, english: str) -> bool:
    return bool(text) and text != english and len(VI_LETTERS.findall(text)) >= 2


def test_every_pack_rule_has_a_vietnamese_title_and_description() -> None:
    rs = load_rules([PACK])
    assert len(rs.rules) >= 40 and not rs.failures
    bad = [(s.path, s.title) for s in rs.rules
           if not _is_vietnamese(s.title_vi, s.title) or not _is_vietnamese(s.description_vi, s.description)]
    assert bad == []
    # Our triage notes keep their marker in Vietnamese, so an analyst finds them in both.
    assert [s.title for s in rs.rules if "Xử lý:" not in s.description_vi] == []
    titles = [s.title_vi for s in rs.rules]
    assert len(titles) == len(set(titles)), "two rules share a Vietnamese title"


def test_a_rule_without_vietnamese_fields_loads_with_empty_ones(tmp_path: Path) -> None:
    (tmp_path / "r.yml").write_text(
        "title: Plain SigmaHQ-style rule\nid: 0b4f6e1e-7d33-4c8b-9a55-1d2f3e4a5b6c\nstatus: test\n"
        "logsource: {product: linux, service: sshd}\ndetection:\n  sel: {event.action: x}\n  condition: sel\n"
        "level: low\n", encoding="utf-8")
    (spec,) = load_rules([tmp_path]).rules
    assert (spec.title_vi, spec.description_vi) == ("", "")


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    data = tmp_path_factory.mktemp("data")
    rt = build_detection(Settings(data=data), start_feeds=False, catalog_only=True)
    yield {r.id: r for r in rt.list_rules()}
    rt.close()


def test_catalog_lists_network_asset_and_yara_rules_in_both_languages(catalog) -> None:
    ids = set(catalog)
    for rid in ("net:port_scan", "net:brute_force", "net:camera_egress", "net:beaconing", "net:first_seen_domain",
                "yara:webshells.citysoc_webshell_php_eval_request"):
        assert rid in ids, rid
    yara_rules = [r for r in catalog.values() if r.engine == "yara"]
    assert len(yara_rules) >= 10
    for r in catalog.values():
        if r.engine in ("network", "assets", "yara", "sigma", "sigma-correlation"):
            assert _is_vietnamese(r.title_vi, r.title), (r.id, r.title, r.title_vi)
        if r.engine in ("network", "assets", "yara"):
            assert any(t.startswith("attack.t") for t in r.tags), (r.id, r.tags)
            assert any(re.fullmatch(r"attack\.[a-z_-]+", t) for t in r.tags), (r.id, r.tags)
    assert "attack.discovery" in catalog["net:port_scan"].tags


def test_asset_detectors_declare_vietnamese_titles() -> None:
    from detections.assets import SilentAssetDetector, UnmanagedAssetDetector

    for spec in (SilentAssetDetector.spec, UnmanagedAssetDetector.spec):
        assert _is_vietnamese(spec.title_vi, spec.title), spec.rule_id


def test_yara_alert_title_is_the_rule_meta_title() -> None:
    from detections.yara.attachments import scan_bytes

    dets = scan_bytes(b"<?php eval($_POST['cmd']); ?>", "shell.php")
    assert [d.title for d in dets if d.rule_id.endswith("citysoc_webshell_php_eval_request")] == [
        "PHP webshell evaluating request input"]


def test_every_library_playbook_has_a_vietnamese_title_and_description() -> None:
    from playbooks.actions import ACTIONS
    from playbooks.spec import load_folders

    library = Path(__file__).resolve().parents[2] / "playbooks" / "library"
    pbs = load_folders([library], ACTIONS).playbooks
    assert len(pbs) >= 5
    bad = [n for n, pb in pbs.items()
           if not _is_vietnamese(pb.title_vi, pb.title) or not _is_vietnamese(pb.description_vi, pb.description)]
    assert bad == []
