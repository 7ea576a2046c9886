"""PostgreSQL server log lines, including pgaudit's ``AUDIT: SESSION,...`` records.

Reads every layout PostgreSQL writes:

* stderr/file with the common ``log_line_prefix`` forms: ``%m [%p] %q%u@%d `` as Debian
  ships it, ``%m [%p-%l] ``, ``user=%u,db=%d,app=%a,client=%h ``, with or without the
  SQLSTATE that ``log_error_verbosity = verbose`` puts after the level;
* Amazon RDS/Aurora's fixed prefix ``%t:%r:%u@%d:[%p]:``;
* ``csvlog`` (``log_destination = csvlog``): the 23-26 CSV columns, multi-line quoted
  values included (the ``postgresql.log.sql_state_code`` column makes failures exact);
* the syslog layout (``postgres[pid]: [3-1] ...``).

``log.level`` is the severity as PostgreSQL writes it (``LOG``, ``ERROR``, ``FATAL``),
which is what ECS asks for (the original level) and what Elastic's pipeline keeps.
Zone abbreviations in timestamps (``CEST``, ``EDT``, ``+07``) are read with their
standard offsets (:data:`_TZ`); an unknown one falls back to the source's zone.

**Database fields.** ECS has no database field set, so we use ``db.*`` named as in
OpenTelemetry's database conventions (``db.system``, ``db.name``, ``db.user``,
``db.statement``, ``db.operation``), which Elastic is converging ECS onto; pgaudit's own
columns go to ``db.audit.*`` and the object it touched to ``db.object.{type,name}``.
MySQL/MariaDB audit records (:mod:`.mysql_audit`) fill the same fields, so one query
(``db.operation:DELETE AND db.name:warehouse``) covers both engines.
"""
from __future__ import annotations

import csv
import datetime as _dt
import io
import re

from core.events import Event, set_field
from core.protocols import RawRecord

from ._app import AppParser
from ._common import add_tag, categorize, record_zone, set_outcome, set_timestamp, to_int
from ._netfields import set_endpoint

__all__ = ["PostgresParser", "PARSER", "apply_statement"]

_LEVELS = "LOG|ERROR|FATAL|PANIC|WARNING|NOTICE|INFO|DEBUG[1-5]?|STATEMENT|DETAIL|HINT|CONTEXT|QUERY|LOCATION"
_TS = r"(?P<ts>\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(?:\.\d+)?)(?: (?P<tz>[A-Za-z]{1,5}|[+-]\d\d(?::?\d\d)?))?"
_LEVEL_MSG = r"(?P<level>" + _LEVELS + r"):  ?(?:(?P<state>(?=[0-9A-Z]*\d)[0-9A-Z]{5}): )?(?P<msg>.*)$"
_NATIVE_RE = re.compile(
    _TS + r" \[(?P<pid>\d+)(?:-\d+)?\]:?(?: \[(?P<line>\d+-\d+)\])? ?(?P<prefix>.*?)" + _LEVEL_MSG, re.S)
_AWS_RE = re.compile(  # RDS/Aurora: %t:%r:%u@%d:[%p]:
    _TS + r":(?:(?P<client>[0-9A-Za-z.:_-]+)\((?P<cport>\d+)\)|\[(?P<bclient>[^\]]*)\])?"
    r":(?P<user>\[[^\]]*\]|[^@:\s]*)@(?P<db>\[[^\]]*\]|[^:\s]*):(?:\[(?P<pid>\d+)\])?:" + _LEVEL_MSG, re.S)
_CSV_START_RE = re.compile(_TS + r",")
_BODY_RE = re.compile(r"(?:\[(?P<line>\d+-\d+)\] ?)?(?P<prefix>.*?)" + _LEVEL_MSG, re.S)
_AT_RE = re.compile(r"(?:\[?(?P<user>[^\s@\[\]]+)@(?P<db>[^\s\]]+)\]?)")
_PREFIX_KV_RE = re.compile(r"(user|db|app|client|host)=([^,\s]*)")


def _fixed(hours: float) -> _dt.timezone:
    return _dt.timezone(_dt.timedelta(hours=hours))


