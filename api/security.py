"""Authentication and authorization for every route.

A request proves who it is with one of:

* ``Authorization: ApiKey <key>``: the raw key (``csk_<id>_<secret>``) or, as
  Elasticsearch clients send it, base64 of ``<id>:<key>``;
* ``Authorization: Bearer <key>``: the same key (Prometheus, curl, scripts);
* ``Authorization: Basic base64(<anything>:<key>)``: **only on ingest routes**
  (``/_bulk``, ``/api/v1/ingest``), because rsyslog's omelasticsearch and older
  Filebeat setups can only send basic auth. Use username ``apikey`` and the key as
  password. Browsers cache basic credentials, so no other route accepts them;
* the console's session cookie ``citysoc_session`` (HttpOnly, SameSite=Lax), set by
  ``POST /api/v1/auth/login``. Any state-changing request (not GET/HEAD/OPTIONS) made
  with the cookie must echo the session's CSRF token in ``X-CSRF-Token`` (it is in the
  login answer, in ``GET /api/v1/auth/me`` and in the readable ``citysoc_csrf`` cookie).

Each route declares what it needs with a :class:`Require` dependency; the app copies
that permission into the OpenAPI document as ``x-citysoc-permission`` so a test can
walk every route and prove anonymous callers get 401 and too-weak roles 403.
"""
from __future__ import annotations

import base64
import binascii
from typing import Any

from fastapi import HTTPException, Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.security import APIKeyCookie, APIKeyHeader
from fastapi import Security

from core.auth import PERMISSIONS, Principal, parse_api_key, secrets_equal

__all__ = ["Require", "SESSION_COOKIE", "CSRF_COOKIE", "CSRF_HEADER", "authenticate", "annotate_permissions",
           "client_ip", "AUTHENTICATED", "require", "safe_next"]

SESSION_COOKIE = "citysoc_session"
CSRF_COOKIE = "citysoc_csrf"
CSRF_HEADER = "X-CSRF-Token"
AUTHENTICATED = "authenticated"
"""Pseudo-permission: any signed-in caller (``/auth/me``, ``/auth/logout``, the API docs)."""

_SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
_CHALLENGE = 'ApiKey, Bearer, Basic realm="citysoc"'

_header_scheme = APIKeyHeader(name="Authorization", auto_error=False, scheme_name="apiKey",
                              description="`ApiKey <key>` or `Bearer <key>`; on ingest routes also "
                                          "`Basic base64(apikey:<key>)`")
_cookie_scheme = APIKeyCookie(name=SESSION_COOKIE, auto_error=False, scheme_name="session",
                              description="Console session from POST /api/v1/auth/login; "
                                          "state-changing requests also need the X-CSRF-Token header")


def client_ip(request: Request) -> str:
    """The caller's address as uvicorn saw it. ``X-Forwarded-For`` is honoured only when
    the peer is listed in ``server.trusted_proxies`` (uvicorn's ``forwarded_allow_ips``,
    set by ``citysoc/runtime.py``); by default no proxy is trusted, so a client cannot
    fake its address for the login throttle or the audit log."""
    return request.client.host if request.client else ""


def safe_next(target: str | None, default: str = "/") -> str:
    """``target`` when it is a path on this site, else ``default``: where to go after
    signing in (or switching language) without becoming an open redirect.

    Refused: absolute URLs, ``//host`` and ``/\\host`` (protocol-relative), backslashes
    (browsers read them as ``/``), and any control character or whitespace, raw or
    percent-encoded (browsers strip tab and newline, so ``/%09/evil.example`` would become
    ``//evil.example``).
    """
    from urllib.parse import unquote, urlsplit

    if not target or len(target) > 2048:
        return default
    decoded = target
    for _ in range(3):  # undo double encoding too: every layer must be clean
        if any(ord(c) < 0x20 or ord(c) == 0x7F for c in decoded) or "\\" in decoded:
            return default
        if not decoded.startswith("/") or decoded.startswith("//"):
            return default
        nxt = unquote(decoded)
        if nxt == decoded:
            break
        decoded = nxt
    else:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return default
    return target


def _unauthorized(message: str) -> HTTPException:
    return HTTPException(401, message, headers={"WWW-Authenticate": _CHALLENGE})


def _users(request: Request) -> Any:
    users = request.app.state.citysoc.services.users
    if users is None:
        raise HTTPException(503, "authentication is not configured: no user store is wired into this server")
    return users


