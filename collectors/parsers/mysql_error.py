"""MySQL and MariaDB server error logs (``log_error``), file or syslog.

The warehouse's MariaDB writes its error log here; with ``log_warnings >= 2``
(MariaDB; MySQL 8: ``log_error_verbosity = 3``) every refused login is a line, which
is what a SOC wants from it. Layouts read (the server writes local time without a zone,
so the source's zone applies; MySQL 5.7+ writes ISO UTC with ``Z``)::

    2026-12-03  7:55:09 5 [Warning] Access denied for user 'bob'@'10.0.0.9' (using password: YES)    MariaDB 10+
    2026-12-03 07:55:09 12 [Note] Aborted connection 12 to db: 'dw' user: 'etl' host: '10.0.0.9' (...) MySQL 5.6
    2026-12-03T07:55:09.123456Z 0 [Warning] [MY-010055] [Server] IP address '10.0.0.9' could not be resolved  MySQL 8
    161209 14:18:50 [Note] /usr/sbin/mysqld: ready for connections.                                       MySQL 5.5
    161209 14:18:50 mysqld_safe Starting mysqld daemon with databases from /var/lib/mysql

``log.level`` is the level as written (``Note``, ``Warning``, ``ERROR``, ``System``),
``mysql.thread_id`` the connection id, MySQL 8's ``[MY-nnnnnn] [Server]`` go to
``event.code``/``event.provider``. Every line is ``event.category: database``
(``event.type: info``, plus ``error`` at level ERROR), as Elastic's pipeline writes it;
refused logins are also ``authentication`` with ``event.outcome: failure``,
``user.name``/``db.user`` and the client in ``source.*``. Lines without a timestamp
(InnoDB's continuation lines, ``Version: ...``) are kept with the ingest time; a line
in none of these layouts is kept, tagged ``mysql_error_unparsed`` (a refused login cut
short: ``mysql_error_truncated``). ``db.system`` is
``mysql`` (MariaDB writes the same layout, so a line cannot tell them apart) unless the
syslog program is ``mariadbd``.
"""
from __future__ import annotations

import datetime as _dt
import re

from core.events import Event, set_field
from core.protocols import RawRecord

from ._app import AppParser
from ._common import add_tag, categorize, record_zone, set_outcome, set_timestamp, to_int
from ._netfields import set_endpoint

__all__ = ["MysqlErrorParser", "PARSER"]

_LINE_RE = re.compile(
    r"(?:(?P<iso>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d))"
    r"|(?P<local>\d{4}-\d\d-\d\d {1,2}\d{1,2}:\d\d:\d\d|\d{6} {1,2}\d{1,2}:\d\d:\d\d))"
    r" +(?:(?P<thread>\d+) +)?(?:\[(?P<level>[A-Za-z]+)\] +)?(?:\[(?P<code>MY-\d+)\] +\[(?P<provider>\w+)\] +)?"
    r"(?P<msg>.*)$", re.S)
_BODY_RE = re.compile(  # a syslog body: the same without the timestamp
    r"(?:(?P<thread>\d+) +)?\[(?P<level>[A-Za-z]+)\] +(?:\[(?P<code>MY-\d+)\] +\[(?P<provider>\w+)\] +)?(?P<msg>.*)$",
    re.S)
_SNIFF_RE = re.compile(
    r"(?:\d{4}-\d\d-\d\d(?:T| {1,2})\d{1,2}:\d\d:\d\d\S* +\d+ +|\d{6} {1,2}\d{1,2}:\d\d:\d\d +(?:\d+ +)?)"
    r"\[(?:Note|Warning|ERROR|System|Error|Info)\] ")
_DENIED_RE = re.compile(r"Access denied for user '(?P<user>(?:[^'\\]|\\.)*)'@'(?P<host>[^']*)'(?: \(using password: "
                        r"(?P<pw>YES|NO)\))?(?: to database '(?P<db>[^']*)')?")
_ABORTED_RE = re.compile(r"Aborted connection (?P<id>\d+) to db: '(?P<db>[^']*)' user: '(?P<user>[^']*)' "
                         r"host: '(?P<host>[^']*)'(?: \((?P<reason>[^)]*)\))?")
_BLOCKED_RE = re.compile(r"Host '(?P<host>[^']*)' is blocked because of many connection errors")
_UNRESOLVED_RE = re.compile(r"IP address '(?P<host>[^']*)' could not be resolved")
_LIFECYCLE = (("ready for connections", "db-server-ready", "start"), ("Normal shutdown", "db-server-shutdown", "end"),
              ("Shutdown complete", "db-server-stopped", "end"), ("Starting MariaDB", "db-server-starting", "start"),
              ("Starting mysqld daemon", "db-server-starting", "start"))


def _local_time(text: str, zone: _dt.tzinfo) -> _dt.datetime | None:
    """``2026-12-03  7:55:09`` or ``161209 14:18:50`` (local time) -> aware datetime."""
    date, _, clock = text.partition(" ")
    clock = clock.strip()
    try:
        if len(date) == 6:
            day = _dt.date(2000 + int(date[:2]), int(date[2:4]), int(date[4:]))
        else:
            day = _dt.date.fromisoformat(date)
        hh, mm, ss = (int(x) for x in clock.split(":"))
        return _dt.datetime(day.year, day.month, day.day, hh, mm, ss, tzinfo=zone)
    except ValueError:
        return None


