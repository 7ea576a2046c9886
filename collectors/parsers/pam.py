"""PAM messages (``pam_unix(sshd:auth): authentication failure; ... rhost=... user=root``).

Reached through syslog (any program: sshd, sudo, su, login and cron all log PAM lines
under their own name) or directly as ``format=pam``. PAM's own fields go to
``system.auth.pam.*`` (the layout Filebeat's system module uses, so Kibana users find
them where they expect).
"""
from __future__ import annotations

import datetime as _dt
import ipaddress
import re

from core.events import Event, set_field
from core.protocols import RawRecord

from ._app import AppParser
from ._common import categorize, set_outcome, to_int

__all__ = ["PamParser", "PARSER"]

_HEAD_RE = re.compile(r"(pam_[A-Za-z0-9_]+)\(([^:()]+):([^()]+)\):\s*(.*)$", re.S)
_SESSION_RE = re.compile(
    r"session (opened|closed) for user ([^\s(]+)(?:\(uid=(\d+)\))?(?: by ([^\s(]*)(?:\(uid=(\d+)\))?)?")
_KV_RE = re.compile(r"(\w+)=(\S*)")


def _ip(value: str) -> str | None:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return None


class PamParser(AppParser):
    name = "pam"
    dataset = "system.auth"
    module = "system"

    def sniff(self, message: str) -> bool:
        return message.startswith("pam_") and _HEAD_RE.match(message) is not None

    def apply(self, ev: Event, message: str, program: str | None, record: RawRecord, now: _dt.datetime) -> bool:
        m = _HEAD_RE.match(message)
        if not m:
            return False
        self.claim(ev, record)
        module, service, kind, rest = m.groups()
        set_field(ev, "system.auth.pam.module", module)
        set_field(ev, "system.auth.pam.service", service)
        set_field(ev, "system.auth.pam.type", kind)
        s = _SESSION_RE.match(rest)
        if s:
            opened = s.group(1) == "opened"
            target, target_uid, by, by_uid = s.group(2), s.group(3), s.group(4), s.group(5)
            categorize(ev, "session", "start" if opened else "end", "session-opened" if opened else "session-closed")
            set_outcome(ev, True)
            if by and by != target:
                set_field(ev, "user.name", by)
                if by_uid is not None:
                    set_field(ev, "user.id", by_uid)
                set_field(ev, "user.effective.name", target)
                if target_uid is not None:
                    set_field(ev, "user.effective.id", target_uid)
            else:
                set_field(ev, "user.name", target)
                if target_uid is not None:
                    set_field(ev, "user.id", target_uid)
            return True
        if rest.startswith("authentication failure"):
            categorize(ev, "authentication", "info", "pam-authentication-failure")
            set_outcome(ev, False)
            kv = dict(_KV_RE.findall(rest))
            if kv.get("user"):
                set_field(ev, "user.name", kv["user"])
            elif kv.get("ruser"):
                set_field(ev, "user.name", kv["ruser"])
            rhost = kv.get("rhost") or ""
            if rhost:
                ip = _ip(rhost)
                if ip:
                    set_field(ev, "source.ip", ip)
                else:
                    set_field(ev, "source.domain", rhost)
            if kv.get("tty"):
                set_field(ev, "system.auth.pam.tty", kv["tty"])
            uid = to_int(kv.get("uid"))
            if uid is not None:
                set_field(ev, "system.auth.pam.uid", uid)
            return True
        if rest.startswith("check pass; user unknown"):
            categorize(ev, "authentication", "info", "pam-user-unknown")
            set_outcome(ev, False)
            return True
        pw = re.match(r"password changed for (\S+)", rest)
        if pw:
            categorize(ev, "iam", ["user", "change"], "password-changed")
            set_outcome(ev, True)
            set_field(ev, "user.name", pw.group(1))
            return True
        categorize(ev, "authentication", "info", "pam-message")
        return True


PARSER = PamParser()
