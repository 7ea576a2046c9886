"""Where citysoc's own rule packs live, named once (the engines, the CLI and the
scheduled runner all load them from here)."""
from __future__ import annotations

from pathlib import Path

__all__ = ["RULES_DIR", "SIGMA_PACK", "YARA_PACK"]

RULES_DIR = Path(__file__).resolve().parent / "rules"
SIGMA_PACK = RULES_DIR / "sigma"
"""Our Sigma rules, one folder per center, each rule with its ``.tests.yml``."""
YARA_PACK = RULES_DIR / "yara"
"""Our YARA rules (``*.yar``)."""
