"""PostgreSQL server log lines, including pgaudit's ``AUDIT: SESSION,...`` records.

Reads the stderr/file layout with the common ``log_line_prefix`` forms
(``%m [%p] %q%u@%d `` as Debian ships it, or ``user=%u,db=%d,app=%a,client=%h ``) and
the syslog layout (``postgres[pid]: [3-1] ...``).

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
import re

from core.events import Event, set_field
from core.protocols import RawRecord

from ._app import AppParser
from ._common import categorize, record_zone, set_outcome, set_timestamp, to_int

__all__ = ["PostgresParser", "PARSER", "apply_statement"]

_LEVELS = "LOG|ERROR|FATAL|PANIC|WARNING|NOTICE|INFO|DEBUG[1-5]?|STATEMENT|DETAIL|HINT|CONTEXT|QUERY|LOCATION"
_NATIVE_RE = re.compile(
    r"(?P<ts>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?)(?: (?P<tz>[A-Z]{2,5}|[+-]\d\d(?::?\d\d)?))? "
    r"\[(?P<pid>\d+)\]:?(?: \[(?P<line>\d+-\d+)\])? ?(?P<prefix>.*?)(?P<level>" + _LEVELS + r"):  (?P<msg>.*)$", re.S)
_BODY_RE = re.compile(r"(?:\[(?P<line>\d+-\d+)\] ?)?(?P<prefix>.*?)(?P<level>" + _LEVELS + r"):  (?P<msg>.*)$", re.S)
_AT_RE = re.compile(r"(?:\[?(?P<user>[^\s@\[\]]+)@(?P<db>[^\s\]]+)\]?)")
_PREFIX_KV_RE = re.compile(r"(user|db|app|client|host)=([^,\s]*)")
_TZ = {"UTC": _dt.timezone.utc, "GMT": _dt.timezone.utc, "ICT": _dt.timezone(_dt.timedelta(hours=7)),
       "+07": _dt.timezone(_dt.timedelta(hours=7))}
_KV_RE = re.compile(r"(\w+)=(\S+)")
_AUDIT_TYPES = {"READ": ("database", "access"), "WRITE": ("database", "change"), "DDL": ("database", "change"),
                "ROLE": ("iam", "change"), "FUNCTION": ("database", "access"), "MISC": ("database", "info"),
                "MISC_SET": ("configuration", "change")}


def apply_statement(ev: Event, statement: str) -> None:
    """``db.statement`` and ``db.operation`` (the statement's first keyword, upper case)."""
    statement = statement.strip()
    set_field(ev, "db.statement", statement)
    first = statement.split(None, 1)[0].upper().rstrip(";") if statement else ""
    if first.isalpha():
        set_field(ev, "db.operation", first)


def _zone(tz: str | None, record: RawRecord) -> _dt.tzinfo:
    if tz is None:
        return record_zone(record)
    if tz in _TZ:
        return _TZ[tz]
    m = re.match(r"([+-])(\d\d):?(\d\d)?$", tz)
    if m:
        delta = _dt.timedelta(hours=int(m.group(2)), minutes=int(m.group(3) or 0))
        return _dt.timezone(delta if m.group(1) == "+" else -delta)
    return record_zone(record)


class PostgresParser(AppParser):
    name = "postgres"
    dataset = "postgresql.log"
    module = "postgresql"
    programs = frozenset({"postgres", "postgresql", "postmaster"})

    def sniff(self, message: str) -> bool:
        return "AUDIT: SESSION," in message or "AUDIT: OBJECT," in message

    def parse_native(self, ev: Event, text: str, record: RawRecord, now: _dt.datetime) -> bool:
        m = _NATIVE_RE.match(text)
        if not m:
            return False
        self.claim(ev, record)
        try:
            ts = _dt.datetime.fromisoformat(m.group("ts")).replace(tzinfo=_zone(m.group("tz"), record))
            set_timestamp(ev, ts, now, original=f"{m.group('ts')} {m.group('tz') or ''}".strip())
        except ValueError:
            set_timestamp(ev, m.group("ts"), now)
        set_field(ev, "process.pid", int(m.group("pid")))
        self._body(ev, m, record)
        return True

    def apply(self, ev: Event, message: str, program: str | None, record: RawRecord, now: _dt.datetime) -> bool:
        m = _NATIVE_RE.match(message)
        if m:
            self.claim(ev, record)
            set_field(ev, "process.pid", int(m.group("pid")))
            self._body(ev, m, record)
            return True
        m = _BODY_RE.match(message)
        if not m:
            return False
        self.claim(ev, record)
        self._body(ev, m, record)
        return True

    def _body(self, ev: Event, m: re.Match[str], record: RawRecord) -> None:
        set_field(ev, "db.system", "postgresql")
        level = m.group("level")
        set_field(ev, "log.level", level.lower())
        prefix = m.group("prefix").strip()
        if prefix:
            kv = dict(_PREFIX_KV_RE.findall(prefix))
            at = _AT_RE.search(prefix) if not kv else None
            user = kv.get("user") or (at.group("user") if at else None)
            db = kv.get("db") or (at.group("db") if at else None)
            if user and user not in ("[unknown]", "-"):
                set_field(ev, "user.name", user)
                set_field(ev, "db.user", user)
            if db and db not in ("[unknown]", "-"):
                set_field(ev, "db.name", db)
            if kv.get("app"):
                set_field(ev, "db.application", kv["app"])
            client = kv.get("client") or kv.get("host")
            if client and client not in ("[local]", "[unknown]"):
                set_field(ev, "source.ip", client.split("(")[0])
        msg = m.group("msg")
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
                categorize(ev, "database", "access", "db-query")
            else:
                categorize(ev, "database", "info", "db-duration")
            return
        st = re.match(r"(?:statement|execute [^:]*): (.*)$", msg, re.S)
        if st:
            apply_statement(ev, st.group(1))
            categorize(ev, "database", "access", "db-query")
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
