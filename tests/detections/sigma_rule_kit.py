"""Compile one Sigma rule from YAML text into a SigmaEngine, for the modifier and
condition tests (a module of its own name, not a conftest, so imports never collide)."""
from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any


def rule_compiler(tmp_path: Path) -> Callable[..., Any]:
    """``make(yaml_text, **engine_kw)`` -> SigmaEngine with that one rule (fails the test if it does not load)."""
    from detections.sigma import SigmaEngine, load_rules

    counter = {"n": 0}

    def make(text: str, **engine_kw: Any) -> Any:
        counter["n"] += 1
        p = tmp_path / f"rule{counter['n']}.yml"
        p.write_text(textwrap.dedent(text), encoding="utf-8")
        rs = load_rules([p])
        assert not rs.failures, [f.reason for f in rs.failures]
        eng = SigmaEngine(rs.rules, **engine_kw)
        assert not eng.failures, [f.reason for f in eng.failures]
        return eng

    return make
