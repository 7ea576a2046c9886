"""Network detector settings: defaults per detector, overrides per network zone, as data.

Every detector has a ``default`` thresholds block and a ``zones`` mapping of zone name
-> the keys to override there (the rest are inherited from ``default``). Zones come
from :class:`~detections.network.zones.ZoneMap`: the ``zones`` CIDR table here, then
the asset inventory's zone, then ``network.name``. Unknown keys are errors, and an
override naming a key its detector does not have is reported with the zone's name.

Example (``citysoc.yml`` section, or ``NetworkDetectorSettings.model_validate``)::

    zones:                       # CIDR -> zone
      10.20.0.0/16: camera-lan
      10.10.0.0/24: soc
    port_scan:
      default: {window_s: 60, distinct_ports: 40, distinct_hosts: 25}
      zones:
        soc: {enabled: false}            # the vulnerability scanner lives here
        camera-lan: {distinct_ports: 10} # a camera never connects to 10 ports of anything
    camera_egress:
      camera_cidrs: [10.20.0.0/16]
      allow_default: [10.20.0.0/24]      # the NVR/VMS subnet
      allow_zones: {district-1: [10.21.0.5]}
      allow_cameras: {10.20.1.15: [10.20.0.2]}
"""
from __future__ import annotations

from typing import Any, Generic, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    model_validator,
)

from core.levels import Level

__all__ = [
    "Level",
    "StrictModel",
    "Thresholds",
    "ZonedSettings",
    "PortScanThresholds",
    "BruteForceThresholds",
    "CameraEgressThresholds",
    "BeaconingThresholds",
    "FirstSeenThresholds",
    "PortScanSettings",
    "BruteForceSettings",
    "CameraEgressSettings",
    "BeaconingSettings",
    "FirstSeenSettings",
]



class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Thresholds(StrictModel):
    enabled: bool = True
    """False: the detector ignores entities of this zone."""
    level: Level = "medium"


class PortScanThresholds(Thresholds):
    window_s: float = Field(60.0, gt=0)
    """Probes older than this are forgotten."""
    distinct_ports: int = Field(30, ge=2)
    """Vertical scan: this many distinct destination ports on one host from one source."""
    distinct_hosts: int = Field(20, ge=2)
    """Horizontal scan: this many distinct destination hosts from one source."""


class BruteForceThresholds(Thresholds):
    level: Level = "high"
    window_s: float = Field(300.0, gt=0)
    failures: int = Field(10, ge=2)
    """Failed logins (``event.outcome: failure`` of an authentication, RTSP/HTTP 401) from one source."""
    connections: int = Field(30, ge=2)
    """Short connections from one source to one watched service port."""
    short_connection_s: float = Field(10.0, gt=0)
    """A flow shorter than this counts as a login attempt."""


class CameraEgressThresholds(Thresholds):
    level: Level = "high"
    window_s: float = Field(3600.0, gt=0)
    """One detection per (camera, destination) per this many seconds."""


class BeaconingThresholds(Thresholds):
    min_connections: int = Field(12, ge=4)
    """Connections (flow starts) to one destination needed before judging their rhythm."""
    max_cv: float = Field(0.15, gt=0)
    """Coefficient of variation (std / mean) of the intervals below which they are 'regular'."""
    min_interval_s: float = Field(5.0, ge=0)
    """Mean intervals shorter than this are bursts, not beacons."""
    max_interval_s: float = Field(86_400.0, gt=0)
    cooldown_s: float = Field(21_600.0, ge=0)
    """After a detection, the same (source, destination, port) is quiet this long."""


class FirstSeenThresholds(Thresholds):
    level: Level = "low"
    learning_s: float = Field(86_400.0, ge=0)
    """Names seen during this long after the first DNS query are the baseline, not alerts."""


T = TypeVar("T", bound=Thresholds)


