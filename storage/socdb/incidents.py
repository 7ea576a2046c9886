"""SQLite implementation of :class:`core.alerts.IncidentStore`, and :func:`attach`, which
:meth:`storage.socdb.alerts.SQLiteAlertStore.record` calls inside its write transaction so
an alert and its incident never disagree.

An incident is found by its key (attacker kind, attacker, center: see
:meth:`core.alerts.GroupingPolicy.incident_key`) among the open incidents whose last
alert (event time) is within ``alerts.incidents.window_s`` of the new alert's first event.
Its counts, rules, targets and ports grow with each alert; lists stop at
:data:`core.alerts.MAX_LIST` while the counts stay exact up to that bound.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import sqlite3
from typing import Any

import orjson

from core.sqlitedb import inserted_id
from core.alerts import (
    MAX_LIST,
    Alert,
    GroupingPolicy,
    Incident,
    IncidentFilter,
    NotFound,
    incident_title,
    level_number,
    merge_list,
)
from core.events import parse_timestamp, to_utc_iso, utc_now_iso
from storage.socdb._db import SocDatabase

__all__ = ["SQLiteIncidentStore", "INCIDENT_SORTS", "attach", "IncidentBatch"]

INCIDENT_SORTS: dict[str, str] = {
    "-last_seen": "last_seen DESC, id DESC",
    "last_seen": "last_seen ASC, id ASC",
    "-first_seen": "first_seen DESC, id DESC",
    "-risk_score": "risk_score DESC, level_num DESC, last_seen DESC, id DESC",
    "-alert_count": "alert_count DESC, id DESC",
    "-id": "id DESC",
    "id": "id ASC",
}


def _key(kind: str, who: str, center: str) -> str:
    return hashlib.sha256("\x1f".join(("i", kind, who, center)).encode("utf-8")).hexdigest()[:32]


def _row(r: sqlite3.Row) -> Incident:
    j = orjson.loads
    return Incident(
        id=r["id"], attacker_kind=r["attacker_kind"], attacker=r["attacker"], center=r["center"], title=r["title"],
        level=r["level"], risk_score=r["risk_score"], status=r["status"], resolution=r["resolution"],
        assignee=r["assignee"], first_seen=r["first_seen"], last_seen=r["last_seen"], alert_count=r["alert_count"],
        detection_count=r["detection_count"], rules=j(r["rules"]), rule_titles=j(r["rule_titles"]),
        targets=j(r["targets"]), target_count=r["target_count"], ports=j(r["ports"]), port_count=r["port_count"],
        assets=j(r["assets"]), tags=j(r["tags"]), created_at=r["created_at"], updated_at=r["updated_at"],
        case_id=r["case_id"])


def _dumps(v: Any) -> str:
    return orjson.dumps(v).decode()


def attach(conn: sqlite3.Connection, alert: Alert, *, created: bool, added_count: int,
           policy: GroupingPolicy) -> int | None:
    """Put ``alert`` into its incident; returns the incident id and sets
    ``alert.incident_id`` (one alert: an :class:`IncidentBatch` of one, written at once).

    ``created``: the alert is new (the incident's alert count grows); otherwise it grew by
    ``added_count`` detections and keeps the incident it has."""
    batch = IncidentBatch(conn, policy)
    iid = batch.attach(alert, created=created, added_count=added_count)
    batch.flush()
    return iid


class IncidentBatch:
    """The incidents one write transaction grows, held in memory and written once at
    :meth:`flush`: a batch of detections against one attacker reads and writes its
    incident once, not once per detection.

    :meth:`attach` is called detection by detection, in order, and decides exactly as
    writing each one at once would: an incident looked up by key is the newest open one of
    that key whose last alert (as it stands in this batch) is within the window. A new
    incident is inserted at once (its id is the one one-by-one recording gives it); a
    stored alert that moves to another incident is updated at once. A new alert (``id``
    0) gets ``incident_id`` set, and its own INSERT writes it."""

    def __init__(self, conn: sqlite3.Connection, policy: GroupingPolicy):
        self.conn = conn
        self.policy = policy
        self._held: dict[int, Incident] = {}
        self._keys: dict[int, str] = {}
        self._of_key: dict[str, list[int]] = {}
        self._dirty: set[int] = set()

    def _hold_key(self, iid: int, key: str) -> None:
        self._keys[iid] = key
        self._of_key.setdefault(key, []).append(iid)

    def _by_id(self, iid: int) -> Incident | None:
        inc = self._held.get(iid)
        if inc is None:
            row = self.conn.execute("SELECT * FROM incidents WHERE id = ?", (iid,)).fetchone()
            if row is None:
                return None
            inc = self._held[iid] = _row(row)
            self._hold_key(iid, row["key"])
        return inc

    def _by_key(self, key: str, cutoff: str) -> Incident | None:
        row = self.conn.execute("SELECT id FROM incidents WHERE key = ? AND status != 'closed' AND last_seen >= ? "
                                "ORDER BY id DESC LIMIT 1", (key, cutoff)).fetchone()
        best = row["id"] if row is not None else None
        for iid in self._of_key.get(key, ()):  # held ones: as this batch left them (last_seen only grows)
            inc = self._held[iid]
            if inc.status != "closed" and inc.last_seen >= cutoff and (best is None or iid > best):
                best = iid
        return self._by_id(best) if best is not None else None

    def attach(self, alert: Alert, *, created: bool, added_count: int) -> int | None:
        """Put ``alert`` into its incident (see the class); returns the incident id."""
        key = self.policy.incident_key(alert)
        if key is None:
            return None
        kind, who, center = key
        if not alert.rules:  # as the alerts row stores it: an alert lists at least its own rule
            alert.rules = [alert.rule_id]
        now = alert.updated_at or utc_now_iso()
        inc = self._by_id(alert.incident_id) if alert.incident_id is not None else None
        ikey = _key(kind, who, center)
        if inc is None:
            cutoff = to_utc_iso(parse_timestamp(alert.first_seen)
                                - _dt.timedelta(seconds=self.policy.incidents.window_s))
            inc = self._by_key(ikey, cutoff)
            created = True  # new to this incident either way
        assets = [alert.entities.asset_id] if alert.entities.asset_id else []
        if inc is None:
            title = incident_title(kind, who, [alert.rule_title], alert.targets, len(alert.targets), alert.ports,
                                   len(alert.ports))
            cur = self.conn.execute(
                "INSERT INTO incidents(key, attacker_kind, attacker, center, title, level, level_num, risk_score,"
                " status, resolution, assignee, first_seen, last_seen, alert_count, detection_count, rules,"
                " rule_titles, targets, target_count, ports, port_count, assets, tags, created_at, updated_at,"
                " case_id) VALUES (?,?,?,?,?,?,?,?,'new',NULL,NULL,?,?,1,?,?,?,?,?,?,?,?,?,?,?,NULL)",
                (ikey, kind, who, center or None, title, alert.level, level_number(alert.level),
                 alert.risk_score, alert.first_seen, alert.last_seen, alert.count, _dumps(alert.rules[:MAX_LIST]),
                 _dumps([alert.rule_title]), _dumps(alert.targets[:MAX_LIST]), len(alert.targets),
                 _dumps(alert.ports[:MAX_LIST]), len(alert.ports), _dumps(assets), _dumps(alert.tags[:50]), now,
                 now))
            iid = inserted_id(cur)
            self._held[iid] = Incident(
                id=iid, attacker_kind=kind, attacker=who, center=center or None, title=title, level=alert.level,
                risk_score=alert.risk_score, status="new", resolution=None, assignee=None,
                first_seen=alert.first_seen, last_seen=alert.last_seen, alert_count=1,
                detection_count=alert.count, rules=list(alert.rules[:MAX_LIST]), rule_titles=[alert.rule_title],
                targets=list(alert.targets[:MAX_LIST]), target_count=len(alert.targets),
                ports=list(alert.ports[:MAX_LIST]), port_count=len(alert.ports), assets=assets,
                tags=list(alert.tags[:50]), created_at=now, updated_at=now, case_id=None)
            self._hold_key(iid, ikey)
        else:
            iid = inc.id
            new_rules = [r for r in alert.rules if r not in inc.rules]
            inc.rules = merge_list(inc.rules, alert.rules)
            if new_rules:
                inc.rule_titles = merge_list(inc.rule_titles, [alert.rule_title], 50)
            inc.targets = merge_list(inc.targets, alert.targets)
            inc.ports = merge_list(inc.ports, alert.ports)
            inc.target_count, inc.port_count = len(inc.targets), len(inc.ports)
            inc.title = incident_title(kind, who, inc.rule_titles, inc.targets, len(inc.targets), inc.ports,
                                       len(inc.ports))
            inc.level = max(inc.level, alert.level, key=level_number)
            inc.risk_score = max(inc.risk_score, alert.risk_score)
            inc.first_seen = min(inc.first_seen, alert.first_seen)
            inc.last_seen = max(inc.last_seen, alert.last_seen)
            inc.alert_count += 1 if created else 0
            inc.detection_count += alert.count if created else added_count
            inc.assets = merge_list(inc.assets, assets)
            inc.tags = merge_list(inc.tags, alert.tags, 50)
            inc.updated_at = now
            self._dirty.add(iid)
        if alert.incident_id != iid:
            if alert.id:  # a new alert (id 0) is written after this, with the id in its INSERT
                self.conn.execute("UPDATE alerts SET incident_id = ? WHERE id = ?", (iid, alert.id))
            alert.incident_id = iid
        return iid

    def flush(self) -> None:
        """Write the incidents this batch grew (an incident closed meanwhile comes back to
        work when its attacker is still at it: its status is not touched)."""
        for iid in sorted(self._dirty):
            inc = self._held[iid]
            self.conn.execute(
                "UPDATE incidents SET title=?, level=?, level_num=?, risk_score=?, first_seen=?, last_seen=?,"
                " alert_count=?, detection_count=?, rules=?, rule_titles=?, targets=?, target_count=?, ports=?,"
                " port_count=?, assets=?, tags=?, updated_at=? WHERE id=?",
                (inc.title, inc.level, level_number(inc.level), inc.risk_score, inc.first_seen, inc.last_seen,
                 inc.alert_count, inc.detection_count, _dumps(inc.rules), _dumps(inc.rule_titles),
                 _dumps(inc.targets), inc.target_count, _dumps(inc.ports), inc.port_count, _dumps(inc.assets),
                 _dumps(inc.tags), inc.updated_at, iid))
        self._dirty.clear()


class SQLiteIncidentStore:
    """Incidents in ``soc.db`` (reads and triage; :func:`attach` writes them)."""

    def __init__(self, db: SocDatabase):
        self.db = db

    def _where(self, flt: IncidentFilter) -> tuple[str, list[Any]]:
        where: list[str] = []
        params: list[Any] = []
        if flt.status:
            where.append(f"status IN ({','.join('?' * len(flt.status))})")
            params.extend(flt.status)
        if flt.level:
            where.append(f"level IN ({','.join('?' * len(flt.level))})")
            params.extend(flt.level)
        for col, val in (("assignee", flt.assignee), ("center", flt.center), ("attacker", flt.attacker)):
            if val is not None:
                where.append(f"{col} = ?")
                params.append(val)
        if flt.rule_id is not None:
            where.append("EXISTS (SELECT 1 FROM json_each(incidents.rules) WHERE value = ?)")
            params.append(flt.rule_id)
        if flt.asset_id is not None:
            where.append("EXISTS (SELECT 1 FROM json_each(incidents.assets) WHERE value = ?)")
            params.append(flt.asset_id)
        if flt.min_risk is not None:
            where.append("risk_score >= ?")
            params.append(flt.min_risk)
        if flt.since:
            where.append("last_seen >= ?")
            params.append(to_utc_iso(parse_timestamp(flt.since)))
        if flt.until:
            where.append("last_seen < ?")
            params.append(to_utc_iso(parse_timestamp(flt.until)))
        return ((" WHERE " + " AND ".join(where)) if where else ""), params

    def list_incidents(self, flt: IncidentFilter) -> tuple[int, list[Incident]]:
        """(matches, page); with ``count_up_to`` the count stops at that + 1."""
        if flt.sort not in INCIDENT_SORTS:
            raise ValueError(f"unknown sort {flt.sort!r}; use one of {', '.join(INCIDENT_SORTS)}")
        clause, params = self._where(flt)
        conn = self.db.reader()
        if flt.count_up_to is None:
            total = conn.execute(f"SELECT count(*) FROM incidents{clause}", params).fetchone()[0]
        else:
            total = conn.execute(f"SELECT count(*) FROM (SELECT 1 FROM incidents{clause} LIMIT ?)",
                                 [*params, flt.count_up_to + 1]).fetchone()[0]
        rows = conn.execute(f"SELECT * FROM incidents{clause} ORDER BY {INCIDENT_SORTS[flt.sort]} LIMIT ? OFFSET ?",
                            [*params, flt.limit, flt.offset]).fetchall()
        return total, [_row(r) for r in rows]

    def matching_ids(self, flt: IncidentFilter, limit: int) -> list[int]:
        """Every incident id the filter matches (not only a page), up to ``limit``: the
        queue's "select all matching"."""
        clause, params = self._where(flt)
        rows = self.db.reader().execute(f"SELECT id FROM incidents{clause} ORDER BY id LIMIT ?",
                                        [*params, limit]).fetchall()
        return [r[0] for r in rows]

    def get_incident(self, incident_id: int) -> Incident:
        row = self.db.reader().execute("SELECT * FROM incidents WHERE id = ?", (incident_id,)).fetchone()
        if row is None:
            raise NotFound(f"incident {incident_id} does not exist")
        return _row(row)

    def incident_alert_ids(self, incident_id: int) -> list[int]:
        self.get_incident(incident_id)
        rows = self.db.reader().execute("SELECT id FROM alerts WHERE incident_id = ? ORDER BY first_seen, id",
                                        (incident_id,)).fetchall()
        return [r[0] for r in rows]

    def timeline(self, incident_id: int) -> list[dict[str, Any]]:
        """The incident's alerts in event-time order: when each rule first and last saw the
        attacker, against what, how often."""
        self.get_incident(incident_id)
        rows = self.db.reader().execute(
            "SELECT id, rule_id, rule_title, level, first_seen, last_seen, count, status, targets, ports, host,"
            " asset_id FROM alerts WHERE incident_id = ? ORDER BY first_seen, id LIMIT 1000", (incident_id,)).fetchall()
        return [{"alert_id": r["id"], "rule_id": r["rule_id"], "rule_title": r["rule_title"], "level": r["level"],
                 "first_seen": r["first_seen"], "last_seen": r["last_seen"], "count": r["count"],
                 "status": r["status"], "targets": orjson.loads(r["targets"]), "ports": orjson.loads(r["ports"]),
                 "host": r["host"], "asset_id": r["asset_id"]} for r in rows]

    def update_incident(self, incident_id: int, *, status: str | None = None, resolution: str | None = None,
                        assignee: str | None = None, clear_assignee: bool = False) -> tuple[Incident, Incident]:
        """Change the incident; its alerts that are not closed follow a status change
        (closing an incident closes its open alerts with the same resolution) and take
        the assignee. Workflow checks are the caller's (:func:`core.alerts.check_transition`)."""
        now = utc_now_iso()
        with self.db.write() as conn:
            row = conn.execute("SELECT * FROM incidents WHERE id = ?", (incident_id,)).fetchone()
            if row is None:
                raise NotFound(f"incident {incident_id} does not exist")
            before = _row(row)
            after = _row(row)
            if status is not None:
                after.status = status
                after.resolution = resolution if status == "closed" else None
            if clear_assignee:
                after.assignee = None
            elif assignee is not None:
                after.assignee = assignee
            after.updated_at = now
            conn.execute("UPDATE incidents SET status=?, resolution=?, assignee=?, updated_at=? WHERE id=?",
                         (after.status, after.resolution, after.assignee, now, incident_id))
            if status is not None:
                conn.execute("UPDATE alerts SET status=?, resolution=?, updated_at=? WHERE incident_id=? AND "
                             "(status != 'closed' OR ? != 'closed')",
                             (after.status, after.resolution, now, incident_id, after.status))
            if clear_assignee or assignee is not None:
                conn.execute("UPDATE alerts SET assignee=?, updated_at=? WHERE incident_id=?",
                             (after.assignee, now, incident_id))
        return before, after

    def set_case(self, incident_id: int, case_id: int | None) -> None:
        with self.db.write() as conn:
            conn.execute("UPDATE incidents SET case_id = ? WHERE id = ?", (case_id, incident_id))

    def facets(self) -> dict[str, list[str]]:
        """The values the queue's drop-downs offer: rules, centers, assets, assignees (from
        the alerts, so a filter never offers a value that matches nothing)."""
        conn = self.db.reader()

        def col(sql: str) -> list[str]:
            return [r[0] for r in conn.execute(sql).fetchall() if r[0]]

        return {
            "rule": col("SELECT DISTINCT rule_id FROM alerts ORDER BY rule_id LIMIT 500"),
            "center": col("SELECT DISTINCT center FROM alerts ORDER BY center LIMIT 500"),
            "asset": col("SELECT DISTINCT asset_id FROM alerts ORDER BY asset_id LIMIT 2000"),
            "assignee": col("SELECT DISTINCT assignee FROM alerts ORDER BY assignee LIMIT 500"),
        }
