"""``quarantine_file`` / ``restore_file``: take a suspicious file out of reach, keep its evidence.

A quarantined file moves to ``<quarantine>/<id>/file`` (mode 0400) beside
``meta.json`` (original path, SHA-256, size, mode, mtime, who and which run). Only
files under ``playbooks.quarantine_roots`` can be taken (the warehouse ingest folder,
say), so a playbook cannot be pointed at ``/etc``. After the move the file is rescanned
with the wired scanner (YARA), whose findings go into the step output: proof the
sample in quarantine is the one that matched.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import os
import re
import shutil
import stat
from pathlib import Path
from typing import Any

import orjson

from core.messages import Message
from playbooks.actions.base import Action, ActionContext, ActionError, Param

__all__ = ["QuarantineFile", "RestoreFile", "quarantine_dir"]

_ID = re.compile(r"^[0-9a-f]{64}-\d{8}T\d{6}\d{6}Z$")


def quarantine_dir(ctx: ActionContext) -> Path:
    return Path(ctx.settings.quarantine_dir or (ctx.data_dir / "quarantine"))


def _check_source(ctx: ActionContext, path: str) -> Path:
    p = Path(path)
    if not p.is_absolute():
        raise ActionError(f"{path!r} is not an absolute path")
    try:
        st = p.lstat()
    except FileNotFoundError:
        raise ActionError(f"{path} does not exist (already moved or deleted?)") from None
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISREG(st.st_mode):
        raise ActionError(f"{path} is not a regular file; only regular files are quarantined")
    real = p.resolve()
    roots = [r.resolve() for r in ctx.settings.quarantine_roots]
    if not any(real == r or r in real.parents for r in roots):
        raise ActionError(f"{path} is outside the folders files may be quarantined from "
                          f"({', '.join(map(str, roots)) or 'none: set playbooks.quarantine_roots'})")
    return real


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class QuarantineFile(Action):
    name = "quarantine_file"
    description = "Move a file into the quarantine folder with its hash and metadata, then rescan it."
    inputs = {"path": Param("path", doc="absolute path under playbooks.quarantine_roots"),
              "reason": Param("line", required=False, default="")}
    outputs = {"quarantine_id": "folder name inside the quarantine", "sha256": "", "size": "",
               "original_path": "", "findings": "rescan results (null when no scanner is wired)"}
    destructive = True

    def run(self, ctx: ActionContext, *, path: str, reason: str = "") -> dict[str, Any]:
        src = _check_source(ctx, path)
        st = src.stat()
        digest = _sha256(src)
        now = _dt.datetime.now(_dt.timezone.utc)
        qid = f"{digest}-{now.strftime('%Y%m%dT%H%M%S%fZ')}"
        dest_dir = quarantine_dir(ctx) / qid
        dest_dir.mkdir(parents=True, mode=0o700)
        dest = dest_dir / "file"
        shutil.move(str(src), str(dest))
        os.chmod(dest, 0o400)
        meta = {"original_path": str(src), "sha256": digest, "size": st.st_size, "mode": stat.S_IMODE(st.st_mode),
                "mtime": st.st_mtime, "quarantined_at": now.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "actor": ctx.actor,
                "run_id": ctx.run_id, "playbook": ctx.playbook, "reason": reason}
        findings = None
        if ctx.rescan is not None:
            try:
                findings = [{"rule": f.rule, "namespace": f.namespace, "tags": list(f.tags)}
                            for f in ctx.rescan.scan_file(str(dest))]
            except Exception as exc:  # the file is safe in quarantine; only the rescan failed
                findings = [{"error": f"rescan failed: {exc}"}]
        meta["findings"] = findings
        (dest_dir / "meta.json").write_bytes(orjson.dumps(meta, option=orjson.OPT_INDENT_2))
        return {"quarantine_id": qid, "sha256": digest, "size": st.st_size, "original_path": str(src),
                "findings": findings}

    def describe(self, ctx: ActionContext, *, path: str, reason: str = "") -> str:
        src = _check_source(ctx, path)
        return Message("msg.file.would_quarantine", src=str(src), size=src.stat().st_size, dir=str(quarantine_dir(ctx)),
                       rescan=Message("msg.file.then_rescan") if ctx.rescan is not None else "")


class RestoreFile(Action):
    name = "restore_file"
    description = "Put a quarantined file back where it came from (refuses to overwrite)."
    inputs = {"quarantine_id": Param("line")}
    outputs = {"path": "where it was restored", "sha256": ""}
    destructive = False

    def _dir(self, ctx: ActionContext, qid: str) -> Path:
        if not _ID.match(qid):
            raise ActionError(f"{qid!r} is not a quarantine id (<sha256>-<time>)")
        d = quarantine_dir(ctx) / qid
        if not (d / "meta.json").exists():
            raise ActionError(f"no quarantined file {qid}")
        return d

    def run(self, ctx: ActionContext, *, quarantine_id: str) -> dict[str, Any]:
        d = self._dir(ctx, quarantine_id)
        meta = orjson.loads((d / "meta.json").read_bytes())
        target = Path(meta["original_path"])
        if target.exists():
            raise ActionError(f"{target} exists again; move it away first, nothing was overwritten")
        if _sha256(d / "file") != meta["sha256"]:
            raise ActionError(f"quarantined file {quarantine_id} no longer matches its recorded SHA-256")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(d / "file"), str(target))
        os.chmod(target, meta.get("mode", 0o600))
        meta["restored_at"] = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        meta["restored_by"] = ctx.actor
        (d / "meta.json").write_bytes(orjson.dumps(meta, option=orjson.OPT_INDENT_2))
        return {"path": str(target), "sha256": meta["sha256"]}

    def describe(self, ctx: ActionContext, *, quarantine_id: str) -> str:
        d = self._dir(ctx, quarantine_id)
        meta = orjson.loads((d / "meta.json").read_bytes())
        return Message("msg.file.would_restore", id=quarantine_id, path=str(meta["original_path"]))
