"""Browse the dead-letter store: every input that failed a stage, with the reason.

Pages are bounded in bytes as well as items: a page stops once its raw inputs pass
``PAGE_BYTES`` (at least one item is always returned) and ``next_offset`` says where the
next page starts, so a viewer's request never costs more than a few MiB whatever the
senders put in the store (entries are capped too: ``deadletters.max_entry_bytes``)."""
from __future__ import annotations

import asyncio
import base64

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from api.deps import DeadLettersDep
from api.security import Require
from core.protocols import DeadLetter

router = APIRouter(prefix="/deadletters", tags=["deadletters"], dependencies=[Depends(Require("deadletters:read"))])


class DeadLetterOut(BaseModel):
    id: int | None
    time: str
    stage: str
    reason: str
    source: str
    raw_text: str
    """The raw input decoded as UTF-8 with replacement characters, for reading."""
    raw_base64: str
    """The raw input byte for byte."""
    meta: dict


class DeadLetterPage(BaseModel):
    total: int
    items: list[DeadLetterOut]
    next_offset: int | None = None
    """Offset of the next page; None when this page reached the end."""


PAGE_BYTES = 4 * 1024 * 1024
MAX_LIMIT = 200


@router.get("", response_model=DeadLetterPage)
async def list_deadletters(
    dl: DeadLettersDep,
    stage: str | None = Query(None, max_length=32),
    limit: int = Query(100, ge=1, le=MAX_LIMIT),
    offset: int = Query(0, ge=0),
) -> DeadLetterPage:
    items = await asyncio.to_thread(dl.list, limit=limit, offset=offset, stage=stage)
    total = await asyncio.to_thread(dl.count, stage=stage)
    kept: list[DeadLetter] = []
    size = 0
    for d in items:
        if kept and size + len(d.raw) > PAGE_BYTES:
            break
        kept.append(d)
        size += len(d.raw)
    more = offset + len(kept) < total
    return DeadLetterPage(
        total=total,
        next_offset=offset + len(kept) if more else None,
        items=[
            DeadLetterOut(
                id=d.id,
                time=d.time,
                stage=d.stage,
                reason=d.reason,
                source=d.source,
                raw_text=d.raw[:65536].decode("utf-8", "replace"),
                raw_base64=base64.b64encode(d.raw).decode("ascii"),
                meta=d.meta,
            )
            for d in kept
        ],
    )
