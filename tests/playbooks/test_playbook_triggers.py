"""The playbook trigger index (playbooks/triggers.py) answers exactly what checking every
trigger of every playbook with ``AlertTrigger.matches`` answers.

Alerts are made from rules we did not write for this test: our rule pack and SigmaHQ's
``rules/linux`` and ``rules/network`` (their ids and tags), the network detectors' and
YARA's rule ids, at every level, in every center the library names and others, with and
without an asset type. Triggers: the real ones of ``playbooks/library``, then the same
plus generated ones with globs, literals in other cases, levels, centers and asset
types alone, so every path of the index (by rule, by tag, scanned) is compared."""
from __future__ import annotations

import functools
import random

import pytest
import yaml

from core.alerts import Alert, Entities
from core.levels import LEVELS
from detections.packs import SIGMA_PACK
from playbooks.actions import ACTIONS
from playbooks.spec import LIBRARY, AlertTrigger, Playbook, load_folders
from playbooks.triggers import TriggerIndex
from citysoc.testing import corpora_dir

SIGMAHQ = corpora_dir() / "sigma" / "rules"
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@functools.cache
def _rules() -> list[tuple[str, list[str]]]:
    files = sorted(SIGMA_PACK.rglob("*.yml"))
    for sub in ("linux", "network"):
        files += sorted((SIGMAHQ / sub).rglob("*.yml"))
    out = []
    for f in files:
        for doc in yaml.load_all(f.read_text(encoding="utf-8"), Loader=_LOADER):  # our pack keeps test events after ---
            if isinstance(doc, dict) and doc.get("id") and "detection" in doc:
                out.append((str(doc["id"]), [str(t) for t in doc.get("tags") or []]))
    out += [(f"net:{n}", ["attack.t1046"]) for n in ("port_scan", "camera_egress", "brute_force", "beaconing")]
    out += [("yara:mirai_botnet", ["citysoc.warehouse.ingest_yara"]), ("yara:webshell", [])]
    return out


def _alerts(seed: int) -> list[Alert]:
    rnd = random.Random(seed)
    centers = [None, "", "warehouse", "Warehouse", "camera", "district-7", "forecasting"]
    out = []
    for rule_id, tags in _rules():
        for _ in range(3):
            rid = rule_id.upper() if rnd.random() < 0.1 else rule_id
            tg = [t.upper() if rnd.random() < 0.1 else t for t in tags if rnd.random() < 0.8]
            if rnd.random() < 0.2:
                tg.append(rnd.choice(["citysoc.camera.bruteforce", "citysoc.camera.unknown_device",
                                      "citysoc.warehouse.mass_export", "citysoc.forecasting.model_changed"]))
            events = [{"citysoc": {"asset": {"type": rnd.choice(["camera", "nvr", "NVR", "server", 7])}}}
                      for _ in range(rnd.choice([0, 1, 2]))]
            out.append(Alert(id=0, rule_id=rid, rule_title=rid, level=rnd.choice(LEVELS), tags=tg, engine="sigma",
                             description="", entities=Entities(center=rnd.choice(centers)), risk_score=1,
                             status="new", resolution=None, assignee=None, first_seen="", last_seen="", count=1,
                             dedupe_key="k", created_at="", updated_at="", events=events))
    return out


def _generated(seed: int, library: list[Playbook]) -> list[Playbook]:
    rnd = random.Random(seed)
    rules = _rules()
    tags = sorted({t for _, ts in rules for t in ts})

    def some(pool: list[str], globbed: bool) -> list[str]:
        vals = rnd.sample(pool, rnd.choice([1, 2, 3]))
        if globbed:
            vals = [v[: rnd.randrange(1, len(v) + 1)] + rnd.choice(["*", "?", "*e*", "[a-f]*"]) for v in vals]
        return [v.upper() if rnd.random() < 0.2 else v for v in vals]

    out = list(library)
    for i in range(60):
        trigs = []
        for _ in range(rnd.choice([1, 2, 3])):
            t = AlertTrigger()
            kind = rnd.choice(["rule", "rule_glob", "tag", "tag_glob", "none"])
            if kind.startswith("rule"):
                t.rule_id = some([r for r, _ in rules], kind.endswith("glob"))
            if kind.startswith("tag") or rnd.random() < 0.2:
                t.tags = some(tags, kind.endswith("glob") or rnd.random() < 0.3)
            if rnd.random() < 0.3:
                t.level = rnd.sample(list(LEVELS), 2)
            if rnd.random() < 0.3:
                t.min_level = rnd.choice(LEVELS)
            if rnd.random() < 0.3:
                t.center = rnd.choice([["warehouse"], ["ware*"], ["CAMERA", "district-?"]])
            if rnd.random() < 0.2:
                t.asset_type = rnd.choice([["camera"], ["nvr", "serv*"], ["CAM*"]])
            trigs.append(t)
        out.append(Playbook(name=f"gen-{i:02d}", title="", description="", source="", steps=[],
                            alert_triggers=trigs))
    return out


def _old_matching(playbooks: list[Playbook], alert: Alert) -> list[str]:
    """What ``Runner.matching`` did before the index: every trigger, one by one."""
    return [p.name for p in sorted(playbooks, key=lambda p: p.name) if p.matches(alert)]


@pytest.fixture(scope="module")
def library() -> list[Playbook]:
    cat = load_folders([LIBRARY], ACTIONS)
    assert not cat.errors and len(cat.playbooks) >= 5
    return list(cat.playbooks.values())


@pytest.mark.skipif(not SIGMAHQ.is_dir(), reason="corpora/sigma not present")
@pytest.mark.parametrize("seed", [1, 2])
def test_index_matches_what_every_library_trigger_matches(library, seed):
    index = TriggerIndex(library)
    alerts = _alerts(seed)
    hits = 0
    for a in alerts:
        want = _old_matching(library, a)
        assert [p.name for p in index.matching(a)] == want, (a.rule_id, a.tags, a.level, a.entities.center)
        hits += bool(want)
    # the alerts reach every library playbook, and most alerts start none (as in the city)
    reached = {p.name for a in alerts for p in index.matching(a)}
    assert reached == {p.name for p in library}
    assert 0 < hits < len(alerts) / 2


@pytest.mark.skipif(not SIGMAHQ.is_dir(), reason="corpora/sigma not present")
@pytest.mark.parametrize("seed", [3, 4, 5])
def test_index_matches_generated_triggers_with_globs_cases_levels_centers(library, seed):
    playbooks = _generated(seed, library)
    index = TriggerIndex(playbooks)
    assert index._scan and index._by_rule and index._by_tag  # every path of the index is used
    alerts = _alerts(seed)
    hits = 0
    for a in alerts:
        want = _old_matching(playbooks, a)
        assert [p.name for p in index.matching(a)] == want, (a.rule_id, a.tags, a.level, a.entities.center)
        hits += len(want)
    assert hits > len(alerts) / 10
