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

from ._app import utcnow
from ._common import add_tag, base_event, categorize, record_zone, set_outcome
from ._json import load_object
from ._netfields import parse_ip
from ._registry import ROUTES
from ._syslog import adopt_bare_tag, apply_header, split_header
from ._systemd import apply_systemd
from .pam import PARSER as PAM

__all__ = ["SyslogParser", "SYSLOG", "RFC5424", "RFC3164", "dispatch"]

_OLD_PAM_RE = re.compile(r"([a-z0-9_.-]+)\((pam_[a-z0-9_]+)\)$")
# A body no app parser owns may still name its peer ("Received SNMP packet(s) from 192.0.2.5",
# klogind's "Authentication failed from 192.0.2.5 (host): ..."): the address is what a hunt
# or a brute-force count needs, so it becomes source.ip; nothing else is guessed.
_PEER_RE = re.compile(r"(?:\bfrom |\brhost=|\bclient[= ])\[?([0-9A-Fa-f][0-9A-Fa-f:.]*[0-9A-Fa-f])\]?(?![\w.:-])")
_KRB_FAILED_RE = re.compile(r"Authentication failed from (\S+) \(([^)]*)\): (.*)$")


def dispatch(ev: Event, message: str, program: str | None, record: RawRecord, now: _dt.datetime) -> bool:
    """Hand a syslog body to the app parser that owns it; True when one understood it.

    In turn: the parser declaring the program name; PAM's own forms; a parser declaring
    a prefix of the program name; the parsers declaring ``body_sniff``, in order; for a
    JSON body, the parsers declaring ``json_claims``, in order (else kept under ``json``).
    The tables come from :data:`._registry.ROUTES`."""
    prog = (program or "").rsplit("/", 1)[-1].lower()
    app = ROUTES.by_program.get(prog)
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
    for prefix, owner in ROUTES.by_prefix:
        if prog.startswith(prefix):
            if owner.apply(ev, message, program, record, now):
                return True
            break
    if prog == "systemd" and apply_systemd(ev, message):
        return True
    for candidate in ROUTES.body_sniffers:
        if candidate is not app and candidate.sniff(message) and candidate.apply(ev, message, program, record, now):
            return True
    body = message.lstrip()
    if body.startswith("{"):
        try:
            doc = load_object(body)
        except ParseError:
            add_tag(ev, "syslog_json_body_invalid")
            return False
        for parser in ROUTES.json_claimers:
            if parser.claims(doc):
                ev["event"]["module"] = parser.module
                if not record.dataset:
                    ev["event"]["dataset"] = parser.dataset
                parser.apply_doc(ev, doc, record, now)
                return True
        ev["json"] = doc
        return True
    _peer_fallback(ev, message, prog)
    return False


def _peer_fallback(ev: Event, message: str, prog: str) -> None:
    """``source.ip`` from the first peer address the body names (see ``_PEER_RE``).

    klogind/kshd (Kerberos rlogin/rsh of older Linux) failures are authentication failures
    as well, so brute-force rules count them."""
    if prog in ("klogind", "kshd", "eklogind"):
        m = _KRB_FAILED_RE.match(message)
        if m and parse_ip(m.group(1)) is not None:
            set_field(ev, "source.ip", m.group(1))
            if m.group(2) and m.group(2) != m.group(1):
                set_field(ev, "source.domain", m.group(2))
            categorize(ev, "authentication", "info", "kerberos-login")
            set_outcome(ev, False)
            set_field(ev, "event.reason", m.group(3))
            return
    for m in _PEER_RE.finditer(message):
        ip = parse_ip(m.group(1))
        if ip is not None:
            mapped = getattr(ip, "ipv4_mapped", None)
            set_field(ev, "source.ip", str(mapped or ip))
            return


class SyslogParser:
    """The syslog envelope, then :func:`dispatch`. Only ``syslog`` takes part in sniffing
    (a ``<PRI>`` line, right after ONVIF's XML) and owns the shippers' syslog datasets."""

    dataset = "system.syslog"
    module = "system"

    def __init__(self, name: str, rfc: str | None, *, line_sniff: bool = False, datasets: tuple[str, ...] = (),
                 log_paths: tuple[str, ...] = ()) -> None:
        self.name = name
        self.rfc = rfc
        self.order = 1
        self.line_sniff = line_sniff
        self.datasets = datasets
        self.log_paths = log_paths

    def sniff_line(self, line: str) -> bool:
        return line.lstrip().startswith("<")

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
        adopt_bare_tag(hdr, ROUTES.by_program)
        apply_header(ev, hdr, now)
        dispatch(ev, hdr.message, hdr.appname, record, now)
        return ev


SYSLOG = SyslogParser("syslog", None, line_sniff=True, datasets=("system.auth", "system.syslog"),
                      log_paths=("/var/log/auth.log", "/var/log/secure", "/var/log/syslog", "/var/log/messages"))
RFC5424 = SyslogParser("rfc5424", "5424")
RFC3164 = SyslogParser("rfc3164", "3164")
