"""Syslog lines (RFC 5424, RFC 3164, and the file form of ``/var/log/*``) routed to app parsers.

The envelope is read by :mod:`._syslog`; the body goes to the app parser registered for
the program name (``sshd`` -> :mod:`.sshd`, ``nginx`` -> :mod:`.web`, ...), else to the
first app parser whose ``sniff`` recognises the content (cameras rarely set a useful
program name), else to a JSON parser when the body is a JSON object, else it stays a
plain syslog event (dataset ``system.syslog``). ``rfc5424``/``rfc3164`` differ from
``syslog`` only in tagging a line of the other kind ``syslog_rfc_mismatch``; they still
parse it, since losing it would help no one.
"""
from __future__ import annotations

import datetime as _dt
import re

from core.events import Event, set_field
from core.protocols import ParseError, RawRecord

from ._app import AppParser, utcnow
from ._common import add_tag, base_event, record_zone
from ._json import JsonFamilyParser, load_object
from ._syslog import adopt_bare_tag, apply_header, split_header
from ._systemd import apply_systemd
from .accounts import PARSER as ACCOUNTS
from .auditd import PARSER as AUDITD
from .dahua import PARSER as DAHUA
from .etl_json import PARSER as ETL
from .haproxy import PARSER as HAPROXY
from .ftpd import PARSER as FTPD
from .hikvision import PARSER as HIKVISION
from .jobs_json import PARSER as JOBS
from .mysql_audit import PARSER as MYSQL
from .netfilter import PARSER as NETFILTER
from .leef import PARSER as LEEF
from .panos import PARSER as PANOS
from .cef import PARSER as CEF
from .suricata import PARSER as SURICATA
from .zeek import PARSER as ZEEK
from .fortigate import PARSER as FORTIGATE
from .cisco_asa import PARSER as CISCO_ASA
from .pam import PARSER as PAM
from .postgres import PARSER as POSTGRES
from .sshd import PARSER as SSHD
from .sudo import PARSER as SUDO
from .web import APACHE, NGINX

__all__ = ["SyslogParser", "SYSLOG", "RFC5424", "RFC3164", "APPS", "dispatch"]

APPS: tuple[AppParser, ...] = (SSHD, SUDO, PAM, ACCOUNTS, AUDITD, HIKVISION, DAHUA, POSTGRES, NGINX, APACHE, NETFILTER, LEEF, PANOS, CEF, FORTIGATE, CISCO_ASA,
                             HAPROXY, FTPD)
"""App parsers in sniffing order (cheap, specific checks first)."""

JSON_BODIES: tuple[JsonFamilyParser, ...] = (MYSQL, ETL, JOBS, SURICATA, ZEEK)

_OLD_PAM_RE = re.compile(r"([a-z0-9_.-]+)\((pam_[a-z0-9_]+)\)$")
_BY_PROGRAM: dict[str, AppParser] = {p: app for app in APPS for p in app.programs}


def dispatch(ev: Event, message: str, program: str | None, record: RawRecord, now: _dt.datetime) -> bool:
    """Hand a syslog body to the app parser that owns it; True when one understood it."""
    prog = (program or "").rsplit("/", 1)[-1].lower()
    app = _BY_PROGRAM.get(prog)
    if app is not None:
        if app.apply(ev, message, program, record, now):
            return True
        app.claim(ev, record)
    if message.startswith("pam_") and PAM.apply(ev, message, program, record, now):
        return True
    old_pam = _OLD_PAM_RE.match(prog)
    if old_pam:
        # Older Linux logs name the PAM module in the tag: "sshd(pam_unix)[12]: authentication failure; ...".
        kind = "session" if message.startswith("session ") else "auth"
        if PAM.apply(ev, f"{old_pam.group(2)}({old_pam.group(1)}:{kind}): {message}", program, record, now):
            set_field(ev, "process.name", old_pam.group(1))
            return True
    if prog.startswith(("mysql-server_auditing", "server_audit")) and MYSQL.apply_mariadb(ev, message, record, now):
        return True
    if prog == "systemd" and apply_systemd(ev, message):
        return True
    for candidate in APPS:
        if candidate is not app and candidate.sniff(message) and candidate.apply(ev, message, program, record, now):
            return True
    body = message.lstrip()
    if body.startswith("{"):
        try:
            doc = load_object(body)
        except ParseError:
            add_tag(ev, "syslog_json_body_invalid")
            return False
        for parser in JSON_BODIES:
            if parser.claims(doc):
                ev["event"]["module"] = parser.module
                if not record.dataset:
                    ev["event"]["dataset"] = parser.dataset
                parser.apply_doc(ev, doc, record, now)
                return True
        ev["json"] = doc
        return True
    return False


class SyslogParser:
    def __init__(self, name: str, rfc: str | None) -> None:
        self.name = name
        self.rfc = rfc

    def parse(self, record: RawRecord, *, now: _dt.datetime | None = None) -> Event:
        now = now or utcnow()
        ev, text = base_event(record, now, dataset="system.syslog", module="system")
        hdr = split_header(text, now, record_zone(record))
        if hdr is None:
            ev["message"] = text
            add_tag(ev, "syslog_no_header")
            return ev
        if self.rfc and hdr.rfc != self.rfc and not (self.rfc == "3164" and hdr.rfc == "file"):
            add_tag(ev, "syslog_rfc_mismatch")
        adopt_bare_tag(hdr, _BY_PROGRAM)
        apply_header(ev, hdr, now)
        dispatch(ev, hdr.message, hdr.appname, record, now)
        return ev


SYSLOG = SyslogParser("syslog", None)
RFC5424 = SyslogParser("rfc5424", "5424")
RFC3164 = SyslogParser("rfc3164", "3164")