class ZonedSettings(StrictModel, Generic[T]):
    """``default`` thresholds plus partial overrides per zone, merged once at load."""

    max_keys: int = Field(100_000, ge=1)
    """Entities (sources, pairs) tracked at most; the least recently active is forgotten."""
    zones: dict[str, dict[str, Any]] = Field(default_factory=dict)
    _resolved: dict[str, Any] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _merge_zones(self) -> ZonedSettings[T]:
        default = self.default  # type: ignore[attr-defined]
        cls = type(default)
        errors: list[str] = []
        for zone, override in self.zones.items():
            if not isinstance(override, dict):
                errors.append(f"zones.{zone}: must be a mapping of threshold -> value")
                continue
            try:
                self._resolved[zone] = cls.model_validate({**default.model_dump(), **override})
            except ValidationError as exc:
                for err in exc.errors():
                    loc = ".".join(str(p) for p in err["loc"])
                    errors.append(f"zones.{zone}.{loc}: {err['msg']}")
        if errors:
            raise ValueError("; ".join(errors))
        return self

    def for_zone(self, zone: str) -> T:
        """The thresholds in force for ``zone`` (the default when it has no override)."""
        return self._resolved.get(zone, self.default)  # type: ignore[attr-defined,no-any-return]

    def table(self) -> tuple[dict[str, T], T]:
        """(zone -> thresholds, default) as plain objects: what detectors look up per event
        (pydantic private attributes are slow to reach on a hot path)."""
        return dict(self._resolved), self.default  # type: ignore[attr-defined]


class PortScanSettings(ZonedSettings[PortScanThresholds]):
    default: PortScanThresholds = PortScanThresholds()
    max_probes_per_source: int = Field(4096, ge=16)
    """(host, port) pairs remembered per source; a bigger scan is already a detection."""


class BruteForceSettings(ZonedSettings[BruteForceThresholds]):
    default: BruteForceThresholds = BruteForceThresholds()
    ports: list[int] = Field(default_factory=lambda: [21, 22, 23, 80, 554, 8000, 8080, 8554, 37777])
    """Service ports whose short connections count as login attempts (SSH, telnet, RTSP,
    camera web UIs and Dahua's 37777)."""


class CameraEgressSettings(ZonedSettings[CameraEgressThresholds]):
    default: CameraEgressThresholds = CameraEgressThresholds()
    camera_cidrs: list[str] = Field(default_factory=list)
    """Addresses of cameras, besides events enriched with ``citysoc.asset.type: camera``."""
    allow_default: list[str] = Field(default_factory=list)
    """Destinations (addresses or CIDRs) every camera may talk to: the NVR/VMS subnet."""
    allow_zones: dict[str, list[str]] = Field(default_factory=dict)
    """Camera zone -> extra allowed destinations."""
    allow_cameras: dict[str, list[str]] = Field(default_factory=dict)
    """Camera IP, asset id or asset name -> extra allowed destinations."""
    ignore_multicast: bool = True
    """Multicast and broadcast (ONVIF WS-Discovery hello, ARP-like chatter) are not egress."""


class BeaconingSettings(ZonedSettings[BeaconingThresholds]):
    default: BeaconingThresholds = BeaconingThresholds()
    ignore_ports: list[int] = Field(default_factory=lambda: [53, 123, 5353])
    """Destination ports whose regular traffic is by design (DNS, NTP, mDNS)."""
    ignore_destinations: list[str] = Field(default_factory=list)
    """Addresses or CIDRs polled on purpose (monitoring, NVR keep-alives)."""


class FirstSeenSettings(ZonedSettings[FirstSeenThresholds]):
    default: FirstSeenThresholds = FirstSeenThresholds()
    max_keys: int = Field(200_000, ge=1)
    registered_domain: bool = True
    """Judge the registered domain (``evil.example.com`` -> ``example.com``) rather than
    the full name, so a CDN's thousand host names count once."""
    ignore_suffixes: list[str] = Field(
        default_factory=lambda: ["in-addr.arpa", "ip6.arpa", "local", "localdomain", "lan", "internal"])
