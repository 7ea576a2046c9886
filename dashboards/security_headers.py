"""Headers that make the console's pages safe to show attacker-controlled log content.

The console's Content-Security-Policy allows scripts only from our own origin (no inline
script, no inline event handlers, no ``eval``), so even a value that slipped past
escaping could not run. API responses (``/api/``, ``/_bulk``, ``/metrics``) get a
stricter one with ``sandbox``: they are data, and a stored file served from there (an
HTML report, a case attachment) opened in the browser can never run script on our
origin. Only the API's Swagger page (``/api/v1/docs``, which loads its own scripts) is
left as the API serves it.
"""
from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["CSP", "API_CSP", "SecurityHeadersMiddleware", "console_path"]

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
_HEADERS: list[tuple[bytes, bytes]] = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
]
API_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'; sandbox"
_API_HEADERS: list[tuple[bytes, bytes]] = [
    (b"content-security-policy", API_CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
]
_NOT_CONSOLE = ("/api/", "/_bulk", "/metrics", "/healthz")
_UNTOUCHED = ("/api/v1/docs",)


def console_path(path: str) -> bool:
    """True for paths the console serves (pages and ``/static/console``)."""
    return not path.startswith(_NOT_CONSOLE) and not path.endswith("/_bulk")


class SecurityHeadersMiddleware:
    """Pure ASGI (does not buffer bodies, so the SSE stream passes untouched)."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or path.startswith(_UNTOUCHED):
            await self.app(scope, receive, send)
            return
        headers = _HEADERS if console_path(path) else _API_HEADERS

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {k.lower() for k, _ in message.get("headers", [])}
                message["headers"] = list(message.get("headers", [])) + [h for h in headers if h[0] not in names]
            await send(message)

        await self.app(scope, receive, send_with_headers)
