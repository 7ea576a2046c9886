"""What camera and NVR/VMS parsers share: the event vocabulary and the ``observer`` fields.

Vendors name the same things differently (Hikvision "Illegal Login", Dahua "Login
Failed"); both end as ``event.action: device-login`` with ``event.outcome: failure``,
so one detection rule covers the whole camera estate. The table is checked in order,
first match wins, on the vendor's phrase lower-cased.
"""
from __future__ import annotations

import ipaddress
import re

from core.events import Event, set_field

from ._common import categorize, set_outcome

__all__ = ["classify", "set_observer", "device_type"]

# (phrases that must all appear, categories, types, action, outcome True/False/None)
_TABLE: list[tuple[tuple[str, ...], list[str], list[str], str, bool | None]] = [
    (("unlock",), ["iam"], ["user", "change"], "device-account-unlocked", True),
    (("lock",), ["authentication", "iam"], ["info", "user"], "device-account-locked", False),
    (("illegal login",), ["authentication"], ["info"], "device-login", False),
    (("login", "fail"), ["authentication"], ["info"], "device-login", False),
    (("logout",), ["authentication"], ["end"], "device-logout", True),
    (("login",), ["authentication"], ["start"], "device-login", True),
    (("upgrade", "fail"), ["configuration", "package"], ["change"], "firmware-upgrade", False),
    (("upgrade",), ["configuration", "package"], ["change"], "firmware-upgrade", True),
    (("tamper",), ["intrusion_detection"], ["info"], "video-tampering", None),
    (("video", "loss", "end"), ["host"], ["info"], "video-restored", None),
    (("video", "recover"), ["host"], ["info"], "video-restored", None),
    (("video", "loss"), ["host"], ["info", "error"], "video-loss", None),
    (("motion", "stop"), ["host"], ["info"], "motion-stopped", None),
    (("motion", "end"), ["host"], ["info"], "motion-stopped", None),
    (("motion",), ["host"], ["info"], "motion-detected", None),
    (("config",), ["configuration"], ["change"], "device-config-change", True),
    (("set param",), ["configuration"], ["change"], "device-config-change", True),
    (("user", "add"), ["iam"], ["user", "creation"], "device-user-added", True),
    (("user", "delete"), ["iam"], ["user", "deletion"], "device-user-deleted", True),
    (("password",), ["iam"], ["user", "change"], "device-password-changed", True),
    (("reboot",), ["host"], ["info"], "device-reboot", None),
    (("restart",), ["host"], ["info"], "device-reboot", None),
    (("shutdown",), ["host"], ["info"], "device-shutdown", None),
    (("hdd",), ["host"], ["error"], "storage-error", None),
    (("disk",), ["host"], ["error"], "storage-error", None),
    (("network", "disconnect"), ["network"], ["error"], "network-disconnected", None),
    (("ip", "conflict"), ["network"], ["error"], "ip-conflict", None),
]


def classify(ev: Event, phrase: str, vendor_slug: str) -> None:
    """Set category/type/action/outcome for a vendor's event ``phrase``."""
    p = phrase.lower()
    for words, cats, types, action, outcome in _TABLE:
        if all(w in p for w in words):
            categorize(ev, cats, types, action)
            if outcome is not None:
                set_outcome(ev, outcome)
            return
    slug = re.sub(r"[^a-z0-9]+", "-", p).strip("-") or "event"
    categorize(ev, "host", "info", f"{vendor_slug}-{slug}")


def device_type(model: str | None, hostname: str | None) -> str:
    """``nvr`` for recorders (model or host name says NVR/DVR/XVR, Hikvision DS-7/DS-9), else ``camera``."""
    for text in (model or "", hostname or ""):
        t = text.upper()
        if any(k in t for k in ("NVR", "DVR", "XVR", "HCVR")) or t.startswith(("DS-7", "DS-9")):
            return "nvr"
    return "camera"


def set_observer(ev: Event, vendor: str, *, model: str | None = None, hostname: str | None = None,
                 serial: str | None = None, version: str | None = None) -> None:
    set_field(ev, "observer.vendor", vendor)
    set_field(ev, "observer.type", device_type(model, hostname))
    if model:
        set_field(ev, "observer.product", model)
    if serial:
        set_field(ev, "observer.serial_number", serial)
    if version:
        set_field(ev, "observer.version", version)
    if hostname and not (hostname[:1].isdigit() or ":" in hostname):
        set_field(ev, "observer.hostname", hostname)
    elif hostname:
        try:
            set_field(ev, "observer.ip", [str(ipaddress.ip_address(hostname))])
        except ValueError:
            set_field(ev, "observer.hostname", hostname)
