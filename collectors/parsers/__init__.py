"""Log parsers: one module per format, one registry, one entry point.

``parse_record(record)`` turns a :class:`core.protocols.RawRecord` into an ECS event,
choosing the parser by ``record.format``: a name from :data:`PARSERS`, or ``auto`` to
sniff the content:

* a JSON object line -> MySQL audit / ETL job / scheduler job / generic JSON, by keys;
* ``<PRI>`` -> syslog (RFC 5424 or 3164), the body routed by program name and content;
* ``<?xml`` / a SOAP envelope -> ONVIF notification;
* ``type=... msg=audit(...)`` -> auditd; an access-log line -> web access;
* a Postgres or nginx/Apache error line -> those; a ``/var/log`` syslog file line -> syslog;
* anything else -> a generic event with ``message``.

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
from .accounts import PARSER as ACCOUNTS
from .auditd import PARSER as AUDITD
from .dahua import PARSER as DAHUA
from .etl_json import PARSER as ETL_JSON
from .generic import PARSER as GENERIC
from .haproxy import PARSER as HAPROXY
from .ftpd import PARSER as FTPD
from .hikvision import PARSER as HIKVISION
from .jobs_json import PARSER as JOBS_JSON
from .json_generic import JSON, NDJSON
from .mysql_audit import MARIADB_LINE as _MARIADB_LINE
from .mysql_audit import PARSER as MYSQL_AUDIT
from .netfilter import PARSER as NETFILTER
from .leef import PARSER as LEEF
from .panos import PARSER as PANOS
from .cef import PARSER as CEF
from .suricata import PARSER as SURICATA
from .zeek import PARSER as ZEEK
from .fortigate import PARSER as FORTIGATE
from .cisco_asa import PARSER as CISCO_ASA
from .onvif import PARSER as ONVIF
from .pam import PARSER as PAM
from .postgres import _NATIVE_RE as _PG_LINE
from .postgres import PARSER as POSTGRES
from .sshd import PARSER as SSHD
from .sudo import PARSER as SUDO
from .syslog import RFC3164, RFC5424, SYSLOG
from .web import _ACCESS_RE, _APACHE_ERR_RE, _NGINX_ERR_RE, APACHE, NGINX, ACCESS
from ._syslog import split_header

__all__ = ["PARSERS", "parse_record", "sniff", "ParseError"]

PARSERS: dict[str, Parser] = {
    p.name: p  # type: ignore[misc]
    for p in (SYSLOG, RFC5424, RFC3164, JSON, NDJSON, HIKVISION, DAHUA, ONVIF, SSHD, SUDO, PAM, ACCOUNTS, AUDITD, POSTGRES,
              MYSQL_AUDIT, NGINX, APACHE, ACCESS, ETL_JSON, JOBS_JSON, GENERIC, NETFILTER, LEEF, PANOS, CEF, SURICATA, ZEEK, FORTIGATE, CISCO_ASA,
              HAPROXY, FTPD)
}
"""Format id (as used in ``RawRecord.format`` and source config) -> parser."""

_LINE_APPS = (LEEF, PANOS, CEF, CISCO_ASA, FORTIGATE, NETFILTER, HAPROXY)
_JSON_ORDER = (MYSQL_AUDIT, ETL_JSON, JOBS_JSON, SURICATA, ZEEK)
_XML_STARTS = ("<?xml", "<s:Envelope", "<soap:Envelope", "<SOAP-ENV:Envelope", "<env:Envelope", "<wsnt:Notify",
               "<Envelope")


def sniff(record: RawRecord, now: _dt.datetime) -> Event:
    """Parse a record of format ``auto`` by looking at its content."""
    text, _valid = decode(record.data)
    head = text.lstrip()[:64]
    if head.startswith("{"):
        doc = load_object(text)
        for parser in _JSON_ORDER:
            if parser.claims(doc):
                return parser.parse_doc(record, doc, now, text if _valid else None)
        return NDJSON.parse_doc(record, doc, now, text if _valid else None)
    if head.startswith("<"):
        if head.startswith(_XML_STARTS):
            return ONVIF.parse(record, now=now)
        return SYSLOG.parse(record, now=now)
    if head.startswith(("type=", "node=")) and "msg=audit(" in text[:200]:
        return AUDITD.parse(record, now=now)
    line = text.rstrip("\r\n")
    if _MARIADB_LINE.match(line):
        return MYSQL_AUDIT.parse(record, now=now)
    if _ACCESS_RE.match(line):
        return ACCESS.parse(record, now=now)
    if _PG_LINE.match(line):
        return POSTGRES.parse(record, now=now)
    if _NGINX_ERR_RE.match(line):
        return NGINX.parse(record, now=now)
    if _APACHE_ERR_RE.match(line):
        return APACHE.parse(record, now=now)
    for app in _LINE_APPS:
        if app.sniff_line(line):
            return app.parse(record, now=now)
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
