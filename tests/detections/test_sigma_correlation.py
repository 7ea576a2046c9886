"""Sigma correlation rules in the stream: event_count, value_count, temporal,
temporal_ordered, group-by, timespan, generate, bounded state."""
from __future__ import annotations

import textwrap
from pathlib import Path


from detections.sigma import SigmaEngine, load_rules

BASE = """
title: Failed login
id: aaaaaaaa-0000-0000-0000-000000000001
name: failed_login
logsource: {category: authentication}
detection:
  sel: {event.outcome: failure}
  condition: sel
level: low
---
title: Successful login
id: aaaaaaaa-0000-0000-0000-000000000002
name: ok_login
logsource: {category: authentication}
detection:
  sel: {event.outcome: success}
  condition: sel
level: low
---
title: Config change
id: aaaaaaaa-0000-0000-0000-000000000003
name: config_change
logsource: {product: citysoc}
detection:
  sel: {event.action: config-change}
  condition: sel
level: low
"""


def engine(tmp_path: Path, correlation: str, **kw) -> SigmaEngine:
    p = tmp_path / "rules.yml"
    p.write_text(textwrap.dedent(BASE) + "---\n" + textwrap.dedent(correlation))
    rs = load_rules([p])
    assert not rs.failures, [f.reason for f in rs.failures]
    eng = SigmaEngine(rs.rules, **kw)
    assert not eng.failures, [f.reason for f in eng.failures]
    return eng


def login(outcome: str, ip: str, second: int, user: str = "bob") -> dict:
    return {
        "@timestamp": f"2024-05-01T10:{second // 60:02d}:{second % 60:02d}Z",
        "event": {"outcome": outcome, "category": ["authentication"]},
        "source": {"ip": ip},
        "user": {"name": user},
    }


def corr_ids(dets) -> list[str]:
    return [d.rule_id for d in dets if d.engine == "sigma-correlation"]


EVENT_COUNT = """
title: Brute force
id: cccccccc-0000-0000-0000-000000000001
correlation:
  type: event_count
  rules: [failed_login]
  group-by: [source.ip]
  timespan: 1m
  condition: {gte: 3}
level: high
tags: [attack.t1110]
"""


def test_sigma_event_count_fires_once_per_group_within_timespan(tmp_path) -> None:
    eng = engine(tmp_path, EVENT_COUNT)
    out = []
    for s, ip in [(0, "1.1.1.1"), (10, "2.2.2.2"), (20, "1.1.1.1"), (30, "2.2.2.2"), (40, "1.1.1.1")]:
        out.extend(eng.process(login("failure", ip, s)))
    fired = [d for d in out if d.engine == "sigma-correlation"]
    assert len(fired) == 1
    det = fired[0]
    assert det.rule_id == "cccccccc-0000-0000-0000-000000000001" and det.level == "high"
    assert det.extra["group"] == {"source.ip": "1.1.1.1"} and det.extra["count"] == 3
    assert len(det.events) == 3 and det.tags == ["attack.t1110"]
    # generate is false: the base rule's own detections are suppressed
    assert all(d.engine == "sigma-correlation" for d in out)


def test_sigma_event_count_outside_timespan_does_not_fire(tmp_path) -> None:
    eng = engine(tmp_path, EVENT_COUNT)
    out = []
    for s in (0, 70, 100):  # 3 failures, but never 3 within 60 s
        out.extend(eng.process(login("failure", "1.1.1.1", s)))
    assert corr_ids(out) == []
    out = eng.process(login("failure", "1.1.1.1", 120))  # 70, 100, 120 are within 60 s
    assert corr_ids(out) == ["cccccccc-0000-0000-0000-000000000001"]


def test_sigma_correlation_generate_true_keeps_base_detections(tmp_path) -> None:
    eng = engine(tmp_path, EVENT_COUNT.replace("level: high", "level: high\ngenerate: true").replace(
        "correlation:\n", "correlation:\n  generate: true\n"))
    out = eng.process(login("failure", "1.1.1.1", 0))
    assert [d.rule_id for d in out] == ["aaaaaaaa-0000-0000-0000-000000000001"]


def test_sigma_value_count_distinct_users_per_ip(tmp_path) -> None:
    eng = engine(
        tmp_path,
        """
        title: Password spray
        id: cccccccc-0000-0000-0000-000000000002
        correlation:
          type: value_count
          rules: [failed_login]
          group-by: [source.ip]
          timespan: 5m
          condition: {gte: 3, field: user.name}
        level: high
        """,
    )
    out = []
    for s, user in [(0, "a"), (5, "a"), (10, "b"), (15, "b")]:
        out.extend(eng.process(login("failure", "9.9.9.9", s, user)))
    assert corr_ids(out) == []
    det = [d for d in eng.process(login("failure", "9.9.9.9", 20, "c")) if d.engine == "sigma-correlation"]
    assert len(det) == 1 and det[0].extra["distinct"] == 3


