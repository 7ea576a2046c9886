"""Who may do what: roles, permissions, credentials and the user store protocol.

Roles are named sets of permissions (not a ladder), because the auditor reads
everything and exports, yet must not triage; the ``ingest`` role exists for shippers
(Filebeat, rsyslog, Vector) whose key should open ``/_bulk`` and nothing else.

==========  ==============================================================
role        may
==========  ==============================================================
ingest      send events (``/api/v1/ingest``, ``/_bulk``, ``GET /``)
viewer      read events, alerts, cases, rules, dead letters, metrics
auditor     viewer + read and export the audit log, export reports
analyst     viewer + triage alerts (status, assignee, comments,
            suppressions) and work cases
responder   analyst + run and approve playbooks
admin       everything: rules, users, API keys, settings
==========  ==============================================================

Credentials:

* **Passwords** (console users) are hashed with Argon2id (``argon2-cffi``).
* **API keys** look like ``csk_<12 hex id>_<secret>``. Only the SHA-256 of the secret
  is stored (the secret has 256 bits of entropy, so a slow hash buys nothing and would
  cost every request). Elasticsearch clients send ``ApiKey base64(id:key)``;
  :func:`parse_api_key` accepts that, the raw key, and ``base64(id:secret)``.
* **Sessions** (console cookie) are random tokens stored hashed, each with its own CSRF
  token that state-changing cookie requests must echo in ``X-CSRF-Token``.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

__all__ = [
    "ROLES",
    "PERMISSIONS",
    "ROLE_PERMISSIONS",
    "role_allows",
    "Principal",
    "User",
    "ApiKey",
    "Session",
    "UserStore",
    "AuthError",
    "AccountExists",
    "AccountNotFound",
    "hash_password",
    "verify_password",
    "verify_dummy",
    "generate_password",
    "new_api_key",
    "parse_api_key",
    "hash_secret",
    "new_session_token",
    "LoginThrottle",
    "validate_name",
    "validate_role",
    "secrets_equal",
    "permissions_of",
]

PERMISSIONS: tuple[str, ...] = (
    "events:ingest",
    "events:read",
    "alerts:read",
    "alerts:write",
    "cases:read",
    "cases:write",
    "rules:read",
    "rules:write",
    "deadletters:read",
    "metrics:read",
    "audit:read",
    "export",
    "playbooks:read",
    "playbooks:run",
    "playbooks:approve",
    "users:admin",
    "settings:admin",
    "assets:read",
    "assets:write",
)

_READ = {"events:read", "alerts:read", "cases:read", "rules:read", "deadletters:read", "metrics:read", "playbooks:read",
         "assets:read"}
_ANALYST = _READ | {"alerts:write", "cases:write"}

ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    "ingest": frozenset({"events:ingest"}),
    "viewer": frozenset(_READ),
    "auditor": frozenset(_READ | {"audit:read", "export"}),
    "analyst": frozenset(_ANALYST),
    "responder": frozenset(_ANALYST | {"playbooks:run", "playbooks:approve"}),
    "admin": frozenset(PERMISSIONS),
}
ROLES: tuple[str, ...] = tuple(ROLE_PERMISSIONS)


def role_allows(role: str, permission: str) -> bool:
    """True when ``role`` holds ``permission``; unknown roles hold nothing."""
    if permission not in PERMISSIONS:
        raise ValueError(f"unknown permission {permission!r}; known: {', '.join(PERMISSIONS)}")
    return permission in ROLE_PERMISSIONS.get(role, frozenset())


class AuthError(ValueError):
    """A credential or account request that cannot be honoured; the message says why.

    ``status`` is the HTTP answer the API gives for it, chosen by the error's type
    (never by reading the message): 400 for an unusable request, and the subclasses below.
    """

    status: int = 400


class AccountExists(AuthError):
    """A user or key with that name already exists (409)."""

    status = 409


class AccountNotFound(AuthError):
    """No user or key by that name or id (404)."""

    status = 404


_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@\-]{0,63}$")


def validate_name(name: str, what: str = "name") -> str:
    if not _NAME.match(name or ""):
        raise AuthError(f"{what} {name!r} is not valid: use 1-64 letters, digits, '_', '.', '@' or '-', "
                        "starting with a letter or digit")
    return name


def validate_role(role: str) -> str:
    if role not in ROLE_PERMISSIONS:
        raise AuthError(f"unknown role {role!r}; choose one of {', '.join(ROLES)}")
    return role



@dataclass(slots=True)
class Principal:
    """The authenticated caller of one request (a user or an API key)."""

    kind: str  # "user" | "apikey" | "system"
    name: str
    role: str
    id: str = ""
    via: str = ""  # "session" | "bearer" | "apikey" | "basic" | "cli"
    csrf: str | None = None

    @property
    def actor(self) -> str:
        """How the audit log names this caller: ``user:alice``, ``apikey:k1 (filebeat)``."""
        if self.kind == "apikey":
            return f"apikey:{self.id} ({self.name})"
        return f"{self.kind}:{self.name}"

    def can(self, permission: str) -> bool:
        return role_allows(self.role, permission)


@dataclass(slots=True)
class User:
    id: int
    name: str
    role: str
    disabled: bool = False
    created_at: str = ""
    last_login: str | None = None
    password_hash: str = field(default="", repr=False)


@dataclass(slots=True)
class ApiKey:
    id: str
    name: str
    role: str
    created_by: str = ""
    created_at: str = ""
    last_used: str | None = None
    revoked: bool = False
    secret_hash: str = field(default="", repr=False)


@dataclass(slots=True)
class Session:
    user_id: int
    user_name: str
    role: str
    csrf: str
    created_at: float
    expires_at: float
    ip: str = ""


# ---------------------------------------------------------------------------- passwords
_hasher = None


def _ph():
    global _hasher
    if _hasher is None:
        from argon2 import PasswordHasher

        _hasher = PasswordHasher()  # Argon2id with the library's RFC 9106 low-memory profile
    return _hasher


MIN_PASSWORD = 10


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise AuthError(f"password too short: use at least {MIN_PASSWORD} characters (or omit it to get a generated one)")
    return _ph().hash(password)


def verify_password(stored_hash: str, password: str) -> bool:
    from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

    if not stored_hash:
        return False
    try:
        return _ph().verify(stored_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


_DUMMY_HASH: str | None = None


def verify_dummy(password: str) -> None:
    """Spend what :func:`verify_password` spends, for an account that cannot sign in
    (unknown or disabled), so the answer's timing does not tell which it was."""
    global _DUMMY_HASH
    if _DUMMY_HASH is None:
        _DUMMY_HASH = _ph().hash(secrets.token_urlsafe(20))
    verify_password(_DUMMY_HASH, password)


