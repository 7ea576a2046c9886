"""FTP servers' log lines: vsftpd, wu-ftpd (the ``ftpd`` of older Linux), ProFTPD, Pure-FTPd.

Camera NVRs and the warehouse's batch hosts still take uploads over FTP, and FTP
brute force is as common as SSH's, so logins, failures and connections are
``authentication``/``network`` events with ``source.ip`` and ``user.name``, and
transfers ``file`` events with ``file.path``. IPv4-mapped IPv6 addresses
(``::ffff:192.0.2.5``, how vsftpd and ProFTPD write IPv4 peers on a dual-stack socket)
are given as the IPv4 address, so they join the same address elsewhere.

vsftpd's own ``vsftpd.log`` lines (``Tue Nov 25 10:00:00 2026 [pid 4242] [alice] OK
LOGIN: Client "192.0.2.5"``) are read with their ctime timestamp; its syslog lines are
the same after the tag. PAM lines these daemons log go to :mod:`.pam`.
"""
from __future__ import annotations

import datetime as _dt
import re

from core.events import Event, set_field
from core.protocols import RawRecord

from ._app import AppParser
from ._common import add_tag, categorize, record_zone, set_outcome, set_timestamp, to_int
from ._netfields import parse_ip
from .pam import PARSER as _PAM

__all__ = ["FtpdParser", "PARSER"]

_VSFTPD_RE = re.compile(
    r"(?:\[pid (?P<pid>\d+)\] )?(?:\[(?P<user>[^\]]*)\] )?(?:(?P<result>OK|FAIL) )?(?P<verb>[A-Z]+): "
    r"Client \"(?P<ip>[^\"]*)\"(?:, \"(?P<path>[^\"]*)\")?(?:, \"(?P<path2>[^\"]*)\")?"
    r"(?:, (?P<bytes>\d+) bytes)?")
_VSFTPD_LOG_RE = re.compile(r"[A-Z][a-z]{2} ([A-Z][a-z]{2} +\d{1,2} \d\d:\d\d:\d\d \d{4}) (\[pid \d+\] .*)$", re.S)
# wu-ftpd: "connection from 211.72.2.106 () at Sun Jul 10 03:55:15 2005", "FTP LOGIN FROM host [ip], user",
# "ANONYMOUS FTP LOGIN FROM host [ip], password", "FTP LOGIN REFUSED (reason) FROM host [ip], user",
# "failed login from host [ip]", "FTP session closed".
_WU_CONN_RE = re.compile(r"connection from (?P<ip>\S+) \((?P<host>[^)]*)\)")
_WU_LOGIN_RE = re.compile(
    r"(?P<anon>ANONYMOUS )?FTP LOGIN (?:(?P<refused>REFUSED|FAILED)(?: \((?P<reason>[^)]*)\))? )?FROM (?P<host>\S+?),? "
    r"\[(?P<ip>[^\]]+)\],? ?(?P<user>\S*)")
# The BSD-derived form names only the remote host (an address when it did not resolve):
# "ANONYMOUS FTP LOGIN FROM 84.102.20.2,  (anonymous)", "FTP LOGIN FROM 192.0.2.5 as alice".
_BSD_LOGIN_RE = re.compile(r"(?P<anon>ANONYMOUS )?FTP LOGIN FROM (?P<host>[^\s,\[]+)(?:,? +(?:as (?P<user>\S+)|\S*))?")
_WU_FAILED_RE = re.compile(r"failed login from (?P<host>\S+?),? \[(?P<ip>[^\]]+)\]")
# ProFTPD: "host (::ffff:1.2.3.4[::ffff:1.2.3.4]) - USER alice: Login successful.",
# "... - USER alice (Login failed): Incorrect password.", "... - FTP session opened."
_PRO_RE = re.compile(r"(?P<host>\S+) \((?P<rhost>[^\[\s]*)\[(?P<ip>[^\]]+)\]\) - (?P<rest>.*)$")
_PRO_USER_RE = re.compile(r"USER (?P<user>[^\s:(]+)(?:: (?P<ok>Login successful)| \((?P<fail>Login failed)\)|"
                          r": no such user found)")
# Pure-FTPd: "(?@192.0.2.5) [INFO] New connection from 192.0.2.5", "(alice@192.0.2.5) [INFO] alice is now logged in",
# "(?@192.0.2.5) [WARNING] Authentication failed for user [alice]".
_PURE_RE = re.compile(r"\((?P<who>[^@\s]*)@(?P<ip>[^)\s]+)\) \[(?P<level>[A-Z]+)\] (?P<rest>.*)$")
_TRANSFERS = {"UPLOAD": ("ftp-upload", ["creation"]), "DOWNLOAD": ("ftp-download", ["access"]),
              "MKDIR": ("ftp-mkdir", ["creation"]), "RMDIR": ("ftp-rmdir", ["deletion"]),
              "DELETE": ("ftp-delete", ["deletion"]), "RENAME": ("ftp-rename", ["change"])}


def _peer(ev: Event, value: str | None, host: str | None = None) -> None:
    """``source.ip`` (IPv4-mapped addresses as IPv4) and ``source.address``; a named host as ``source.domain``."""
    ip = parse_ip(value)
    if ip is not None:
        mapped = getattr(ip, "ipv4_mapped", None)
        set_field(ev, "source.ip", str(mapped or ip))
        set_field(ev, "source.address", value)
    elif value:
        set_field(ev, "source.address", value)
    if host and host != value and parse_ip(host) is None and host not in ("?", "unknown"):
        set_field(ev, "source.domain", host)


def _login(ev: Event, ok: bool, user: str | None) -> None:
    categorize(ev, ["authentication", "session"] if ok else "authentication", "start" if ok else "info", "ftp-login")
    set_outcome(ev, ok)
    if user and user not in ("?", "-"):
        set_field(ev, "user.name", user)


