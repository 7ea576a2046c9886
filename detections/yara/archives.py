"""Walk archive members as bounded byte strings, never touching the disk.

Zip, tar (plain or gzip/bzip2/xz compressed) and single-file gzip/bzip2/xz streams are
opened from memory and their members read in chunks, counting every decompressed byte
against a shared :class:`Budget`: a zip bomb is stopped when the budget runs out, not
when memory does, and a bomb that is slow rather than big (a 146-byte ``.tar.bz2``) is
stopped by the budget's wall-clock ``deadline``. Compressed tars are decompressed by our
own bounded reader (:class:`_Charged` over ``bz2``/``gzip``/``lzma`` file objects that
decompress in bounded steps), never by ``tarfile``'s stream mode, which copies its whole
buffer on every 10 KB read and so takes minutes on a bz2 bomb. Member names that would escape an extraction folder (``../``,
absolute paths) are flagged; their content is still scanned (we never extract).
"""
from __future__ import annotations

import bz2
import gzip
import io
import lzma
import tarfile
import time
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

__all__ = ["Budget", "Member", "archive_kind", "iter_members", "unsafe_name"]

_CHUNK = 1024 * 1024


@dataclass(slots=True)
class Budget:
    """Bytes and members still allowed for one top-level file."""

    bytes_left: int
    members_left: int
    exhausted: str | None = None
    deadline: float = float("inf")
    """``time.monotonic()`` after which nothing more is decompressed or scanned."""

    def over_time(self) -> bool:
        if time.monotonic() > self.deadline:
            if not self.exhausted:
                self.exhausted = "scan deadline reached: stopped decompressing"
            return True
        return False


@dataclass(slots=True)
class Member:
    name: str
    data: bytes | None
    """None when not read; ``skipped`` says why."""
    declared_size: int | None = None
    skipped: str | None = None
    notes: list[str] = field(default_factory=list)


def archive_kind(head: bytes) -> str | None:
    """Sniff an archive from its first 512 bytes: zip, tar, gzip, bzip2, xz or None."""
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return "zip"
    if len(head) >= 262 and head[257:262] == b"ustar":
        return "tar"
    if head[:2] == b"\x1f\x8b":
        return "gzip"
    if head[:3] == b"BZh":
        return "bzip2"
    if head[:6] == b"\xfd7zXZ\x00":
        return "xz"
    return None


def unsafe_name(name: str) -> bool:
    """True for names that would land outside the folder they are extracted to."""
    n = name.replace("\\", "/")
    if n.startswith("/") or (len(n) > 1 and n[1] == ":"):
        return True
    return ".." in n.split("/")


class _Charged(io.RawIOBase):
    """A read-only stream that charges every byte read to a :class:`Budget` and its deadline.

    ``tarfile`` reads a compressed tar through it in stream mode ``r|`` (no compression of
    its own), so the decompressed tar is counted once, here; its members are not charged
    again.
    """

    def __init__(self, f: BinaryIO, budget: Budget):
        self._f, self._budget = f, budget

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        b = self._budget
        if b.over_time() or b.bytes_left <= 0:
            if not b.exhausted:
                b.exhausted = "extraction limit reached: stopped decompressing"
            raise _Stop(b.exhausted)
        want = _CHUNK if size is None or size < 0 else size
        chunk = self._f.read(min(want, b.bytes_left))
        b.bytes_left -= len(chunk)
        return chunk

    def readinto(self, buf) -> int:  # type: ignore[override]
        data = self.read(len(buf))
        buf[: len(data)] = data
        return len(data)


class _Stop(Exception):
    """The budget ran out while tarfile was reading: stop walking members."""


def _read_bounded(f: BinaryIO, max_size: int, budget: Budget, *,
                  charge: bool = True) -> tuple[bytes | None, str | None]:
    """Read all of ``f`` unless it exceeds ``max_size`` or the budget: then (None, reason)."""
    # BytesIO grows its one buffer in place and hands it out without a copy: a member costs
    # its own size once, not twice (a list of chunks joined at the end held both)
    out = io.BytesIO()
    total = 0
    while True:
        if budget.over_time():
            return None, budget.exhausted
        want = min(_CHUNK, max_size + 1 - total, (budget.bytes_left + 1) if charge else _CHUNK)
        try:
            chunk = f.read(want)
        except _Stop:
            return None, budget.exhausted
        if not chunk:
            return out.getvalue(), None
        total += len(chunk)
        if charge:
            budget.bytes_left -= len(chunk)
        if budget.bytes_left < 0:
            budget.exhausted = "extraction limit reached: stopped decompressing"
            return None, budget.exhausted
        if total > max_size:
            return None, f"member larger than max size ({max_size} bytes): not scanned"
        out.write(chunk)


