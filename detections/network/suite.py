"""All network detectors behind one ``Detector``, each event offered only to those that use it.

A flow summary goes to the scan, brute-force, camera-egress and beaconing detectors; a
DNS query to first-seen domains; a failed login (any source) to brute force; every
other event costs one dictionary read. This is what ``citysoc`` wires into the
pipeline next to the Sigma engine.

Example::

    nd = NetworkDetectors.from_settings({"zones": {"10.20.0.0/16": "camera-lan"},
                                         "camera_egress": {"camera_cidrs": ["10.20.0.0/16"]}})
    for det in nd.process(event):
        print(det.rule_id, det.group_key, det.extra)
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

from core.events import Event
from core.protocols import Detection, Detector
from detections.network._common import EMPTY, nested
from detections.network.beaconing import BeaconingDetector
from detections.network.bruteforce import BruteForceDetector
from detections.network.camera_egress import CameraEgressDetector
from detections.network.first_seen import FirstSeenDomainDetector
from detections.network.portscan import PortScanDetector
from detections.network.settings import NetworkDetectorSettings
from detections.network.zones import ZoneMap

__all__ = ["NetworkDetectors", "RULES"]

RULES: dict[str, str] = {
    "net:port_scan": "Port scan (vertical or horizontal) from one source",
    "net:brute_force": "Brute force: failed logins or short connections to a login service",
    "net:camera_egress": "Camera talking outside its allowed set (not its NVR/VMS)",
    "net:beaconing": "Beaconing: low-jitter periodic connections to one destination",
    "net:first_seen_domain": "First-seen domain after the learning period",
}
"""Rule id -> title of every network detector, for rule listings."""


class NetworkDetectors:
    """``core.protocols.Detector`` running every enabled network detector."""

    name = "network"

    def __init__(self, settings: NetworkDetectorSettings | None = None) -> None:
        s = self.settings = settings or NetworkDetectorSettings()
        zones = ZoneMap(s.zones)
        self.port_scan = PortScanDetector(s.port_scan, zones)
        self.brute_force = BruteForceDetector(s.brute_force, zones)
        self.camera_egress = CameraEgressDetector(s.camera_egress, zones)
        self.beaconing = BeaconingDetector(s.beaconing, zones)
        self.first_seen = FirstSeenDomainDetector(s.first_seen_domain, zones)
        # Bound ``_process`` methods: the suite has already made the event nested.
        flow = (self.port_scan._process, self.brute_force._process, self.camera_egress._process,
                self.beaconing._process)
        self._by_action: dict[str, tuple[Callable[[Any], list[Detection]], ...]] = {
            "network_flow": flow,
            "connection_attempt": (self.port_scan._process, self.camera_egress._process),
            "dns_query": (self.first_seen._process,),
        }
        self._failure = (self.brute_force._process,)
        self.detectors: tuple[Detector, ...] = (self.port_scan, self.brute_force, self.camera_egress,
                                                self.beaconing, self.first_seen)
        self.hits: Counter[str] = Counter()
        self.events_seen = 0

    @classmethod
    def from_settings(cls, data: Mapping[str, Any] | None) -> "NetworkDetectors":
        """Build from a plain mapping (the ``network_detectors`` section of a config file)."""
        return cls(NetworkDetectorSettings.model_validate(dict(data or {})))

    def process(self, event: Event) -> list[Detection]:
        self.events_seen += 1
        event = nested(event)  # type: ignore[assignment]
        e = event.get("event") or EMPTY
        action = e.get("action")
        targets = self._by_action.get(action) if action is not None else None
        if targets is None:
            if e.get("outcome") != "failure":
                return []
            targets = self._failure
        out: list[Detection] = []
        for run in targets:
            found = run(event)
            if found:
                for det in found:
                    self.hits[det.rule_id] += 1
                out.extend(found)
        return out

    def state_sizes(self) -> dict[str, int]:
        """Tracked keys per detector (what memory bounds apply to)."""
        return {
            "port_scan.sources": len(self.port_scan.sources),
            "brute_force.keys": len(self.brute_force.keys),
            "camera_egress.pairs": len(self.camera_egress.seen),
            "beaconing.pairs": len(self.beaconing.pairs),
            "first_seen.names": len(self.first_seen.known),
        }
