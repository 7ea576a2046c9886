"""The asset detectors: ``asset:silent`` (a watched device stopped logging) and
``asset:unmanaged`` (a camera-network address no inventory entry owns sent traffic).

They read what ``core.assets`` keeps (the inventory, each asset's health counters) and
declare themselves with a :class:`core.detectors.DetectorSpec` like every detector, so
the rule catalog lists them with their level and toggles them. ``citysoc/wiring.py``
builds them: the unmanaged detector rides the pipeline, the silent check is handed to
:class:`core.assets.AssetMonitor`, which the scheduler ticks.
"""
from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from core.assets import SILENT_WATCH_TYPES, Asset, AssetHealth, expected_interval
from core.detectors import DetectorSpec
from core.events import Event, get_field, ms_to_iso
from core.protocols import Detection

__all__ = ["SilentAssetDetector", "UnmanagedAssetDetector", "silent_detections", "ASSET_SPECS"]


def _iso_s(t: float) -> str:
    return ms_to_iso(int(t * 1000))


class SilentAssetDetector:
    """``asset:silent`` as a periodic check: ``check(assets, health, now)`` is what
    :class:`core.assets.AssetMonitor` calls each tick; it remembers which assets it has
    alerted for (one alert per silence) and does nothing while disabled."""

    spec = DetectorSpec(
        rule_id="asset:silent",
        title="Asset stopped logging",
        title_vi="Thiết bị ngừng gửi nhật ký",
        level="high",
        tags=("attack.defense-evasion", "attack.t1562.001", "attack.impact", "citysoc.asset-health"),
        consumes=(),
        settings_key="assets.silent_level",
        engine="assets",
        description="A watched asset (camera, NVR, database, or one with its own interval) quiet longer than "
                    "its expected log interval; checked every assets.check_interval_s.",
    )
    name = "asset-silent"

    def __init__(self, *, level: str = "high") -> None:
        self.level = level
        self.enabled = True
        self.already: set[str] = set()
        self.fired = 0

    def check(self, assets: Sequence[Asset], health: Mapping[str, AssetHealth], now: float) -> list[Detection]:
        """The silences that began since the last check (none while disabled)."""
        if not self.enabled:
            return []
        found = silent_detections(assets, health, now, self.already, level=self.level)
        self.fired += len(found)
        return found


def _asset_event(asset: Asset, now: float, **extra: Any) -> Event:
    ev: Event = {"@timestamp": _iso_s(now),
                 "event": {"kind": "alert", "category": ["host"], "dataset": "citysoc.assets", "module": "citysoc"},
                 "citysoc": {"asset": {"id": asset.id, "name": asset.name, "type": asset.type,
                                       "criticality": asset.criticality}, "center": asset.center},
                 "host": {"name": asset.hostnames[0] if asset.hostnames else asset.id}}
    if asset.ips:
        ev["host"]["ip"] = [ip for ip in asset.ips if "/" not in ip]
    ev.update(extra)
    return ev


def silent_detections(assets: Iterable[Asset], health: Mapping[str, AssetHealth], now: float,
                      already: set[str], *, level: str = "high") -> list[Detection]:
    """``asset:silent`` for each watched asset quiet longer than its interval, once per
    silence: ``already`` holds the ids alerted and is updated (an asset heard again is
    re-armed). Never-heard assets are ``unknown``, not silent: no baseline, no alarm."""
    out: list[Detection] = []
    for a in assets:
        if a.type not in SILENT_WATCH_TYPES and a.log_interval_s is None:
            continue
        h = health.get(a.id)
        if h is None or h.last_seen is None:
            continue
        quiet = now - h.last_seen
        if quiet <= expected_interval(a):
            already.discard(a.id)
            continue
        if a.id in already:
            continue
        already.add(a.id)
        ev = _asset_event(a, now, message=f"{a.type} {a.id} sent no log for {int(quiet)} s "
                                          f"(expected at least every {expected_interval(a)} s)")
        ev["citysoc"]["asset"]["last_seen"] = _iso_s(h.last_seen)
        out.append(Detection(
            rule_id="asset:silent", title=f"Asset stopped logging: {a.name}", level=level, events=[ev],
            tags=list(SilentAssetDetector.spec.tags),
            engine="assets", description=(
                f"{a.name} ({a.type}, {a.center}) has been silent for {int(quiet // 60)} minutes; its expected "
                f"log interval is {expected_interval(a) // 60} minutes. Check power and network, then whether "
                "logging was turned off on the device (an attacker hides that way)."),
            group_key=f"silent:{a.id}", extra={"asset_id": a.id, "last_seen": _iso_s(h.last_seen)}))
    return out