def test_sigma_temporal_any_order(tmp_path) -> None:
    eng = engine(
        tmp_path,
        """
        title: Login then config change
        id: cccccccc-0000-0000-0000-000000000003
        correlation:
          type: temporal
          rules: [ok_login, config_change]
          group-by: [user.name]
          timespan: 2m
        level: critical
        """,
    )
    change = {"@timestamp": "2024-05-01T10:00:30Z", "event": {"action": "config-change"}, "user": {"name": "bob"}}
    assert corr_ids(eng.process(change)) == []
    assert corr_ids(eng.process(login("success", "1.1.1.1", 0, "alice"))) == []  # other group
    assert corr_ids(eng.process(login("success", "1.1.1.1", 45, "bob"))) == ["cccccccc-0000-0000-0000-000000000003"]


def test_sigma_temporal_ordered_needs_the_order(tmp_path) -> None:
    eng = engine(
        tmp_path,
        """
        title: Failures then success
        id: cccccccc-0000-0000-0000-000000000004
        correlation:
          type: temporal_ordered
          rules: [failed_login, ok_login]
          group-by: [source.ip]
          timespan: 1m
        level: high
        """,
    )
    # success before failure: no
    assert corr_ids(eng.process(login("success", "5.5.5.5", 0))) == []
    assert corr_ids(eng.process(login("failure", "5.5.5.5", 5))) == []
    # failure then success within the timespan: yes
    assert corr_ids(eng.process(login("success", "5.5.5.5", 10))) == ["cccccccc-0000-0000-0000-000000000004"]
    # failure then success too late: no
    eng.process(login("failure", "6.6.6.6", 0))
    assert corr_ids(eng.process(login("success", "6.6.6.6", 90))) == []


def test_sigma_correlation_state_is_bounded(tmp_path) -> None:
    eng = engine(tmp_path, EVENT_COUNT, max_groups=100)
    for i in range(1000):
        eng.process(login("failure", f"10.0.{i // 256}.{i % 256}", i % 60))
    (_, state), = eng.correlations
    assert len(state.groups) <= 100 and state.evicted >= 900


def test_sigma_correlation_with_missing_reference_is_reported(tmp_path) -> None:
    p = tmp_path / "c.yml"
    p.write_text(textwrap.dedent(EVENT_COUNT).replace("[failed_login]", "[no_such_rule]"))
    rs = load_rules([p])
    eng = SigmaEngine(rs.rules)
    reasons = [f.reason for f in rs.failures + eng.failures]
    assert reasons and any("no_such_rule" in r for r in reasons)


def test_sigma_unsupported_correlation_type_is_reported(tmp_path) -> None:
    p = tmp_path / "c.yml"
    p.write_text(
        textwrap.dedent(BASE)
        + "---\n"
        + textwrap.dedent(EVENT_COUNT).replace("type: event_count", "type: value_sum").replace("{gte: 3}", "{gte: 3, field: n}")
    )
    rs = load_rules([p])
    assert any("value_sum" in f.reason for f in rs.failures)


def test_spoofed_sources_cannot_flush_a_brute_force_out_of_the_state(tmp_path) -> None:
    """Issue 18: 10,000 forged source addresses (one UDP line each) evicted the real
    attacker's group from an LRU before it fired. Eviction now drops the groups furthest
    from firing, and the overflow itself is raised once, counted."""
    eng = engine(tmp_path, EVENT_COUNT, max_groups=1000)
    out = []
    out += eng.process(login("failure", "203.0.113.7", 0))
    out += eng.process(login("failure", "203.0.113.7", 1))
    for i in range(10_000):
        out += eng.process(login("failure", f"10.{i // 65536}.{(i // 256) % 256}.{i % 256}", 2 + (i % 50)))
    out += eng.process(login("failure", "203.0.113.7", 55))
    fired = [d for d in out if d.engine == "sigma-correlation" and not d.extra.get("overflow")]
    assert [d.extra["group"] for d in fired] == [{"source.ip": "203.0.113.7"}]
    overflow = [d for d in out if d.extra.get("overflow")]
    assert len(overflow) == 1 and overflow[0].level == "medium" and overflow[0].group_key == "overflow"
    (_, state), = eng.correlations
    assert len(state.groups) <= 1000 and state.evicted >= 9_000
