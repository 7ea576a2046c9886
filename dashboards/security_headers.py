"""Headers that make the console's pages safe to show attacker-controlled log content.

The Content-Security-Policy allows scripts only from our own origin (no inline script,
no inline event handlers, no ``eval``), so even a value that slipped past escaping
could not run. Applied to every response outside ``/api/``, ``/_bulk`` and ``/metrics``
(the API's own Swagger page keeps its own needs).
"""
from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["CSP", "SecurityHeadersMiddleware", "console_path"]

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
_HEADERS: list[tuple[bytes, bytes]] = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
]
_NOT_CONSOLE = ("/api/", "/_bulk", "/metrics", "/healthz")


def console_path(path: str) -> bool:
    """True for paths the console serves (pages and ``/static/console``)."""
    return not path.startswith(_NOT_CONSOLE) and not path.endswith("/_bulk")


class SecurityHeadersMiddleware:
    """Pure ASGI (does not buffer bodies, so the SSE stream passes untouched)."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not console_path(scope.get("path", "")):
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {k.lower() for k, _ in message.get("headers", [])}
                message["headers"] = list(message.get("headers", [])) + [h for h in _HEADERS if h[0] not in names]
            await send(message)

        await self.app(scope, receive, send_with_headers)
