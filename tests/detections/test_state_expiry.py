"""Idle state expires by event time: stateful detectors (Sigma correlations, brute force,
port scan) drop a key idle for two of its windows, so their memory follows the sources
of the last windows instead of every source ever seen (until ``max_keys``/``max_groups``
pushed them out). Dropping must change no result: the same stream gives the same
detections with and without expiry."""
from __future__ import annotations

import random

from detections.network import NetworkDetectors
from detections.packs import SIGMA_PACK
from detections.sigma import SigmaEngine, load_rules

from netevents import T0, flow, ssh_failure

HOURS = 3


def _stream(seed: int = 14) -> list[dict]:
    """Three hours of event time, in time order: 30 brute forces (12 failures within two
    minutes) and 20 port scans (35 ports in 30 s) at random moments, between a steady
    drizzle of one-off sources (one failed login or one flow each): the sources that
    made memory grow in the soak."""
    rnd = random.Random(seed)
    timed: list[tuple[float, int, dict]] = []
    n = 0

    def add(t: float, ev: dict) -> None:
        nonlocal n
        timed.append((t, n, ev))
        n += 1

    for k in range(30):
        t0 = T0 + rnd.uniform(0, HOURS * 3600 - 200)
        for j in range(12):
            add(t0 + j * 10, ssh_failure(f"198.51.100.{k}", f"u{j}", t0 + j * 10))
    for k in range(20):
        t0 = T0 + rnd.uniform(0, HOURS * 3600 - 60)
        for p in range(35):
            add(t0 + p * 0.8, flow(f"203.0.113.{k}", "10.20.0.20", 1000 + p, t0 + p * 0.8))
    for i in range(HOURS * 3600 // 2):  # one new source every 2 s
        t = T0 + 2 * i
        ip = f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"
        add(t, ssh_failure(ip, "guest", t) if i % 2 else flow(ip, "10.20.0.21", 22, t, duration=30.0))
    timed.sort(key=lambda x: (x[0], x[1]))
    return [ev for _, _, ev in timed]


def _signature(dets) -> list[tuple]:
    """What an analyst gets, minus the user/target samples (an expired key forgets the
    users it had seen outside the window; a kept one would list them)."""
    out = []
    for d in dets:
        extra = {k: v for k, v in d.extra.items() if k not in ("users", "targets")}
        out.append((d.rule_id, d.group_key, d.title, sorted(extra.items(), key=lambda kv: kv[0])))
    return out


def test_network_state_expires_and_detections_are_unchanged() -> None:
    events = _stream()
    with_expiry = NetworkDetectors()
    without = NetworkDetectors()
    for det in without.detectors:
        if hasattr(det, "_idle_s"):
            det._idle_s = float("inf")  # the old behaviour: state leaves only under max_keys pressure
    a = [d for ev in events for d in with_expiry.process(ev)]
    b = [d for ev in events for d in without.process(ev)]
    assert _signature(a) == _signature(b)
    assert sum(d.rule_id == "net:brute_force" for d in a) >= 25
    assert sum(d.rule_id == "net:port_scan" for d in a) >= 15
    bf = next(d for d in with_expiry.detectors if d.rule_id == "net:brute_force")
    bf_old = next(d for d in without.detectors if d.rule_id == "net:brute_force")
    ps = next(d for d in with_expiry.detectors if d.rule_id == "net:port_scan")
    # Kept: the sources of the last two windows (300 s brute force, 60 s scan); before,
    # every source of the three hours.
    # One new failed-login source every 4 s and one new flow source every 4 s.
    assert len(bf_old.keys) >= 2700  # every one-off source of the three hours
    assert len(bf.keys) <= 2 * 300 / 4 + 40
    assert len(ps.sources) <= 2 * 60 / 4 + 40
    assert bf.keys.expired > 2000 and ps.sources.expired > 2000


def test_correlation_groups_expire_and_alerts_are_unchanged() -> None:
    rules = load_rules([SIGMA_PACK])
    events = [ev for ev in _stream() if ev["event"]["action"] == "ssh-login"]
    with_expiry = SigmaEngine(rules.rules)
    without = SigmaEngine(rules.rules)
    for _spec, state in without.correlations:
        state._expire_idle = lambda now: None  # the old behaviour
    a = [d for ev in events for d in with_expiry.process(dict(ev))]
    b = [d for ev in events for d in without.process(dict(ev))]
    assert [(d.rule_id, d.group_key) for d in a] == [(d.rule_id, d.group_key) for d in b]
    fired = [d for d in a if d.engine == "sigma-correlation" or d.extra.get("correlation")]
    ssh = next(state for spec, state in with_expiry.correlations if "ssh" in spec.title.lower())
    ssh_old = next(state for spec, state in without.correlations if "ssh" in spec.title.lower())
    assert any(d.rule_id == ssh.rule_id for d in a), fired[:3]
    # Two 5-minute timespans of one-off sources (one every 4 s), not three hours of them.
    assert len(ssh.groups) <= 2 * 300 / 4 + 50 < len(ssh_old.groups) / 5
    assert ssh.expired > 1000
