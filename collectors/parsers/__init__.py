"""Log parsers: one module per format, one registry, one entry point.

``parse_record(record)`` turns a :class:`core.protocols.RawRecord` into an ECS event,
choosing the parser by ``record.format``: a name from :data:`PARSERS`, or ``auto`` to
sniff the content:

* a JSON object line -> MySQL audit / ETL job / scheduler job / Suricata / Zeek / generic JSON, by keys;
* ``<?xml`` / a SOAP envelope -> ONVIF notification;
* ``<PRI>`` -> syslog (RFC 5424 or 3164), the body routed by program name and content;
* ``type=... msg=audit(...)`` -> auditd; MariaDB audit, web access, Postgres, nginx/Apache
  error and appliance (LEEF, PAN-OS, CEF, ASA, FortiGate, netfilter) lines -> those;
  a ``/var/log`` syslog file line -> syslog;
* anything else -> a generic event with ``message``.

Every routing table (program names, sniffing chains, shipper datasets) is derived from
what each parser declares on its class (see :mod:`._registry`); :data:`_OURS` lists the
parsers. ``ecs`` passes finished ECS documents through (our EVTX and pcap producers).

Every event has ``@timestamp`` (UTC), ``event.ingested``, ``event.original``,
``event.kind``, ``event.dataset`` and ``event.module``. ``ParseError`` is raised only
for input that is broken beyond a generic event (invalid JSON, refused XML, an unknown
format name): the pipeline dead-letters it with the reason. A bug in a parser never
loses a line either: it becomes a generic event tagged ``parser_failure``.

Example::

    >>> from core.protocols import RawRecord
    >>> ev = parse_record(RawRecord(b"<38>Nov 25 10:00:01 gw sshd[77]: Invalid user x from 10.0.0.9 port 22"))
    >>> ev["event"]["action"], ev["source"]["ip"]
    ('ssh-invalid-user', '10.0.0.9')
"""
from __future__ import annotations

import datetime as _dt

from core.events import Event, set_field
from core.protocols import ParseError, Parser, RawRecord

from ._app import utcnow
from ._common import add_tag, decode
from ._json import load_object
from ._registry import DECLARED, ROUTES, build
from ._syslog import split_header
from .accounts import PARSER as ACCOUNTS
from .auditd import PARSER as AUDITD
from .cef import PARSER as CEF
from .cisco_asa import PARSER as CISCO_ASA
from .dahua import PARSER as DAHUA
from .ecs import PARSER as ECS
from .etl_json import PARSER as ETL_JSON
from .fortigate import PARSER as FORTIGATE
from .generic import PARSER as GENERIC
from .haproxy import PARSER as HAPROXY
from .ftpd import PARSER as FTPD
from .hikvision import PARSER as HIKVISION
from .jobs_json import PARSER as JOBS_JSON
from .json_generic import JSON, NDJSON
from .leef import PARSER as LEEF
from .mysql_audit import PARSER as MYSQL_AUDIT
from .mysql_error import PARSER as MYSQL_ERROR
from .netfilter import PARSER as NETFILTER
from .onvif import PARSER as ONVIF
from .pam import PARSER as PAM
from .panos import PARSER as PANOS
from .postgres import PARSER as POSTGRES
from .sshd import PARSER as SSHD
from .sudo import PARSER as SUDO
from .suricata import PARSER as SURICATA
from .syslog import RFC3164, RFC5424, SYSLOG
from .web import ACCESS, APACHE, NGINX
from .zeek import PARSER as ZEEK

__all__ = ["PARSERS", "FORMAT_IDS", "ROUTES", "DECLARED", "parse_record", "sniff", "check_format", "ParseError"]

_OURS = (
    SYSLOG, RFC5424, RFC3164, JSON, NDJSON, ECS, GENERIC,
    ONVIF, HIKVISION, DAHUA,
    SSHD, SUDO, PAM, ACCOUNTS, AUDITD, POSTGRES, MYSQL_AUDIT, ETL_JSON, JOBS_JSON,
    NGINX, APACHE, ACCESS, HAPROXY, MYSQL_ERROR, FTPD,
    NETFILTER, LEEF, CEF, PANOS, FORTIGATE, CISCO_ASA, SURICATA, ZEEK,
)
"""Every parser of ours: the ONE list a new format is added to (its class declares the rest)."""

ROUTES.load(build(_OURS))

PARSERS: dict[str, Parser] = ROUTES.parsers
"""Format id (as used in ``RawRecord.format`` and source config) -> parser."""

FORMAT_IDS: tuple[str, ...] = ("auto", *sorted(PARSERS))
"""Every value a ``format`` setting may take."""


def check_format(value: str, where: str) -> str | None:
    """None when ``value`` names a format; else an error for ``where`` (a settings path) listing the valid ids."""
    if (value or "").lower() in FORMAT_IDS:
        return None
    return f"{where}: unknown format {value!r}; valid ids: {', '.join(FORMAT_IDS)}"


def sniff(record: RawRecord, now: _dt.datetime) -> Event:
    """Parse a record of format ``auto`` by looking at its content.

    A JSON object goes to the first parser declaring ``json_claims`` that claims it (else
    generic JSON); any other line to the first declaring ``line_sniff`` whose
    ``sniff_line`` takes it (ONVIF's XML, then ``<PRI>`` syslog, then the rest by
    ``order``); then a syslog file line (``Dec  2 17:29:05 host prog:``); else generic.
    """
    text, _valid = decode(record.data)
    if text.lstrip()[:1] == "{":
        doc = load_object(text)
        for parser in ROUTES.json_claimers:
            if parser.claims(doc):
                return parser.parse_doc(record, doc, now, text if _valid else None)
        return NDJSON.parse_doc(record, doc, now, text if _valid else None)
    line = text.rstrip("\r\n")
    for parser in ROUTES.line_sniffers:
        if parser.sniff_line(line):
            return parser.parse(record, now=now)
    if split_header(line, now, _dt.timezone.utc) is not None:
        return SYSLOG.parse(record, now=now)
    return GENERIC.parse(record, now=now)


def parse_record(record: RawRecord, *, now: _dt.datetime | None = None) -> Event:
    """Parse one raw record into an ECS event (see the module docstring).

    ``now`` fixes the ingest time (golden tests, replays); it defaults to the clock.
    Raises :class:`ParseError` for input that must be dead-lettered.
    """
    now = now or utcnow()
    fmt = (record.format or "auto").lower()
    if fmt == "auto":
        parser_name = "auto"
    else:
        parser = PARSERS.get(fmt)
        if parser is None:
            raise ParseError(f"unknown log format {record.format!r}; use 'auto' or one of: {', '.join(sorted(PARSERS))}")
        parser_name = parser.name
    try:
        if fmt == "auto":
            return sniff(record, now)
        return parser.parse(record, now=now)  # type: ignore[call-arg]
    except ParseError:
        raise
    except Exception as exc:  # a parser bug must not lose the line: keep it as a generic event
        ev = GENERIC.parse(record, now=now)
        add_tag(ev, "parser_failure")
        set_field(ev, "error.message", f"parser {parser_name} failed: {type(exc).__name__}: {exc}")
        return ev
