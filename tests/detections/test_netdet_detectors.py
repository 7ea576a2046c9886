"""Network detectors on events shaped like the network collector's output.

Each detector is driven with flows / DNS queries / failed logins built like
``tests/collectors/golden/net/protocols.json`` (nested ECS, ``event.action``,
``event.start``, ``event.duration`` in ns) and checked both ways: the attack fires once
with its evidence, the look-alike benign traffic does not, and state stays bounded.
"""
from __future__ import annotations

import random

import pytest
from pydantic import ValidationError

from core.protocols import Detector
from detections.network import (
    BeaconingDetector,
    BruteForceDetector,
    CameraEgressDetector,
    FirstSeenDomainDetector,
    NetworkDetectors,
    NetworkDetectorSettings,
    PortScanDetector,
    ZoneMap,
    interval_stats,
    registered_domain,
)
from detections.network.settings import (
    BeaconingSettings,
    BruteForceSettings,
    CameraEgressSettings,
    FirstSeenSettings,
    PortScanSettings,
)

from netevents import T0, dns_query, flow, iso, ssh_failure


def test_every_detector_is_a_detector():
    nd = NetworkDetectors()
    for d in (nd, *nd.detectors):
        assert isinstance(d, Detector)
        assert d.name


# ---------------------------------------------------------------- port scan

def test_vertical_scan_fires_once_with_ports():
    d = PortScanDetector(PortScanSettings(default={"distinct_ports": 20, "window_s": 60}))
    dets = []
    for i, port in enumerate(range(1, 201)):
        dets += d.process(flow("10.99.1.1", "10.99.1.2", port, T0 + i * 0.01))
    vertical = [x for x in dets if x.extra["kind"] == "vertical"]
    assert len(vertical) == 1, "a 200-port scan is one detection per window"
    det = vertical[0]
    assert det.rule_id == "net:port_scan" and "attack.t1046" in det.tags
    assert det.group_key == "source.ip=10.99.1.1|kind=vertical|destination.ip=10.99.1.2"
    assert det.extra["ports"] == list(range(1, 21))
    assert det.events[0]["source"]["ip"] == "10.99.1.1"
    assert not [x for x in dets if x.extra["kind"] == "horizontal"], "one host is not a horizontal scan"


def test_horizontal_scan_over_hosts():
    d = PortScanDetector(PortScanSettings(default={"distinct_hosts": 10}))
    dets = []
    for i in range(50):
        dets += d.process(flow("10.99.1.1", f"10.20.1.{i}", 554, T0 + i))
    assert [x.extra["kind"] for x in dets] == ["horizontal"]
    assert dets[0].extra["distinct_hosts"] == 10 and dets[0].extra["ports"] == [554]


def test_slow_probes_outside_window_do_not_add_up():
    d = PortScanDetector(PortScanSettings(default={"distinct_ports": 10, "window_s": 60}))
    dets = []
    for i in range(100):  # one new port every 10 s: never 10 within 60 s
        dets += d.process(flow("10.99.1.1", "10.99.1.2", 1000 + i, T0 + i * 10))
    assert dets == []
    assert len(d.sources["10.99.1.1"].probes) <= 7


def test_normal_client_many_connections_few_ports_is_quiet():
    d = PortScanDetector()
    dets = []
    for i in range(2000):
        dets += d.process(flow("10.40.0.12", "10.40.1.5", random.choice([443, 8080]), T0 + i * 0.05))
    assert dets == []


def test_zone_override_disables_and_tightens():
    s = NetworkDetectorSettings.model_validate({
        "zones": {"10.10.0.0/24": "soc", "10.20.0.0/16": "camera-lan"},
        "port_scan": {"default": {"distinct_ports": 50}, "zones": {"soc": {"enabled": False},
                                                                    "camera-lan": {"distinct_ports": 5}}},
    })
    nd = NetworkDetectors(s)
    soc = [d for i in range(100) for d in nd.process(flow("10.10.0.7", "10.30.0.1", i + 1, T0 + i * 0.1))]
    cam = [d for i in range(6) for d in nd.process(flow("10.20.1.15", "10.30.0.1", i + 1, T0 + i * 0.1))]
    other = [d for i in range(6) for d in nd.process(flow("10.40.0.9", "10.30.0.1", i + 1, T0 + i * 0.1))]
    assert soc == [], "the SOC scanner's zone is disabled"
    assert len(cam) == 1 and cam[0].extra["zone"] == "camera-lan"
    assert other == [], "default zone keeps the default threshold of 50"


