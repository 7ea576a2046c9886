"""MySQL/MariaDB audit records: MySQL Enterprise/``audit_log`` JSON format
(``{"class": "connection", "event": "connect", "account": {...}, ...}``), the Percona
audit plugin's ``{"audit_record": {...}}``, and MariaDB's ``server_audit`` plugin lines
(``20261125 10:40:00,dw-my-01,etl,10.30.0.5,9,0,QUERY,warehouse,'SELECT 1',0``, from
its file or, without the timestamp, from its syslog output).

Fields go to ``db.*`` exactly as for PostgreSQL (see :mod:`.postgres` for why that
namespace), plus ``mysql.audit.*`` for the record's own class/event/status. A non-zero
``status`` is the server's error code (1045 access denied): outcome failure.
"""
from __future__ import annotations

import csv
import datetime as _dt
import ipaddress
import re
from typing import Any

from core.events import Event, set_field
from core.protocols import RawRecord

from ._app import utcnow
from ._common import add_tag, base_event, categorize, decode, record_zone, set_outcome, set_timestamp, to_int
from ._json import JsonFamilyParser
from ._syslog import apply_header, split_header
from ._pick import pick_str
from .postgres import apply_statement

__all__ = ["MysqlAuditParser", "PARSER", "MARIADB_LINE"]

MARIADB_LINE = re.compile(r"(\d{8} \d\d:\d\d:\d\d),")
_MARIADB_OPS = {"CONNECT": "connect", "FAILED_CONNECT": "connect", "CHANGEUSER": "connect", "DISCONNECT": "disconnect"}


def _ip(ev: Event, value: str | None) -> None:
    if not value:
        return
    try:
        set_field(ev, "source.ip", str(ipaddress.ip_address(value)))
    except ValueError:
        set_field(ev, "source.domain", value)


