"""The detector registry: every network detector passes the compliance check, the suite,
settings and rule catalog follow the registry, and toggles work through the API.

Scenarios drive each detector with events shaped like the network collector's output
(``netevents``); every registered detector must have one here, so a new detector cannot
land without its evidence.
"""
from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from citysoc.detection import build_detection
from core.settings import Settings
from detections.network import DETECTORS, SPECS, NetworkDetectors, NetworkDetectorSettings, ZoneMap
from detector_compliance import Scenario, check_detector
from netevents import T0, dns_query, flow, ssh_failure


def _maker(cls: type, section: dict[str, Any], zones: dict[str, str] | None = None):
    def make(max_keys: int | None) -> Any:
        data = dict(section, **({"max_keys": max_keys} if max_keys else {}))
        return cls(cls.spec.settings.model_validate(data), ZoneMap(zones or {}))
    return make


def _hosts(n: int, prefix: str = "10.99") -> list[str]:
    return [f"{prefix}.{i // 250}.{i % 250 + 1}" for i in range(n)]


def _beacon(src: str, dst: str, n: int, period: float, jitter: float, seed: int) -> list[dict]:
    rnd, t, out = random.Random(seed), T0, []
    for _ in range(n):
        t += period * (1 + rnd.uniform(-jitter, jitter))
        out.append(flow(src, dst, 443, t, duration=0.4, proto="tls"))
    return out


BY_RULE = {cls.spec.rule_id: cls for cls in DETECTORS}

SCENARIOS: dict[str, Scenario] = {
    "net:port_scan": Scenario(
        make=_maker(BY_RULE["net:port_scan"], {"default": {"distinct_ports": 20, "distinct_hosts": 20}}),
        attack=lambda: [flow("10.99.1.1", "10.99.1.2", p, T0 + p * 0.01) for p in range(1, 101)],
        # a busy client: thousands of connections, two ports, three servers
        lookalike=lambda: [flow("10.40.0.12", f"10.40.1.{i % 3}", (443, 8080)[i % 2], T0 + i * 0.05)
                           for i in range(2000)],
        flood=lambda n: [flow(h, "10.98.0.1", 443, T0 + i * 0.001) for i, h in enumerate(_hosts(n))],
    ),
    "net:brute_force": Scenario(
        make=_maker(BY_RULE["net:brute_force"], {"default": {"failures": 5, "window_s": 300}}),
        attack=lambda: [ssh_failure("203.0.113.7", u, T0 + i * 2) for i, u in enumerate(["root", "admin", "pi"] * 3)],
        # an operator mistyping twice an hour, and long RTSP sessions to a camera
        lookalike=lambda: ([ssh_failure("10.10.0.5", "bob", T0 + i * 1800) for i in range(20)]
                           + [flow("10.20.0.2", "10.20.1.15", 554, T0 + i * 700, duration=600) for i in range(40)]),
        flood=lambda n: [ssh_failure(h, "root", T0 + i) for i, h in enumerate(_hosts(n, "198.51"))],
    ),
    "net:camera_egress": Scenario(
        make=_maker(BY_RULE["net:camera_egress"], {"camera_cidrs": ["10.20.1.0/24", "10.77.0.0/16"], "allow_default": ["10.20.0.0/24"]},
                    {"10.20.1.0/24": "district-1"}),
        attack=lambda: [flow("10.20.1.16", "198.51.100.7", 443, T0 + i * 60) for i in range(5)],
        # cameras talking to their NVR subnet, and ONVIF multicast hellos
        lookalike=lambda: ([flow(f"10.20.1.{i % 50 + 1}", f"10.20.0.{i % 4 + 1}", 554, T0 + i) for i in range(500)]
                           + [flow("10.20.1.9", "239.255.255.250", 3702, T0 + i, transport="udp") for i in range(50)]),
        # (camera, destination) pairs are remembered when they fire: many cameras reporting out
        flood=lambda n: [flow(h, "198.51.100.7", 443, T0 + i) for i, h in enumerate(_hosts(n, "10.77"))],
    ),
    "net:beaconing": Scenario(
        make=_maker(BY_RULE["net:beaconing"], {"default": {"min_connections": 10, "max_cv": 0.1}}),
        attack=lambda: _beacon("10.20.1.15", "203.0.113.200", 30, 60, 0.05, 7),
        # a human browsing the same site at random times
        lookalike=lambda: [flow("10.40.0.12", "203.0.113.201", 443, T0 + t)
                           for t in sorted(random.Random(3).uniform(0, 7200) for _ in range(60))],
        flood=lambda n: [flow("10.40.0.1", h, 443, T0 + i) for i, h in enumerate(_hosts(n, "10.30"))],
    ),
    "net:first_seen_domain": Scenario(
        make=_maker(BY_RULE["net:first_seen_domain"], {"default": {"learning_s": 3600}}),
        attack=lambda: [dns_query("10.20.1.15", "p2p.nvr.example", T0),
                        dns_query("10.20.1.15", "update.evil-cdn.example.net", T0 + 4000)],
        # the learnt names again after learning, CDN host names of a learnt domain, PTR lookups
        lookalike=lambda: ([dns_query("10.20.1.15", n, T0 + i) for i, n in enumerate(["a.nvr.example", "time.vn"])]
                           + [dns_query("10.20.1.16", f"edge{i}.nvr.example", T0 + 4000 + i) for i in range(50)]
                           + [dns_query("10.20.1.16", "1.0.20.10.in-addr.arpa", T0 + 5000)]),
        flood=lambda n: [dns_query("10.1.1.1", f"h{i}.learn{i}.example", T0 + i) for i in range(n)],
    ),
}


