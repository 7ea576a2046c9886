"""Reading ingest bodies with memory bounded by our limits, never by the sender's content.

A hostile body is small on the wire and large in memory: a 2 MB JSON array of ``0`` is a
million Python objects, a 1 MB gzip of newlines inflates to a gigabyte, and a ``_bulk`` of
tiny items is a list of a million lines before anyone counts them. So every step here
counts before it materialises:

* :func:`read_body` streams the body, charges every chunk to the per-request limit and to
  a process-wide :class:`InflightBudget` (429 with ``Retry-After`` when the SOC already
  holds too many ingest bytes), and inflates gzip with a bounded ``zlib`` decompressor
  charged to the same limit (413 the moment the inflated size passes it).
* :func:`iter_lines` yields the non-blank lines of NDJSON without building the list of
  every line (a body of newlines costs nothing); :func:`split_array` cuts a JSON array
  into its elements' own bytes by scanning its structure (strings skipped whole), so no
  element is parsed or re-serialised here, elements deeper than ``MAX_DEPTH`` are refused,
  and counting stops at the item limit.
"""
from __future__ import annotations

import re
import threading
import zlib
from collections.abc import Iterator

from fastapi import HTTPException, Request

__all__ = ["InflightBudget", "INFLIGHT", "read_body", "iter_lines", "split_array", "TooManyItems", "MAX_DEPTH"]

MAX_DEPTH = 64
"""Nesting depth of JSON accepted on ingest (ECS documents are a few levels deep)."""

_INFLATE_STEP = 1024 * 1024
"""Largest output of one ``decompress`` call while inflating a gzip body."""

_LINE = re.compile(rb"[^\r\n]*[^\s][^\r\n]*")
_TOKENS = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{},]', re.S)


class TooManyItems(ValueError):
    """More items than the per-request limit: the request is refused whole (413)."""


class InflightBudget:
    """Ingest bytes held by requests being read or committed, across the process."""

    def __init__(self, limit: int):
        self.limit = limit
        self.used = 0
        self._lock = threading.Lock()

    def acquire(self, n: int) -> bool:
        with self._lock:
            if self.used + n > self.limit:
                return False
            self.used += n
            return True

    def release(self, n: int) -> None:
        with self._lock:
            self.used = max(0, self.used - n)


INFLIGHT = InflightBudget(512 * 1024 * 1024)
"""The default process-wide budget (replaced by ``server.ingest_inflight_bytes`` at start)."""


class BodyLease:
    """What one request holds of the in-flight budget; released when the request ends."""

    def __init__(self, budget: InflightBudget):
        self.budget = budget
        self.held = 0

    def take(self, n: int) -> None:
        if not self.budget.acquire(n):
            raise HTTPException(429, "citysoc is holding its limit of ingest data in flight; retry shortly",
                                headers={"Retry-After": "1"})
        self.held += n

    def release(self) -> None:
        self.budget.release(self.held)
        self.held = 0


async def read_body(request: Request, limit: int, lease: BodyLease) -> bytes:
    """The whole body (inflated if gzip), at most ``limit`` bytes, charged to ``lease``."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"body of {declared} bytes exceeds the {limit} byte limit; send smaller batches")
    gz = request.headers.get("content-encoding", "").lower() == "gzip"
    inflater = zlib.decompressobj(wbits=31) if gz else None
    parts: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        if not chunk:
            continue
        if inflater is None:
            size += len(chunk)
            if size > limit:
                raise HTTPException(413, f"body exceeds the {limit} byte limit; send smaller batches")
            lease.take(len(chunk))
            parts.append(chunk)
            continue
        lease.take(len(chunk))  # the compressed bytes are held too, while we read
        data = chunk
        while data:
            try:
                # at most _INFLATE_STEP per call: zlib gathers one call's output in blocks and
                # copies them into the result, so one unbounded call costs twice its output
                out = inflater.decompress(data, min(_INFLATE_STEP, limit - size + 1))
            except zlib.error as exc:
                raise HTTPException(400, f"body is not valid gzip: {exc}") from exc
            size += len(out)
            if size > limit:
                raise HTTPException(413, f"decompressed body exceeds the {limit} byte limit; send smaller batches")
            if out:
                lease.take(len(out))
                parts.append(out)
            data = inflater.unconsumed_tail
            if inflater.eof:
                break
        while inflater is not None and not inflater.eof and not data and out:
            # the chunk is consumed but zlib may still hold output it had no room for
            out = inflater.decompress(b"", min(_INFLATE_STEP, limit - size + 1))
            size += len(out)
            if size > limit:
                raise HTTPException(413, f"decompressed body exceeds the {limit} byte limit; send smaller batches")
            if out:
                lease.take(len(out))
                parts.append(out)
    if inflater is not None and not inflater.eof and size:
        raise HTTPException(400, "body is not valid gzip: the stream ended early")
    return b"".join(parts)


def iter_lines(body: bytes) -> Iterator[bytes]:
    """The non-blank lines of ``body``, stripped of their line ending, one at a time."""
    for m in _LINE.finditer(body):
        yield m.group().rstrip(b"\r")


def split_array(body: bytes, max_items: int) -> list[bytes]:
    """The elements of the JSON array ``body`` as their own bytes, as sent.

    Raises ``ValueError`` (with the byte offset) for a body that is not one array, and
    :class:`TooManyItems` once more than ``max_items`` elements are seen. Element
    validity is the parser's business: a broken element is one dead letter, not a 400.
    """
    start = body.find(b"[")
    if start < 0:
        raise ValueError("not a JSON array")
    items: list[bytes] = []
    depth = 0
    elem_start = start + 1
    closed = False
    close_end = len(body)
    for m in _TOKENS.finditer(body, start):
        tok = m.group()
        c = tok[:1]
        if c == b'"':
            continue
        if closed:
            raise ValueError(f"data after the end of the array at byte {m.start()}")
        if c in b"[{":
            depth += 1
            if depth > MAX_DEPTH + 1:
                raise ValueError(f"element nested deeper than {MAX_DEPTH} levels at byte {m.start()}")
        elif c in b"]}":
            depth -= 1
            if depth < 0:
                raise ValueError(f"unbalanced '{c.decode()}' at byte {m.start()}")
            if depth == 0:
                if c != b"]":
                    raise ValueError(f"array closed by '}}' at byte {m.start()}")
                last = body[elem_start:m.start()].strip()
                if last:
                    items.append(last)
                elif items:
                    raise ValueError(f"trailing comma before byte {m.start()}")
                closed = True
                close_end = m.end()
        elif c == b"," and depth == 1:
            elem = body[elem_start:m.start()].strip()
            if not elem:
                raise ValueError(f"empty element before byte {m.start()}")
            items.append(elem)
            if len(items) > max_items:
                raise TooManyItems(f"more than {max_items} items in one request; send smaller batches")
            elem_start = m.end()
    if not closed:
        raise ValueError("the array is not closed (body cut short?)")
    if len(items) > max_items:
        raise TooManyItems(f"more than {max_items} items in one request; send smaller batches")
    if body[close_end:].strip():
        raise ValueError(f"data after the end of the array at byte {close_end}")
    return items
