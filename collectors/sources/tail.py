"""Follow log files (globs), surviving rotation, truncation and restarts.

**Identity.** A file is tracked by ``(device, inode)``, not by name, plus a fingerprint
(SHA-256 of its first :data:`FINGERPRINT_BYTES` bytes) that guards against inode reuse.
So ``app.log`` renamed to ``app.log.1`` is the same file (read on to its end, never
re-read), and a new ``app.log`` is a new file (read from its start).

**Rotation by rename** (logrotate's default): the old file stays open and is read to
its end; it is let go once it is fully read and no longer the file at its path.
**Truncation** (logrotate ``copytruncate``): a size below our position, or a first
block that no longer matches the fingerprint, restarts the file at offset 0.

**Checkpoints.** After each batch is accepted by the pipeline (``emit`` returned) the
offsets are written to a JSON file (atomically: temporary file, fsync, rename). Offsets
only ever cover complete lines that were emitted, so a restart neither re-reads nor
skips: an unfinished last line is read again in full when it is finished. A file that
was rotated while we were stopped is found again by inode in its old directory and
read to its end before its successor.

Polling (``poll_interval``) keeps this portable and dependency-free; an idle poll costs
a ``glob`` and an ``fstat`` per file.

Example::

    src = FileTailSource(["/var/log/nginx/access.log"], checkpoint=data / "tail.json", format="nginx")
"""
from __future__ import annotations

import asyncio
import glob
import hashlib
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.protocols import Emit, RawRecord

from . import SourceCounters

__all__ = ["FileTailSource", "FINGERPRINT_BYTES"]

log = logging.getLogger("citysoc.collectors.tail")

FINGERPRINT_BYTES = 256


@dataclass
class _TailCounters(SourceCounters):
    truncated: int = 0
    rotations: int = 0
    truncations: int = 0
    files: int = 0


@dataclass
class _File:
    path: str
    dev: int
    ino: int
    fd: int
    offset: int = 0  # committed: bytes of complete lines emitted (and of skipped oversize tails)
    pos: int = 0  # read position (offset + len(partial))
    partial: bytearray = field(default_factory=bytearray)
    skip_line: bool = False
    fp: str = ""
    fp_len: int = 0
    rotated: bool = False
    idle_polls: int = 0

    @property
    def key(self) -> str:
        return f"{self.dev}:{self.ino}"


def _fingerprint(fd: int, length: int) -> tuple[str, int]:
    head = os.pread(fd, length, 0)
    return hashlib.sha256(head).hexdigest(), len(head)


