"""Pure alert rules: scoring, entities, dedupe keys, the status workflow, suppressions."""
from __future__ import annotations

import pytest

from core.alerts import (
    Alert,
    Entities,
    Suppression,
    TransitionError,
    check_transition,
    dedupe_key,
    entities_of,
    risk_score,
)
from core.protocols import Detection


def test_risk_is_level_times_criticality_with_default_three():
    assert risk_score("critical", 5) == 100
    assert risk_score("high", None) == 4 * 3 * 4
    assert risk_score("low", 1) == 8
    assert risk_score("bogus", 9) == 3 * 3 * 4  # unknown level -> medium, out-of-range criticality -> 3


def test_entities_come_from_ecs_fields_and_asset_criticality_raises_risk():
    ev = {"host": {"name": "cam-07"}, "user": {"name": "admin"}, "source": {"ip": "10.1.2.3"},
          "citysoc": {"asset": {"id": "A-7", "criticality": 5}, "center": "camera-ops"}}
    ent = entities_of([ev])
    assert (ent.host, ent.user, ent.source_ip, ent.asset_id, ent.center, ent.criticality) == \
        ("cam-07", "admin", "10.1.2.3", "A-7", "camera-ops", 5)
    a = Alert.from_detection(Detection("r", "t", "high", [ev]), "2026-11-25T00:00:00.000Z")
    assert a.risk_score == 4 * 5 * 4
    assert 'host.name:"cam-07"' in a.events_query


def test_dedupe_key_same_rule_same_entities_only():
    e1, e2 = Entities(host="a"), Entities(host="b")
    assert dedupe_key("r1", e1) == dedupe_key("r1", Entities(host="a"))
    assert dedupe_key("r1", e1) != dedupe_key("r1", e2)
    assert dedupe_key("r1", e1) != dedupe_key("r2", e1)
    assert dedupe_key("r1", e1, "grp") == dedupe_key("r1", e2, "grp")


@pytest.mark.parametrize("cur,new,res,ok", [
    ("new", "acknowledged", None, True),
    ("new", "closed", "benign", True),
    ("new", "closed", None, False),
    ("acknowledged", "in_progress", "true_positive", False),
    ("closed", "new", None, False),
    ("closed", "in_progress", None, True),
    ("in_progress", "bogus", None, False),
])
def test_transition_table(cur, new, res, ok):
    if ok:
        check_transition(cur, new, res)
    else:
        with pytest.raises(TransitionError):
            check_transition(cur, new, res)


def test_suppression_matches_rule_field_pattern_until_expiry():
    s = Suppression(id=1, rule_id="r1", field="host", value="cam-0*", owner="o", reason="maintenance",
                    created_at="2026-01-01T00:00:00.000Z", expires_at="2026-12-01T00:00:00.000Z")
    now = "2026-11-25T00:00:00.000Z"
    assert s.matches("r1", Entities(host="cam-01"), now)
    assert not s.matches("r1", Entities(host="nvr-01"), now)
    assert not s.matches("r2", Entities(host="cam-01"), now)
    assert not s.matches("r1", Entities(host="cam-01"), "2026-12-02T00:00:00.000Z")
