"""OpenSSH server messages: logins, invalid users, disconnects, pre-auth noise.

Wording follows OpenSSH 4 to 9 (``auth.c``, ``auth2.c``, ``auth-pam.c``, ``sshd.c``,
``packet.c``, ``canohost.c``): internet-facing servers log mostly scanners, so every
message that names the peer gives ``source.ip`` (and ``source.port`` when logged),
including the ones we do not otherwise classify (a last, generic address search). The
login method and key fingerprint go to ``system.auth.ssh.*`` as in Filebeat's system
module. PAM lines logged by sshd are handed to :mod:`.pam`; ``error:``/``fatal:``
prefixes are read through.
"""
from __future__ import annotations

import datetime as _dt
import re

from core.events import Event, set_field
from core.protocols import RawRecord

from ._app import AppParser
from ._common import categorize, parse_ip, set_outcome, to_int
from .pam import PARSER as _PAM
from .pam import rhost_fields

__all__ = ["SshdParser", "PARSER"]

# An address token ends in a hex digit, so "IP:" and "[IP]" give the address without the punctuation.
_IP = r"(?P<ip>[0-9A-Fa-f.:]*[0-9A-Fa-f])"
_ADDR = _IP + r" port (?P<port>\d+)"
# Older OpenSSH (and honeypot logs) write the address without "port N": the port is optional there.
_ADDR_OPT = _IP + r"(?: port (?P<port>\d+))?"
_LOGIN_RE = re.compile(
    r"(?P<result>Accepted|Failed|Postponed) (?P<method>[\w/@.-]+) for (?P<invalid>invalid user |illegal user )?"
    r"(?P<user>.*?) from " + _ADDR_OPT + r"(?: (?P<proto>ssh2))?(?:: (?P<sig>.*?))?(?P<preauth> \[preauth\])?$")
_INVALID_RE = re.compile(r"(?:Invalid|Illegal) user (?P<user>.*?) from " + _ADDR_OPT + r"(?P<preauth> \[preauth\])?$")
_DISC_RE = re.compile(
    r"Disconnected from (?:(?P<who>user|invalid user|authenticating user) (?P<user>.*?) )?" + _ADDR
    + r"(?P<preauth> \[preauth\])?")
_RECV_DISC_RE = re.compile(
    r"Received disconnect from " + _ADDR_OPT + r": ?(?P<code>\d+): (?P<reason>.*?)(?P<preauth> \[preauth\])?$")
_CLOSED_RE = re.compile(
    r"Connection (?:closed|reset) by (?:(?P<who>user|invalid user|authenticating user) (?P<user>.*?) )?" + _ADDR_OPT
    + r"(?P<preauth> \[preauth\])?$")
_MAXAUTH_RE = re.compile(
    r"maximum authentication attempts exceeded for (?P<invalid>invalid user )?(?P<user>.*?) from " + _ADDR)
# "Disconnecting: Too many authentication failures for root from IP port N ssh2 [preauth]" (OpenSSH < 7.5) and
# "Disconnecting (invalid|authenticating) user X IP port N: Too many authentication failures [preauth]" (later).
_TOOMANY_OLD_RE = re.compile(r"Disconnecting: Too many authentication failures for (?:invalid user )?(?P<user>.*?) from " + _ADDR)
_TOOMANY_RE = re.compile(
    r"Disconnecting (?:invalid |authenticating )?user (?P<user>\S*) " + _ADDR + r": Too many authentication failures")
_PAM_MORE_RE = re.compile(r"PAM (?P<n>\d+) more authentication failures?; (?P<kv>.*)$")
_PAM_ERR_RE = re.compile(
    r"PAM: (?P<reason>.+?) for (?P<invalid>illegal user |invalid user )?(?P<user>\S*) from (?P<host>\S+)$")
_NOIDENT_RE = re.compile(r"Did not receive identification string from " + _ADDR_OPT + r"$")
_BADPROTO_RE = re.compile(
    r"(?:Bad protocol version identification (?P<banner>'.*') from|Protocol major versions differ for|"
    r"Unable to negotiate with|ssh_dispatch_run_fatal: Connection from(?: (?:invalid |authenticating )?user \S+)?|"
    r"kex_exchange_identification: Connection (?:closed|reset) by|Timeout before authentication for|"
    r"banner exchange: Connection from) " + _ADDR_OPT + r"(?::|$| )")
_REVMAP_RE = re.compile(
    r"reverse mapping checking getaddrinfo for (?P<host>\S+) \[(?P<ip>[0-9A-Fa-f.:]+)\] failed(?: - POSSIBLE BREAK-IN ATTEMPT!)?")
_MAPBACK_RE = re.compile(
    r"Address (?P<ip>[0-9A-Fa-f.:]+) maps to (?P<host>\S+), but this does not map back to the address")