def test_zone_from_asset_only_when_matched_on_that_side():
    zm = ZoneMap({})
    ev = flow("203.0.113.66", "10.20.1.15", 23, T0,
              citysoc={"asset": {"zone": "district-1", "type": "camera", "matched": "destination.ip"}})
    assert zm.zone_of(ev, "source") == "default"
    assert zm.zone_of(ev, "destination") == "district-1"
    ev["network"]["name"] = "vlan-cams"
    assert zm.zone_of(ev, "source") == "vlan-cams"


def test_port_scan_state_is_bounded():
    d = PortScanDetector(PortScanSettings(max_keys=100, max_probes_per_source=64,
                                          default={"distinct_ports": 1000, "distinct_hosts": 1000}))
    for i in range(5000):
        d.process(flow(f"10.{i // 65536}.{(i // 256) % 256}.{i % 256}", "10.99.0.1", i % 60000 + 1, T0 + i * 0.001))
    for i in range(5000):
        d.process(flow("10.99.9.9", "10.99.0.1", i + 1, T0 + 10 + i * 0.001))
    assert len(d.sources) <= 100 and d.sources.evicted > 0
    assert len(d.sources["10.99.9.9"].probes) <= 64


def test_settings_errors_name_the_zone_and_key():
    with pytest.raises(ValidationError, match=r"zones\.soc\.distinct_portz"):
        NetworkDetectorSettings.model_validate({"port_scan": {"zones": {"soc": {"distinct_portz": 3}}}})
    with pytest.raises(ValidationError):
        NetworkDetectorSettings.model_validate({"port_scan": {"bogus": 1}})
    with pytest.raises(ValueError, match="not a network"):
        ZoneMap({"10.0.0.0/33": "x"})


# ---------------------------------------------------------------- brute force

def test_failed_logins_fire_with_users_and_reset():
    d = BruteForceDetector(BruteForceSettings(default={"failures": 5, "window_s": 300}))
    dets = []
    for i, user in enumerate(["root", "admin", "pi", "ubnt", "root", "admin", "x", "y", "z", "w"]):
        dets += d.process(ssh_failure("203.0.113.7", user, T0 + i * 2))
    assert len(dets) == 1, "quiet for one window after firing"
    det = dets[0]
    assert det.rule_id == "net:brute_force" and "attack.t1110" in det.tags and det.level == "high"
    assert det.extra["signal"] == "failed_logins" and det.extra["count"] == 5
    assert det.extra["users"] == ["root", "admin", "pi", "ubnt"]
    assert det.group_key == "source.ip=203.0.113.7|signal=failed_logins"


def test_successes_and_spread_out_failures_are_quiet():
    d = BruteForceDetector(BruteForceSettings(default={"failures": 5, "window_s": 60}))
    ok = ssh_failure("10.10.0.4", "alice", T0)
    ok["event"]["outcome"] = "success"
    assert [x for i in range(50) for x in d.process({**ok, "@timestamp": iso(T0 + i)})] == []
    assert [x for i in range(20) for x in d.process(ssh_failure("10.10.0.5", "bob", T0 + i * 30))] == []


def test_rtsp_401_counts_as_failed_login():
    d = BruteForceDetector(BruteForceSettings(default={"failures": 3}))
    dets = []
    for i in range(3):
        dets += d.process({"@timestamp": iso(T0 + i), "event": {"action": "rtsp_response", "outcome": "failure",
                                                                 "category": ["network"]},
                           "source": {"ip": "10.99.2.1"}, "destination": {"ip": "10.99.2.2", "port": 554},
                           "citysoc": {"network": {"rtsp": {"status_code": 401}}}})
    assert len(dets) == 1 and dets[0].extra["targets"] == ["10.99.2.2"]