@pytest.mark.parametrize("cls", DETECTORS, ids=lambda c: c.spec.rule_id)
def test_every_registered_detector_passes_the_compliance_check(cls):
    assert cls.spec.rule_id in SCENARIOS, f"{cls.spec.rule_id}: add its scenario to SCENARIOS"
    check_detector(cls.spec, SCENARIOS[cls.spec.rule_id])


@pytest.mark.parametrize("cls", DETECTORS, ids=lambda c: c.spec.rule_id)
def test_specs_are_complete_and_agree_with_the_settings(cls):
    s = cls.spec
    assert s.title and s.title_vi and s.title_vi != s.title
    assert s.consumes and s.settings_key in NetworkDetectorSettings.model_fields
    assert any(t.startswith("attack.t") for t in s.tags)
    assert s.settings().default.level == s.level, "the settings' default level is the declared one"


def test_registry_is_the_suite_and_the_settings():
    nd = NetworkDetectors()
    assert [type(d) for d in nd.detectors] == list(DETECTORS)
    assert set(NetworkDetectorSettings.model_fields) == {"zones", *(c.spec.settings_key for c in DETECTORS)}
    assert set(nd.state_sizes()) == {f"{c.spec.settings_key}.{k}" for c in DETECTORS
                                     for k in nd.detector(c.spec.rule_id).state_sizes()}


def test_suite_routes_by_consumes_and_disabling_takes_a_detector_out():
    nd = NetworkDetectors.from_settings({"port_scan": {"default": {"distinct_ports": 10}}})
    scan = [flow("10.99.1.1", "10.99.1.2", p, T0 + p * 0.01) for p in range(1, 31)]
    assert [d.rule_id for ev in scan for d in nd.process(ev)] == ["net:port_scan"]
    ps = nd.detector("net:port_scan")
    assert ps.counters() == {"events": 30, "detections": 1}
    nd.set_enabled("net:port_scan", False)
    later = [flow("10.99.7.7", "10.99.1.2", p, T0 + 100 + p * 0.01) for p in range(1, 31)]
    assert [d for ev in later for d in nd.process(ev)] == []
    assert ps.counters()["events"] == 30, "a disabled detector is not offered events"
    nd.set_enabled("net:port_scan", True)
    assert [d.rule_id for ev in later for d in nd.process(ev)] == ["net:port_scan"]
    with pytest.raises(KeyError):
        nd.set_enabled("sigma-rule-x", False)


# ------------------------------------------------------------------- catalog and API

def _runtime(tmp_path: Path, **detection: Any):
    settings = Settings(data=tmp_path, detection={"sigma_pack": False, **detection})
    return build_detection(settings, catalog_only=True)


def test_catalog_shows_each_detectors_real_level(tmp_path):
    levels = {r.id: r.level for r in _runtime(tmp_path).list_rules() if r.engine == "network"}
    assert levels == {rid: spec.level for rid, spec in SPECS.items()}
    assert levels["net:port_scan"] == "medium" and levels["net:first_seen_domain"] == "low"
    assert levels["net:brute_force"] == "high"
    # a site that raised port scans to high sees high
    rt = _runtime(tmp_path, network={"port_scan": {"default": {"level": "high"}}})
    assert rt.get_rule("net:port_scan").level == "high"
    info = rt.get_rule("net:first_seen_domain")
    assert info.title_vi == SPECS["net:first_seen_domain"].title_vi and "attack.t1568" in info.tags


def test_the_unmanaged_device_detector_passes_the_compliance_check():
    from detections.assets import ASSET_SPECS, UnmanagedAssetDetector

    known = {f"10.20.1.{i}" for i in range(1, 51)}

    def make(max_keys: int | None) -> UnmanagedAssetDetector:
        return UnmanagedAssetDetector(["10.20.0.0/16"], known.__contains__, max_reported=max_keys or 100_000)

    check_detector(ASSET_SPECS["asset:unmanaged"], Scenario(
        make=make,
        attack=lambda: [flow("10.20.9.9", "10.20.0.2", 554, T0 + i) for i in range(3)],
        # inventoried cameras, and an unknown address outside the camera network
        lookalike=lambda: ([flow(f"10.20.1.{i % 50 + 1}", "10.20.0.2", 554, T0 + i) for i in range(200)]
                           + [flow("10.40.0.12", "10.20.0.2", 443, T0)]),
        flood=lambda n: [flow(h, "10.20.0.2", 554, T0 + i) for i, h in enumerate(_hosts(n, "10.20"))
                         if h not in known],
    ))
