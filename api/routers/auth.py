"""Console sign-in: ``POST /auth/login`` sets the session cookie, ``POST /auth/logout``
ends it, ``GET /auth/me`` says who the caller is (and the CSRF token for the console).

Failed logins are throttled per (user, client address): after 5 failures in 5 minutes
the pair gets 429 with ``Retry-After`` until the oldest failure ages out.
"""
from __future__ import annotations

import asyncio
import math

from fastapi import APIRouter, HTTPException, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from api.auditing import audit
from api.deps import AuditDep, Caller, StateDep, UsersDep
from api.security import CSRF_COOKIE, SESSION_COOKIE, client_ip
from core.auth import LoginThrottle, Principal, permissions_of

__all__ = ["router", "SESSION_TTL_S"]

router = APIRouter(prefix="/auth", tags=["auth"])

SESSION_TTL_S = 12 * 3600


class LoginIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: str = Field(..., min_length=1, max_length=64)
    password: str = Field(..., min_length=1, max_length=1024)


class MeOut(BaseModel):
    name: str
    kind: str
    role: str
    permissions: list[str]
    via: str
    csrf_token: str | None = None
    """Send it back in X-CSRF-Token on state-changing requests made with the session cookie."""


def _me(p: Principal) -> MeOut:
    return MeOut(name=p.name, kind=p.kind, role=p.role, permissions=list(permissions_of(p.role)), via=p.via,
                 csrf_token=p.csrf)


def _throttle(state: StateDep) -> LoginThrottle:
    return state.services.login_throttle


@router.post("/login", response_model=MeOut, summary="Sign in with a user name and password (sets the session cookie)",
             responses={401: {"description": "wrong user name or password"},
                        429: {"description": "too many failed attempts; see Retry-After"}})
async def login(request: Request, response: Response, body: LoginIn, users: UsersDep, log: AuditDep,
                state: StateDep) -> MeOut:
    ip = client_ip(request)
    throttle = _throttle(state)
    wait = throttle.retry_after(body.username, ip)
    if wait > 0:
        raise HTTPException(429, f"too many failed sign-ins for this user from your address; try again in "
                                 f"{math.ceil(wait)} s", headers={"Retry-After": str(math.ceil(wait))})
    user = await asyncio.to_thread(users.authenticate, body.username, body.password)
    if user is None:
        throttle.failure(body.username, ip)
        await asyncio.to_thread(log.append, f"user:{body.username}", "auth.login_failed", f"user:{body.username}",
                                source_ip=ip)
        raise HTTPException(401, "wrong user name or password")
    throttle.success(body.username, ip)
    token, session = await asyncio.to_thread(users.create_session, user, ip=ip, ttl_s=SESSION_TTL_S)
    secure = request.url.scheme == "https"
    response.set_cookie(SESSION_COOKIE, token, max_age=SESSION_TTL_S, httponly=True, samesite="lax", secure=secure,
                        path="/")
    response.set_cookie(CSRF_COOKIE, session.csrf, max_age=SESSION_TTL_S, httponly=False, samesite="lax",
                        secure=secure, path="/")
    p = Principal(kind="user", name=user.name, role=user.role, id=str(user.id), via="session", csrf=session.csrf)
    await asyncio.to_thread(log.append, p.actor, "auth.login", f"user:{user.name}", source_ip=ip)
    return _me(p)


@router.post("/logout", status_code=204, response_class=Response, summary="End the console session")
async def logout(me: Caller, request: Request, users: UsersDep, log: AuditDep) -> Response:
    token = request.cookies.get(SESSION_COOKIE)
    if me.via == "session" and token:
        await asyncio.to_thread(users.delete_session, token)
        await audit(log, request, me, "auth.logout", f"user:{me.name}")
    resp = Response(status_code=204)
    resp.delete_cookie(SESSION_COOKIE, path="/")
    resp.delete_cookie(CSRF_COOKIE, path="/")
    return resp


@router.get("/me", response_model=MeOut, summary="Who is calling, with role, permissions and CSRF token")
async def me(me: Caller) -> MeOut:
    return _me(me)