class FtpdParser(AppParser):
    name = "ftpd"
    dataset = "system.auth"
    module = "system"
    programs = frozenset({"vsftpd", "ftpd", "in.ftpd", "wu-ftpd", "proftpd", "pure-ftpd"})
    order = 187
    body_sniff = True

    def sniff(self, message: str) -> bool:
        return (('Client "' in message and message.startswith("[pid ")) or message.startswith(("FTP LOGIN FROM ", "ANONYMOUS FTP LOGIN FROM ")))

    def parse_native(self, ev: Event, text: str, record: RawRecord, now: _dt.datetime) -> bool:
        m = _VSFTPD_LOG_RE.match(text.rstrip("\r\n"))
        if not m:
            return False
        try:
            ts = _dt.datetime.strptime(" ".join(m.group(1).split()), "%b %d %H:%M:%S %Y")
        except ValueError:
            ts = None
        if ts is not None:
            set_timestamp(ev, ts.replace(tzinfo=record_zone(record)).astimezone(_dt.timezone.utc), now,
                          original=m.group(1))
        else:
            add_tag(ev, "timestamp_invalid")
            set_field(ev, "citysoc.timestamp_original", m.group(1))
        ev["message"] = m.group(2)
        self.claim(ev, record)
        set_field(ev, "process.name", "vsftpd")
        self.apply(ev, m.group(2), "vsftpd", record, now)
        return True

    def apply(self, ev: Event, message: str, program: str | None, record: RawRecord, now: _dt.datetime) -> bool:
        if message.startswith("pam_") and _PAM.apply(ev, message, program, record, now):
            return True
        self.claim(ev, record)
        msg = message.strip()
        return self._vsftpd(ev, msg) or self._wu(ev, msg) or self._proftpd(ev, msg) or self._pure(ev, msg)

    def _vsftpd(self, ev: Event, msg: str) -> bool:
        m = _VSFTPD_RE.match(msg)
        if not m:
            return False
        verb, result, user = m.group("verb"), m.group("result"), m.group("user")
        if m.group("pid") and ev.get("process", {}).get("pid") is None:
            set_field(ev, "process.pid", to_int(m.group("pid")))
        _peer(ev, m.group("ip"))
        if verb == "LOGIN":
            _login(ev, result == "OK", user)
        elif verb == "CONNECT":
            categorize(ev, "network", ["connection", "start"], "ftp-connection")
        elif verb in _TRANSFERS:
            action, types = _TRANSFERS[verb]
            categorize(ev, "file", types, action)
            set_outcome(ev, result == "OK")
            if user:
                set_field(ev, "user.name", user)
            if m.group("path"):
                set_field(ev, "file.path", m.group("path"))
            if m.group("path2"):
                set_field(ev, "file.target_path", m.group("path2"))
            size = to_int(m.group("bytes"))
            if size is not None:
                set_field(ev, "file.size", size)
        else:
            categorize(ev, "network", "info", f"ftp-{verb.lower()}")
        return True

    def _wu(self, ev: Event, msg: str) -> bool:
        m = _WU_LOGIN_RE.search(msg)
        if m:
            ok = not m.group("refused")
            _peer(ev, m.group("ip"), m.group("host"))
            _login(ev, ok, "anonymous" if m.group("anon") else m.group("user"))
            if m.group("reason"):
                set_field(ev, "system.auth.ftp.reason", m.group("reason"))
            return True
        m = _BSD_LOGIN_RE.match(msg)
        if m:
            host = m.group("host")
            _peer(ev, host if parse_ip(host) is not None else None, host)
            _login(ev, True, "anonymous" if m.group("anon") else m.group("user"))
            return True
        m = _WU_FAILED_RE.match(msg)
        if m:
            _peer(ev, m.group("ip"), m.group("host"))
            _login(ev, False, None)
            return True
        m = _WU_CONN_RE.match(msg)
        if m:
            _peer(ev, m.group("ip"), m.group("host"))
            categorize(ev, "network", ["connection", "start"], "ftp-connection")
            return True
        if msg.startswith("FTP session closed"):
            categorize(ev, ["network", "session"], ["end", "connection"], "ftp-session-closed")
            return True
        return False

    def _proftpd(self, ev: Event, msg: str) -> bool:
        m = _PRO_RE.match(msg)
        if not m:
            return False
        _peer(ev, m.group("ip"), m.group("rhost"))
        rest = m.group("rest")
        u = _PRO_USER_RE.match(rest)
        if u:
            _login(ev, bool(u.group("ok")), u.group("user"))
        elif rest.startswith("FTP session opened"):
            categorize(ev, "network", ["connection", "start"], "ftp-connection")
        elif rest.startswith("FTP session closed"):
            categorize(ev, ["network", "session"], ["end", "connection"], "ftp-session-closed")
        return True

    def _pure(self, ev: Event, msg: str) -> bool:
        m = _PURE_RE.match(msg)
        if not m:
            return False
        _peer(ev, m.group("ip"))
        rest, who = m.group("rest"), m.group("who")
        if rest.startswith("New connection from"):
            categorize(ev, "network", ["connection", "start"], "ftp-connection")
        elif " is now logged in" in rest:
            _login(ev, True, who if who != "?" else rest.split(" ", 1)[0])
        elif rest.startswith("Authentication failed for user"):
            name = rest.partition("[")[2].rstrip("]")
            _login(ev, False, name or None)
        elif rest.startswith("Logout"):
            categorize(ev, ["network", "session"], ["end", "connection"], "ftp-session-closed")
        return True


PARSER = FtpdParser()