def test_short_connections_to_telnet_fire_long_sessions_do_not():
    d = BruteForceDetector(BruteForceSettings(default={"connections": 10, "short_connection_s": 5}))
    long_ones = [x for i in range(30) for x in d.process(flow("10.99.3.1", "10.20.1.15", 23, T0 + i, duration=60))]
    assert long_ones == []
    short = [x for i in range(30) for x in d.process(flow("10.99.3.2", f"10.20.1.{i % 3}", 23, T0 + i, duration=0.5))]
    assert len(short) == 1 and short[0].extra["signal"] == "connections"
    assert short[0].extra["destination.port"] == 23
    unwatched = [x for i in range(30) for x in d.process(flow("10.99.3.3", "10.20.1.15", 9999, T0 + i))]
    assert unwatched == []


# ---------------------------------------------------------------- camera egress

CAM_SETTINGS = {
    "zones": {"10.20.1.0/24": "district-1", "10.20.3.0/24": "district-3"},
    "camera_egress": {
        "camera_cidrs": ["10.20.1.0/24", "10.20.3.0/24"],
        "allow_default": ["10.20.0.0/24"],
        "allow_zones": {"district-3": ["10.21.0.5"]},
        "allow_cameras": {"10.20.1.15": ["192.0.2.10"], "cam-d1-0044": ["192.0.2.44"]},
    },
}


def test_camera_to_nvr_is_allowed_to_cloud_is_not_once_per_window():
    nd = NetworkDetectors.from_settings(CAM_SETTINGS)
    assert nd.process(flow("10.20.1.15", "10.20.0.2", 554, T0)) == []
    assert nd.process(flow("10.20.1.15", "192.0.2.10", 443, T0)) == [], "per-camera allowance"
    assert nd.process(flow("10.20.3.7", "10.21.0.5", 123, T0, transport="udp")) == [], "per-zone allowance"
    dets = [x for i in range(10) for x in nd.process(flow("10.20.1.16", "198.51.100.7", 443, T0 + i * 60))]
    egress = [x for x in dets if x.rule_id == "net:camera_egress"]
    assert len(egress) == 1
    assert egress[0].group_key == "camera.ip=10.20.1.16|destination.ip=198.51.100.7"
    assert egress[0].extra["zone"] == "district-1" and egress[0].extra["destination.port"] == 443
    later = [x for x in nd.process(flow("10.20.1.16", "198.51.100.7", 443, T0 + 7200))
             if x.rule_id == "net:camera_egress"]
    assert len(later) == 1, "a new window reports again"
    # zone-3 allowance does not leak to zone 1
    assert [x.rule_id for x in nd.process(flow("10.20.1.17", "10.21.0.5", 123, T0))] == ["net:camera_egress"]


def test_camera_by_asset_enrichment_and_not_when_it_is_the_server():
    d = CameraEgressDetector(CameraEgressSettings(allow_default=["10.20.0.0/24"]))
    asset = {"id": "cam-d1-0044", "name": "Cam Ben Thanh", "type": "camera", "zone": "district-1",
             "matched": "source.ip"}
    dets = d.process(flow("10.77.0.44", "203.0.113.9", 8000, T0, citysoc={"asset": asset}))
    assert len(dets) == 1 and dets[0].extra["camera.asset_id"] == "cam-d1-0044"
    # an outside scanner connecting TO a camera: enriched with the camera, matched on destination
    inbound = dict(asset, matched="destination.ip")
    assert d.process(flow("203.0.113.66", "10.77.0.44", 23, T0, citysoc={"asset": inbound})) == []
    # multicast hello (ONVIF) is not egress
    assert d.process(flow("10.77.0.44", "239.255.255.250", 3702, T0, transport="udp",
                          citysoc={"asset": asset})) == []