class FileTailSource:
    """Tails the files matching ``paths`` (glob patterns) and emits one record per line."""

    def __init__(
        self,
        paths: Sequence[str | os.PathLike[str]],
        *,
        checkpoint: str | os.PathLike[str],
        format: str = "auto",
        dataset: str | None = None,
        name: str = "tail",
        poll_interval: float = 0.25,
        max_line_size: int = 1024 * 1024,
        read_size: int = 1024 * 1024,
        batch_size: int = 1000,
        start_at: str = "beginning",
        timezone: str | None = None,
    ) -> None:
        if start_at not in ("beginning", "end"):
            raise ValueError("start_at must be 'beginning' or 'end'")
        if not paths:
            raise ValueError("FileTailSource needs at least one path or glob")
        self.patterns = [os.fspath(p) for p in paths]
        self.checkpoint_path = Path(checkpoint)
        self.format, self.dataset, self.name, self.timezone = format, dataset, name, timezone
        self.poll_interval = poll_interval
        self.max_line_size, self.read_size, self.batch_size = max_line_size, read_size, batch_size
        self.start_at = start_at
        self.ready = asyncio.Event()
        self._c = _TailCounters()
        self._files: dict[str, _File] = {}
        self._saved: dict[str, dict[str, Any]] = {}

    # -- public ----------------------------------------------------------------------
    def counters(self) -> dict[str, int]:
        self._c.files = len(self._files)
        return self._c.as_dict()

    async def run(self, emit: Emit) -> None:
        self._saved = self._load_checkpoint()
        self._scan(first=True)
        self._adopt_rotated_while_stopped()
        self.ready.set()
        try:
            while True:
                progressed = False
                for f in sorted(self._files.values(), key=lambda f: (not f.rotated, f.path)):
                    progressed |= await self._pump(f, emit)
                self._retire()
                self._scan(first=False)
                if not progressed:
                    await asyncio.sleep(self.poll_interval)
        finally:
            for f in self._files.values():
                os.close(f.fd)
            self._files.clear()
            self.ready.clear()

    # -- checkpoints -----------------------------------------------------------------
    def _load_checkpoint(self) -> dict[str, dict[str, Any]]:
        try:
            doc = json.loads(self.checkpoint_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise ValueError(f"tail checkpoint {self.checkpoint_path} is unreadable ({exc}); "
                             "move it away to start over (files will be read again from the start)") from exc
        files = doc.get("files", {}) if isinstance(doc, dict) else {}
        return {k: v for k, v in files.items() if isinstance(v, dict)}

    def _save_checkpoint(self) -> None:
        files = {f.key: {"path": f.path, "offset": f.offset, "fingerprint": f.fp, "fp_len": f.fp_len}
                 for f in self._files.values()}
        self.checkpoint_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.checkpoint_path.with_suffix(self.checkpoint_path.suffix + ".tmp")
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump({"version": 1, "files": files}, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.checkpoint_path)

    # -- discovery -------------------------------------------------------------------
    def _open(self, path: str, st: os.stat_result, *, first: bool) -> None:
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError as exc:
            self._c.errors += 1
            log.warning("%s: cannot open %s: %s", self.name, path, exc.strerror)
            return
        f = _File(path=path, dev=st.st_dev, ino=st.st_ino, fd=fd)
        saved = self._saved.get(f.key)
        if saved and self._fp_matches(f, saved):
            f.offset = f.pos = int(saved.get("offset", 0))
            f.fp, f.fp_len = saved.get("fingerprint", ""), int(saved.get("fp_len", 0))
        elif first and self.start_at == "end":
            f.offset = f.pos = os.fstat(fd).st_size
        self._files[f.key] = f
        log.info("%s: following %s from offset %d", self.name, path, f.offset)

    @staticmethod
    def _fp_matches(f: _File, saved: dict[str, Any]) -> bool:
        fp_len = int(saved.get("fp_len", 0))
        if fp_len == 0:
            return True
        fp, n = _fingerprint(f.fd, fp_len)
        return n == fp_len and fp == saved.get("fingerprint")

    def _scan(self, *, first: bool) -> None:
        current: dict[str, str] = {}  # path -> key
        for pattern in self.patterns:
            for path in glob.glob(pattern):
                try:
                    st = os.stat(path)
                except OSError:
                    continue
                if not os.path.isfile(path):
                    continue
                key = f"{st.st_dev}:{st.st_ino}"
                current[path] = key
                f = self._files.get(key)
                if f is None:
                    self._open(path, st, first=first)
                elif f.path != path and f.path not in current:
                    f.path = path  # renamed to another name we also follow
        for f in self._files.values():
            if not f.rotated and current.get(f.path) != f.key:
                f.rotated = True
                self._c.rotations += 1
                log.info("%s: %s was rotated; reading the old file to its end", self.name, f.path)

    def _adopt_rotated_while_stopped(self) -> None:
        """Find checkpointed files renamed while we were stopped (``app.log`` -> ``app.log.1``)."""
        for key, saved in self._saved.items():
            if key in self._files:
                continue
            directory = os.path.dirname(str(saved.get("path", ""))) or "."
            try:
                names = os.listdir(directory)
            except OSError:
                continue
            for name in names:
                path = os.path.join(directory, name)
                try:
                    st = os.stat(path)
                except OSError:
                    continue
                if f"{st.st_dev}:{st.st_ino}" == key and os.path.isfile(path):
                    self._open(path, st, first=False)
                    f = self._files.get(key)
                    if f is not None:
                        f.rotated = True
                    break

    def _retire(self) -> None:
        done = [f for f in self._files.values() if f.rotated and f.pos >= os.fstat(f.fd).st_size]
        for f in done:
            if f.partial:
                continue  # an unterminated last line: wait; it is emitted when the writer finishes it
            os.close(f.fd)
            del self._files[f.key]
        if done:
            self._save_checkpoint()

    # -- reading ---------------------------------------------------------------------
    def _check_truncation(self, f: _File) -> None:
        size = os.fstat(f.fd).st_size
        truncated = size < f.pos
        if not truncated and f.fp_len:
            fp, n = _fingerprint(f.fd, f.fp_len)
            truncated = n < f.fp_len or fp != f.fp
        if truncated:
            log.info("%s: %s was truncated; reading it again from the start", self.name, f.path)
            self._c.truncations += 1
            f.offset = f.pos = 0
            f.partial.clear()
            f.skip_line = False
            f.fp, f.fp_len = "", 0

    async def _pump(self, f: _File, emit: Emit) -> bool:
        """Read, frame and emit what is new in ``f``; True if anything happened."""
        self._check_truncation(f)
        try:
            chunk = os.pread(f.fd, self.read_size, f.pos)
        except OSError as exc:
            self._c.errors += 1
            log.warning("%s: read error on %s: %s", self.name, f.path, exc.strerror)
            return False
        if not chunk:
            if f.rotated and f.partial:
                return await self._flush_last_line(f, emit)
            return False
        f.idle_polls = 0
        if f.fp_len < FINGERPRINT_BYTES:
            f.fp, f.fp_len = _fingerprint(f.fd, FINGERPRINT_BYTES)
        line_start = f.pos - len(f.partial)
        f.pos += len(chunk)
        records: list[RawRecord] = []
        ends: list[int] = []  # offset just past each record's line, to checkpoint sub-batches exactly
        data = f.partial + chunk if f.partial else chunk
        f.partial = bytearray()
        start = 0
        consumed = line_start
        if f.skip_line:
            i = data.find(b"\n")
            if i < 0:
                f.offset = f.pos
                return True
            start = i + 1
            consumed += i + 1
            f.skip_line = False
        while True:
            i = data.find(b"\n", start)
            if i < 0:
                break
            end = i - 1 if i > start and data[i - 1] == 13 else i
            line = data[start:end]
            meta: dict[str, Any] = {"log.file.path": f.path, "log.offset": consumed}
            if len(line) > self.max_line_size:
                line = line[: self.max_line_size]
                meta["truncated"] = True
                self._c.truncated += 1
            if self.timezone:
                meta["timezone"] = self.timezone
            if line.strip():
                records.append(RawRecord(bytes(line), format=self.format, source=self.name, dataset=self.dataset,
                                         meta=meta))
                ends.append(consumed + i + 1 - start)
            consumed += i + 1 - start
            start = i + 1
        rest = data[start:]
        if len(rest) > self.max_line_size:
            meta = {"log.file.path": f.path, "log.offset": consumed, "truncated": True}
            records.append(RawRecord(bytes(rest[: self.max_line_size]), format=self.format, source=self.name,
                                     dataset=self.dataset, meta=meta))
            self._c.truncated += 1
            consumed += len(rest)
            ends.append(consumed)
            f.skip_line = True
        else:
            f.partial = bytearray(rest)
        self._c.received += len(records)
        for i in range(0, len(records), self.batch_size):
            batch = records[i:i + self.batch_size]
            await emit(batch)  # blocks while the pipeline is full
            self._c.emitted += len(batch)
            f.offset = ends[i + len(batch) - 1]
            self._save_checkpoint()
        if f.offset != consumed:
            f.offset = consumed  # only blank lines or a skipped oversize tail after the last record
            self._save_checkpoint()
        return True

    async def _flush_last_line(self, f: _File, emit: Emit) -> bool:
        """A rotated file ended without a newline: after one idle poll, its last line is final."""
        f.idle_polls += 1
        if f.idle_polls < 2:
            return False
        line = bytes(f.partial).rstrip(b"\r")
        meta: dict[str, Any] = {"log.file.path": f.path, "log.offset": f.offset}
        if self.timezone:
            meta["timezone"] = self.timezone
        self._c.received += 1
        await emit([RawRecord(line, format=self.format, source=self.name, dataset=self.dataset, meta=meta)])
        self._c.emitted += 1
        f.partial.clear()
        f.offset = f.pos
        self._save_checkpoint()
        return True