_NOTALLOWED_RE = re.compile(r"User (?P<user>\S+) from (?P<ip>\S+) not allowed because (?P<reason>.*)$")
_ROOT_REFUSED_RE = re.compile(r"ROOT LOGIN REFUSED FROM " + _ADDR_OPT + r"$")
_REFUSED_RE = re.compile(r"refused connect from (?P<host>\S+) \((?P<ip>[0-9A-Fa-f.:]+)\)")
_CONN_RE = re.compile(r"Connection from " + _ADDR + r" on (?P<dip>[0-9A-Fa-f.:]+) port (?P<dport>\d+)")
# session.c: "Starting session: shell on pts/0 for alice from IP port N id 0", "Close session: user alice from ...".
_SESSION_RE = re.compile(
    r"(?P<what>Starting session|Close session): (?:.+? for )?(?:user |invalid user )?(?P<user>\S+) from " + _ADDR)
_ANY_ADDR_RE = re.compile(
    r"(?:\bfrom |\bby |\bfor |\bwith |\[)(?P<ip>\d{1,3}(?:\.\d{1,3}){3}|[0-9A-Fa-f]*:[0-9A-Fa-f:.]*[0-9A-Fa-f])\]?"
    r"(?:(?::| port )(?P<port>\d+))?")
_ANY_PORT_RE = re.compile(r"(?P<ip>\d{1,3}(?:\.\d{1,3}){3}|[0-9A-Fa-f]*:[0-9A-Fa-f:.]*[0-9A-Fa-f]) port (?P<port>\d+)")
_LEVEL_PREFIXES = ("error: ", "fatal: ")
_HOSTNAME_RE = re.compile(r"(?=.*[A-Za-z])[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}\.?)*$")



def _source(ev: Event, ip: str | None, port: str | None = None) -> None:
    """``source.address`` always; ``source.ip`` (and ``source.port``) when it is a real address, else
    ``source.domain`` when it is a host name (a cut address such as ``203.0.113`` is neither)."""
    if not ip:
        return
    set_field(ev, "source.address", ip)
    if parse_ip(ip) is None:
        if _HOSTNAME_RE.match(ip):
            set_field(ev, "source.domain", ip)
        return
    set_field(ev, "source.ip", ip)
    if port:
        set_field(ev, "source.port", to_int(port))


def _src(ev: Event, m: re.Match[str]) -> None:
    g = m.groupdict()
    _source(ev, g.get("ip"), g.get("port"))


def _user(ev: Event, name: str | None) -> None:
    if name:
        set_field(ev, "user.name", name)


