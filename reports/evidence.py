"""Evidence export: one case or alert with everything behind it, as a single zip an
investigator or a court can check.

The archive holds, per alert, the alert itself (with its sample events and comments),
the events found in the event store with the alert's own ``events_query`` between its
``first_seen`` and ``last_seen`` (plus ``margin``), the playbook runs it triggered and
every audit entry about it; for a case also its notes, timeline, attachments (the stored
files themselves) and its audit entries. ``manifest.json`` inside lists each member's
SHA-256 and the audit-chain head at export time; the sidecar ``FILE.manifest.json``
hashes the whole archive. ``citysoc report verify FILE`` checks both.

Events are copied page by page into the archive (never all in memory) up to
``max_events`` per alert; the summary says when that cap cut the list.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import orjson

from core.alerts import Alert, AlertStore, CaseStore, NotFound
from core.audit import AuditLog
from core.events import parse_timestamp, utc_now_iso
from core.protocols import EventStore
from core.reports import ReportError
from reports.atomic import atomic_path
from reports.manifest import INNER_MANIFEST, sidecar_of, write_manifest

__all__ = ["EvidenceSources", "export_evidence", "MAX_EVENTS"]

MAX_EVENTS = 100_000
_PAGE = 1000
_JSON = orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS


@dataclass(slots=True)
class EvidenceSources:
    alerts: AlertStore
    cases: CaseStore
    audit: AuditLog
    events: EventStore | None = None
    runs: Any = None
    """Anything with ``list_runs(alert_id=, limit=, offset=)`` (``core.playbooks.RunStore``)."""


class _Zip:
    """A zip whose members are hashed as they are written."""

    def __init__(self, zf: zipfile.ZipFile):
        self.zf = zf
        self.members: list[dict[str, Any]] = []

    def add(self, name: str, data: bytes) -> None:
        self.zf.writestr(name, data)
        self.members.append({"name": name, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()})

    def stream(self, name: str, chunks: Any) -> int:
        h = hashlib.sha256()
        size = n = 0
        with self.zf.open(name, "w", force_zip64=True) as fh:
            for chunk in chunks:
                fh.write(chunk)
                h.update(chunk)
                size += len(chunk)
                n += 1
        self.members.append({"name": name, "size": size, "sha256": h.hexdigest()})
        return n


def _audit_of(log: AuditLog, target: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    offset = 0
    while True:
        _n, page = log.list(target=target, limit=500, offset=offset)
        if not page:
            break
        out += [e.to_dict() for e in page]
        offset += len(page)
    return sorted(out, key=lambda e: e["seq"])


def _runs_of(runs: Any, alert_id: int) -> list[dict[str, Any]]:
    if runs is None:
        return []
    _n, page = runs.list_runs(alert_id=alert_id, limit=500)
    return [r.to_dict() for r in page]


def _events(store: EventStore, alert: Alert, margin: _dt.timedelta, cap: int, counter: dict[str, Any]) -> Any:
    start = parse_timestamp(alert.first_seen) - margin
    end = parse_timestamp(alert.last_seen) + margin
    offset = 0
    while offset < cap:
        res = store.search(alert.events_query or "*", start=start, end=end, limit=min(_PAGE, cap - offset),
                           offset=offset, sort="asc")
        counter["total"] = res.total
        if not res.hits:
            return
        for ev in res.hits:
            yield orjson.dumps(ev) + b"\n"
        offset += len(res.hits)
        counter["written"] = offset
        if len(res.hits) < _PAGE:
            return


def _alert_members(z: _Zip, src: EvidenceSources, alert: Alert, prefix: str, margin: _dt.timedelta,
                   cap: int) -> dict[str, Any]:
    z.add(f"{prefix}/alert.json", orjson.dumps(alert.to_dict(), option=_JSON))
    z.add(f"{prefix}/comments.json", orjson.dumps([asdict(c) for c in src.alerts.comments(alert.id)], option=_JSON))
    z.add(f"{prefix}/audit.json", orjson.dumps(_audit_of(src.audit, f"alert:{alert.id}"), option=_JSON))
    runs = _runs_of(src.runs, alert.id)
    z.add(f"{prefix}/playbook_runs.json", orjson.dumps(runs, option=_JSON))
    summary: dict[str, Any] = {"alert_id": alert.id, "playbook_runs": len(runs),
                               "events_query": alert.events_query}
    if src.events is None:
        summary["events"] = "not available: no event store"
    else:
        counter: dict[str, Any] = {"total": 0, "written": 0}
        z.stream(f"{prefix}/events.ndjson", _events(src.events, alert, margin, cap, counter))
        summary["events"] = {"matched": counter["total"], "exported": counter["written"],
                             "capped": counter["total"] > counter["written"]}
    return summary


def export_evidence(src: EvidenceSources, out: Path, *, actor: str, case_id: int | None = None,
                    alert_id: int | None = None, margin_s: int = 300, max_events: int = MAX_EVENTS,
                    source_ip: str = "") -> dict[str, Any]:
    """Write the archive ``out`` (zip) and its sidecar; returns the sidecar manifest."""
    if (case_id is None) == (alert_id is None):
        raise ReportError("give exactly one of --case ID or --alert ID")
    out = Path(out)
    margin = _dt.timedelta(seconds=margin_s)
    head = src.audit.verify()
    try:
        if case_id is not None:
            case = src.cases.get_case(case_id)
            subject = f"case:{case_id}"
            alerts = [src.alerts.get(a) for a in case.alert_ids]
        else:
            case = None
            subject = f"alert:{alert_id}"
            alerts = [src.alerts.get(alert_id)]  # type: ignore[arg-type]
    except NotFound as exc:
        raise ReportError(str(exc)) from exc
    summary: dict[str, Any] = {"subject": subject, "generated_at": utc_now_iso(), "generated_by": actor,
                               "audit_head": head.head, "audit_entries": head.checked, "audit_chain_ok": head.ok,
                               "alerts": []}
    with atomic_path(out) as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as zf:
            z = _Zip(zf)
            if case is not None:
                z.add("case/case.json", orjson.dumps(asdict(case), option=_JSON))
                z.add("case/notes.json", orjson.dumps([asdict(n) for n in src.cases.notes(case.id)], option=_JSON))
                z.add("case/timeline.json", orjson.dumps([asdict(t) for t in src.cases.timeline(case.id)],
                                                          option=_JSON))
                z.add("case/audit.json", orjson.dumps(_audit_of(src.audit, subject), option=_JSON))
                atts = src.cases.attachments(case.id)
                z.add("case/attachments.json", orjson.dumps([asdict(a) for a in atts], option=_JSON))
                for a in atts:
                    p = Path(a.path)
                    if p.is_file():
                        z.stream(f"case/attachments/{a.id}-{Path(a.filename).name}", _chunks(p))
            for al in alerts:
                summary["alerts"].append(_alert_members(z, src, al, f"alert-{al.id}", margin, max_events))
            z.add("evidence.json", orjson.dumps(summary, option=_JSON))
            inner = {"manifest": "citysoc.evidence/1", "subject": subject, "audit_head": head.head,
                     "generated_at": summary["generated_at"], "members": z.members}
            zf.writestr(INNER_MANIFEST, orjson.dumps(inner, option=_JSON))
    try:
        manifest = write_manifest(out, {"kind": "evidence", "format": "zip", "subject": subject,
                                        "generated_at": summary["generated_at"], "generated_by": actor,
                                        "audit_head": head.head, "audit_seq": head.checked,
                                        "audit_chain_ok": head.ok, "members": len(z.members)})
    except BaseException:
        out.unlink(missing_ok=True)
        sidecar_of(out).unlink(missing_ok=True)
        raise
    src.audit.append(actor, "report.evidence", subject, source_ip=source_ip,
                     details={"file": out.name, "sha256": manifest["sha256"], "members": len(z.members)})
    return manifest


def _chunks(p: Path) -> Any:
    with open(p, "rb") as fh:
        while chunk := fh.read(1 << 20):
            yield chunk
