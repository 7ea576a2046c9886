"""Hikvision IP cameras and NVRs: log entries sent over syslog.

The device's log is a list of (Major Type, Minor Type, user, remote host IP, channel,
...) entries, the columns of its web UI's log search ("Operation / Remote: Login",
"Exception / Illegal Login", "Alarm / Motion Detection Started", "Exception / Video
Signal Loss"). Firmware that forwards them to syslog writes the columns as
``Key: value`` pairs separated by commas, which is what this parser reads::

    Major Type: Operation, Minor Type: Remote: Login, Local/Remote User: admin, Remote Host IP: 10.20.1.15

The golden samples are synthetic, written after that wording (see the golden README).
"""
from __future__ import annotations

import datetime as _dt
import ipaddress
import re

from core.events import Event, get_field, set_field
from core.protocols import RawRecord

from ._app import AppParser
from ._camera import classify, set_observer
from ._common import to_int

__all__ = ["HikvisionParser", "PARSER"]

_KEYS = ("Major Type", "Minor Type", "Local/Remote User", "User", "Remote Host IP", "Channel No.", "Device Model",
         "Device Name", "Serial No.", "Firmware Version", "Parameter Type", "Description", "Alarm Input No.",
         "HDD No.", "Result")
_KEYSET = frozenset(_KEYS)
_SPLIT_RE = re.compile(r"[,;]\s*")


def _pairs(message: str) -> dict[str, str]:
    """``Key: value`` columns; a piece without a known key belongs to the previous value."""
    pairs: dict[str, str] = {}
    last = None
    for part in _SPLIT_RE.split(message):
        key, sep, value = part.partition(":")
        key = key.strip()
        if sep and key in _KEYSET:
            pairs[key] = value.strip()
            last = key
        elif last is not None:
            pairs[last] += ", " + part
    return pairs


class HikvisionParser(AppParser):
    name = "hikvision"
    dataset = "hikvision.log"
    module = "hikvision"
    order = 60
    body_sniff = True
    programs = frozenset({"hikvision", "hik", "hikvision-nvr", "hikvision-ipc"})

    def sniff(self, message: str) -> bool:
        return "Major Type:" in message and "Minor Type:" in message

    def apply(self, ev: Event, message: str, program: str | None, record: RawRecord, now: _dt.datetime) -> bool:
        pairs = _pairs(message)
        if "Minor Type" not in pairs:
            return False
        self.claim(ev, record)
        major, minor = pairs.get("Major Type", ""), pairs["Minor Type"]
        hik: dict[str, object] = {"major_type": major, "minor_type": minor}
        set_field(ev, "hikvision", hik)
        phrase = minor
        if major.lower() == "exception" and "login" in minor.lower() and "illegal" not in minor.lower():
            phrase = "illegal " + minor
        if "Result" in pairs and pairs["Result"].lower() in ("failed", "failure", "fail"):
            phrase += " failed"
        classify(ev, phrase, "hikvision")
        user = pairs.get("Local/Remote User") or pairs.get("User")
        if user and user not in ("-", "N/A"):
            set_field(ev, "user.name", user)
        ip = pairs.get("Remote Host IP")
        if ip:
            try:
                set_field(ev, "source.ip", str(ipaddress.ip_address(ip)))
            except ValueError:
                hik["remote_host"] = ip
        channel = to_int(pairs.get("Channel No."))
        if channel is not None:
            hik["channel"] = channel
        for key, name in (("Parameter Type", "parameter_type"), ("Description", "description"),
                          ("Alarm Input No.", "alarm_input"), ("HDD No.", "hdd"), ("Device Name", "device_name")):
            if key in pairs:
                hik[name] = pairs[key]
        set_observer(ev, "Hikvision", model=pairs.get("Device Model"),
                     hostname=get_field(ev, "log.syslog.hostname"), serial=pairs.get("Serial No."),
                     version=pairs.get("Firmware Version"))
        return True


PARSER = HikvisionParser()
