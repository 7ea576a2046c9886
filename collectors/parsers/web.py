"""nginx and Apache access logs (common/combined, plus trailing extras) and error logs.

The API gateway in front of the shared data warehouse logs in these layouts, directly
to a file or over syslog (nginx ``access_log syslog:server=...``). An access line is
``event.category: web``, ``event.type: access``; status < 400 is success. Anything the
gateway appends after the user agent (request time, upstream, forwarded-for) is kept in
``citysoc.http.extra`` unparsed because each site configures it differently.
"""
from __future__ import annotations

import datetime as _dt
import re
from urllib.parse import urlsplit

from core.events import Event, set_field
from core.protocols import RawRecord

from ._app import AppParser
from ._common import add_tag, categorize, record_zone, set_outcome, set_timestamp, to_int

__all__ = ["NginxParser", "ApacheParser", "AccessParser", "NGINX", "APACHE", "ACCESS", "parse_access"]

_Q = r'"((?:[^"\\]|\\.)*)"'
_ACCESS_RE = re.compile(
    r"(?P<ip>\S+) (?P<ident>\S+) (?P<user>\S+) \[(?P<time>[^\]]{10,40})\] " + _Q.replace("(", "(?P<request>", 1)
    + r" (?P<status>\d{3}|-) (?P<bytes>\d+|-)(?: " + _Q.replace("(", "(?P<referrer>", 1) + " "
    + _Q.replace("(", "(?P<agent>", 1) + r")?(?P<extra>.*)$", re.S)
_REQUEST_RE = re.compile(r"([A-Z][A-Z_-]{0,19}) (\S+)(?: HTTP/(\d(?:\.\d)?))?$")
_NGINX_ERR_RE = re.compile(
    r"(?P<time>\d{4}/\d\d/\d\d \d\d:\d\d:\d\d) \[(?P<level>\w+)\] (?P<pid>\d+)#(?P<tid>\d+): (?:\*(?P<cid>\d+) )?(?P<msg>.*)$", re.S)
_APACHE_ERR_RE = re.compile(
    r"\[(?P<time>[A-Z][a-z]{2} [A-Z][a-z]{2} \d\d \d\d:\d\d:\d\d(?:\.\d+)? \d{4})\] \[(?:(?P<mod>[\w-]+):)?(?P<level>\w+)\]"
    r"(?: \[pid (?P<pid>\d+)(?::tid \d+)?\])?(?: \[client (?P<client>[^\]]+)\])? (?P<msg>.*)$", re.S)
_CLIENT_RE = re.compile(r"client: ([0-9A-Fa-f.:]+)")
_REQ_IN_ERR_RE = re.compile(r'request: "([^"]*)"')


_CLF_TIME_RE = re.compile(r"(\d\d)/([A-Z][a-z]{2})/(\d{4}):(\d\d):(\d\d):(\d\d) ([+-])(\d\d)(\d\d)$")
_MONTHS = {m: i for i, m in enumerate(("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov",
                                       "Dec"), 1)}
_ZONES: dict[str, _dt.timezone] = {}


def _clf_time(text: str) -> _dt.datetime | None:
    """``25/Nov/2026:17:45:01 +0700`` without ``strptime`` (5x faster, locale-proof)."""
    m = _CLF_TIME_RE.match(text)
    if not m or m.group(2) not in _MONTHS:
        return None
    off = m.group(7) + m.group(8) + m.group(9)
    tz = _ZONES.get(off)
    if tz is None:
        delta = _dt.timedelta(hours=int(m.group(8)), minutes=int(m.group(9)))
        tz = _ZONES[off] = _dt.timezone(-delta if m.group(7) == "-" else delta)
    try:
        return _dt.datetime(int(m.group(3)), _MONTHS[m.group(2)], int(m.group(1)), int(m.group(4)), int(m.group(5)),
                            int(m.group(6)), tzinfo=tz)
    except ValueError:
        return None


def _unescape(s: str) -> str:
    return s.replace('\\"', '"').replace("\\\\", "\\") if "\\" in s else s


def _set_url(ev: Event, target: str) -> None:
    set_field(ev, "url.original", target)
    try:
        parts = urlsplit(target)
    except ValueError:
        return
    if parts.scheme and parts.netloc:
        set_field(ev, "url.scheme", parts.scheme)
        set_field(ev, "url.domain", parts.hostname or parts.netloc)
    if parts.path:
        set_field(ev, "url.path", parts.path)
    if parts.query:
        set_field(ev, "url.query", parts.query)


