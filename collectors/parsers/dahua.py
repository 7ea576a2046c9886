"""Dahua IP cameras, NVRs and XVRs: log entries sent over syslog.

Dahua's log groups entries by type (Account, Config, System, Event, Storage) with a
content line and details, and its syslog output writes them as::

    [Account] Login Failed. User: admin, IP: 10.20.3.9, Reason: Wrong Password

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

__all__ = ["DahuaParser", "PARSER"]

_HEAD_RE = re.compile(r"\[(?P<type>[A-Za-z ]{2,20})\]\s*(?P<content>[^.]+?)\.?(?:\s+(?P<details>[A-Z][\w ]*:.*))?$", re.S)
_DETAIL_RE = re.compile(r"([A-Z][\w ]{0,20}?):\s*(.*?)\s*(?=,\s*[A-Z][\w ]{0,20}?:|$)", re.S)


class DahuaParser(AppParser):
    name = "dahua"
    dataset = "dahua.log"
    module = "dahua"
    order = 70
    body_sniff = True
    programs = frozenset({"dahua", "dh", "dahua-nvr", "dahua-ipc"})

    def sniff(self, message: str) -> bool:
        return message.startswith(("[Account]", "[Config]", "[System]", "[Event]", "[Storage]", "[Alarm]"))

    def apply(self, ev: Event, message: str, program: str | None, record: RawRecord, now: _dt.datetime) -> bool:
        m = _HEAD_RE.match(message.strip())
        if not m:
            return False
        self.claim(ev, record)
        kind, content = m.group("type"), m.group("content").strip()
        details = dict(_DETAIL_RE.findall(m.group("details") or ""))
        dahua: dict[str, object] = {"type": kind, "content": content}
        set_field(ev, "dahua", dahua)
        phrase = content
        result = details.get("Result", "")
        if result.lower() in ("failed", "failure", "fail"):
            phrase += " failed"
        if kind == "Config" and "config" not in phrase.lower():
            phrase += " config"
        classify(ev, phrase, "dahua")
        if details.get("User"):
            set_field(ev, "user.name", details["User"])
        if details.get("IP"):
            try:
                set_field(ev, "source.ip", str(ipaddress.ip_address(details["IP"])))
            except ValueError:
                dahua["ip"] = details["IP"]
        channel = to_int(details.get("Channel"))
        if channel is not None:
            dahua["channel"] = channel
        for key in ("Client", "Reason", "Group", "Item", "Result"):
            if key in details:
                dahua[key.lower()] = details[key]
        set_observer(ev, "Dahua", model=details.get("Model"), hostname=get_field(ev, "log.syslog.hostname"),
                     serial=details.get("Serial"), version=details.get("Version"))
        return True


PARSER = DahuaParser()
