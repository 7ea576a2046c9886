"""Users and API keys (admin only). Passwords and keys are shown once, in the answer
that created them, and never written to the audit log or any other log."""
from __future__ import annotations

import asyncio
from typing import Annotated, Literal

from fastapi import Depends, APIRouter, HTTPException, Path, Request
from pydantic import BaseModel, ConfigDict, Field

from api.auditing import audit
from api.deps import AuditDep, UsersDep
from api.security import Require
from core.auth import Principal
from core.auth import ApiKey, User, generate_password

__all__ = ["users_router", "keys_router"]

users_router = APIRouter(prefix="/users", tags=["users"])
keys_router = APIRouter(prefix="/apikeys", tags=["apikeys"])

Admin = Annotated[Principal, Depends(Require("users:admin"))]
Role = Literal["ingest", "viewer", "auditor", "analyst", "responder", "admin"]
Name = Field(..., min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.@\-]{0,63}$")


class UserOut(BaseModel):
    name: str
    role: str
    disabled: bool
    created_at: str
    last_login: str | None


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Name
    role: Role
    password: str | None = Field(None, min_length=10, max_length=1024)
    """Omit to have one generated and returned once."""


class UserCreated(UserOut):
    password: str | None = None
    """Only when generated: shown this once."""


class UserUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Role | None = None
    disabled: bool | None = None
    password: str | None = Field(None, min_length=10, max_length=1024)


class KeyOut(BaseModel):
    id: str
    name: str
    role: str
    created_by: str
    created_at: str
    last_used: str | None
    revoked: bool


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Name
    role: Role


class KeyCreated(KeyOut):
    key: str
    """The API key, shown this once: send it as `Authorization: ApiKey <key>`."""
    encoded: str
    """base64 of `<id>:<key>`, the form Elasticsearch clients send."""


def _user(u: User) -> UserOut:
    return UserOut(name=u.name, role=u.role, disabled=u.disabled, created_at=u.created_at, last_login=u.last_login)


def _key(k: ApiKey) -> KeyOut:
    return KeyOut(id=k.id, name=k.name, role=k.role, created_by=k.created_by, created_at=k.created_at,
                  last_used=k.last_used, revoked=k.revoked)


@users_router.get("", response_model=list[UserOut])
async def list_users(_me: Admin, users: UsersDep) -> list[UserOut]:
    return [_user(u) for u in await asyncio.to_thread(users.list_users)]


@users_router.post("", response_model=UserCreated, status_code=201)
async def create_user(me: Admin, request: Request, body: UserCreate, users: UsersDep, log: AuditDep) -> UserCreated:
    generated = body.password is None
    password = body.password or generate_password()
    u = await asyncio.to_thread(users.create_user, body.name, body.role, password)
    await audit(log, request, me, "user.create", f"user:{u.name}", after=_user(u).model_dump(),
                details={"password": "generated" if generated else "given"})
    return UserCreated(**_user(u).model_dump(), password=password if generated else None)


@users_router.patch("/{name}", response_model=UserOut)
async def update_user(me: Admin, request: Request, body: UserUpdate, users: UsersDep, log: AuditDep,
                      name: str = Path(..., max_length=64)) -> UserOut:
    if not body.model_fields_set:
        raise HTTPException(400, "nothing to change: give role, disabled or password")
    if name.lower() == me.name.lower() and me.kind == "user" and (body.disabled or (body.role and body.role != "admin")):
        raise HTTPException(400, "you cannot disable or demote yourself; ask another admin")
    before, after = await asyncio.to_thread(users.update_user, name, role=body.role, disabled=body.disabled,
                                            password=body.password)
    await audit(log, request, me, "user.update", f"user:{after.name}", before=_user(before).model_dump(),
                after=_user(after).model_dump(), details={"password_changed": body.password is not None})
    return _user(after)


@keys_router.get("", response_model=list[KeyOut])
async def list_keys(_me: Admin, users: UsersDep) -> list[KeyOut]:
    return [_key(k) for k in await asyncio.to_thread(users.list_api_keys)]


@keys_router.post("", response_model=KeyCreated, status_code=201)
async def create_key(me: Admin, request: Request, body: KeyCreate, users: UsersDep, log: AuditDep) -> KeyCreated:
    import base64

    k, full = await asyncio.to_thread(users.create_api_key, body.name, body.role, me.actor)
    await audit(log, request, me, "apikey.create", f"apikey:{k.id}", after=_key(k).model_dump())
    return KeyCreated(**_key(k).model_dump(), key=full, encoded=base64.b64encode(f"{k.id}:{full}".encode()).decode())


@keys_router.delete("/{key_id}", response_model=KeyOut, summary="Revoke an API key (it stops working at once)")
async def revoke_key(me: Admin, request: Request, users: UsersDep, log: AuditDep,
                     key_id: str = Path(..., max_length=64)) -> KeyOut:
    before = next((k for k in await asyncio.to_thread(users.list_api_keys) if k.id == key_id), None)
    if before is None:
        raise HTTPException(404, f"API key {key_id!r} does not exist")
    k = await asyncio.to_thread(users.revoke_api_key, key_id)
    await audit(log, request, me, "apikey.revoke", f"apikey:{k.id}", before=_key(before).model_dump(),
                after=_key(k).model_dump())
    return _key(k)