class UnmanagedAssetDetector:
    """``asset:unmanaged``: a camera-network address that no asset owns sent traffic.

    Reads network events (``event.category`` network or a ``network.*`` / ``zeek``-like
    dataset) with a ``source.ip`` inside a camera CIDR. ``known(ip)`` answers from the
    live inventory; each address is reported once per process (bounded memory).
    """

    spec = DetectorSpec(
        rule_id="asset:unmanaged",
        title="Unmanaged device in the camera network",
        title_vi="Thiết bị không có trong danh mục xuất hiện trong mạng camera",
        level="medium",
        tags=("attack.initial-access", "attack.t1200", "citysoc.asset-inventory", "citysoc.camera.unknown_device"),
        consumes=("network_flow", "connection_attempt", "event.category:network"),
        settings_key="assets.unmanaged_level",
        engine="assets",
        description="Traffic from a camera-network address that no inventory entry owns, once per address.",
    )
    name = "asset-unmanaged"

    def __init__(self, camera_cidrs: Sequence[str], known: Callable[[str], bool], *, level: str = "medium",
                 max_reported: int = 100_000):
        self._nets = [ipaddress.ip_network(c, strict=False) for c in camera_cidrs]
        self._known = known
        self.level = level
        self.enabled = True
        """False (the rule catalog's toggle): every event passes unchecked."""
        self._reported: set[str] = set()
        self._checked: dict[str, bool] = {}
        self._max = max_reported
        self.events = 0
        self.fired = 0

    def counters(self) -> dict[str, int]:
        """Events offered and detections returned so far."""
        return {"events": self.events, "detections": self.fired}

    def state_sizes(self) -> dict[str, int]:
        """Addresses reported and addresses checked (each at most ``max_reported``)."""
        return {"reported": len(self._reported), "checked": len(self._checked)}

    def forget(self) -> None:
        """The inventory changed: re-check addresses seen before."""
        self._checked.clear()

    def _in_camera_net(self, ip: str) -> bool:
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            return False
        return any(addr in n for n in self._nets)

    def process(self, event: Event) -> list[Detection]:
        self.events += 1
        ev = event.get("event")
        if not self.enabled or not isinstance(ev, dict):
            return []
        cat = ev.get("category")
        ds = ev.get("dataset") or ""
        if not ((cat == "network" or (isinstance(cat, list) and "network" in cat))
                or (isinstance(ds, str) and ds.startswith("network"))):
            return []
        so = event.get("source")
        src = so.get("ip") if isinstance(so, dict) else get_field(event, "source.ip")
        if not isinstance(src, str) or src in self._reported:
            return []
        inside = self._checked.get(src)
        if inside is None:
            inside = self._in_camera_net(src) and not self._known(src)
            if len(self._checked) >= self._max:
                self._checked.clear()
            self._checked[src] = inside
        if not inside or len(self._reported) >= self._max:
            return []
        self._reported.add(src)
        self.fired += 1
        return [Detection(
            rule_id="asset:unmanaged", title=f"Unmanaged device in the camera network: {src}", level=self.level,
            events=[event], tags=list(self.spec.tags),
            engine="assets", description=(
                f"{src} sent traffic inside a camera network but is in no inventory entry. Find the device "
                "(switch port by MAC), then add it to the inventory or unplug it."),
            # the event was enriched with the asset it talked to (matched on destination.ip,
            # e.g. the VMS): the alert is about the unknown device, not that asset, so no
            # asset, host or criticality of it (the VMS got risk 60 for a stranger)
            group_key=f"unmanaged:{src}",
            extra={"ip": src, "entities": {"asset_id": None, "host": None, "criticality": None}})]


ASSET_SPECS: dict[str, DetectorSpec] = {d.spec.rule_id: d.spec for d in (SilentAssetDetector, UnmanagedAssetDetector)}
"""Rule id -> spec of the asset detectors."""
