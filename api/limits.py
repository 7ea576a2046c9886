"""Request body limits, enforced before a route reads anything.

Most of the API takes small JSON documents (1 MiB is generous); ingest routes keep
their own 100 MiB limit (Elasticsearch's default ``http.max_content_length``) and case
attachments allow 25 MiB plus multipart framing. Bodies without a Content-Length
(chunked) are counted as they stream and cut off at the limit.
"""
from __future__ import annotations

import re
from typing import Any

import orjson

__all__ = ["BodyLimitMiddleware", "DEFAULT_MAX_BODY", "limit_for"]

DEFAULT_MAX_BODY = 1024 * 1024
_RULES: list[tuple[re.Pattern[str], int]] = [
    (re.compile(r"^/api/v1/ingest$|^/_bulk$|^/[^/]+/_bulk$"), 100 * 1024 * 1024),
    (re.compile(r"^/api/v1/cases/[^/]+/attachments$"), 26 * 1024 * 1024),
    # Shippers' start-up PUTs: Filebeat's index template alone is about a megabyte.
    (re.compile(r"^/(?:_index_template|_component_template|_template|_ilm/policy|_ingest/pipeline)/[^/]+$"),
     16 * 1024 * 1024),
]


def limit_for(path: str) -> int:
    for pattern, limit in _RULES:
        if pattern.match(path):
            return limit
    return DEFAULT_MAX_BODY


class BodyLimitMiddleware:
    """Pure ASGI middleware: 413 with a JSON reason when a body exceeds its route's limit."""

    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = limit_for(scope.get("path", ""))
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    await _reject(send, 400, "Content-Length is not a number")
                    return
                if declared > limit:
                    await _reject(send, 413, f"request body of {declared} bytes exceeds this route's limit of "
                                             f"{limit} bytes; send less per request")
                    return
        seen = 0
        exceeded = False

        async def counted_receive() -> dict:
            nonlocal seen, exceeded
            if exceeded:
                return {"type": "http.disconnect"}
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > limit:
                    # Stop feeding the app; whatever it answers is replaced by the 413 below.
                    exceeded = True
                    return {"type": "http.disconnect"}
            return msg

        async def guarded_send(msg: dict) -> None:
            if not exceeded:
                await send(msg)

        try:
            await self.app(scope, counted_receive, guarded_send)
        except Exception:
            if not exceeded:
                raise
        if exceeded:
            await _reject(send, 413, f"request body exceeds this route's limit of {limit} bytes; "
                                     "send less per request")


async def _reject(send: Any, status: int, message: str) -> None:
    body = orjson.dumps({"detail": message})
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})