class MysqlAuditParser(JsonFamilyParser):
    name = "mysql_audit"
    dataset = "mysql.audit"
    module = "mysql"
    order = 80
    json_claims = True
    line_sniff = True
    program_prefixes = ("mysql-server_auditing", "server_audit")

    def claims(self, doc: dict[str, Any]) -> bool:
        if isinstance(doc.get("audit_record"), dict):
            return True
        return "class" in doc and "connection_id" in doc and ("account" in doc or "login" in doc or "event" in doc)

    def sniff_line(self, line: str) -> bool:
        return MARIADB_LINE.match(line) is not None

    def apply(self, ev: Event, message: str, program: str | None, record: RawRecord, now: _dt.datetime) -> bool:
        """A syslog body from a ``server_audit`` program (``program_prefixes``)."""
        return self.apply_mariadb(ev, message, record, now)

    def parse(self, record: RawRecord, *, now: _dt.datetime | None = None) -> Event:
        text, _ = decode(record.data)
        if text.lstrip().startswith("{"):
            return super().parse(record, now=now)
        return self.parse_mariadb(record, now=now or utcnow())

    def parse_mariadb(self, record: RawRecord, now: _dt.datetime) -> Event:
        """A MariaDB ``server_audit`` line (file form, or its syslog form without timestamp)."""
        ev, text = base_event(record, now, dataset=self.dataset, module=self.module)
        body = text
        if text.startswith("<"):
            hdr = split_header(text, now, record_zone(record))
            if hdr is not None:
                apply_header(ev, hdr, now)
                body = hdr.message.strip()
        if not self.apply_mariadb(ev, body, record, now):
            add_tag(ev, "mysql_audit_unrecognized")
            ev["message"] = body
        return ev

    def apply_mariadb(self, ev: Event, body: str, record: RawRecord, now: _dt.datetime) -> bool:
        """Fill ``ev`` from a ``server_audit`` line; False when ``body`` is not one."""
        body = body.strip()
        try:
            row = next(csv.reader([body], quotechar="'", escapechar="\\"))
        except (csv.Error, StopIteration):
            row = []
        ts = None
        if row and MARIADB_LINE.match(body):
            ts, row = row[0], row[1:]
        if len(row) < 9:
            return False
        ev["event"]["module"] = self.module
        if not record.dataset:
            ev["event"]["dataset"] = self.dataset
        server, user, host, conn, query_id, op, db, obj, retcode = row[:9]
        if ts:
            try:
                stamp = _dt.datetime.strptime(ts, "%Y%m%d %H:%M:%S").replace(tzinfo=record_zone(record))
                set_timestamp(ev, stamp, now, original=ts)
            except ValueError:
                set_timestamp(ev, ts, now)
        set_field(ev, "db.system", "mariadb")
        set_field(ev, "mysql.audit", {"operation": op, "connection_id": to_int(conn), "query_id": to_int(query_id),
                                      "server": server})
        if user:
            set_field(ev, "user.name", user)
            set_field(ev, "db.user", user)
        _ip(ev, None if host in ("localhost", "") else host)
        if db:
            set_field(ev, "db.name", db)
        status = to_int(retcode)
        statement = None
        if op.startswith("QUERY") and obj:
            statement = obj
            apply_statement(ev, obj)
        elif op in ("READ", "WRITE", "CREATE", "ALTER", "DROP", "RENAME") and obj:
            set_field(ev, "db.object.type", "TABLE")
            set_field(ev, "db.object.name", obj)
            set_field(ev, "db.operation", op)
        kind = _MARIADB_OPS.get(op, "other")
        if op == "FAILED_CONNECT" and not status:
            status = -1
        command = op if op in ("WRITE", "CREATE", "ALTER", "DROP", "RENAME") else None
        self._finish(ev, kind, status, statement, command or (None if statement else op))
        ev["message"] = f"{op}" + (f": {statement}" if statement else f" {obj}" if obj else "")
        return True

    def apply_doc(self, ev: Event, doc: dict[str, Any], record: RawRecord, now: _dt.datetime) -> None:
        set_field(ev, "db.system", "mysql")
        if isinstance(doc.get("audit_record"), dict):
            self._percona(ev, doc["audit_record"], now)
        else:
            self._enterprise(ev, doc, now)

    def _finish(self, ev: Event, kind: str, status: int | None, statement: str | None, command: str | None) -> None:
        failed = bool(status)
        if kind == "connect":
            categorize(ev, ["authentication", "database"], ["start", "access"], "db-login")
        elif kind == "disconnect":
            categorize(ev, ["session", "database"], ["end", "info"], "db-disconnect")
        elif statement or command:
            op = (command or (statement or "").lstrip()[:12]).upper()
            writes = ("INSERT", "UPDATE", "DELETE", "REPLACE", "CREATE", "DROP", "ALTER", "TRUNCATE", "GRANT",
                      "REVOKE", "RENAME", "WRITE")
            is_write = any(op.startswith(w) for w in writes)
            categorize(ev, "database", "change" if is_write else "access", "db-query")
        else:
            categorize(ev, "database", "info", "db-audit")
        if status is not None:
            set_outcome(ev, not failed)
            if failed:
                set_field(ev, "error.code", str(status))

    def _enterprise(self, ev: Event, doc: dict[str, Any], now: _dt.datetime) -> None:
        klass, event = str(doc.get("class", "")), str(doc.get("event", ""))
        audit = {"class": klass, "event": event, "id": doc.get("id"), "connection_id": doc.get("connection_id")}
        set_field(ev, "mysql.audit", {k: v for k, v in audit.items() if v is not None})
        set_timestamp(ev, doc.get("timestamp"), now)
        account = doc.get("account") if isinstance(doc.get("account"), dict) else {}
        login = doc.get("login") if isinstance(doc.get("login"), dict) else {}
        user = pick_str(login, "user") or pick_str(account, "user")
        if user:
            set_field(ev, "user.name", user)
            set_field(ev, "db.user", user)
        _ip(ev, pick_str(login, "ip") or pick_str(account, "host"))
        status = None
        statement = command = None
        for key in ("connection_data", "general_data", "table_access_data", "query_data"):
            data = doc.get(key)
            if not isinstance(data, dict):
                continue
            if data.get("db"):
                set_field(ev, "db.name", str(data["db"]))
            if "status" in data:
                status = to_int(data["status"])
            statement = statement or pick_str(data, "query")
            command = command or pick_str(data, "sql_command")
            if data.get("table"):
                set_field(ev, "db.object.type", "TABLE")
                set_field(ev, "db.object.name", str(data["table"]))
        if statement:
            apply_statement(ev, statement)
        elif command:
            set_field(ev, "db.operation", command.upper())
        kind = "connect" if (klass, event) == ("connection", "connect") else (
            "disconnect" if (klass, event) == ("connection", "disconnect") else "other")
        self._finish(ev, kind, status, statement, command)
        ev["message"] = f"{klass} {event}" + (f": {statement}" if statement else "")

    def _percona(self, ev: Event, rec: dict[str, Any], now: _dt.datetime) -> None:
        name = str(rec.get("name", ""))
        audit = {"name": name, "record": rec.get("record"), "connection_id": rec.get("connection_id"),
                 "command_class": rec.get("command_class")}
        set_field(ev, "mysql.audit", {k: v for k, v in audit.items() if v is not None})
        ts = rec.get("timestamp")
        if isinstance(ts, str) and ts.endswith(" UTC"):
            ts = ts[:-4] + "Z"
        set_timestamp(ev, ts, now, original=str(rec.get("timestamp")))
        user = pick_str(rec, "priv_user", "user")
        if user and "[" in user:
            user = user.split("[", 1)[0]
        if user:
            set_field(ev, "user.name", user)
            set_field(ev, "db.user", user)
        _ip(ev, pick_str(rec, "ip") or (None if rec.get("host") == "localhost" else pick_str(rec, "host")))
        if rec.get("db"):
            set_field(ev, "db.name", str(rec["db"]))
        statement = pick_str(rec, "sqltext")
        if statement:
            apply_statement(ev, statement)
        kind = {"connect": "connect", "quit": "disconnect", "change user": "connect"}.get(name.lower(), "other")
        self._finish(ev, kind, to_int(rec.get("status")), statement, pick_str(rec, "command_class"))
        ev["message"] = name + (f": {statement}" if statement else "")


PARSER = MysqlAuditParser()
