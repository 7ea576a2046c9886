"""HAProxy logs: ``option httplog``, ``option tcplog``, the default format and connection errors.

HAProxy sits in front of the warehouse API. It logs over syslog (program ``haproxy``)
or to a file, one line per session, in one of these layouts (HAProxy 1.4 to 3.x):

* **HTTP** (``option httplog``)::

    client:port [accept_date] frontend[~] backend/server [dest] TR/Tw/Tc/Tr/Ta status bytes_read
    req_cookie resp_cookie termination_state actconn/feconn/beconn/srv_conn/retries
    srv_queue/backend_queue [{captured request headers} [{captured response headers}]] "request"
    [fc_err/ssl_fc_err/ssl_c_err/ssl_c_ca_err/ssl_fc_is_resumed sni/TLSvX/cipher]

* **TCP** (``option tcplog``): ``client:port [accept_date] frontend backend/server Tw/Tc/Tt
  bytes_read termination_state actconn/.../retries srv_queue/backend_queue``;
* **default**: ``Connect from IP:port to IP:port (frontend/MODE)``;
* **errors**: ``client:port [accept_date] frontend/bind: message`` (a failed TLS handshake).

ECS: ``source.*`` is the client, ``destination.*`` the address the client reached
(default format, or the optional ``dest`` column), ``http.*``/``url.*`` from the request
line, ``http.response.bytes`` the bytes sent to the client (``bytes_read``, headers
included), ``event.duration`` the total session time (``Ta``/``Tt``), ``tls.*`` from the
HTTPS tail. HAProxy's own columns (frontend, backend, server, timers, counters,
termination state) go under ``haproxy.*`` with Elastic's names, so dashboards built
for Filebeat read them. A TCP session is ``success`` when its termination state is
``--`` (normal close); an HTTP one by status (< 400). Unparsed lines are kept, tagged
``haproxy_unparsed``; a line cut short keeps what was read and is tagged
``haproxy_truncated``.
"""
from __future__ import annotations

import datetime as _dt
import re

from core.events import Event, set_field
from core.protocols import RawRecord

from ._app import AppParser
from ._common import add_tag, categorize, record_zone, set_outcome, set_timestamp, to_int
from ._netfields import observer, parse_ip, set_endpoint
from .web import set_request

__all__ = ["HaproxyParser", "PARSER"]

_HEAD = (r"(?:(?P<prog>[\w.-]+)\[(?P<pid>\d+)\]: )?(?P<client>[0-9A-Fa-f.:]+|-):(?P<cport>\d+) "
         r"\[(?P<date>\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d(?:\.\d+)?)\] ")
_CONNS = (r"(?P<actconn>\d+)/(?P<feconn>\d+)/(?P<beconn>\d+)/(?P<srv_conn>\d+)/\+?(?P<retries>\d+) "
          r"(?P<srv_queue>\d+)/(?P<backend_queue>\d+)")
_HTTP_RE = re.compile(
    _HEAD + r"(?P<frontend>\S+) (?P<backend>[^\s/]+)/(?P<server>\S+) (?:(?P<dest>\S+) )?"
    r"(?P<TR>-?\d+)/(?P<Tw>-?\d+)/(?P<Tc>-?\d+)/(?P<Tr>-?\d+)/\+?(?P<Ta>-?\d+) (?P<status>-?\d{1,3}) "
    r"\+?(?P<bytes>\d+) (?P<req_cookie>\S+) (?P<resp_cookie>\S+) (?P<term>\S{2,4}) " + _CONNS
    + r"(?: \{(?P<req_headers>[^}]*)\}(?: \{(?P<resp_headers>[^}]*)\})?)?"
    r"(?: \"(?P<request>[^\"]*)(?P<closed>\")?(?: (?P<https>\d+/\d+/\d+/\d+/\d+ \S+))?)?(?P<rest>.*)$", re.S)
_TCP_RE = re.compile(
    _HEAD + r"(?P<frontend>\S+) (?P<backend>[^\s/]+)/(?P<server>\S+) "
    r"(?P<Tw>-?\d+)/(?P<Tc>-?\d+)/\+?(?P<Tt>-?\d+) \+?(?P<bytes>\d+) (?P<term>\S{2,4}) " + _CONNS + r"(?P<rest>.*)$",
    re.S)
_ERROR_RE = re.compile(_HEAD + r"(?P<frontend>[^\s/]+)/(?P<bind>\S+) (?P<msg>.*)$", re.S)
_DEFAULT_RE = re.compile(
    r"(?:(?P<prog>[\w.-]+)\[(?P<pid>\d+)\]: )?Connect from (?P<client>[0-9A-Fa-f.:]+):(?P<cport>\d+) to "
    r"(?P<dst>[0-9A-Fa-f.:]+):(?P<dport>\d+) \((?P<frontend>[^/\s]+)/(?P<mode>\w+)\)")