def generate_password() -> str:
    """A random password to print once (about 120 bits)."""
    return secrets.token_urlsafe(20)


# ----------------------------------------------------------------------------- API keys
KEY_PREFIX = "csk_"
_KEY_RE = re.compile(r"^csk_([0-9a-f]{12})_([A-Za-z0-9_\-]{20,100})$")


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def new_api_key() -> tuple[str, str, str]:
    """A fresh key: ``(key_id, secret, full_key)``; show ``full_key`` once, store only the hash."""
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    return key_id, secret, f"{KEY_PREFIX}{key_id}_{secret}"


def parse_api_key(presented: str) -> tuple[str, str] | None:
    """``(key_id, secret)`` from any accepted form, or None when it is no key of ours.

    Accepted: the raw key ``csk_<id>_<secret>``; base64 of ``<id>:<full key>`` (what
    Elasticsearch clients send when configured with the id and the key); base64 of
    ``<id>:<secret>``; base64 of the raw key.
    """
    s = presented.strip()
    m = _KEY_RE.match(s)
    if m:
        return m.group(1), m.group(2)
    try:
        decoded = base64.b64decode(s + "=" * (-len(s) % 4), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    m = _KEY_RE.match(decoded)
    if m:
        return m.group(1), m.group(2)
    if ":" in decoded:
        kid, rest = decoded.split(":", 1)
        m = _KEY_RE.match(rest)
        if m:
            return (m.group(1), m.group(2)) if m.group(1) == kid or not kid else None
        if re.fullmatch(r"[0-9a-f]{12}", kid) and re.fullmatch(r"[A-Za-z0-9_\-]{20,100}", rest):
            return kid, rest
    return None


def new_session_token() -> tuple[str, str]:
    """``(session_token, csrf_token)``, both random; the store keeps the session's hash."""
    return secrets.token_urlsafe(32), secrets.token_urlsafe(24)


def secrets_equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))