def test_camera_egress_title_names_the_camera_once():
    """A camera asset named "Camera Bình Thạnh #1" gave "Camera Camera Bình Thạnh #1 ..."."""
    d = CameraEgressDetector(CameraEgressSettings(allow_default=["10.20.0.0/24"]))
    for i, (name, want) in enumerate([("Camera Bình Thạnh #1", "Camera Bình Thạnh #1 talked to"),
                                      ("camera q7-02", "camera q7-02 talked to"),
                                      ("Cam Bến Thành", "Camera Cam Bến Thành talked to")]):
        asset = {"id": f"cam-{i}", "name": name, "type": "camera", "zone": "district-1", "matched": "source.ip"}
        dets = d.process(flow(f"10.77.0.{40 + i}", "203.0.113.9", 8000, T0, citysoc={"asset": asset}))
        assert len(dets) == 1 and dets[0].title.startswith(want), dets[0].title
        assert "Camera Camera" not in dets[0].title and "203.0.113.9" in dets[0].title


def test_camera_settings_reject_bad_addresses():
    with pytest.raises(ValueError, match="camera_egress.allow_default"):
        CameraEgressDetector(CameraEgressSettings(allow_default=["nvr-01"]))


# ---------------------------------------------------------------- beaconing

def test_regular_beacon_fires_jittery_human_does_not():
    d = BeaconingDetector(BeaconingSettings(default={"min_connections": 10, "max_cv": 0.1}))
    rnd = random.Random(7)
    dets = []
    t = T0
    for _ in range(30):
        t += 60 * (1 + rnd.uniform(-0.05, 0.05))  # 60 s +- 5 % jitter
        dets += d.process(flow("10.20.1.15", "203.0.113.200", 443, t, duration=0.4, proto="tls"))
    assert len(dets) == 1, "cooldown keeps one detection"
    det = dets[0]
    assert det.rule_id == "net:beaconing" and "attack.t1071" in det.tags and "attack.t1573" in det.tags
    assert 55 < det.extra["mean_interval_s"] < 65 and det.extra["cv"] < 0.1
    assert len(det.extra["intervals_s"]) == 9
    human = []
    t = T0
    for _ in range(60):
        t += rnd.expovariate(1 / 60)
        human += d.process(flow("10.40.0.12", "203.0.113.201", 443, t))
    assert human == []


def test_beacon_bursts_and_dns_are_not_beacons():
    d = BeaconingDetector()
    burst = [x for i in range(50) for x in d.process(flow("10.1.1.1", "10.2.2.2", 80, T0 + i * 0.5))]
    assert burst == [], "0.5 s intervals are below min_interval_s"
    dns = [x for i in range(50) for x in d.process(flow("10.1.1.1", "10.2.2.53", 53, T0 + i * 30, transport="udp"))]
    assert dns == []


def test_interval_stats():
    iv, mean, cv = interval_stats([30.0, 0.0, 10.0, 20.0])
    assert iv == [10.0, 10.0, 10.0] and mean == 10.0 and cv == 0.0


# ---------------------------------------------------------------- first-seen domains

def test_first_seen_after_learning_once():
    d = FirstSeenDomainDetector(FirstSeenSettings(default={"learning_s": 3600}))
    assert d.process(dns_query("10.20.1.15", "p2p.nvr.example", T0)) == []
    assert d.process(dns_query("10.20.1.15", "time.google.com", T0 + 10)) == []
    assert d.process(dns_query("10.20.1.15", "edge.nvr.example", T0 + 4000)) == [], "same registered domain"
    dets = d.process(dns_query("10.20.1.15", "Update.Evil-CDN.example.net.", T0 + 4000))
    assert len(dets) == 1
    assert dets[0].extra["domain"] == "example.net" and dets[0].group_key == "dns.registered_domain=example.net"
    assert "attack.t1568" in dets[0].tags
    assert d.process(dns_query("10.20.1.16", "x.example.net", T0 + 4001)) == [], "reported once"
    assert d.process(dns_query("10.20.1.16", "1.0.20.10.in-addr.arpa", T0 + 4002)) == []


def test_first_seen_is_lru_bounded():
    d = FirstSeenDomainDetector(FirstSeenSettings(max_keys=50, registered_domain=False, default={"learning_s": 0}))
    for i in range(500):
        d.process(dns_query("10.1.1.1", f"h{i}.example.com", T0 + i))
    assert len(d.known) == 50 and d.known.evicted == 450


def test_registered_domain():
    assert registered_domain("a.b.example.com") == "example.com"
    assert registered_domain("cdn.hcmcity.gov.vn") == "hcmcity.gov.vn"
    assert registered_domain("x.y.co.uk") == "y.co.uk"
    assert registered_domain("example.com") == "example.com"


