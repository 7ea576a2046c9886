"""Network detectors over the collectors' ECS network events (flows, connection attempts,
DNS) and failed logins: port scans, brute force, cameras talking outside their allowed
set, beaconing, first-seen domains. Each is a ``core.protocols.Detector`` with bounded
state and thresholds per network zone (see :mod:`detections.network.settings` and
:mod:`detections.network.zones`); :class:`NetworkDetectors` runs them all.

Example::

    from detections.network import NetworkDetectors
    nd = NetworkDetectors.from_settings({"port_scan": {"default": {"distinct_ports": 20}}})
    detections = nd.process(flow_event)
"""
from detections.network.beaconing import BeaconingDetector, interval_stats
from detections.network.bruteforce import BruteForceDetector, is_failed_login
from detections.network.camera_egress import CameraEgressDetector
from detections.network.first_seen import FirstSeenDomainDetector, registered_domain
from detections.network.portscan import PortScanDetector
from detections.network.registry import DETECTORS, SPECS, NetworkDetectorSettings
from detections.network.suite import RULES, NetworkDetectors
from detections.network.zones import DEFAULT_ZONE, ZoneMap

__all__ = [
    "NetworkDetectors",
    "NetworkDetectorSettings",
    "RULES",
    "DETECTORS",
    "SPECS",
    "PortScanDetector",
    "BruteForceDetector",
    "CameraEgressDetector",
    "BeaconingDetector",
    "FirstSeenDomainDetector",
    "ZoneMap",
    "DEFAULT_ZONE",
    "registered_domain",
    "interval_stats",
    "is_failed_login",
]
