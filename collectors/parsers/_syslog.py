"""Syslog header parsing (RFC 5424, RFC 3164 and the file form without ``<PRI>``).

Only the envelope: priority, timestamp, host, program, pid, structured data and the
message body. Which app parser reads the body is decided in :mod:`.syslog`; app
parsers use :func:`split_header` too when they are handed a whole syslog line.

Tolerance is deliberate: devices (cameras above all) send headers that bend both RFCs.
A bad part is tagged (``syslog_invalid_priority``, ``syslog_truncated``,
``syslog_malformed_sd``) and parsing goes on, so the line is never lost.
"""
from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Container
from dataclasses import dataclass, field
from typing import Any

from core.events import Event, set_field

from ._common import add_tag, parse_ip, set_timestamp, to_int

__all__ = ["SyslogHeader", "split_header", "apply_header", "adopt_bare_tag", "FACILITIES", "SEVERITIES"]

FACILITIES = (
    "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron",
    "authpriv", "ftp", "ntp", "security", "console", "solaris-cron",
    "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7",
)
SEVERITIES = ("emergency", "alert", "critical", "error", "warning", "notice", "informational", "debug")

_MONTHS = {m: i for i, m in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1)}

_PRI_RE = re.compile(r"<([^>]{0,6})>")
# "Nov 25 12:00:00", "Nov  5 12:00:00", optional year "Nov 25 2026 12:00:00", optional ".123"
_BSD_TS_RE = re.compile(
    r"([A-Za-z]{3}) +(\d{1,2})(?: (\d{4}))? (\d\d):(\d\d):(\d\d)(?:\.(\d{1,6}))?(?: |$)")
_ISO_TS_RE = re.compile(
    r"(\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:\.\d{1,9})?(?:Z|[+-]\d\d:?\d\d)?)(?: |$)")
_TAG_RE = re.compile(r"([A-Za-z0-9_./@()-]{1,64}?)(?:\[([^\]\s]{0,32})\])?:(?: |$)")
_HOST_RE = re.compile(r"[A-Za-z0-9_.:%-]{1,255}$")


@dataclass(slots=True)
class SyslogHeader:
    """The parsed envelope of one syslog line."""

    rfc: str  # "5424", "3164" or "file" (3164 layout without <PRI>)
    message: str
    priority: int | None = None
    version: int | None = None
    timestamp: Any = None  # str (5424/ISO) or datetime (3164)
    timestamp_text: str | None = None
    hostname: str | None = None
    appname: str | None = None
    procid: str | None = None
    msgid: str | None = None
    structured_data: dict[str, dict[str, str]] | None = None
    tags: list[str] = field(default_factory=list)


def _priority(text: str) -> tuple[int | None, str, list[str]]:
    m = _PRI_RE.match(text)
    if not m:
        return None, text, []
    rest = text[m.end():]
    raw = m.group(1)
    if raw.isdigit() and len(raw) <= 3 and int(raw) <= 191 and (raw == "0" or not raw.startswith("0")):
        return int(raw), rest, []
    return None, rest, ["syslog_invalid_priority"]


def split_header(text: str, now: _dt.datetime, zone: _dt.tzinfo, *, require_pri: bool = False) -> SyslogHeader | None:
    """Parse the syslog envelope of ``text``; ``None`` when it is not syslog at all.

    With ``require_pri`` a line must start with ``<...>``; otherwise the file form
    (``Nov 25 12:00:00 host prog[pid]: msg`` or an ISO timestamp first) is accepted too.
    """
    has_pri = text.startswith("<") and _PRI_RE.match(text) is not None
    if require_pri and not has_pri:
        return None
    if has_pri:
        pri, rest, tags = _priority(text)
        if rest.startswith("1 ") or rest == "1":
            hdr = _parse_5424(rest[2:], now)
            hdr.priority = pri
            hdr.tags[:0] = tags
            return hdr
        hdr = _parse_3164(rest, now, zone, rfc="3164")
        if hdr is None:
            # <PRI> then something that is neither layout: keep the body as the message.
            hdr = SyslogHeader(rfc="3164", message=rest.lstrip(), tags=["syslog_truncated"] if not rest.strip() else [])
        hdr.priority = pri
        hdr.tags[:0] = tags
        return hdr
    return _parse_3164(text, now, zone, rfc="file", strict=True)


