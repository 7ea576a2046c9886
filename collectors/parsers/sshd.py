"""OpenSSH server messages: logins, invalid users, disconnects, pre-auth noise.

Wording follows OpenSSH 8/9 (``auth.c``, ``sshd.c``, ``packet.c``). The login method
and key fingerprint go to ``system.auth.ssh.*`` as in Filebeat's system module. PAM
lines logged by sshd are handed to :mod:`.pam`.
"""
from __future__ import annotations

import datetime as _dt
import ipaddress
import re

from core.events import Event, set_field
from core.protocols import RawRecord

from ._app import AppParser
from ._common import categorize, set_outcome, to_int
from .pam import PARSER as _PAM

__all__ = ["SshdParser", "PARSER"]

_ADDR = r"(?P<ip>[0-9A-Fa-f.:]+) port (?P<port>\d+)"
_LOGIN_RE = re.compile(
    r"(?P<result>Accepted|Failed) (?P<method>[\w-]+) for (?P<invalid>invalid user )?(?P<user>.*?) from "
    + _ADDR + r"(?: (?P<proto>ssh2))?(?:: (?P<sig>.*))?$")
_INVALID_RE = re.compile(r"Invalid user (?P<user>.*?) from " + _ADDR)
_DISC_RE = re.compile(
    r"Disconnected from (?:(?P<who>user|invalid user|authenticating user) (?P<user>.*?) )?" + _ADDR + r"(?P<preauth> \[preauth\])?")
# Older OpenSSH (and honeypot logs) write the address without "port N": the port is optional there.
_ADDR_OPT = r"(?P<ip>[0-9A-Fa-f.:]+?)(?: port (?P<port>\d+))?"
_RECV_DISC_RE = re.compile(
    r"Received disconnect from " + _ADDR_OPT + r": ?(?P<code>\d+): (?P<reason>.*?)(?P<preauth> \[preauth\])?$")
_CLOSED_RE = re.compile(
    r"Connection (?:closed|reset) by (?:(?P<who>user|invalid user|authenticating user) (?P<user>.*?) )?" + _ADDR_OPT
    + r"(?P<preauth> \[preauth\])?$")
_MAXAUTH_RE = re.compile(
    r"(?:error: )?maximum authentication attempts exceeded for (?P<invalid>invalid user )?(?P<user>.*?) from " + _ADDR)
_NOIDENT_RE = re.compile(r"Did not receive identification string from " + _ADDR_OPT + r"$")
_REVMAP_RE = re.compile(
    r"reverse mapping checking getaddrinfo for (?P<host>\S+) \[(?P<ip>[0-9A-Fa-f.:]+)\] failed(?: - POSSIBLE BREAK-IN ATTEMPT!)?")
_BANNER_RE = re.compile(r"banner exchange: Connection from " + _ADDR + r": (?P<reason>.*)$")
_CONN_RE = re.compile(r"Connection from " + _ADDR + r" on (?P<dip>[0-9A-Fa-f.:]+) port (?P<dport>\d+)")


def _source(ev: Event, m: re.Match[str]) -> None:
    """``source.ip`` (only a real address; else ``source.address``) and ``source.port`` when logged."""
    ip = m.group("ip")
    try:
        ipaddress.ip_address(ip)
        set_field(ev, "source.ip", ip)
    except ValueError:
        set_field(ev, "source.address", ip)
        return
    set_field(ev, "source.address", ip)
    port = m.groupdict().get("port")
    if port:
        set_field(ev, "source.port", int(port))


class SshdParser(AppParser):
    name = "sshd"
    dataset = "system.auth"
    module = "system"
    programs = frozenset({"sshd", "sshd-session", "sshd-auth"})

    def sniff(self, message: str) -> bool:
        return message.startswith(("Accepted ", "Failed password", "Failed publickey", "Invalid user "))

    def apply(self, ev: Event, message: str, program: str | None, record: RawRecord, now: _dt.datetime) -> bool:
        if message.startswith("pam_") and _PAM.apply(ev, message, program, record, now):
            return True
        self.claim(ev, record)
        m = _LOGIN_RE.match(message)
        if m:
            ok = m.group("result") == "Accepted"
            categorize(ev, "authentication", "start" if ok else "info", "ssh-login")
            set_outcome(ev, ok)
            set_field(ev, "user.name", m.group("user"))
            _source(ev, m)
            set_field(ev, "system.auth.ssh.method", m.group("method"))
            if m.group("sig"):
                set_field(ev, "system.auth.ssh.signature", m.group("sig"))
            if m.group("invalid"):
                set_field(ev, "system.auth.ssh.invalid_user", True)
            return True
        m = _INVALID_RE.match(message)
        if m:
            categorize(ev, "authentication", "info", "ssh-invalid-user")
            set_outcome(ev, False)
            set_field(ev, "user.name", m.group("user"))
            _source(ev, m)
            set_field(ev, "system.auth.ssh.invalid_user", True)
            return True
        m = _MAXAUTH_RE.match(message)
        if m:
            categorize(ev, "authentication", "info", "ssh-max-auth-exceeded")
            set_outcome(ev, False)
            set_field(ev, "user.name", m.group("user"))
            _source(ev, m)
            return True
        for regex, action in ((_DISC_RE, "ssh-disconnect"), (_CLOSED_RE, "ssh-connection-closed")):
            m = regex.match(message)
            if m:
                categorize(ev, ["network", "session"], ["end", "connection"], action)
                if m.group("user"):
                    set_field(ev, "user.name", m.group("user"))
                _source(ev, m)
                if m.group("preauth"):
                    set_field(ev, "system.auth.ssh.preauth", True)
                return True
        m = _RECV_DISC_RE.match(message)
        if m:
            categorize(ev, ["network", "session"], ["end", "connection"], "ssh-disconnect")
            _source(ev, m)
            set_field(ev, "system.auth.ssh.disconnect_code", to_int(m.group("code")))
            set_field(ev, "system.auth.ssh.disconnect_reason", m.group("reason"))
            return True
        m = _NOIDENT_RE.match(message) or _BANNER_RE.match(message)
        if m:
            categorize(ev, "network", ["connection", "protocol"], "ssh-bad-protocol")
            set_outcome(ev, False)
            _source(ev, m)
            return True
        m = _REVMAP_RE.match(message)
        if m:
            categorize(ev, "network", "info", "ssh-reverse-mapping-failed")
            _source(ev, m)
            set_field(ev, "source.domain", m.group("host"))
            return True
        m = _CONN_RE.match(message)
        if m:
            categorize(ev, "network", ["connection", "start"], "ssh-connection")
            _source(ev, m)
            set_field(ev, "destination.ip", m.group("dip"))
            set_field(ev, "destination.port", int(m.group("dport")))
            return True
        return False


PARSER = SshdParser()
