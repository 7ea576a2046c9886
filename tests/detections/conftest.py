"""Shared helpers for the detections tests: compile a rule from YAML text, in a temp dir."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from detections.sigma import SigmaEngine, load_rules

ROOT = Path(__file__).resolve().parents[2]
CORPORA = ROOT.parent / "shared" / "corpora"
SIGMA = CORPORA / "sigma"


@pytest.fixture
def compile_rule(tmp_path: Path):
    """compile_rule(yaml_text) -> SigmaEngine with that one rule (fails the test if it does not load)."""
    counter = {"n": 0}

    def make(text: str, **engine_kw) -> SigmaEngine:
        counter["n"] += 1
        p = tmp_path / f"rule{counter['n']}.yml"
        p.write_text(textwrap.dedent(text), encoding="utf-8")
        rs = load_rules([p])
        assert not rs.failures, [f.reason for f in rs.failures]
        eng = SigmaEngine(rs.rules, **engine_kw)
        assert not eng.failures, [f.reason for f in eng.failures]
        return eng

    return make


@pytest.fixture(scope="session")
def sigmahq_ruleset():
    """All SigmaHQ rules loaded once per session (about 7 s), or skip when the corpus is absent."""
    dirs = [SIGMA / "rules", SIGMA / "rules-emerging-threats", SIGMA / "rules-threat-hunting"]
    if not all(d.is_dir() for d in dirs):
        pytest.skip(f"SigmaHQ corpus not found under {SIGMA}")
    return load_rules(dirs)
