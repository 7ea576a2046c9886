"""Both catalogs hold the same keys, none empty; every key the templates and scripts use
exists, including the ones built from a prefix and a value the API sends (levels,
statuses, roles, run and step states, tactics...)."""
from __future__ import annotations

import json
import re
from pathlib import Path

from core.alerts import ENTITY_FIELDS
from core.auth import ROLES
from core.playbooks import RUN_STATUSES, STEP_STATUSES
from dashboards.i18n import LANGUAGES, catalog

DASH = Path(__file__).resolve().parents[2] / "dashboards"
LEVELS = ["critical", "high", "medium", "low", "informational"]


def _literal_keys() -> set[str]:
    keys: set[str] = set()
    for f in (DASH / "templates").glob("*.html"):
        keys |= set(re.findall(r"""\bt\(\s*['"]([a-z_]+\.[A-Za-z0-9_.\-]+)['"]\s*\)""", f.read_text(encoding="utf-8")))
    for f in (DASH / "static").glob("*.js"):
        keys |= set(re.findall(r"""\bT\(\s*"([a-z_]+\.[A-Za-z0-9_.\-]+)"\s*\)""", f.read_text(encoding="utf-8")))
    from dashboards.pages import NAV

    keys |= {n.label for n in NAV}
    return keys


def _built_keys() -> set[str]:
    """Keys composed from a prefix and a value (``t('level.' ~ l)``, ``T("status." + a.status)``)."""
    keys = {f"level.{x}" for x in LEVELS}
    keys |= {f"status.{x}" for x in ["new", "acknowledged", "in_progress", "closed"]}
    keys |= {f"resolution.{x}" for x in ["true_positive", "false_positive", "benign"]}
    keys |= {f"role.{r}" for r in ROLES}
    keys |= {f"lang.{x}" for x in LANGUAGES}
    keys |= {f"run.{x}" for x in RUN_STATUSES} | {f"step.{x}" for x in STEP_STATUSES}
    keys |= {f"decision.{x}" for x in ["approved", "rejected"]}
    keys |= {f"entity.{x}" for x in ENTITY_FIELDS}
    keys |= {f"health.kind_{x}" for x in ["source", "stage"]}
    keys |= {f"sort.{x}" for x in ["-last_seen", "last_seen", "-first_seen", "-risk_score", "-count", "-id"]}
    keys |= {f"time.{x}" for x in ["now-15m", "now-1h", "now-24h", "now-7d", "now-30d"]}
    try:
        from core.assets import HEALTH_STATUSES
    except ImportError:  # the asset model is younger than the console
        HEALTH_STATUSES = ("healthy", "degraded", "silent", "unknown")
    keys |= {f"asset_status.{x}" for x in HEALTH_STATUSES}
    tactics = re.search(r"const TACTICS = \[([^\]]+)\]", (DASH / "static/rules.js").read_text(encoding="utf-8"))
    keys |= {f"tactic.{x}" for x in re.findall(r'"([a-z_]+)"', tactics.group(1))}
    return keys


def test_catalogs_have_the_same_keys_and_no_empty_label() -> None:
    vi, en = catalog("vi"), catalog("en")
    assert set(vi) == set(en), sorted(set(vi) ^ set(en))
    for lang in LANGUAGES:
        assert all(isinstance(v, str) and v.strip() for v in catalog(lang).values()), lang
    # Raw files: no duplicate keys hiding a translation.
    for lang in LANGUAGES:
        pairs = json.loads((DASH / "i18n" / f"{lang}.json").read_text(encoding="utf-8"), object_pairs_hook=list)
        names = [k for k, _ in pairs]
        assert len(names) == len(set(names)), lang


def test_every_used_key_exists_in_both_catalogs() -> None:
    used = _literal_keys() | _built_keys()
    assert len(used) > 150
    for lang in LANGUAGES:
        missing = sorted(used - set(catalog(lang)))
        assert not missing, (lang, missing)


def test_vietnamese_is_translated_not_copied() -> None:
    vi, en = catalog("vi"), catalog("en")
    same = [k for k in vi if vi[k] == en[k] and not k.startswith(("lang.", "alert.attack", "rule.attack"))]
    assert len(same) < 3, same
    assert vi["nav.alerts"] == "Cảnh báo" and vi["level.critical"] == "nghiêm trọng"


def test_default_language_setting() -> None:
    from core.settings import Settings

    assert Settings().console.default_language == "vi"
    assert Settings(console={"default_language": "en"}).console.default_language == "en"


def test_console_and_reports_use_the_glossarys_one_term() -> None:
    """Issue 16: "True positive" was "tấn công thật" in the console and "Đúng là tấn công" in
    the PDF. Every glossary row that pairs console keys with report keys (``center.*`` =
    reports ``ctr_*``...) must give the same words in both, in both languages (capitals
    follow the place, the words do not change)."""
    glossary = (DASH / "i18n" / "GLOSSARY.md").read_text(encoding="utf-8")
    pairs = re.findall(r"`([a-z_.]+?)(\*?)` = reports `([a-z_]+?)(\*?)`", glossary)
    assert len(pairs) >= 6, pairs
    reports = DASH.parent / "reports" / "catalogs"
    compared = 0
    for lang in LANGUAGES:
        console = catalog(lang)
        report = json.loads((reports / f"{lang}.json").read_text(encoding="utf-8"))
        for ck, wild, rk, _ in pairs:
            keys = [k for k in console if k.startswith(ck)] if wild else [ck]
            for k in keys:
                rkey = rk + k[len(ck):] if wild else rk
                if rkey not in report:
                    continue  # a console-only value ("no center")
                assert console[k].casefold() == report[rkey].casefold(), (lang, k, console[k], rkey, report[rkey])
                compared += 1
    assert compared >= 2 * 15, compared