class MysqlErrorParser(AppParser):
    name = "mysql_error"
    dataset = "mysql.error"
    module = "mysql"
    programs = frozenset({"mysqld", "mariadbd", "mysqld_safe", "mariadbd-safe", "mariadb"})
    order = 186
    body_sniff = True
    line_sniff = True
    datasets = ("mysql.error",)
    log_paths = ("/var/log/mysql/error.log", "/var/log/mysqld.log")

    def sniff(self, message: str) -> bool:
        return _SNIFF_RE.match(message) is not None

    def sniff_line(self, line: str) -> bool:
        """A bare error-log line (``format=auto``): a timestamp, a thread id and a ``[Level]``."""
        return line[:1].isdigit() and _SNIFF_RE.match(line) is not None

    def parse(self, record: RawRecord, *, now: _dt.datetime | None = None) -> Event:
        """As every app parser; a line in none of the layouts is kept, tagged ``mysql_error_unparsed``."""
        ev = super().parse(record, now=now)
        if "category" not in ev["event"]:
            add_tag(ev, "mysql_error_unparsed")
        return ev

    def parse_native(self, ev: Event, text: str, record: RawRecord, now: _dt.datetime) -> bool:
        m = _LINE_RE.match(text) if text[:1].isdigit() else None
        if m is None:
            if text.startswith(("InnoDB: ", "Version: ", "ERROR: ", " ")):
                # a continuation line without a timestamp (InnoDB's, the version banner, bootstrap SQL errors)
                self.claim(ev, record)
                self._classify(ev, "ERROR" if text.startswith("ERROR: ") else None, text, None)
                return True
            return False
        self.claim(ev, record)
        if m.group("iso"):
            set_timestamp(ev, m.group("iso"), now)
        else:
            ts = _local_time(m.group("local"), record_zone(record))
            set_timestamp(ev, ts if ts is not None else m.group("local"), now, original=m.group("local"))
        self._fields(ev, m)
        return True

    def apply(self, ev: Event, message: str, program: str | None, record: RawRecord, now: _dt.datetime) -> bool:
        m = _LINE_RE.match(message) if message[:1].isdigit() else None
        if m is None:
            m = _BODY_RE.match(message)
        if m is None:
            if program and program.lower().startswith(("mysqld_safe", "mariadbd-safe")):
                self.claim(ev, record)
                self._classify(ev, None, message, None)
                return True
            return False
        self.claim(ev, record)
        if m.groupdict().get("iso"):
            set_timestamp(ev, m.group("iso"), now)
        self._fields(ev, m)
        return True

    def _fields(self, ev: Event, m: re.Match[str]) -> None:
        if m.group("thread"):
            set_field(ev, "mysql.thread_id", to_int(m.group("thread")))
        if m.group("code"):
            set_field(ev, "event.code", m.group("code"))
            set_field(ev, "event.provider", m.group("provider"))
        self._classify(ev, m.group("level"), m.group("msg"), m.group("code"))

    def _classify(self, ev: Event, level: str | None, msg: str, code: str | None) -> None:
        """ECS categories and the security-relevant fields of one message."""
        ev["message"] = msg
        prog = ev.get("process", {}).get("name", "")
        set_field(ev, "db.system", "mariadb" if prog.lower().startswith("mariadb") else "mysql")
        if level:
            set_field(ev, "log.level", level)
        error = bool(level) and level.upper() == "ERROR"
        types = ["info", "error"] if error else ["info"]
        d = _DENIED_RE.search(msg)
        if d:
            categorize(ev, ["authentication", "database"], types, "db-login")
            set_outcome(ev, False)
            user = d.group("user").replace("\\'", "'")
            set_field(ev, "user.name", user)
            set_field(ev, "db.user", user)
            self._host(ev, d.group("host"))
            if d.group("pw"):
                set_field(ev, "mysql.error.using_password", d.group("pw") == "YES")
            if d.group("db"):
                set_field(ev, "db.name", d.group("db"))
            return
        if msg.startswith("Access denied for user"):  # cut short: still a refused login
            categorize(ev, ["authentication", "database"], types, "db-login")
            set_outcome(ev, False)
            add_tag(ev, "mysql_error_truncated")
            return
        a = _ABORTED_RE.search(msg)
        if a:
            categorize(ev, ["database", "network"], types + ["connection"], "db-connection-aborted")
            set_outcome(ev, False)
            set_field(ev, "mysql.thread_id", to_int(a.group("id")))
            if a.group("user"):
                set_field(ev, "user.name", a.group("user"))
                set_field(ev, "db.user", a.group("user"))
            if a.group("db") and a.group("db") != "unconnected":
                set_field(ev, "db.name", a.group("db"))
            self._host(ev, a.group("host"))
            if a.group("reason"):
                set_field(ev, "event.reason", a.group("reason"))
            return
        for rx, action in ((_BLOCKED_RE, "db-host-blocked"), (_UNRESOLVED_RE, "db-host-unresolved")):
            h = rx.search(msg)
            if h:
                categorize(ev, ["database", "network"], types + ["connection"], action)
                if action == "db-host-blocked":
                    set_outcome(ev, False)
                self._host(ev, h.group("host"))
                return
        for needle, action, kind in _LIFECYCLE:
            if needle in msg:
                categorize(ev, ["database", "process"], types + [kind], action)
                return
        categorize(ev, "database", types, "db-server-error" if error else "db-server-log")
        if error:
            set_outcome(ev, False)

    def _host(self, ev: Event, host: str) -> None:
        if host and host not in ("%", ""):
            set_endpoint(ev, "source", host, address=True)


PARSER = MysqlErrorParser()
