"""One call for routers to write the audit log: who (the caller), from where (the
client address), what, and before/after. Secrets never go in: callers pass public
views of users and keys only."""
from __future__ import annotations

import asyncio
from typing import Any

from fastapi import Request

from api.security import client_ip
from core.audit import AuditLog
from core.auth import Principal

__all__ = ["audit"]


async def audit(log: AuditLog, request: Request, who: Principal, action: str, target: str = "", *,
                before: Any = None, after: Any = None, details: dict[str, Any] | None = None) -> None:
    await asyncio.to_thread(log.append, who.actor, action, target, source_ip=client_ip(request),
                            before=before, after=after, details=details)
