"""SQLite implementation of :class:`core.auth.UserStore`: users, API keys, sessions.

Only hashes are stored: Argon2id for passwords, SHA-256 for API key secrets and session
tokens (both random, 256 bits). Nothing here logs a credential.
"""
from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable

from core.sqlitedb import inserted_id
from core.auth import (
    AccountExists,
    AccountNotFound,
    ApiKey,
    Session,
    User,
    hash_password,
    hash_secret,
    new_api_key,
    new_session_token,
    secrets_equal,
    validate_name,
    validate_role,
    verify_dummy,
    verify_password,
)
from core.events import utc_now_iso
from storage.socdb._db import SocDatabase

__all__ = ["SQLiteUserStore"]


def _user(r: sqlite3.Row) -> User:
    return User(id=r["id"], name=r["name"], role=r["role"], disabled=bool(r["disabled"]), created_at=r["created_at"],
                last_login=r["last_login"], password_hash=r["password_hash"])


def _key(r: sqlite3.Row) -> ApiKey:
    return ApiKey(id=r["id"], name=r["name"], role=r["role"], created_by=r["created_by"], created_at=r["created_at"],
                  last_used=r["last_used"], revoked=bool(r["revoked"]), secret_hash=r["secret_hash"])


class SQLiteUserStore:
    KEY_CACHE_S = 5.0

    def __init__(self, db: SocDatabase):
        self.db = db
        self._key_touch: dict[str, float] = {}
        self._key_cache: dict[str, tuple[str, ApiKey, float]] = {}
        self.password_changed: list[Callable[[User], None]] = []
        """Called with the user after a password change is committed (``citysoc/wiring.py``
        removes the initial admin password file then)."""

    # -- users ------------------------------------------------------------------------
    def create_user(self, name: str, role: str, password: str) -> User:
        validate_name(name, "user name")
        validate_role(role)
        pw_hash = hash_password(password)
        now = utc_now_iso()
        try:
            with self.db.write() as conn:
                cur = conn.execute("INSERT INTO users(name, role, password_hash, created_at) VALUES (?,?,?,?)",
                                   (name, role, pw_hash, now))
        except sqlite3.IntegrityError as exc:
            raise AccountExists(f"user {name!r} already exists; pick another name or change that user") from exc
        return User(id=inserted_id(cur), name=name, role=role, created_at=now, password_hash=pw_hash)

    def get_user(self, name: str) -> User | None:
        row = self.db.reader().execute("SELECT * FROM users WHERE name = ?", (name,)).fetchone()
        return _user(row) if row else None

    def list_users(self) -> list[User]:
        return [_user(r) for r in self.db.reader().execute("SELECT * FROM users ORDER BY name")]

    def count_users(self) -> int:
        return self.db.reader().execute("SELECT count(*) FROM users").fetchone()[0]

    def update_user(self, name: str, *, role: str | None = None, disabled: bool | None = None,
                    password: str | None = None) -> tuple[User, User]:
        if role is not None:
            validate_role(role)
        pw_hash = hash_password(password) if password is not None else None
        with self.db.write() as conn:
            row = conn.execute("SELECT * FROM users WHERE name = ?", (name,)).fetchone()
            if row is None:
                raise AccountNotFound(f"user {name!r} does not exist; see `citysoc users list`")
            before = _user(row)
            after = _user(row)
            if role is not None:
                after.role = role
            if disabled is not None:
                after.disabled = disabled
            if pw_hash is not None:
                after.password_hash = pw_hash
            conn.execute("UPDATE users SET role=?, disabled=?, password_hash=? WHERE id=?",
                         (after.role, int(after.disabled), after.password_hash, after.id))
            if after.disabled or pw_hash is not None or after.role != before.role:
                # A changed account starts over: its open console sessions end.
                conn.execute("DELETE FROM sessions WHERE user_id = ?", (after.id,))
        if pw_hash is not None:
            for listener in self.password_changed:
                listener(after)
        return before, after

    def authenticate(self, name: str, password: str) -> User | None:
        user = self.get_user(name)
        if user is None or user.disabled:
            # Spend the same time as a real check (one Argon2 verify) so the answer's
            # timing tells neither that the name is unknown nor that it is disabled.
            verify_dummy(password)
            return None
        if not verify_password(user.password_hash, password):
            return None
        with self.db.write() as conn:
            conn.execute("UPDATE users SET last_login = ? WHERE id = ?", (utc_now_iso(), user.id))
        return user

    # -- API keys ---------------------------------------------------------------------
    def create_api_key(self, name: str, role: str, created_by: str) -> tuple[ApiKey, str]:
        validate_name(name, "key name")
        validate_role(role)
        key_id, secret, full = new_api_key()
        now = utc_now_iso()
        with self.db.write() as conn:
            conn.execute("INSERT INTO api_keys(id, name, role, secret_hash, created_by, created_at) VALUES (?,?,?,?,?,?)",
                         (key_id, name, role, hash_secret(secret), created_by, now))
        return ApiKey(id=key_id, name=name, role=role, created_by=created_by, created_at=now,
                      secret_hash=hash_secret(secret)), full

    def list_api_keys(self) -> list[ApiKey]:
        return [_key(r) for r in self.db.reader().execute("SELECT * FROM api_keys ORDER BY created_at, id")]

    def revoke_api_key(self, key_id: str) -> ApiKey:
        with self.db.write() as conn:
            row = conn.execute("SELECT * FROM api_keys WHERE id = ?", (key_id,)).fetchone()
            if row is None:
                raise AccountNotFound(f"API key {key_id!r} does not exist; see `citysoc apikeys list`")
            conn.execute("UPDATE api_keys SET revoked = 1 WHERE id = ?", (key_id,))
        self._key_cache.pop(key_id, None)
        k = _key(row)
        k.revoked = True
        return k

    def check_api_key(self, key_id: str, secret: str) -> ApiKey | None:
        """The key when ``secret`` is right and the key is not revoked.

        Verified keys are remembered for :attr:`KEY_CACHE_S` seconds (a dict lookup
        instead of a query on every request); revoking through this store forgets the
        key at once, a revocation by another process (the CLI) takes effect within
        that time.
        """
        now = time.monotonic()
        cached = self._key_cache.get(key_id)
        if cached is not None and cached[2] > now:
            return cached[1] if secrets_equal(cached[0], hash_secret(secret)) else None
        row = self.db.reader().execute("SELECT * FROM api_keys WHERE id = ?", (key_id,)).fetchone()
        if row is None or row["revoked"]:
            return None
        if len(self._key_cache) > 10_000:
            self._key_cache.clear()
        self._key_cache[key_id] = (row["secret_hash"], _key(row), now + self.KEY_CACHE_S)
        if not secrets_equal(row["secret_hash"], hash_secret(secret)):
            return None
        # last_used at minute resolution: one write per key per minute, not per request.
        if now - self._key_touch.get(key_id, -1e9) > 60:
            self._key_touch[key_id] = now
            with self.db.write() as conn:
                conn.execute("UPDATE api_keys SET last_used = ? WHERE id = ?", (utc_now_iso(), key_id))
        return _key(row)

    # -- sessions ---------------------------------------------------------------------
    def create_session(self, user: User, *, ip: str, ttl_s: int) -> tuple[str, Session]:
        token, csrf = new_session_token()
        now = time.time()
        with self.db.write() as conn:
            conn.execute("DELETE FROM sessions WHERE expires_at < ?", (now,))
            conn.execute("INSERT INTO sessions(token_hash, user_id, csrf, created_at, expires_at, ip)"
                         " VALUES (?,?,?,?,?,?)", (hash_secret(token), user.id, csrf, now, now + ttl_s, ip))
        return token, Session(user_id=user.id, user_name=user.name, role=user.role, csrf=csrf,
                              created_at=now, expires_at=now + ttl_s, ip=ip)

    def get_session(self, token: str) -> Session | None:
        row = self.db.reader().execute(
            "SELECT s.*, u.name AS user_name, u.role AS role, u.disabled AS disabled FROM sessions s"
            " JOIN users u ON u.id = s.user_id WHERE s.token_hash = ?", (hash_secret(token),)).fetchone()
        if row is None or row["disabled"] or row["expires_at"] < time.time():
            return None
        return Session(user_id=row["user_id"], user_name=row["user_name"], role=row["role"], csrf=row["csrf"],
                       created_at=row["created_at"], expires_at=row["expires_at"], ip=row["ip"])

    def delete_session(self, token: str) -> None:
        with self.db.write() as conn:
            conn.execute("DELETE FROM sessions WHERE token_hash = ?", (hash_secret(token),))