def parse_access(ev: Event, line: str, record: RawRecord, now: _dt.datetime) -> bool:
    """Fill ``ev`` from a common/combined access line; False when ``line`` is not one."""
    m = _ACCESS_RE.match(line)
    if not m:
        return False
    categorize(ev, "web", "access", "http-request")
    ip = m.group("ip")
    set_field(ev, "source.address", ip)
    if re.match(r"^[0-9A-Fa-f.:]+$", ip) and any(c.isdigit() for c in ip):
        set_field(ev, "source.ip", ip)
    if m.group("user") != "-":
        set_field(ev, "user.name", m.group("user"))
    ts = _clf_time(m.group("time"))
    set_timestamp(ev, ts if ts is not None else m.group("time"), now, original=m.group("time"))
    request = _unescape(m.group("request"))
    rm = _REQUEST_RE.match(request)
    if rm:
        set_field(ev, "http.request.method", rm.group(1))
        _set_url(ev, rm.group(2))
        if rm.group(3):
            set_field(ev, "http.version", rm.group(3))
    elif request and request != "-":
        set_field(ev, "url.original", request)
        add_tag(ev, "http_malformed_request")
    status = to_int(m.group("status"))
    if status is not None:
        set_field(ev, "http.response.status_code", status)
        set_outcome(ev, status < 400)
    size = to_int(m.group("bytes"))
    if size is not None:
        set_field(ev, "http.response.body.bytes", size)
    if m.group("referrer") not in (None, "-", ""):
        set_field(ev, "http.request.referrer", _unescape(m.group("referrer")))
    if m.group("agent") not in (None, "-", ""):
        set_field(ev, "user_agent.original", _unescape(m.group("agent")))
    extra = m.group("extra").strip()
    if extra:
        set_field(ev, "citysoc.http.extra", extra)
    ev["message"] = line
    return True


class _WebParser(AppParser):
    access_dataset: str
    error_dataset: str

    def sniff(self, message: str) -> bool:
        return '] "' in message[:120] and _ACCESS_RE.match(message) is not None

    def parse_native(self, ev: Event, text: str, record: RawRecord, now: _dt.datetime) -> bool:
        return self.apply(ev, text, None, record, now)

    def apply(self, ev: Event, message: str, program: str | None, record: RawRecord, now: _dt.datetime) -> bool:
        if parse_access(ev, message, record, now):
            self.claim(ev, record, self.access_dataset)
            return True
        return self.parse_error_line(ev, message, record, now)

    def parse_error_line(self, ev: Event, message: str, record: RawRecord, now: _dt.datetime) -> bool:
        m = _NGINX_ERR_RE.match(message)
        if m:
            self.claim(ev, record, "nginx.error")
            ev["event"]["module"] = "nginx"
            ts = _dt.datetime.strptime(m.group("time"), "%Y/%m/%d %H:%M:%S").replace(tzinfo=record_zone(record))
            set_timestamp(ev, ts, now, original=m.group("time"))
            set_field(ev, "process.pid", int(m.group("pid")))
            set_field(ev, "process.thread.id", int(m.group("tid")))
        else:
            m = _APACHE_ERR_RE.match(message)
            if not m:
                return False
            self.claim(ev, record, "apache.error")
            ev["event"]["module"] = "apache"
            raw = m.group("time")
            fmt = "%a %b %d %H:%M:%S.%f %Y" if "." in raw else "%a %b %d %H:%M:%S %Y"
            try:
                ts = _dt.datetime.strptime(raw, fmt).replace(tzinfo=record_zone(record))
                set_timestamp(ev, ts, now, original=raw)
            except ValueError:
                set_timestamp(ev, raw, now)
            if m.group("pid"):
                set_field(ev, "process.pid", int(m.group("pid")))
            if m.group("client"):
                host, _, port = m.group("client").rpartition(":")
                set_field(ev, "source.ip", host or m.group("client"))
                if port.isdigit() and host:
                    set_field(ev, "source.port", int(port))
        level = m.group("level").lower()
        set_field(ev, "log.level", level)
        msg = m.group("msg")
        ev["message"] = msg
        categorize(ev, "web", ["error"] if level in ("error", "crit", "alert", "emerg") else ["info"], "http-server-log")
        cm = _CLIENT_RE.search(msg)
        if cm:
            set_field(ev, "source.ip", cm.group(1))
        rq = _REQ_IN_ERR_RE.search(msg)
        if rq:
            rm = _REQUEST_RE.match(rq.group(1))
            if rm:
                set_field(ev, "http.request.method", rm.group(1))
                _set_url(ev, rm.group(2))
        return True


class NginxParser(_WebParser):
    name = "nginx"
    dataset = "nginx.access"
    module = "nginx"
    access_dataset = "nginx.access"
    error_dataset = "nginx.error"
    programs = frozenset({"nginx"})


class ApacheParser(_WebParser):
    name = "apache"
    dataset = "apache.access"
    module = "apache"
    access_dataset = "apache.access"
    error_dataset = "apache.error"
    programs = frozenset({"apache", "apache2", "httpd"})


NGINX = NginxParser()
APACHE = ApacheParser()


class AccessParser(_WebParser):
    """Access lines found by sniffing (``format=auto``): the server is unknown, so ``web.access``."""

    name = "access"
    dataset = "web.access"
    module = "web"
    access_dataset = "web.access"
    error_dataset = "web.error"


ACCESS = AccessParser()