_TZ: dict[str, _dt.tzinfo] = {
    "UTC": _dt.timezone.utc, "GMT": _dt.timezone.utc, "Z": _dt.timezone.utc, "WET": _fixed(0),
    "WEST": _fixed(1), "BST": _fixed(1), "CET": _fixed(1), "CEST": _fixed(2), "EET": _fixed(2), "EEST": _fixed(3),
    "MSK": _fixed(3), "PKT": _fixed(5), "IST": _fixed(5.5), "ICT": _fixed(7), "WIB": _fixed(7), "SGT": _fixed(8),
    "SST": _fixed(8), "HKT": _fixed(8), "AWST": _fixed(8), "JST": _fixed(9), "KST": _fixed(9), "ACST": _fixed(9.5),
    "AEST": _fixed(10), "AEDT": _fixed(11), "NZST": _fixed(12), "NZDT": _fixed(13), "AST": _fixed(-4),
    "EST": _fixed(-5), "EDT": _fixed(-4), "CST": _fixed(-6), "CDT": _fixed(-5), "MST": _fixed(-7),
    "MDT": _fixed(-6), "PST": _fixed(-8), "PDT": _fixed(-7), "AKST": _fixed(-9), "AKDT": _fixed(-8),
    "HST": _fixed(-10),
}
"""Zone abbreviations PostgreSQL writes (from the tz database) -> their standard offsets.

Ambiguous ones take the meaning most servers use: ``IST`` India, ``CST`` US Central,
``SST`` Singapore. Vietnam's zone has no abbreviation in tzdata: it is written ``+07``."""
_KV_RE = re.compile(r"(\w+)=(\S+)")
_AUDIT_TYPES = {"READ": ("database", "access"), "WRITE": ("database", "change"), "DDL": ("database", "change"),
                "ROLE": ("iam", "change"), "FUNCTION": ("database", "access"), "MISC": ("database", "info"),
                "MISC_SET": ("configuration", "change")}
_CSV_COLUMNS = ("log_time", "user_name", "database_name", "process_id", "connection_from", "session_id",
                "session_line_num", "command_tag", "session_start_time", "virtual_transaction_id", "transaction_id",
                "error_severity", "sql_state_code", "message", "detail", "hint", "internal_query",
                "internal_query_pos", "context", "query", "query_pos", "location", "application_name",
                "backend_type", "leader_pid", "query_id")
"""``csvlog`` columns (PostgreSQL 14+; 13 has 24, 12 and older 23: missing ones are empty)."""
_CSV_KEEP = {"session_id": "session_id", "command_tag": "command_tag", "virtual_transaction_id":
             "virtual_transaction_id", "detail": "detail", "hint": "hint", "context": "context", "query": "query",
             "location": "location", "backend_type": "backend_type"}


def apply_statement(ev: Event, statement: str) -> None:
    """``db.statement`` and ``db.operation`` (the statement's first keyword, upper case)."""
    statement = statement.strip()
    set_field(ev, "db.statement", statement)
    first = statement.split(None, 1)[0].upper().rstrip(";") if statement else ""
    if first.isalpha():
        set_field(ev, "db.operation", first)


_CHANGES = frozenset({"INSERT", "UPDATE", "DELETE", "MERGE", "TRUNCATE", "CREATE", "ALTER", "DROP", "GRANT", "REVOKE",
                      "COMMENT", "SECURITY", "IMPORT"})
_MAINTENANCE = frozenset({"VACUUM", "ANALYZE", "REINDEX", "CLUSTER", "CHECKPOINT"})


def _statement_type(ev: Event) -> str:
    """ECS ``event.type`` of a logged statement: ``change`` for writes, DDL and grants, ``info`` for
    maintenance, ``access`` for reads (and what we cannot tell, such as ``COPY``)."""
    op = ev.get("db", {}).get("operation", "")
    return "change" if op in _CHANGES else "info" if op in _MAINTENANCE else "access"


def _split_ts(value: str) -> tuple[str, str | None]:
    """``2025-04-21 03:27:12.388 EDT`` -> ``("2025-04-21 03:27:12.388", "EDT")``."""
    date, _, rest = value.partition(" ")
    time_, _, tz = rest.partition(" ")
    return f"{date} {time_}".strip(), tz or None


