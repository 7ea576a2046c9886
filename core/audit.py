"""The tamper-evident audit log: who did what, when, from where, before and after.

Entries are append-only and hash-chained: each entry's ``hash`` is the SHA-256 of its
own canonical content *and* the previous entry's hash. Editing any stored field,
deleting an entry or reordering entries breaks the chain at that point, and
:func:`verify_chain` names the first entry that no longer fits. (Cutting entries off
the *end* leaves a shorter valid chain; compare the head hash with one kept elsewhere,
``citysoc audit verify --expect-head HASH``, to catch that.)

Example::

    prev = GENESIS
    e = AuditEntry(seq=1, time="2026-11-25T08:00:00.000Z", actor="user:alice",
                   action="alert.update", target="alert:7", source_ip="10.0.0.9",
                   before={"status": "new"}, after={"status": "closed"})
    e.prev_hash, e.hash = prev, entry_hash(prev, e)
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import orjson

__all__ = ["AuditEntry", "AuditLog", "VerifyResult", "GENESIS", "entry_hash", "verify_chain", "canonical"]

GENESIS = "0" * 64
"""The ``prev_hash`` of the first entry."""


@dataclass(slots=True)
class AuditEntry:
    seq: int
    time: str
    actor: str
    action: str
    target: str = ""
    source_ip: str = ""
    before: Any = None
    after: Any = None
    details: dict[str, Any] = field(default_factory=dict)
    prev_hash: str = ""
    hash: str = ""

    def body(self) -> dict[str, Any]:
        """The hashed content: every field except the hashes themselves."""
        return {"seq": self.seq, "time": self.time, "actor": self.actor, "action": self.action,
                "target": self.target, "source_ip": self.source_ip, "before": self.before,
                "after": self.after, "details": self.details}

    def to_dict(self) -> dict[str, Any]:
        return {**self.body(), "prev_hash": self.prev_hash, "hash": self.hash}


def canonical(value: Any) -> bytes:
    """Deterministic JSON (sorted keys, no spaces) so the same content hashes the same."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)


def entry_hash(prev_hash: str, entry: AuditEntry) -> str:
    h = hashlib.sha256()
    h.update(prev_hash.encode("ascii"))
    h.update(b"\n")
    h.update(canonical(entry.body()))
    return h.hexdigest()


@dataclass(slots=True)
class VerifyResult:
    ok: bool
    checked: int
    head: str
    first_bad_seq: int | None = None
    reason: str = ""


def verify_chain(entries: Iterable[AuditEntry]) -> VerifyResult:
    """Recompute the chain in ``seq`` order; stop at the first entry that does not fit."""
    prev = GENESIS
    expected_seq = 1
    n = 0
    for e in entries:
        if e.seq != expected_seq:
            return VerifyResult(False, n, prev, e.seq,
                                f"entry {e.seq} follows entry {expected_seq - 1}: entries "
                                f"{expected_seq}..{e.seq - 1} were deleted" if e.seq > expected_seq
                                else f"entry {e.seq} is out of order")
        if e.prev_hash != prev:
            return VerifyResult(False, n, prev, e.seq,
                                f"entry {e.seq} does not point at entry {e.seq - 1}'s hash: "
                                "an entry before it was changed or removed")
        if entry_hash(prev, e) != e.hash:
            return VerifyResult(False, n, prev, e.seq, f"entry {e.seq} was edited: its content no longer matches its hash")
        prev = e.hash
        expected_seq += 1
        n += 1
    return VerifyResult(True, n, prev)


@runtime_checkable
class AuditLog(Protocol):
    """Append-only, hash-chained. Implementation: ``storage.socdb.SQLiteAuditLog``.

    ``append`` is safe to call from any thread and from several processes (the CLI and
    the server) at once. Never put a secret in ``before``/``after``/``details``.
    """

    def append(self, actor: str, action: str, target: str = "", *, source_ip: str = "",
               before: Any = None, after: Any = None, details: dict[str, Any] | None = None) -> AuditEntry: ...

    def list(self, *, limit: int = 100, offset: int = 0, actor: str | None = None,
             action: str | None = None, target: str | None = None) -> tuple[int, list[AuditEntry]]: ...

    def iter_all(self) -> Iterable[AuditEntry]: ...

    def verify(self) -> VerifyResult: ...