def _key_principal(users: Any, presented: str, via: str) -> Principal:
    parsed = parse_api_key(presented)
    if parsed is None:
        raise _unauthorized(f"the {via} credential is not a citysoc API key (expected csk_<id>_<secret> "
                            "or base64 of <id>:<key>)")
    key = users.check_api_key(*parsed)
    if key is None:
        raise _unauthorized("unknown or revoked API key; create one with `citysoc apikeys create NAME --role ROLE`")
    return Principal(kind="apikey", name=key.name, role=key.role, id=key.id, via=via)


async def authenticate(request: Request, permission: str) -> Principal | None:
    """The caller of ``request``, None when it presented nothing. Raises 401 for a bad credential."""
    cached = getattr(request.state, "principal", None)
    if cached is not None:
        return cached
    users = _users(request)
    auth = request.headers.get("authorization")
    if auth:
        scheme, _, cred = auth.strip().partition(" ")
        scheme = scheme.lower()
        cred = cred.strip()
        if scheme in ("apikey", "bearer"):
            # Inline, not in a thread: a cached dict lookup, at worst one indexed read.
            return _key_principal(users, cred, scheme)
        if scheme == "basic":
            if permission != "events:ingest":
                raise _unauthorized("HTTP Basic is accepted only on ingest routes (/_bulk, /api/v1/ingest); "
                                    "use Authorization: ApiKey <key> or Bearer <key>")
            try:
                decoded = base64.b64decode(cred, validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError, ValueError):
                raise _unauthorized("malformed HTTP Basic credentials") from None
            _user, _, password = decoded.partition(":")
            presented = password if parse_api_key(password) else cred
            return _key_principal(users, presented, "basic")
        raise _unauthorized(f"unsupported authorization scheme {scheme!r}; use ApiKey or Bearer")
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        session = users.get_session(token)  # one indexed read
        if session is None:
            raise _unauthorized("session expired or signed out; sign in again at POST /api/v1/auth/login")
        p = Principal(kind="user", name=session.user_name, role=session.role, id=str(session.user_id),
                      via="session", csrf=session.csrf)
        if request.method.upper() not in _SAFE_METHODS:
            sent = request.headers.get(CSRF_HEADER.lower(), "")
            if not sent or not secrets_equal(sent, session.csrf):
                raise HTTPException(403, f"missing or wrong {CSRF_HEADER} header: state-changing requests made with "
                                         "the session cookie must echo the CSRF token from the login answer")
        return p
    return None


async def require(request: Request, permission: str) -> Principal:
    """The caller, who must be signed in (401) and hold ``permission`` (403). For routes
    that decide at run time what they need (the console's negotiating ``GET /``)."""
    p = await authenticate(request, permission)
    if p is None:
        raise _unauthorized("sign in: send Authorization: ApiKey <key> (or Bearer <key>), "
                            "or the console session cookie")
    request.state.principal = p
    if permission != AUTHENTICATED and not p.can(permission):
        raise HTTPException(403, f"role {p.role!r} lacks permission {permission!r} for this request")
    return p


class Require:
    """Dependency: the caller must be signed in and hold ``permission``.

    Example::

        @router.get("/alerts")
        async def list_alerts(me: Annotated[Principal, Depends(Require("alerts:read"))]): ...
    """

    def __init__(self, permission: str):
        if permission != AUTHENTICATED and permission not in PERMISSIONS:
            raise ValueError(f"unknown permission {permission!r}")
        self.permission = permission

    async def __call__(self, request: Request, _authorization: str | None = Security(_header_scheme),
                       _session: str | None = Security(_cookie_scheme)) -> Principal:
        return await require(request, self.permission)

    def __repr__(self) -> str:
        return f"Require({self.permission!r})"


def _requirements(dep: Dependant) -> list[str]:
    found: list[str] = []
    if isinstance(dep.call, Require):
        found.append(dep.call.permission)
    for sub in dep.dependencies:
        found.extend(_requirements(sub))
    return found


def annotate_permissions(routes: list[Any]) -> None:
    """Copy each route's required permission into its OpenAPI operation
    (``x-citysoc-permission``); routes with no requirement get none."""
    for route in routes:
        if isinstance(route, APIRoute):
            perms = _requirements(route.dependant)
            if perms:
                extra = dict(route.openapi_extra or {})
                extra["x-citysoc-permission"] = perms[0] if len(set(perms)) == 1 else sorted(set(perms))
                route.openapi_extra = extra