def test_suite_routes_failures_from_logs_and_ignores_the_rest():
    nd = NetworkDetectors.from_settings({"brute_force": {"default": {"failures": 3}}})
    assert nd.process({"event": {"action": "http-request", "outcome": "success"}}) == []
    dets = [x for i in range(3) for x in nd.process(ssh_failure("203.0.113.7", "root", T0 + i))]
    assert [x.rule_id for x in dets] == ["net:brute_force"]
    assert nd.hits["net:brute_force"] == 1


def test_dotted_key_events_work_like_nested_ones():
    nd = NetworkDetectors.from_settings({"brute_force": {"default": {"failures": 3}}})
    dotted = [{"@timestamp": iso(T0 + i), "event.action": "device-login", "event.outcome": "failure",
               "event.category": ["authentication"], "source.ip": "203.0.113.50", "user.name": "admin",
               "observer.hostname": "CAM-D1-0012"} for i in range(3)]
    dets = [x for ev in dotted for x in nd.process(ev)]
    assert len(dets) == 1 and dets[0].extra["users"] == ["admin"] and dets[0].extra["targets"] == ["CAM-D1-0012"]


def test_brute_force_and_beaconing_state_is_bounded():
    bf = BruteForceDetector(BruteForceSettings(max_keys=50, default={"failures": 1000}))
    for i in range(2000):
        bf.process(ssh_failure(f"198.51.{i // 250}.{i % 250}", "root", T0 + i))
    assert len(bf.keys) == 50 and bf.keys.evicted == 1950
    assert all(len(k.times) <= 1000 for k in bf.keys.values())
    bc = BeaconingDetector(BeaconingSettings(max_keys=64))
    for i in range(5000):
        bc.process(flow("10.40.0.1", f"10.30.{i // 250}.{i % 250}", 443, T0 + i))
    assert len(bc.pairs) == 64 and bc.pairs.evicted == 5000 - 64
    assert all(len(p.starts) <= 12 for p in bc.pairs.values())


def test_brute_force_fires_again_in_a_later_window():
    d = BruteForceDetector(BruteForceSettings(default={"failures": 3, "window_s": 60}))
    first = [x for i in range(3) for x in d.process(ssh_failure("203.0.113.9", "root", T0 + i))]
    later = [x for i in range(3) for x in d.process(ssh_failure("203.0.113.9", "root", T0 + 120 + i))]
    assert len(first) == 1 and len(later) == 1


def test_detections_become_alerts_with_entities_and_stable_dedupe():
    from core.alerts import Alert

    d = PortScanDetector(PortScanSettings(default={"distinct_ports": 10, "window_s": 60}))
    first = [x for p in range(1, 11) for x in d.process(flow("10.99.1.1", "10.99.1.2", p, T0 + p))]
    again = [x for p in range(1, 11) for x in d.process(flow("10.99.1.1", "10.99.1.2", p, T0 + 100 + p))]
    a, b = (Alert.from_detection(x[0], iso(T0)) for x in (first, again))
    assert a.entities.source_ip == "10.99.1.1" and a.entities.destination_ip == "10.99.1.2"
    assert a.level == "medium" and a.engine == "network" and "attack.t1046" in a.tags
    assert a.dedupe_key == b.dedupe_key, "the same scan pair dedupes into one alert across windows"


def test_long_flow_periodic_summaries_are_not_a_beacon():
    """The collector reports a days-long RTSP stream every active_timeout (1800 s): exactly
    periodic summaries of one connection, not repeated connections."""
    d = BeaconingDetector(BeaconingSettings(default={"min_connections": 6}))
    summaries = []
    for i in range(20):
        ev = flow("10.20.0.2", "10.20.1.15", 554, T0 + i * 1800, duration=1800, proto="rtsp")
        ev["event"]["reason"] = "active_timeout"
        summaries += d.process(ev)
    assert summaries == []
    real = [x for i in range(10) for x in d.process(flow("10.20.0.2", "10.20.1.16", 554, T0 + i * 1800, duration=5))]
    assert len(real) == 1, "the same rhythm from separate connections is still judged"