def _parse_5424(rest: str, now: _dt.datetime) -> SyslogHeader:
    hdr = SyslogHeader(rfc="5424", message="", version=1)
    parts = rest.split(" ", 5)
    names = ("timestamp", "hostname", "appname", "procid", "msgid")
    for i, name in enumerate(names[: len(parts)]):
        value = parts[i]
        if value in ("-", ""):
            continue
        if name == "timestamp":
            hdr.timestamp = value
            hdr.timestamp_text = value
        else:
            setattr(hdr, name, value)
    if len(parts) < 6:
        hdr.tags.append("syslog_truncated")
        return hdr
    sd_and_msg = parts[5]
    if sd_and_msg.startswith("-"):
        msg = sd_and_msg[2:] if sd_and_msg.startswith("- ") else sd_and_msg[1:]
    elif sd_and_msg.startswith("["):
        sd, pos, ok = _parse_sd(sd_and_msg)
        if ok:
            hdr.structured_data = sd
            msg = sd_and_msg[pos + 1:] if sd_and_msg[pos:pos + 1] == " " else sd_and_msg[pos:]
        else:
            hdr.tags.append("syslog_malformed_sd")
            msg = sd_and_msg
    else:
        hdr.tags.append("syslog_malformed_sd")
        msg = sd_and_msg
    if msg.startswith("\ufeff"):
        msg = msg[1:]
    hdr.message = msg
    return hdr


def _parse_sd(s: str) -> tuple[dict[str, dict[str, str]], int, bool]:
    """Structured data ``[id k="v" ...][id2 ...]``: ``(elements, end position, ok)``."""
    out: dict[str, dict[str, str]] = {}
    i, n = 0, len(s)
    while i < n and s[i] == "[":
        j = i + 1
        while j < n and s[j] not in " ]":
            j += 1
        sd_id = s[i + 1:j]
        if not sd_id or j >= n:
            return out, i, False
        params: dict[str, str] = {}
        while j < n and s[j] == " ":
            j += 1
            k = j
            while k < n and s[k] != "=":
                if s[k] in " ]\"":
                    return out, i, False
                k += 1
            name = s[j:k]
            if k + 1 >= n or s[k + 1] != '"' or not name:
                return out, i, False
            k += 2
            buf = []
            while k < n and s[k] != '"':
                if s[k] == "\\" and k + 1 < n and s[k + 1] in '"\\]':
                    buf.append(s[k + 1])
                    k += 2
                    continue
                buf.append(s[k])
                k += 1
            if k >= n:
                return out, i, False
            params[name] = "".join(buf)
            j = k + 1
        if j >= n or s[j] != "]":
            return out, i, False
        out[sd_id] = params
        i = j + 1
    return out, i, True


def _bsd_time(m: re.Match[str], now: _dt.datetime, zone: _dt.tzinfo) -> _dt.datetime | None:
    month = _MONTHS.get(m.group(1).lower())
    if month is None:
        return None
    frac = m.group(7)
    micro = int(frac.ljust(6, "0")) if frac else 0
    local_now = now.astimezone(zone)
    year = int(m.group(3)) if m.group(3) else local_now.year
    try:
        ts = _dt.datetime(year, month, int(m.group(2)), int(m.group(4)), int(m.group(5)), int(m.group(6)),
                          micro, tzinfo=zone)
    except ValueError:
        return None
    if not m.group(3) and ts - now > _dt.timedelta(days=7):
        # "Dec 31 23:59:59" read on Jan 1: the log is from last year.
        try:
            ts = ts.replace(year=year - 1)
        except ValueError:
            return None
    return ts.astimezone(_dt.timezone.utc)


