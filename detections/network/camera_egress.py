"""Cameras talking outside their allowed set: a camera speaks to its NVR/VMS, nothing else.

A camera is the *client* of a flow (``source`` in our flow events is the side that
opened it) when either ``citysoc.asset.type`` is ``camera`` and enrichment matched the
asset on ``source.ip``, or ``source.ip`` is in ``camera_cidrs``. Its allowed
destinations are the union of ``allow_default`` (every camera: the NVR/VMS subnet),
``allow_zones[<camera zone>]`` and ``allow_cameras[<camera ip | asset id | asset
name>]``. Anything else (a cloud P2P relay, an outside NTP or DNS server, a peer
camera, a mining pool after a compromise) is a detection, once per (camera,
destination) per window. Multicast and broadcast are ignored unless configured not to
be (ONVIF hellos are multicast by design).

Rule id ``net:camera_egress``; ATT&CK T1071 (Application Layer Protocol) for C2 over an
unexpected channel and T1041 (Exfiltration Over C2 Channel).
"""
from __future__ import annotations

import ipaddress
from typing import Any

from core.detectors import DetectorSpec
from core.events import Event
from core.protocols import Detection
from detections.network._common import EMPTY, BoundedMap, event_time, field
from detections.network.addrset import AddrSet
from detections.network.base import NetworkDetector
from detections.network.settings import CameraEgressSettings
from detections.network.zones import ZoneMap

__all__ = ["CameraEgressDetector"]

_ACTIONS = frozenset({"network_flow", "connection_attempt"})


def _is_group_address(ip: str) -> bool:
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return False
    if addr.is_multicast or ip == "255.255.255.255":
        return True
    return addr.version == 4 and ip.endswith(".255")


class CameraEgressDetector(NetworkDetector):
    """``core.protocols.Detector`` for flows from a camera to a destination it may not use."""

    spec = DetectorSpec(
        rule_id="net:camera_egress",
        title="Camera talking outside its allowed set (not its NVR/VMS)",
        title_vi="Camera kết nối ra ngoài phạm vi được phép (không phải NVR/VMS của nó)",
        level="high",
        tags=("attack.command-and-control", "attack.t1071", "attack.exfiltration", "attack.t1041"),
        consumes=("network_flow", "connection_attempt"),
        settings_key="camera_egress",
        settings=CameraEgressSettings,
    )

    def __init__(self, settings: CameraEgressSettings | None = None, zones: ZoneMap | None = None) -> None:
        s = self.settings = settings or CameraEgressSettings()
        self.zones = zones or ZoneMap()
        self.cameras = AddrSet(s.camera_cidrs, what="camera_egress.camera_cidrs")
        self.allow_default = AddrSet(s.allow_default, what="camera_egress.allow_default")
        self.allow_zones = {z: AddrSet(v, what=f"camera_egress.allow_zones.{z}") for z, v in s.allow_zones.items()}
        self.allow_cameras = {c: AddrSet(v, what=f"camera_egress.allow_cameras.{c}")
                              for c, v in s.allow_cameras.items()}
        self.seen: BoundedMap[tuple[str, str, Any], float] = BoundedMap(s.max_keys)
        self._zones, self._default = s.table()

    def camera_of(self, event: Event) -> tuple[str, dict[str, Any]] | None:
        """(camera ip, asset info) when the flow's client is a camera, else None."""
        src = (event.get("source") or EMPTY).get("ip")
        if src is None:
            return None
        asset = (event.get("citysoc") or EMPTY).get("asset")
        if isinstance(asset, dict) and asset.get("type") == "camera" and asset.get("matched") in (None, "source.ip"):
            return src, asset
        if src in self.cameras:
            return src, {}
        return None

    def allowed(self, camera_ip: str, asset: dict[str, Any], zone: str, dst: str) -> bool:
        if dst in self.allow_default:
            return True
        zs = self.allow_zones.get(zone)
        if zs is not None and dst in zs:
            return True
        for key in (camera_ip, asset.get("id"), asset.get("name")):
            cs = self.allow_cameras.get(key) if key else None
            if cs is not None and dst in cs:
                return True
        return False

    def state_sizes(self) -> dict[str, int]:
        return {"pairs": len(self.seen)}

    def check(self, event: Any) -> list[Detection]:
        if (event.get("event") or EMPTY).get("action") not in _ACTIONS:
            return []
        cam = self.camera_of(event)
        if cam is None:
            return []
        dst = (event.get("destination") or EMPTY).get("ip")
        if dst is None:
            return []
        ip, asset = cam
        zone = self.zones.zone_of(event, "source")
        th = self._zones.get(zone, self._default)
        if not th.enabled or self.allowed(ip, asset, zone, dst):
            return []
        if self.settings.ignore_multicast and _is_group_address(dst):
            return []
        now = event_time(event)
        key = (ip, dst, None)
        last = self.seen.get(key)
        if last is not None and now - last < th.window_s:
            self.seen.move_to_end(key)
            return []
        self.seen.put(key, now)
        port = field(event, "destination", "port")
        proto = field(event, "network", "protocol") or field(event, "network", "transport")
        name = asset.get("name") or asset.get("id") or ip
        return [Detection(
            rule_id=self.rule_id,
            # Asset names often say "Camera ..." already: never "Camera Camera Binh Thanh #1".
            title=(f"{name}" if str(name).lower().startswith("camera") else f"Camera {name}")
            + f" talked to {dst} outside its allowed set",
            level=th.level,
            events=[event],
            tags=list(self.spec.tags),
            engine="network",
            description=f"Camera {ip} (zone {zone}) opened a {proto or 'network'} connection to {dst}"
                        f"{f':{port}' if port is not None else ''}, which is not its NVR/VMS. Triage: a "
                        "firmware 'cloud' feature, a changed NTP/DNS setting, or a compromised device? "
                        "Check the camera's config-change and firmware logs, then block the egress.",
            group_key=f"camera.ip={ip}|destination.ip={dst}",
            extra={"camera.ip": ip, "camera.asset_id": asset.get("id"), "zone": zone, "destination.ip": dst,
                   "destination.port": port, "network.protocol": proto, "window_s": th.window_s,
                   "bytes": field(event, "network", "bytes")},
        )]
