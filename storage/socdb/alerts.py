"""SQLite implementation of :class:`core.alerts.AlertStore` (alerts, comments, suppressions)."""
from __future__ import annotations

import builtins
import datetime as _dt
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from core.sqlitedb import inserted_id
from core.alerts import (
    MAX_SAMPLE_EVENTS,
    Alert,
    AlertChange,
    AlertFilter,
    Comment,
    Entities,
    GroupingPolicy,
    NotFound,
    Suppression,
    absorb,
    level_number,
)
from core.events import parse_timestamp, to_utc_iso, utc_now_iso
from storage.socdb._db import SocDatabase
from storage.socdb.incidents import IncidentBatch

__all__ = ["SQLiteAlertStore", "SORTS"]

SORTS: dict[str, str] = {
    "-last_seen": "last_seen DESC, id DESC",
    "last_seen": "last_seen ASC, id ASC",
    "-first_seen": "first_seen DESC, id DESC",
    "-risk_score": "risk_score DESC, last_seen DESC, id DESC",
    "-count": "count DESC, id DESC",
    "-id": "id DESC",
    "id": "id ASC",
}
"""Accepted ``sort`` values (``-`` = descending)."""

_LIST_COLS = ("id, dedupe_key, rule_id, rule_title, level, tags, engine, description, host, user_name, "
              "source_ip, destination_ip, asset_id, center, criticality, risk_score, status, resolution, "
              "assignee, first_seen, last_seen, count, created_at, updated_at, events_query, case_id, rules, targets, "
              "ports, incident_id")


def _row_to_alert(r: sqlite3.Row, with_events: bool) -> Alert:
    return Alert(
        id=r["id"], rule_id=r["rule_id"], rule_title=r["rule_title"], level=r["level"],
        tags=orjson.loads(r["tags"]), engine=r["engine"], description=r["description"],
        entities=Entities(host=r["host"], user=r["user_name"], source_ip=r["source_ip"],
                          destination_ip=r["destination_ip"], asset_id=r["asset_id"], center=r["center"],
                          criticality=r["criticality"]),
        risk_score=r["risk_score"], status=r["status"], resolution=r["resolution"], assignee=r["assignee"],
        first_seen=r["first_seen"], last_seen=r["last_seen"], count=r["count"], dedupe_key=r["dedupe_key"],
        created_at=r["created_at"], updated_at=r["updated_at"],
        events=orjson.loads(r["events"]) if with_events else [],
        events_query=r["events_query"], case_id=r["case_id"],
        rules=orjson.loads(r["rules"]) or [r["rule_id"]], targets=orjson.loads(r["targets"]),
        ports=orjson.loads(r["ports"]), incident_id=r["incident_id"],
    )


def _row_to_supp(r: sqlite3.Row) -> Suppression:
    return Suppression(id=r["id"], rule_id=r["rule_id"], field=r["field"], value=r["value"], owner=r["owner"],
                       reason=r["reason"], created_at=r["created_at"], expires_at=r["expires_at"], hits=r["hits"])


def _ago(now: str, seconds: float) -> str:
    return to_utc_iso(parse_timestamp(now) - _dt.timedelta(seconds=seconds))


@dataclass
class _Slot:
    """One alert row a batch writes: a new alert, or a stored open one it grows."""
    alert: Alert
    touched: str
    created: bool
    stored_events: str = "[]"
    grew: bool = False
    sample_full: bool = False
    """The stored sample holds MAX_SAMPLE_EVENTS already: it was not loaded and cannot grow."""