def _parse_3164(rest: str, now: _dt.datetime, zone: _dt.tzinfo, *, rfc: str, strict: bool = False) -> SyslogHeader | None:
    hdr = SyslogHeader(rfc=rfc, message="")
    body = rest
    m = _BSD_TS_RE.match(body)
    if m and m.group(1).lower() in _MONTHS:
        hdr.timestamp_text = m.group(0).rstrip()
        ts = _bsd_time(m, now, zone)
        hdr.timestamp = ts if ts is not None else hdr.timestamp_text
        body = body[m.end():]
    else:
        m2 = _ISO_TS_RE.match(body)
        if m2:
            hdr.timestamp_text = m2.group(1)
            hdr.timestamp = m2.group(1)
            body = body[m2.end():]
            if strict:
                # An ISO timestamp starts many non-syslog lines too: in the file form it
                # counts as syslog only with "host tag:" after it (rsyslog's file format).
                head = body.split(" ", 2)
                if len(head) < 2 or not _TAG_RE.match(head[1] + " "):
                    return None
        elif strict:
            return None
    if hdr.timestamp_text is not None:
        # After a timestamp: "host tag[pid]: msg", "tag[pid]: msg" or "host msg".
        first, _, after = body.partition(" ")
        tag_first = _TAG_RE.match(body)
        if tag_first and (tag_first.group(2) is not None or first.endswith(":")):
            hdr.appname, hdr.procid = tag_first.group(1), tag_first.group(2)
            hdr.message = body[tag_first.end():]
            return hdr
        if first and _HOST_RE.match(first):
            hdr.hostname = first
            body = after
        elif strict:
            return None
    elif not body.strip():
        return None
    tm = _TAG_RE.match(body)
    if tm:
        hdr.appname, hdr.procid = tm.group(1), tm.group(2)
        hdr.message = body[tm.end():]
    else:
        hdr.message = body
    if hdr.timestamp_text is None and not hdr.appname:
        hdr.tags.append("syslog_no_header")
    return hdr


_REPEATED_RE = re.compile(r"message repeated (\d{1,9}) times: \[ ?(.*?) ?\]$", re.S)


_BARE_TAG_RE = re.compile(r"([A-Za-z0-9_./-]{1,48})(?:\[(\d{1,10})\])? ")


def adopt_bare_tag(hdr: SyslogHeader, known_programs: Container[str]) -> None:
    """Take a tag written without its colon (``host sshd Failed ...``) when it names a known program.

    rsyslog's ``RSYSLOG_ForwardFormat`` relays RFC 5424 input this way (the APP-NAME
    becomes a tag with no ``:``). Only known program names are taken, so an ordinary
    first word of a message stays in the message.
    """
    if hdr.appname or hdr.rfc == "5424":
        return
    m = _BARE_TAG_RE.match(hdr.message)
    if m and m.group(1).rsplit("/", 1)[-1].lower() in known_programs:
        hdr.appname, hdr.procid = m.group(1), m.group(2)
        hdr.message = hdr.message[m.end():]



def apply_header(ev: Event, hdr: SyslogHeader, now: _dt.datetime) -> None:
    """Copy the envelope into ECS ``log.syslog.*``, ``host.*``, ``process.*``, ``message``."""
    sl: dict[str, Any] = {}
    if hdr.priority is not None:
        fac, sev = divmod(hdr.priority, 8)
        sl["priority"] = hdr.priority
        sl["facility"] = {"code": fac, "name": FACILITIES[fac]}
        sl["severity"] = {"code": sev, "name": SEVERITIES[sev]}
        set_field(ev, "log.level", SEVERITIES[sev])
    if hdr.version is not None:
        sl["version"] = str(hdr.version)
    if hdr.hostname:
        sl["hostname"] = hdr.hostname
        set_field(ev, "host.name", hdr.hostname)
        if parse_ip(hdr.hostname) is not None:
            set_field(ev, "host.ip", [hdr.hostname])
    if hdr.appname:
        sl["appname"] = hdr.appname
        set_field(ev, "process.name", hdr.appname)
    if hdr.procid:
        sl["procid"] = hdr.procid
        pid = to_int(hdr.procid)
        if pid is not None:
            set_field(ev, "process.pid", pid)
    if hdr.msgid:
        sl["msgid"] = hdr.msgid
    if hdr.structured_data:
        sl["structured_data"] = hdr.structured_data
    ev.setdefault("log", {})["syslog"] = sl
    for tag in hdr.tags:
        add_tag(ev, tag)
    if hdr.message.startswith("message repeated "):
        # rsyslog's repeated-message reduction: read the message it stands for, say how many it was.
        rep = _REPEATED_RE.match(hdr.message)
        if rep and rep.group(2):
            hdr.message = rep.group(2)
            set_field(ev, "citysoc.repeated", to_int(rep.group(1)))
            add_tag(ev, "syslog_repeated")
    ev["message"] = hdr.message
    if isinstance(hdr.timestamp, _dt.datetime):
        set_timestamp(ev, hdr.timestamp, now, original=hdr.timestamp_text)
    elif hdr.timestamp is not None:
        set_timestamp(ev, hdr.timestamp, now, original=hdr.timestamp_text)
    elif hdr.timestamp_text is not None:
        set_timestamp(ev, hdr.timestamp_text, now)
