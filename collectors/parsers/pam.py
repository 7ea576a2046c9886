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

__all__ = ["PamParser", "PARSER", "rhost_fields"]

_HEAD_RE = re.compile(r"(pam_[A-Za-z0-9_]+)\(([^:()]+):([^()]+)\):\s*(.*)$", re.S)
_SESSION_RE = re.compile(
    r"session (opened|closed) for user ([^\s(]+)(?:\(uid=(\d+)\))?(?: by ([^\s(]*)(?:\(uid=(\d+)\))?)?")
_KV_RE = re.compile(r"(\w+)=(\S*)")
_FOR_USER_RE = re.compile(r"for user \(?['\"]?([^\s'\")]+)")
_TALLY_RE = re.compile(r"user (\S+) \((\d+)\) tally (\d+), deny (\d+)")


def _ip(value: str) -> str | None:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return None


def rhost_fields(ev: Event, rhost: str) -> None:
    """PAM's ``rhost=``: ``source.address``, and ``source.ip`` or ``source.domain``; nothing when empty."""
    if not rhost:
        return
    set_field(ev, "source.address", rhost)
    ip = _ip(rhost)
    if ip:
        set_field(ev, "source.ip", ip)
    else:
        set_field(ev, "source.domain", rhost)


def _auth_failure(ev: Event, rest: str) -> None:
    """``authentication failure; logname= uid= euid= tty= ruser= rhost= user=``.

    ``user`` is the account being authenticated, ``ruser`` the requesting user (set by
    sudo and su, empty for a remote login): when both are there, the requester is the
    actor (``user.name``, its real ``uid``) who asked to act as ``user``
    (``user.effective.*``, with the process' ``euid``). A remote login only names the
    account tried; its ``uid`` is the daemon's, so it is not the user's id."""
    kv = dict(_KV_RE.findall(rest))
    user, ruser = kv.get("user", ""), kv.get("ruser", "")
    if ruser and user and ruser != user:
        set_field(ev, "user.name", ruser)
        set_field(ev, "user.effective.name", user)
        if kv.get("uid", "").isdigit():
            set_field(ev, "user.id", kv["uid"])
        if kv.get("euid", "").isdigit():
            set_field(ev, "user.effective.id", kv["euid"])
    elif user or ruser:
        set_field(ev, "user.name", user or ruser)
    rhost_fields(ev, kv.get("rhost", ""))
    if kv.get("tty"):
        set_field(ev, "system.auth.pam.tty", kv["tty"])
    if kv.get("logname"):
        set_field(ev, "system.auth.pam.logname", kv["logname"])
    uid = to_int(kv.get("uid"))
    if uid is not None:
        set_field(ev, "system.auth.pam.uid", uid)


class PamParser(AppParser):
    name = "pam"
    dataset = "system.auth"
    module = "system"
    order = 30
    body_sniff = True

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
            _auth_failure(ev, rest)
            return True
        if rest.startswith(("check pass; user unknown", "bad username")):
            categorize(ev, "authentication", "info", "pam-user-unknown")
            set_outcome(ev, False)
            return True
        if module == "pam_faillock" or "account temporarily locked" in rest or "account locked" in rest:
            # pam_faillock: "Consecutive login failures for user X account temporarily locked".
            categorize(ev, "authentication", "info", "account-locked")
            set_outcome(ev, False)
            fu = _FOR_USER_RE.search(rest)
            if fu:
                set_field(ev, "user.name", fu.group(1))
            return True
        tally = _TALLY_RE.match(rest)
        if tally:
            # pam_tally2: "user X (1001) tally 4, deny 3": the counter passed the limit.
            locked = int(tally.group(3)) >= int(tally.group(4))
            categorize(ev, "authentication", "info", "account-locked" if locked else "pam-authentication-failure")
            set_outcome(ev, False)
            set_field(ev, "user.name", tally.group(1))
            set_field(ev, "user.id", tally.group(2))
            return True
        pw = re.match(r"password changed for (\S+)", rest)
        if pw:
            categorize(ev, "iam", ["user", "change"], "password-changed")
            set_outcome(ev, True)
            set_field(ev, "user.name", pw.group(1))
            set_field(ev, "user.target.name", pw.group(1))
            return True
        expired = re.match(r"(?:account (\S+) has expired|expired password for user (\S+))", rest)
        if expired:
            categorize(ev, "authentication", "info", "pam-account-expired")
            set_outcome(ev, False)
            set_field(ev, "user.name", expired.group(1) or expired.group(2))
            return True
        categorize(ev, "authentication", "info", "pam-message")
        fu = _FOR_USER_RE.search(rest)
        if fu:
            set_field(ev, "user.name", fu.group(1))
        return True


PARSER = PamParser()
