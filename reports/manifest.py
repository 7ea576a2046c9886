"""Integrity of what we hand to auditors: a SHA-256 manifest beside every report and
evidence archive, and the check that names what changed.

Decision: **every** output gets a sidecar ``FILE.manifest.json`` (PDF, CSV, JSON, HTML
and evidence archives alike), because a hash cannot sit inside the bytes it hashes and
one rule for all formats is easier to explain to an auditor. The sidecar holds the
file's SHA-256 and size, the audit-chain head (hash and sequence number) at generation
time, the period, format, language and headline figures. JSON and HTML reports also
carry the audit head in their body, and the PDF prints it on every page.

Evidence archives additionally hold ``manifest.json`` *inside* the zip with the SHA-256
of every member, so a changed member is named even without the sidecar.

Generation is itself audited (``report.generate`` / ``report.evidence`` with the file's
SHA-256): when the audit log is at hand, :func:`verify` also checks that an audit entry
vouches for the hash, which catches a report *and* sidecar both replaced.

Example::

    write_manifest(Path("week.pdf"), {"kind": "report", "audit_head": head})
    result = verify(Path("week.pdf"))
    result.ok, result.problems
"""
from __future__ import annotations

import hashlib
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from core.audit import AuditLog
from reports.atomic import write_bytes_atomic

__all__ = ["MANIFEST_SCHEMA", "sidecar_of", "file_sha256", "write_manifest", "read_manifest", "verify",
           "VerifyOutcome", "INNER_MANIFEST"]

MANIFEST_SCHEMA = "citysoc.manifest/1"
INNER_MANIFEST = "manifest.json"
_AUDITED_ACTIONS = ("report.generate", "report.evidence", "report.schedule")


def sidecar_of(path: Path) -> Path:
    return path.with_name(path.name + ".manifest.json")


def file_sha256(path: Path) -> tuple[str, int]:
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
            size += len(chunk)
    return h.hexdigest(), size


def write_manifest(path: Path, meta: dict[str, Any]) -> dict[str, Any]:
    """Hash ``path`` and write its sidecar (atomically); returns the manifest."""
    digest, size = file_sha256(path)
    manifest = {"manifest": MANIFEST_SCHEMA, "file": path.name, "sha256": digest, "size": size, **meta}
    write_bytes_atomic(sidecar_of(path), orjson.dumps(manifest, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
    return manifest


def read_manifest(path: Path) -> dict[str, Any]:
    m = orjson.loads(path.read_bytes())
    if not isinstance(m, dict) or m.get("manifest") != MANIFEST_SCHEMA:
        raise ValueError(f"{path} is not a citysoc manifest")
    return m


@dataclass(slots=True)
class VerifyOutcome:
    ok: bool
    file: Path
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    manifest: dict[str, Any] | None = None
    no_manifest: bool = False
    """Nothing to check against (the sidecar is not beside the file, e.g. a report downloaded
    from the console without its manifest): not verified, which is not the same as tampered."""


def _check_archive(path: Path, out: VerifyOutcome) -> None:
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        out.problems.append(f"{path.name}: not a readable zip archive ({exc})")
        return
    with zf:
        try:
            inner = orjson.loads(zf.read(INNER_MANIFEST))
        except (KeyError, orjson.JSONDecodeError) as exc:
            out.problems.append(f"{path.name}: its inner {INNER_MANIFEST} is missing or unreadable ({exc})")
            return
        listed: dict[str, dict[str, Any]] = {m["name"]: m for m in inner.get("members", [])}
        present = {i.filename for i in zf.infolist() if not i.is_dir()} - {INNER_MANIFEST}
        for name in sorted(present - set(listed)):
            out.problems.append(f"member {name}: added (not in the manifest)")
        for name in sorted(set(listed) - present):
            out.problems.append(f"member {name}: missing (listed in the manifest)")
        for name in sorted(set(listed) & present):
            try:
                data = zf.read(name)
            except (zipfile.BadZipFile, OSError) as exc:
                out.problems.append(f"member {name}: unreadable ({exc})")
                continue
            digest = hashlib.sha256(data).hexdigest()
            if digest != listed[name]["sha256"]:
                out.problems.append(f"member {name}: content changed (sha256 {digest}, manifest says "
                                    f"{listed[name]['sha256']})")
        out.notes.append(f"{len(listed)} archive members checked against the inner manifest")


def _check_audit(log: AuditLog, digest: str, out: VerifyOutcome) -> None:
    for e in log.iter_all():
        if e.action in _AUDITED_ACTIONS and isinstance(e.details, dict) and e.details.get("sha256") == digest:
            out.notes.append(f"the audit log vouches for this hash (entry {e.seq}, {e.action} by {e.actor} at {e.time})")
            return
    out.problems.append("no audit entry records this file's SHA-256: the file and its manifest may both have "
                        "been replaced (or the report was made with another audit log)")


def verify(path: Path, *, audit: AuditLog | None = None) -> VerifyOutcome:
    """Check ``path`` (a report/archive, or its ``.manifest.json``) against its manifest.

    Problems name what differs: the file's hash or size, a manifest field, an archive
    member. ``audit`` (optional) adds the check that the audit log recorded the hash."""
    path = Path(path)
    if path.name.endswith(".manifest.json"):
        path = path.with_name(path.name[: -len(".manifest.json")])
    out = VerifyOutcome(ok=False, file=path)
    if not path.exists():
        out.problems.append(f"{path}: file not found")
        return out
    side = sidecar_of(path)
    if side.exists():
        try:
            m = read_manifest(side)
        except (ValueError, orjson.JSONDecodeError) as exc:
            out.problems.append(f"{side.name}: unreadable manifest ({exc})")
            return out
        out.manifest = m
        digest, size = file_sha256(path)
        if m.get("file") != path.name:
            out.problems.append(f"manifest names file {m.get('file')!r}, not {path.name!r}")
        if size != m.get("size"):
            out.problems.append(f"{path.name}: size changed ({size} bytes, manifest says {m.get('size')})")
        if digest != m.get("sha256"):
            out.problems.append(f"{path.name}: content changed (sha256 {digest}, manifest says {m.get('sha256')})")
        if audit is not None and digest == m.get("sha256"):
            _check_audit(audit, digest, out)
    else:
        out.notes.append(f"no sidecar {side.name}")
    if zipfile.is_zipfile(path) and (out.manifest is None or out.manifest.get("kind") == "evidence"):
        _check_archive(path, out)
    elif out.manifest is None:
        out.problems.append(f"{path.name}: no manifest to check against ({side.name} is missing)")
        out.no_manifest = True
    out.ok = not out.problems
    return out