_HTTPS_RE = re.compile(
    r"(?P<fc_err>\d+)/(?P<ssl_fc_err>\d+)/(?P<ssl_c_err>\d+)/(?P<ssl_c_ca_err>\d+)/(?P<resumed>\d+) "
    r"(?P<sni>[^/\s]*)/(?P<proto>[A-Za-z]+)v(?P<version>[\d.]+)/(?P<cipher>\S+)$")
_HEAD_RE = re.compile(_HEAD)
_MONTHS = {m: i for i, m in enumerate(("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov",
                                       "Dec"), 1)}


def _accept_date(text: str, zone: _dt.tzinfo) -> _dt.datetime | None:
    """``06/Feb/2009:12:12:51.443`` (HAProxy writes local time without a zone)."""
    try:
        day, mon, rest = text.split("/", 2)
        year, hh, mm, ss = rest.split(":")
        sec, _, frac = ss.partition(".")
        return _dt.datetime(int(year), _MONTHS[mon], int(day), int(hh), int(mm), int(sec),
                            int((frac + "000000")[:6]) if frac else 0, tzinfo=zone)
    except (KeyError, ValueError):
        return None


def _ms(value: str | None) -> int | None:
    """A timer in ms; HAProxy writes ``-1`` for a phase that never happened (kept, as Elastic does)."""
    return to_int(value)