def _split_conn(value: str) -> tuple[str | None, str | None]:
    """csvlog's ``connection_from`` (``host:port``, ``[local]``, empty) -> ``(host, port)``."""
    if not value:
        return None, None
    host, sep, port = value.rpartition(":")
    if sep and port.isdigit() and host:
        return host, port
    return value, None


def _zone(tz: str | None, record: RawRecord) -> _dt.tzinfo:
    if tz is None:
        return record_zone(record)
    known = _TZ.get(tz.upper())
    if known is not None:
        return known
    m = re.match(r"([+-])(\d\d):?(\d\d)?$", tz)
    if m:
        delta = _dt.timedelta(hours=int(m.group(2)), minutes=int(m.group(3) or 0))
        if delta < _dt.timedelta(hours=24):  # "+3200" is no offset
            return _dt.timezone(delta if m.group(1) == "+" else -delta)
    return record_zone(record)


class PostgresParser(AppParser):
    name = "postgres"
    dataset = "postgresql.log"
    module = "postgresql"
    order = 100
    body_sniff = True
    line_sniff = True
    datasets = ("postgresql.log",)
    log_paths = ("/var/log/postgresql/",)
    programs = frozenset({"postgres", "postgresql", "postmaster"})

    def sniff(self, message: str) -> bool:
        return "AUDIT: SESSION," in message or "AUDIT: OBJECT," in message

    def sniff_line(self, line: str) -> bool:
        return _NATIVE_RE.match(line) is not None

    def parse_native(self, ev: Event, text: str, record: RawRecord, now: _dt.datetime) -> bool:
        m = _NATIVE_RE.match(text)
        if m:
            self.claim(ev, record)
            self._stamp(ev, m.group("ts"), m.group("tz"), record, now)
            set_field(ev, "process.pid", to_int(m.group("pid")))
            self._prefix(ev, m.group("prefix"))
            self._message(ev, m.group("level"), m.group("msg"), m.group("state"))
            return True
        m = _AWS_RE.match(text)
        if m:
            self.claim(ev, record)
            self._stamp(ev, m.group("ts"), m.group("tz"), record, now)
            if m.group("pid"):
                set_field(ev, "process.pid", to_int(m.group("pid")))
            self._who(ev, m.group("user"), m.group("db"), None, m.group("client") or m.group("bclient"),
                      m.group("cport"))
            self._message(ev, m.group("level"), m.group("msg"), m.group("state"))
            return True
        m = _CSV_START_RE.match(text)
        if m:
            self.claim(ev, record)
            self._csv(ev, text, record, now)
            return True
        return False

    def apply(self, ev: Event, message: str, program: str | None, record: RawRecord, now: _dt.datetime) -> bool:
        m = _NATIVE_RE.match(message)
        if m:
            self.claim(ev, record)
            set_field(ev, "process.pid", to_int(m.group("pid")))
        else:
            m = _BODY_RE.match(message)
            if not m:
                return False
            self.claim(ev, record)
        self._prefix(ev, m.group("prefix"))
        self._message(ev, m.group("level"), m.group("msg"), m.group("state"))
        return True

    def _stamp(self, ev: Event, ts_text: str, tz: str | None, record: RawRecord, now: _dt.datetime) -> None:
        original = f"{ts_text} {tz or ''}".strip()
        try:
            ts = _dt.datetime.fromisoformat(ts_text).replace(tzinfo=_zone(tz, record))
        except ValueError:
            set_timestamp(ev, original, now)
            return
        set_timestamp(ev, ts, now, original=original)

    def _prefix(self, ev: Event, prefix: str) -> None:
        """``user@db`` or ``user=,db=,app=,client=`` from a ``log_line_prefix``."""
        prefix = prefix.strip()
        if not prefix:
            return
        kv = dict(_PREFIX_KV_RE.findall(prefix))
        at = _AT_RE.search(prefix) if not kv else None
        user = kv.get("user") or (at.group("user") if at else None)
        db = kv.get("db") or (at.group("db") if at else None)
        client = kv.get("client") or kv.get("host")
        self._who(ev, user, db, kv.get("app"), client.split("(")[0] if client else None, None)

    def _who(self, ev: Event, user: str | None, db: str | None, app: str | None, client: str | None,
             port: str | None) -> None:
        """The session's user, database, application and client (unknown/local ones left out)."""
        set_field(ev, "db.system", "postgresql")
        user = (user or "").strip("[]") if user and user.startswith("[") else user
        db = (db or "").strip("[]") if db and db.startswith("[") else db
        if user and user not in ("unknown", "-"):
            set_field(ev, "user.name", user)
            set_field(ev, "db.user", user)
        if db and db not in ("unknown", "-"):
            set_field(ev, "db.name", db)
        if app:
            set_field(ev, "db.application", app)
        if client and client not in ("[local]", "local", "[unknown]", "unknown"):
            set_endpoint(ev, "source", client, port)

    def _csv(self, ev: Event, text: str, record: RawRecord, now: _dt.datetime) -> None:
        """One ``csvlog`` record (the text may span lines: quoted values keep their newlines)."""
        try:
            rows = list(csv.reader(io.StringIO(text)))
        except csv.Error:
            rows = []
        row = rows[0] if rows else []
        if len(rows) != 1 or len(row) < 14:
            add_tag(ev, "postgres_csv_malformed")
        col = dict(zip(_CSV_COLUMNS, row))
        ts_text, tz = _split_ts(col.get("log_time", ""))
        self._stamp(ev, ts_text, tz, record, now)
        pid = to_int(col.get("process_id"))
        if pid is not None:
            set_field(ev, "process.pid", pid)
        host, port = _split_conn(col.get("connection_from", ""))
        self._who(ev, col.get("user_name"), col.get("database_name"), col.get("application_name"), host, port)
        for key, name in _CSV_KEEP.items():
            if col.get(key):
                set_field(ev, f"postgresql.log.{name}", col[key])
        level = col.get("error_severity", "")
        if not level:
            ev["message"] = text
            categorize(ev, "database", "info", "db-log")
            return
        self._message(ev, level, col.get("message", ""), col.get("sql_state_code") or None)

    def _message(self, ev: Event, level: str, msg: str, state: str | None) -> None:
        """``log.level``, the SQLSTATE and what the message says (login, query, audit record...)."""
        set_field(ev, "db.system", "postgresql")
        set_field(ev, "log.level", level)
        if state:
            set_field(ev, "postgresql.log.sql_state_code", state)
        self._classify(ev, level, msg)
        if state and not state.startswith(("00", "01", "02")):
            set_field(ev, "error.code", state)
            if ev["event"].get("type") == ["info"]:
                ev["event"]["type"] = ["error"]

    def _classify(self, ev: Event, level: str, msg: str) -> None:
        ev["message"] = msg
        failed = level in ("ERROR", "FATAL", "PANIC")
        if msg.startswith("AUDIT: "):
            self._audit(ev, msg[len("AUDIT: "):])
            return
        if msg.startswith("connection received:"):
            kv = dict(_KV_RE.findall(msg))
            categorize(ev, "network", ["connection", "start"], "db-connection-received")
            if "host" in kv and kv["host"] != "[local]":
                set_field(ev, "source.ip", kv["host"])
            port = to_int(kv.get("port"))
            if port is not None:
                set_field(ev, "source.port", port)
            return
        if msg.startswith(("connection authorized:", "connection authenticated:")):
            kv = dict(_KV_RE.findall(msg))
            categorize(ev, ["authentication", "database"], ["start", "access"], "db-login")
            set_outcome(ev, True)
            if kv.get("user"):
                set_field(ev, "user.name", kv["user"])
                set_field(ev, "db.user", kv["user"])
            if kv.get("database"):
                set_field(ev, "db.name", kv["database"])
            ident = re.search(r'identity="([^"]*)"', msg)
            if ident:
                set_field(ev, "user.name", ident.group(1))
            method = kv.get("method")
            if method:
                set_field(ev, "db.auth_method", method)
            return
        fail = re.match(r'(password|[\w-]+) authentication failed for user "([^"]*)"', msg)
        if fail:
            categorize(ev, ["authentication", "database"], ["info", "access"], "db-login")
            set_outcome(ev, False)
            set_field(ev, "user.name", fail.group(2))
            set_field(ev, "db.user", fail.group(2))
            set_field(ev, "db.auth_method", fail.group(1))
            return
        hba = re.match(r'no pg_hba\.conf entry for host "([^"]*)", user "([^"]*)", database "([^"]*)"', msg)
        if hba:
            categorize(ev, ["authentication", "database"], ["info", "access"], "db-login")
            set_outcome(ev, False)
            set_field(ev, "source.ip", hba.group(1))
            set_field(ev, "user.name", hba.group(2))
            set_field(ev, "db.user", hba.group(2))
            set_field(ev, "db.name", hba.group(3))
            return
        role = re.match(r'role "([^"]*)" does not exist', msg)
        if role and level == "FATAL":
            categorize(ev, ["authentication", "database"], ["info", "access"], "db-login")
            set_outcome(ev, False)
            set_field(ev, "user.name", role.group(1))
            return
        if msg.startswith("disconnection:"):
            kv = dict(_KV_RE.findall(msg))
            categorize(ev, ["session", "database"], ["end", "info"], "db-disconnect")
            if kv.get("user"):
                set_field(ev, "user.name", kv["user"])
                set_field(ev, "db.user", kv["user"])
            if kv.get("database"):
                set_field(ev, "db.name", kv["database"])
            if kv.get("host") and kv["host"] != "[local]":
                set_field(ev, "source.ip", kv["host"])
            return
        dur = re.match(r"duration: ([\d.]+) ms(?:\s+(?:statement|execute [^:]*): (.*))?$", msg, re.S)
        if dur:
            ev["event"]["duration"] = int(float(dur.group(1)) * 1_000_000)
            if dur.group(2):
                apply_statement(ev, dur.group(2))
                categorize(ev, "database", _statement_type(ev), "db-query")
            else:
                categorize(ev, "database", "info", "db-duration")
            return
        st = re.match(r"(?:statement|execute [^:]*): (.*)$", msg, re.S)
        if st:
            apply_statement(ev, st.group(1))
            categorize(ev, "database", _statement_type(ev), "db-query")
            return
        if level == "STATEMENT":
            # The statement that the preceding ERROR line was about.
            apply_statement(ev, msg)
            categorize(ev, "database", "access", "db-error-statement")
            set_outcome(ev, False)
            return
        if failed:
            categorize(ev, "database", "info", "db-error")
            set_outcome(ev, False)
            if msg.startswith("permission denied"):
                ev["event"]["action"] = "db-permission-denied"
            return
        categorize(ev, "database", "info", "db-log")

    def _audit(self, ev: Event, rest: str) -> None:
        try:
            row = next(csv.reader([rest]))
        except (csv.Error, StopIteration):
            row = []
        if len(row) < 7:
            categorize(ev, "database", "info", "db-audit")
            set_field(ev, "db.audit.malformed", True)
            return
        row += [""] * (9 - len(row))
        audit_type, stmt_id, sub_id, klass, command, obj_type, obj_name, statement, parameter = row[:9]
        cat, typ = _AUDIT_TYPES.get(klass, ("database", "info"))
        categorize(ev, cat if cat == "database" else [cat, "database"], typ if cat == "database" else [typ, "access"],
                   "db-audit-" + klass.lower())
        set_outcome(ev, True)
        audit = {"type": audit_type, "class": klass, "command": command}
        sid, ssid = to_int(stmt_id), to_int(sub_id)
        if sid is not None:
            audit["statement_id"] = sid
        if ssid is not None:
            audit["substatement_id"] = ssid
        if parameter and parameter != "<not logged>":
            audit["parameter"] = parameter
        set_field(ev, "db.audit", audit)
        set_field(ev, "db.operation", command)
        if obj_type:
            set_field(ev, "db.object.type", obj_type)
        if obj_name:
            set_field(ev, "db.object.name", obj_name)
        if statement and statement != "<not logged>":
            set_field(ev, "db.statement", statement)


PARSER = PostgresParser()