# ------------------------------------------------------------------------------- store
@runtime_checkable
class UserStore(Protocol):
    """Users, API keys and console sessions. Implementation: ``storage.socdb``.

    Methods are synchronous (the API calls them through ``asyncio.to_thread``). None of
    them ever returns or logs a secret other than the one-time value from a ``create``.
    """

    def create_user(self, name: str, role: str, password: str) -> User: ...
    def get_user(self, name: str) -> User | None: ...
    def list_users(self) -> list[User]: ...
    def update_user(self, name: str, *, role: str | None = None, disabled: bool | None = None,
                    password: str | None = None) -> tuple[User, User]: ...
    def count_users(self) -> int: ...
    def authenticate(self, name: str, password: str) -> User | None: ...

    def create_api_key(self, name: str, role: str, created_by: str) -> tuple[ApiKey, str]: ...
    def list_api_keys(self) -> list[ApiKey]: ...
    def revoke_api_key(self, key_id: str) -> ApiKey: ...
    def check_api_key(self, key_id: str, secret: str) -> ApiKey | None: ...

    def create_session(self, user: User, *, ip: str, ttl_s: int) -> tuple[str, Session]: ...
    def get_session(self, token: str) -> Session | None: ...
    def delete_session(self, token: str) -> None: ...


# ----------------------------------------------------------------------- login throttle
class LoginThrottle:
    """Counts failed logins per (user, client address) and per account, in a sliding window.

    After ``max_failures`` failures of one (user, address) pair within ``window_s`` that
    pair is refused until the oldest failure ages out; after ``account_max_failures``
    failures of one account from anywhere (a spray over many addresses, or addresses
    spoofed through a proxy) the account is refused too. A success clears the pair.

    Memory is bounded whatever names an attacker sprays: at most ``max_keys`` pairs and
    ``max_keys`` accounts are tracked, least recently failed evicted first (an evicted
    key has its failures forgotten, which costs an attacker the work of filling the table
    with ``max_keys`` other names first).
    """

    def __init__(self, max_failures: int = 5, window_s: float = 300.0, clock: Callable[[], float] = time.monotonic,
                 *, account_max_failures: int = 20, max_keys: int = 10_000):
        self.max_failures = max_failures
        self.account_max_failures = account_max_failures
        self.window_s = window_s
        self.max_keys = max_keys
        self._clock = clock
        self._fails: OrderedDict[tuple[str, str], deque[float]] = OrderedDict()
        self._accounts: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def _window(self, table: OrderedDict, key: object, now: float) -> deque[float] | None:
        q = table.get(key)
        if q is None:
            return None
        while q and q[0] <= now - self.window_s:
            q.popleft()
        if not q:
            del table[key]
            return None
        return q

    def _wait(self, q: deque[float] | None, limit: int, now: float) -> float:
        if q is None or len(q) < limit:
            return 0.0
        return max(0.0, q[-limit] + self.window_s - now)

    def retry_after(self, user: str, ip: str) -> float:
        """Seconds until a try is allowed again (0 when allowed now)."""
        now = self._clock()
        name = user.lower()
        with self._lock:
            pair = self._wait(self._window(self._fails, (name, ip), now), self.max_failures, now)
            acct = self._wait(self._window(self._accounts, name, now), self.account_max_failures, now)
            return max(pair, acct)

    def _record(self, table: OrderedDict, key: object, now: float, keep: int) -> None:
        q = table.get(key)
        if q is None:
            q = table[key] = deque(maxlen=keep)
        else:
            table.move_to_end(key)
        q.append(now)
        while len(table) > self.max_keys:
            table.popitem(last=False)

    def failure(self, user: str, ip: str) -> None:
        now = self._clock()
        name = user.lower()
        with self._lock:
            self._record(self._fails, (name, ip), now, self.max_failures)
            self._record(self._accounts, name, now, self.account_max_failures)

    def success(self, user: str, ip: str) -> None:
        with self._lock:
            self._fails.pop((user.lower(), ip), None)

    def tracked(self) -> int:
        """Keys held (pairs + accounts): what the memory bound is about."""
        with self._lock:
            return len(self._fails) + len(self._accounts)


def permissions_of(role: str) -> Sequence[str]:
    return sorted(ROLE_PERMISSIONS.get(role, frozenset()))