def _take_member(budget: Budget) -> bool:
    if budget.exhausted or budget.over_time():
        return False
    if budget.members_left <= 0:
        budget.exhausted = "member limit reached: remaining members not scanned"
        return False
    budget.members_left -= 1
    return True


def iter_members(data: bytes, kind: str, container_name: str, max_size: int, budget: Budget) -> Iterator[Member]:
    """Yield the members of the archive in ``data``; stops early once ``budget`` runs out.

    Raises ``zipfile.BadZipFile``, ``tarfile.TarError``, ``OSError``, ``EOFError`` or
    ``lzma.LZMAError`` for a damaged archive; the caller records that as a note.
    """
    if kind == "zip":
        yield from _zip_members(data, max_size, budget)
    elif kind == "tar":
        yield from _tar_members(io.BytesIO(data), max_size, budget)
    elif kind in ("gzip", "bzip2", "xz"):
        yield from _compressed_members(data, kind, container_name, max_size, budget)
    else:
        raise ValueError(f"not an archive kind: {kind}")


def _zip_members(data: bytes, max_size: int, budget: Budget) -> Iterator[Member]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        for info in zf.infolist():
            if info.is_dir():
                continue
            if not _take_member(budget):
                return
            m = Member(info.filename, None, info.file_size)
            if info.flag_bits & 0x1:
                m.skipped = "encrypted member: not scanned"
            elif info.file_size > max_size:
                m.skipped = f"member larger than max size ({info.file_size} > {max_size} bytes): not scanned"
            else:
                # The declared size can lie (bombs do): the bounded read is the real guard.
                try:
                    with zf.open(info) as f:
                        m.data, m.skipped = _read_bounded(f, max_size, budget)
                except (zipfile.BadZipFile, zlib.error, OSError, EOFError, NotImplementedError,
                        RuntimeError, lzma.LZMAError) as exc:
                    # One damaged member must not hide the others: zip members are independent.
                    m.data, m.skipped = None, f"damaged member: {exc}"
            yield m
            if budget.exhausted:
                return


def _tar_members(fileobj: BinaryIO, max_size: int, budget: Budget, *, charged: bool = False) -> Iterator[Member]:
    """Members of an uncompressed tar stream; ``charged``: the stream already pays the budget."""
    try:
        with tarfile.open(fileobj=fileobj, mode="r|") as tf:
            for info in tf:
                if not info.isfile():
                    continue
                if not _take_member(budget):
                    return
                m = Member(info.name, None, info.size)
                if info.size > max_size:
                    m.skipped = f"member larger than max size ({info.size} > {max_size} bytes): not scanned"
                else:
                    f = tf.extractfile(info)
                    if f is None:
                        continue
                    m.data, m.skipped = _read_bounded(f, max_size, budget, charge=not charged)
                yield m
                if budget.exhausted:
                    return
    except _Stop:
        return


def _decompressor(kind: str, fileobj: BinaryIO) -> BinaryIO:
    if kind == "gzip":
        return gzip.GzipFile(fileobj=fileobj)
    if kind == "bzip2":
        return bz2.BZ2File(fileobj)
    return lzma.LZMAFile(fileobj)


def _compressed_members(data: bytes, kind: str, container_name: str, max_size: int,
                        budget: Budget) -> Iterator[Member]:
    with _decompressor(kind, io.BytesIO(data)) as f:
        head = f.read(512)
    if len(head) >= 262 and head[257:262] == b"ustar":
        with _decompressor(kind, io.BytesIO(data)) as f:
            yield from _tar_members(io.BufferedReader(_Charged(f, budget), 64 * 1024), max_size, budget,
                                    charged=True)
        return
    if not _take_member(budget):
        return
    base = container_name.rsplit("/", 1)[-1]
    for suffix in (".gz", ".tgz", ".bz2", ".xz", ".z"):
        if base.lower().endswith(suffix):
            base = base[: -len(suffix)] or base
            break
    m = Member(base, None, None)
    with _decompressor(kind, io.BytesIO(data)) as f:
        m.data, m.skipped = _read_bounded(f, max_size, budget)
    yield m