class SshdParser(AppParser):
    name = "sshd"
    dataset = "system.auth"
    module = "system"
    order = 10
    body_sniff = True
    programs = frozenset({"sshd", "sshd-session", "sshd-auth"})

    def sniff(self, message: str) -> bool:
        return message.startswith(("Accepted ", "Failed password", "Failed publickey", "Invalid user "))

    def apply(self, ev: Event, message: str, program: str | None, record: RawRecord, now: _dt.datetime) -> bool:
        if message.startswith("pam_") and _PAM.apply(ev, message, program, record, now):
            return True
        self.claim(ev, record)
        msg = message
        while msg.startswith(_LEVEL_PREFIXES):
            msg = msg.split(": ", 1)[1]
        return self._known(ev, msg) or self._any_address(ev, msg)

    def _known(self, ev: Event, msg: str) -> bool:
        m = _LOGIN_RE.match(msg)
        if m:
            result = m.group("result")
            if result == "Postponed":
                categorize(ev, "authentication", "info", "ssh-login-postponed")
            else:
                ok = result == "Accepted"
                categorize(ev, ["authentication", "session"] if ok else "authentication", "start" if ok else "info",
                           "ssh-login")
                set_outcome(ev, ok)
            _user(ev, m.group("user"))
            _src(ev, m)
            set_field(ev, "system.auth.ssh.event", result)
            set_field(ev, "system.auth.ssh.method", m.group("method"))
            if m.group("sig"):
                set_field(ev, "system.auth.ssh.signature", m.group("sig"))
            if m.group("invalid"):
                set_field(ev, "system.auth.ssh.invalid_user", True)
            return True
        m = _INVALID_RE.match(msg)
        if m:
            categorize(ev, "authentication", "info", "ssh-invalid-user")
            set_outcome(ev, False)
            _user(ev, m.group("user"))
            _src(ev, m)
            set_field(ev, "system.auth.ssh.event", "Invalid")
            set_field(ev, "system.auth.ssh.invalid_user", True)
            return True
        m = _MAXAUTH_RE.match(msg)
        if m:
            categorize(ev, "authentication", "info", "ssh-max-auth-exceeded")
            set_outcome(ev, False)
            _user(ev, m.group("user"))
            _src(ev, m)
            return True
        m = _TOOMANY_OLD_RE.match(msg) or _TOOMANY_RE.match(msg)
        if m:
            categorize(ev, "authentication", "info", "ssh-max-auth-exceeded")
            set_outcome(ev, False)
            _user(ev, m.group("user"))
            _src(ev, m)
            return True
        for regex, action in ((_DISC_RE, "ssh-disconnect"), (_CLOSED_RE, "ssh-connection-closed")):
            m = regex.match(msg)
            if m:
                categorize(ev, ["network", "session"], ["end", "connection"], action)
                _user(ev, m.group("user"))
                _src(ev, m)
                if m.group("preauth"):
                    set_field(ev, "system.auth.ssh.preauth", True)
                return True
        m = _RECV_DISC_RE.match(msg)
        if m:
            categorize(ev, ["network", "session"], ["end", "connection"], "ssh-disconnect")
            _src(ev, m)
            set_field(ev, "system.auth.ssh.disconnect_code", to_int(m.group("code")))
            set_field(ev, "system.auth.ssh.disconnect_reason", m.group("reason"))
            if m.group("preauth"):
                set_field(ev, "system.auth.ssh.preauth", True)
            return True
        m = _PAM_MORE_RE.match(msg)
        if m:
            categorize(ev, "authentication", "info", "ssh-pam-failures")
            set_outcome(ev, False)
            kv = dict(re.findall(r"(\w+)=(\S*)", m.group("kv")))
            _user(ev, kv.get("user"))
            rhost_fields(ev, kv.get("rhost", ""))
            set_field(ev, "system.auth.ssh.pam_failures", to_int(m.group("n")))
            return True
        m = _PAM_ERR_RE.match(msg)
        if m:
            categorize(ev, "authentication", "info", "ssh-pam-error")
            set_outcome(ev, False)
            _user(ev, m.group("user"))
            _source(ev, m.group("host"))
            set_field(ev, "system.auth.ssh.event", f"PAM: {m.group('reason')}")
            if m.group("invalid"):
                set_field(ev, "system.auth.ssh.invalid_user", True)
            return True
        m = _NOIDENT_RE.match(msg)
        if m:
            categorize(ev, "network", ["connection", "protocol"], "ssh-bad-protocol")
            set_outcome(ev, False)
            _src(ev, m)
            set_field(ev, "system.auth.ssh.dropped_ip", m.group("ip"))
            return True
        m = _BADPROTO_RE.match(msg)
        if m:
            categorize(ev, "network", ["connection", "protocol"], "ssh-bad-protocol")
            set_outcome(ev, False)
            _src(ev, m)
            return True
        m = _REVMAP_RE.match(msg) or _MAPBACK_RE.match(msg)
        if m:
            categorize(ev, "network", "info", "ssh-reverse-mapping-failed")
            _src(ev, m)
            set_field(ev, "source.domain", m.group("host"))
            return True
        m = _NOTALLOWED_RE.match(msg)
        if m:
            categorize(ev, "authentication", "info", "ssh-user-not-allowed")
            set_outcome(ev, False)
            _user(ev, m.group("user"))
            _src(ev, m)
            set_field(ev, "system.auth.ssh.reason", m.group("reason"))
            return True
        m = _ROOT_REFUSED_RE.match(msg)
        if m:
            categorize(ev, "authentication", "info", "ssh-root-login-refused")
            set_outcome(ev, False)
            _user(ev, "root")
            _src(ev, m)
            return True
        m = _REFUSED_RE.match(msg)
        if m:
            categorize(ev, "network", ["connection", "denied"], "ssh-connection-refused")
            set_outcome(ev, False)
            _src(ev, m)
            if m.group("host") != m.group("ip"):
                set_field(ev, "source.domain", m.group("host"))
            return True
        m = _CONN_RE.match(msg)
        if m:
            categorize(ev, "network", ["connection", "start"], "ssh-connection")
            _src(ev, m)
            set_field(ev, "destination.ip", m.group("dip"))
            set_field(ev, "destination.port", to_int(m.group("dport")))
            return True
        m = _SESSION_RE.match(msg)
        if m:
            start = m.group("what") == "Starting session"
            categorize(ev, "session", "start" if start else "end", "ssh-session-start" if start else "ssh-session-end")
            _user(ev, m.group("user"))
            _src(ev, m)
            return True
        return False

    def _any_address(self, ev: Event, msg: str) -> bool:
        """The peer of a message we do not classify ("... from IP port N", "[IP]:N", "IP port N")."""
        if msg.startswith("Server listening on "):
            return False
        for regex in (_ANY_ADDR_RE, _ANY_PORT_RE):
            for m in regex.finditer(msg):
                if parse_ip(m.group("ip")) is not None:
                    _src(ev, m)
                    return True
        return False


PARSER = SshdParser()