class SQLiteAlertStore:
    """Alerts in ``soc.db``. ``record`` deduplicates inside one write transaction, so
    alerts of one batch that share a key merge too."""

    def __init__(self, db: SocDatabase):
        self.db = db

    # -- pipeline side ----------------------------------------------------------------
    def record(self, alerts: Sequence[Alert], *, window_s: float,
               policy: GroupingPolicy | None = None) -> list[AlertChange]:
        """Write detections' alerts: grow the open alert with the same dedupe key seen
        within ``window_s`` (wall time) or add a new one; then, with a ``policy``, put each
        into its incident in the same transaction.

        Batched, because the detect stage hands over a whole batch at once: the open alerts
        for all keys are found with one query per 500 keys, alerts of the batch that share a
        key are merged in memory (:func:`core.alerts.absorb`, the rule an update applies
        too), and each alert row is read once and written once. Incidents are still grown
        detection by detection in the batch's order (whether a detection joins an incident
        depends on the incident's last alert so far), in memory (:class:`IncidentBatch`),
        and each incident is written once: same result as recording the detections one by one
        (``tests/api/test_alerts_batch_record.py``)."""
        slots: list[_Slot] = []
        live: dict[str, _Slot] = {}
        grown: set[int] = set()
        with self.db.write() as conn:
            for a in alerts:
                a.updated_at = a.updated_at or utc_now_iso()
            incidents = IncidentBatch(conn, policy) if policy is not None else None
            open_rows = self._open_alerts(conn, {(a.dedupe_key, a.updated_at) for a in alerts}, window_s)
            for a in alerts:
                now = a.updated_at
                slot = live.get(a.dedupe_key)
                if slot is not None and slot.touched < _ago(now, window_s):
                    slot = None  # (only when one batch spans more than the window)
                if slot is None:
                    row = open_rows.get((a.dedupe_key, now))
                    if row is not None and row["id"] in grown:
                        row = None  # that row was grown by this batch already and expired since
                    if row is None:
                        a.created_at = now
                        slot = _Slot(alert=a, touched=now, created=True)
                        live[a.dedupe_key] = slot
                        slots.append(slot)
                        if incidents is not None:  # sets a.incident_id; the INSERT writes it
                            incidents.attach(a, created=True, added_count=a.count)
                        continue
                    full = row["n_events"] >= MAX_SAMPLE_EVENTS  # then the sample cannot grow: skip loading it
                    slot = _Slot(alert=_row_to_alert(row, with_events=not full), touched=now, created=False,
                                 stored_events=row["events"], sample_full=full)
                    grown.add(row["id"])
                    live[a.dedupe_key] = slot
                    slots.append(slot)
                slot.grew = absorb(slot.alert, a, sample_full=slot.sample_full) or slot.grew
                slot.alert.updated_at = slot.touched = now
                if incidents is not None:
                    incidents.attach(slot.alert, created=False, added_count=a.count)
            if incidents is not None:
                incidents.flush()
            for slot in slots:
                self._write(conn, slot)
        return [AlertChange(alert=s.alert, created=s.created) for s in slots]

    @staticmethod
    def _write(conn: sqlite3.Connection, slot: _Slot) -> None:
        a, now = slot.alert, slot.touched
        if not slot.created:
            conn.execute(
                "UPDATE alerts SET count=?, first_seen=?, last_seen=?, updated_at=?, touched_at=?, events=?,"
                " risk_score=?, rules=?, tags=?, targets=?, ports=?, level=?, level_num=? WHERE id=?",
                (a.count, a.first_seen, a.last_seen, now, now,
                 orjson.dumps(a.events).decode() if slot.grew else slot.stored_events,
                 a.risk_score, orjson.dumps(a.rules).decode(), orjson.dumps(a.tags).decode(),
                 orjson.dumps(a.targets).decode(), orjson.dumps(a.ports).decode(), a.level,
                 level_number(a.level), a.id))
            return
        cur = conn.execute(
            "INSERT INTO alerts(dedupe_key, rule_id, rule_title, level, level_num, tags, engine, description,"
            " host, user_name, source_ip, destination_ip, asset_id, center, criticality, risk_score, status,"
            " resolution, assignee, first_seen, last_seen, count, created_at, updated_at, touched_at, events,"
            " events_query, case_id, rules, targets, ports, incident_id)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (a.dedupe_key, a.rule_id, a.rule_title, a.level, level_number(a.level), orjson.dumps(a.tags).decode(),
             a.engine, a.description, a.entities.host, a.entities.user, a.entities.source_ip,
             a.entities.destination_ip, a.entities.asset_id, a.entities.center, a.entities.criticality,
             a.risk_score, a.status, a.resolution, a.assignee, a.first_seen, a.last_seen, a.count,
             a.created_at, now, now, orjson.dumps(a.events[:MAX_SAMPLE_EVENTS]).decode(), a.events_query, None,
             orjson.dumps(a.rules or [a.rule_id]).decode(), orjson.dumps(a.targets).decode(),
             orjson.dumps(a.ports).decode(), a.incident_id))
        a.id = inserted_id(cur)

    @staticmethod
    def _open_alerts(conn: sqlite3.Connection, keys: set[tuple[str, str]],
                     window_s: float) -> dict[tuple[str, str], sqlite3.Row]:
        """The newest open alert touched within the window for each (dedupe key, now)."""
        by_now: dict[str, list[str]] = {}
        for key, now in keys:
            by_now.setdefault(now, []).append(key)
        found: dict[tuple[str, str], sqlite3.Row] = {}
        for now, dkeys in by_now.items():
            cutoff = _ago(now, window_s)
            for i in range(0, len(dkeys), 500):
                part = dkeys[i:i + 500]
                rows = conn.execute(
                    f"SELECT {_LIST_COLS}, events, json_array_length(events) AS n_events FROM alerts"
                    f" WHERE dedupe_key IN ({','.join('?' * len(part))})"
                    " AND status != 'closed' AND touched_at >= ? ORDER BY id", (*part, cutoff)).fetchall()
                for r in rows:  # ascending id: the newest of a key wins
                    found[(r["dedupe_key"], now)] = r
        return found

    # -- reads ------------------------------------------------------------------------
    def get(self, alert_id: int) -> Alert:
        row = self.db.reader().execute(f"SELECT {_LIST_COLS}, events FROM alerts WHERE id = ?", (alert_id,)).fetchone()
        if row is None:
            raise NotFound(f"alert {alert_id} does not exist")
        return _row_to_alert(row, with_events=True)

    def list(self, flt: AlertFilter) -> tuple[int, list[Alert]]:
        """(matches, page). With ``flt.count_up_to`` set, matches stop at that + 1."""
        where: list[str] = []
        params: list[Any] = []
        if flt.status:
            where.append(f"status IN ({','.join('?' * len(flt.status))})")
            params.extend(flt.status)
        if flt.level:
            where.append(f"level IN ({','.join('?' * len(flt.level))})")
            params.extend(flt.level)
        if flt.rule_id is not None:  # the alert's own rule or one folded into it
            where.append("(rule_id = ? OR (rules != '[]' AND EXISTS (SELECT 1 FROM json_each(alerts.rules)"
                         " WHERE value = ?)))")
            params.extend([flt.rule_id, flt.rule_id])
        if flt.incident_id is not None:
            where.append("incident_id = ?")
            params.append(flt.incident_id)
        for col, val in (("assignee", flt.assignee), ("host", flt.host),
                         ("user_name", flt.user), ("source_ip", flt.source_ip), ("asset_id", flt.asset_id),
                         ("center", flt.center), ("case_id", flt.case_id)):
            if val is not None:
                where.append(f"{col} = ?")
                params.append(val)
        if flt.min_risk is not None:
            where.append("risk_score >= ?")
            params.append(flt.min_risk)
        if flt.since:
            where.append("last_seen >= ?")
            params.append(to_utc_iso(parse_timestamp(flt.since)))  # stored form: ms + Z, compared as text
        if flt.until:
            where.append("last_seen < ?")
            params.append(to_utc_iso(parse_timestamp(flt.until)))
        if flt.sort not in SORTS:
            raise ValueError(f"unknown sort {flt.sort!r}; use one of {', '.join(SORTS)}")
        clause = (" WHERE " + " AND ".join(where)) if where else ""
        conn = self.db.reader()
        if flt.count_up_to is None:
            total = conn.execute(f"SELECT count(*) FROM alerts{clause}", params).fetchone()[0]
        else:
            total = conn.execute(f"SELECT count(*) FROM (SELECT 1 FROM alerts{clause} LIMIT ?)",
                                 [*params, flt.count_up_to + 1]).fetchone()[0]
        rows = conn.execute(f"SELECT {_LIST_COLS} FROM alerts{clause} ORDER BY {SORTS[flt.sort]} LIMIT ? OFFSET ?",
                            [*params, flt.limit, flt.offset]).fetchall()
        return total, [_row_to_alert(r, with_events=False) for r in rows]

    # -- triage -----------------------------------------------------------------------
    def update(self, alert_id: int, *, status: str | None = None, resolution: str | None = None,
               assignee: str | None = None, clear_assignee: bool = False) -> tuple[Alert, Alert]:
        """Apply a change; returns (before, after). Workflow checks are the caller's
        (:func:`core.alerts.check_transition`), so a bulk action can check all first."""
        with self.db.write() as conn:
            row = conn.execute(f"SELECT {_LIST_COLS}, events FROM alerts WHERE id = ?", (alert_id,)).fetchone()
            if row is None:
                raise NotFound(f"alert {alert_id} does not exist")
            before = _row_to_alert(row, with_events=False)
            after = _row_to_alert(row, with_events=False)
            if status is not None:
                after.status = status
                after.resolution = resolution if status == "closed" else None
            if clear_assignee:
                after.assignee = None
            elif assignee is not None:
                after.assignee = assignee
            after.updated_at = utc_now_iso()
            conn.execute("UPDATE alerts SET status=?, resolution=?, assignee=?, updated_at=? WHERE id=?",
                         (after.status, after.resolution, after.assignee, after.updated_at, alert_id))
        return before, after

    def add_comment(self, alert_id: int, author: str, text: str) -> Comment:
        now = utc_now_iso()
        with self.db.write() as conn:
            if conn.execute("SELECT 1 FROM alerts WHERE id = ?", (alert_id,)).fetchone() is None:
                raise NotFound(f"alert {alert_id} does not exist")
            cur = conn.execute("INSERT INTO alert_comments(alert_id, author, time, text) VALUES (?,?,?,?)",
                               (alert_id, author, now, text))
        return Comment(id=inserted_id(cur), alert_id=alert_id, author=author, time=now, text=text)

    def comments(self, alert_id: int) -> builtins.list[Comment]:
        conn = self.db.reader()
        if conn.execute("SELECT 1 FROM alerts WHERE id = ?", (alert_id,)).fetchone() is None:
            raise NotFound(f"alert {alert_id} does not exist")
        rows = conn.execute("SELECT * FROM alert_comments WHERE alert_id = ? ORDER BY id", (alert_id,)).fetchall()
        return [Comment(id=r["id"], alert_id=r["alert_id"], author=r["author"], time=r["time"], text=r["text"])
                for r in rows]

    # -- suppressions -----------------------------------------------------------------
    def add_suppression(self, rule_id: str, field: str, value: str, owner: str, reason: str,
                        expires_at: str) -> Suppression:
        now = utc_now_iso()
        with self.db.write() as conn:
            cur = conn.execute(
                "INSERT INTO suppressions(rule_id, field, value, owner, reason, created_at, expires_at)"
                " VALUES (?,?,?,?,?,?,?)", (rule_id, field, value, owner, reason, now, expires_at))
        return Suppression(id=inserted_id(cur), rule_id=rule_id, field=field, value=value, owner=owner,
                           reason=reason, created_at=now, expires_at=expires_at)

    def suppressions(self, *, include_expired: bool = False) -> builtins.list[Suppression]:
        conn = self.db.reader()
        if include_expired:
            rows = conn.execute("SELECT * FROM suppressions WHERE deleted = 0 ORDER BY id").fetchall()
        else:
            rows = conn.execute("SELECT * FROM suppressions WHERE deleted = 0 AND expires_at > ? ORDER BY id",
                                (utc_now_iso(),)).fetchall()
        return [_row_to_supp(r) for r in rows]

    def delete_suppression(self, suppression_id: int) -> Suppression:
        with self.db.write() as conn:
            row = conn.execute("SELECT * FROM suppressions WHERE id = ? AND deleted = 0", (suppression_id,)).fetchone()
            if row is None:
                raise NotFound(f"suppression {suppression_id} does not exist")
            conn.execute("UPDATE suppressions SET deleted = 1 WHERE id = ?", (suppression_id,))
        return _row_to_supp(row)

    def count_suppressed(self, suppression_id: int, n: int) -> None:
        with self.db.write() as conn:
            conn.execute("UPDATE suppressions SET hits = hits + ? WHERE id = ?", (n, suppression_id))
