"""The network detector registry: one line per detector, in the order they run.

Adding a detector is one new module (a :class:`~detections.network.base.NetworkDetector`
subclass with its ``spec`` and settings model) and one line in :data:`DETECTORS`; the
suite, :data:`NetworkDetectorSettings` (its ``detection.network.<settings_key>``
section) and the rule catalog follow from it. See CONTRIBUTING.md, "Adding a detector".
"""
from __future__ import annotations

from typing import Any

from pydantic import Field, create_model

from core.detectors import DetectorSpec
from detections.network.base import NetworkDetector
from detections.network.beaconing import BeaconingDetector
from detections.network.bruteforce import BruteForceDetector
from detections.network.camera_egress import CameraEgressDetector
from detections.network.first_seen import FirstSeenDomainDetector
from detections.network.portscan import PortScanDetector
from detections.network.settings import StrictModel

__all__ = ["DETECTORS", "SPECS", "NetworkDetectorSettings", "NetworkSettingsBase"]

DETECTORS: tuple[type[NetworkDetector], ...] = (
    PortScanDetector,
    BruteForceDetector,
    CameraEgressDetector,
    BeaconingDetector,
    FirstSeenDomainDetector,
)
"""Every network detector, in the order an event is offered to them."""

SPECS: dict[str, DetectorSpec] = {cls.spec.rule_id: cls.spec for cls in DETECTORS}
"""Rule id -> spec of every network detector."""


def _check_unique() -> None:
    keys = [cls.spec.settings_key for cls in DETECTORS]
    if len(SPECS) != len(DETECTORS) or len(set(keys)) != len(keys):
        raise RuntimeError("network detectors: rule ids and settings keys must be unique")


_check_unique()


class NetworkSettingsBase(StrictModel):
    """What all network detectors share; the registry adds one section per detector."""

    zones: dict[str, str] = Field(default_factory=dict)
    """CIDR -> zone name, for every detector's per-zone thresholds."""

    def section(self, key: str) -> Any:
        """The settings of the detector whose ``spec.settings_key`` is ``key``."""
        return getattr(self, key)


_fields: dict[str, Any] = {
    cls.spec.settings_key: (cls.spec.settings, Field(default_factory=cls.spec.settings, description=cls.spec.title))
    for cls in DETECTORS
}
NetworkDetectorSettings: type[NetworkSettingsBase] = create_model(  # type: ignore[call-overload]
    "NetworkDetectorSettings", __base__=NetworkSettingsBase, __module__=__name__, **_fields)
"""All network detectors' settings (``detection.network``): ``zones`` plus one section
per registered detector. Unknown keys are errors."""