class HaproxyParser(AppParser):
    name = "haproxy"
    dataset = "haproxy.log"
    module = "haproxy"
    programs = frozenset({"haproxy"})
    order = 185
    body_sniff = True
    line_sniff = True
    datasets = ("haproxy.log",)
    log_paths = ("/var/log/haproxy",)

    def sniff(self, message: str) -> bool:
        if message.startswith("Connect from "):
            return _DEFAULT_RE.match(message) is not None
        return _HEAD_RE.match(message) is not None

    def sniff_line(self, line: str) -> bool:
        """A bare HAProxy line (no syslog envelope), for ``format=auto``."""
        return line[:1].isdigit() and (_HTTP_RE.match(line) is not None or _TCP_RE.match(line) is not None)

    def parse(self, record: RawRecord, *, now: _dt.datetime | None = None) -> Event:
        """As every app parser; a line in none of the layouts is kept, tagged ``haproxy_unparsed``."""
        ev = super().parse(record, now=now)
        if "category" not in ev["event"] and "haproxy_truncated" not in ev.get("tags", ()):
            add_tag(ev, "haproxy_unparsed")
        return ev

    def parse_native(self, ev: Event, text: str, record: RawRecord, now: _dt.datetime) -> bool:
        if not (text[:1].isdigit() or text.startswith(("-", ":", "Connect from ", "haproxy[")) or "]: " in text[:40]):
            return False
        return self.apply(ev, text, None, record, now)

    def apply(self, ev: Event, message: str, program: str | None, record: RawRecord, now: _dt.datetime) -> bool:
        m = _HTTP_RE.match(message)
        if m and m.group("request") is not None:
            self._common(ev, m, record, now)
            self._http(ev, m)
            return True
        t = _TCP_RE.match(message)
        if t:
            self._common(ev, t, record, now)
            self._tcp(ev, t)
            return True
        if m:  # an HTTP line without its request (cut short): keep what was read
            self._common(ev, m, record, now)
            self._http(ev, m)
            add_tag(ev, "haproxy_truncated")
            return True
        e = _ERROR_RE.match(message)
        if e:
            self._common(ev, e, record, now)
            set_field(ev, "haproxy.bind_name", e.group("bind").rstrip(":"))
            msg = e.group("msg")
            set_field(ev, "haproxy.error_message", msg)
            ev["message"] = msg
            categorize(ev, "network", ["connection", "error"], "proxy-connection-error")
            set_outcome(ev, False)
            return True
        d = _DEFAULT_RE.match(message)
        if d:
            self.claim(ev, record)
            observer(ev, "HAProxy", "HAProxy", "proxy")
            self._process(ev, d)
            set_endpoint(ev, "source", d.group("client"), d.group("cport"), address=True)
            set_endpoint(ev, "destination", d.group("dst"), d.group("dport"), address=True)
            set_field(ev, "haproxy.frontend_name", d.group("frontend"))
            set_field(ev, "haproxy.mode", d.group("mode"))
            categorize(ev, ["network"] + (["web"] if d.group("mode").upper() == "HTTP" else []), ["connection", "start"],
                       "proxy-connection-accepted")
            ev["message"] = message
            return True
        h = _HEAD_RE.match(message)
        if h:  # a session line cut before its timers: the client and the date are still worth keeping
            self.claim(ev, record)
            observer(ev, "HAProxy", "HAProxy", "proxy")
            self._process(ev, h)
            self._client_date(ev, h, record, now)
            ev["message"] = message
            add_tag(ev, "haproxy_truncated")
            return True
        return False

    def _process(self, ev: Event, m: re.Match[str]) -> None:
        if m.group("prog"):
            set_field(ev, "process.name", m.group("prog"))
            set_field(ev, "process.pid", to_int(m.group("pid")))

    def _common(self, ev: Event, m: re.Match[str], record: RawRecord, now: _dt.datetime) -> None:
        """Client, accept date and frontend: what every per-session line starts with."""
        self.claim(ev, record)
        observer(ev, "HAProxy", "HAProxy", "proxy")
        self._process(ev, m)
        self._client_date(ev, m, record, now)
        set_field(ev, "haproxy.frontend_name", m.group("frontend"))
        ev["message"] = m.string

    def _client_date(self, ev: Event, m: re.Match[str], record: RawRecord, now: _dt.datetime) -> None:
        client = m.group("client")
        if client != "-":
            set_endpoint(ev, "source", client, m.group("cport"), address=True)
        else:
            set_field(ev, "source.port", to_int(m.group("cport")))
        raw = m.group("date")
        ts = _accept_date(raw, record_zone(record))
        set_timestamp(ev, ts if ts is not None else raw, now, original=raw)

    def _session(self, ev: Event, m: re.Match[str], total: str) -> None:
        """Backend, server, counters, queues, termination state and the session's duration."""
        set_field(ev, "haproxy.backend_name", m.group("backend"))
        set_field(ev, "haproxy.server_name", m.group("server"))
        set_field(ev, "haproxy.termination_state", m.group("term"))
        set_field(ev, "haproxy.bytes_read", to_int(m.group("bytes")))
        set_field(ev, "haproxy.connections", {k: to_int(m.group(g)) for k, g in (
            ("active", "actconn"), ("frontend", "feconn"), ("backend", "beconn"), ("server", "srv_conn"),
            ("retries", "retries"))})
        set_field(ev, "haproxy.server_queue", to_int(m.group("srv_queue")))
        set_field(ev, "haproxy.backend_queue", to_int(m.group("backend_queue")))
        set_field(ev, "haproxy.total_waiting_time_ms", _ms(m.group("Tw")))
        set_field(ev, "haproxy.connection_wait_time_ms", _ms(m.group("Tc")))
        duration = _ms(total)
        if duration is not None and duration >= 0:
            ev["event"]["duration"] = duration * 1_000_000
        if m.group("rest").strip():
            set_field(ev, "haproxy.extra", m.group("rest").strip())

    def _http(self, ev: Event, m: re.Match[str]) -> None:
        self._session(ev, m, m.group("Ta"))
        set_field(ev, "haproxy.http.request.time_wait_ms", _ms(m.group("TR")))
        set_field(ev, "haproxy.http.request.time_wait_without_data_ms", _ms(m.group("Tr")))
        dest = m.group("dest")
        if dest:
            set_endpoint(ev, "destination", dest, address=True)
        for name, group in (("request", "req_cookie"), ("response", "resp_cookie")):
            set_field(ev, f"haproxy.http.{name}.captured_cookie", m.group(group))
        for name, group in (("request", "req_headers"), ("response", "resp_headers")):
            if m.group(group):
                set_field(ev, f"haproxy.http.{name}.captured_headers", m.group(group).split("|"))
        categorize(ev, "web", "access", "http-request")
        status = to_int(m.group("status"))
        if status is not None and status >= 0:
            set_field(ev, "http.response.status_code", status)
            set_outcome(ev, status < 400)
        set_field(ev, "http.response.bytes", to_int(m.group("bytes")))
        request = m.group("request")
        if request is not None:
            set_field(ev, "haproxy.http.request.raw_request_line", request)
            if request not in ("<BADREQ>", "<NOSRV>"):
                set_request(ev, request)
            if m.group("closed") is None:
                add_tag(ev, "haproxy_truncated")
        https = _HTTPS_RE.match(m.group("https") or "")
        if https:
            self._tls(ev, https)

    def _tls(self, ev: Event, m: re.Match[str]) -> None:
        set_field(ev, "tls.version_protocol", m.group("proto").lower())
        set_field(ev, "tls.version", m.group("version"))
        set_field(ev, "tls.cipher", m.group("cipher"))
        if m.group("resumed") == "1":
            set_field(ev, "tls.resumed", True)
        sni = m.group("sni")
        if sni and sni != "-":
            set_field(ev, "tls.client.server_name", sni)
            if parse_ip(sni) is None:
                set_field(ev, "destination.domain", sni)
                set_field(ev, "url.domain", sni)

    def _tcp(self, ev: Event, m: re.Match[str]) -> None:
        self._session(ev, m, m.group("Tt"))
        categorize(ev, "network", ["connection", "end"], "proxy-session")
        set_outcome(ev, m.group("term").startswith("--"))


PARSER = HaproxyParser()
