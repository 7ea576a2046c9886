"""Warehouse account actions: ``disable_db_account`` / ``enable_db_account``.

PostgreSQL: ``ALTER ROLE <name> NOLOGIN`` with the name quoted by psycopg's
``sql.Identifier`` (never string formatting), open sessions ended through
``pg_terminate_backend`` with the name as a bound parameter.

MariaDB: ``ALTER USER 'name'@'host' ACCOUNT LOCK`` for every host entry of the user;
MariaDB account names are string literals, so both parts are bound parameters that
PyMySQL quotes; open sessions are found in ``information_schema.PROCESSLIST`` (bound
parameter) and ended with ``KILL CONNECTION <int>``.

Connection strings come from settings (``playbooks.databases.<name>``) and never
appear in a run record or the audit log.
"""
from __future__ import annotations

from typing import Any

from core.messages import Message
from playbooks.actions.base import Action, ActionContext, ActionError, Param

__all__ = ["DisableDbAccount", "EnableDbAccount", "parse_mariadb_dsn"]

_MARIADB_KEYS = {"host": str, "port": int, "user": str, "password": str, "unix_socket": str, "database": str}


def parse_mariadb_dsn(dsn: str) -> dict[str, Any]:
    """``key=value`` pairs (host, port, user, password, unix_socket, database) -> PyMySQL arguments."""
    out: dict[str, Any] = {}
    for part in dsn.split():
        key, sep, value = part.partition("=")
        if not sep or key not in _MARIADB_KEYS:
            raise ActionError(f"MariaDB dsn: {part.split('=')[0]!r} is not one of {', '.join(_MARIADB_KEYS)} "
                              "(write key=value pairs separated by spaces)")
        try:
            out[key] = _MARIADB_KEYS[key](value)
        except ValueError:
            raise ActionError(f"MariaDB dsn: {key} must be a number") from None
    return out


def _target(ctx: ActionContext, database: str) -> Any:
    target = ctx.settings.databases.get(database)
    if target is None:
        raise ActionError(f"unknown database {database!r}; configured: "
                          f"{', '.join(ctx.settings.databases) or 'none (set playbooks.databases)'}")
    return target


def _pg_set_login(ctx: ActionContext, database: str, dsn: str, account: str, login: bool,
                  terminate: bool) -> dict[str, Any]:
    import psycopg
    from psycopg import sql

    timeout_ms = int(max(1.0, ctx.timeout) * 1000)
    try:
        conn = psycopg.connect(dsn, connect_timeout=max(1, int(ctx.timeout)), autocommit=True,
                               options=f"-c statement_timeout={timeout_ms} -c lock_timeout={timeout_ms}")
    except psycopg.Error as exc:
        raise ActionError(f"cannot connect to database {database!r}: {str(exc).strip()}") from None
    with conn:
        try:
            row = conn.execute("SELECT rolcanlogin FROM pg_roles WHERE rolname = %s", (account,)).fetchone()
            if row is None:
                raise ActionError(f"database {database!r} has no role {account!r}")
            conn.execute(sql.SQL("ALTER ROLE {} " + ("LOGIN" if login else "NOLOGIN")).format(sql.Identifier(account)))
            killed = 0
            if terminate and not login:
                killed = len(conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s AND pid <> pg_backend_pid()",
                    (account,)).fetchall())
        except psycopg.Error as exc:
            raise ActionError(f"database {database!r}: {str(exc).strip()}") from None
    return {"database": database, "account": account, "could_login_before": bool(row[0]),
            "sessions_terminated": killed}


def _mariadb_set_login(ctx: ActionContext, database: str, dsn: str, account: str, login: bool,
                       terminate: bool) -> dict[str, Any]:
    try:
        import pymysql
    except ImportError:
        raise ActionError("PyMySQL is not installed (pip install pymysql) but a MariaDB database is configured") from None
    t = max(1, int(ctx.timeout))
    try:
        conn = pymysql.connect(**parse_mariadb_dsn(dsn), connect_timeout=t, read_timeout=t, write_timeout=t,
                               autocommit=True)
    except pymysql.MySQLError as exc:
        raise ActionError(f"cannot connect to database {database!r}: {exc}") from None
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT Host, JSON_VALUE(Priv, '$.account_locked') FROM mysql.global_priv WHERE User = %s",
                        (account,))
            hosts = cur.fetchall()
            if not hosts:
                raise ActionError(f"database {database!r} has no user {account!r}")
            could_login = any(str(locked) not in ("1", "true") for _host, locked in hosts)
            for host, _locked in hosts:
                cur.execute("ALTER USER %s@%s ACCOUNT " + ("UNLOCK" if login else "LOCK"), (account, host))
            killed = 0
            if terminate and not login:
                cur.execute("SELECT ID FROM information_schema.PROCESSLIST WHERE USER = %s AND ID <> CONNECTION_ID()",
                            (account,))
                for (pid,) in cur.fetchall():
                    try:
                        cur.execute("KILL CONNECTION %s", (int(pid),))
                        killed += 1
                    except pymysql.MySQLError:
                        pass  # it ended by itself meanwhile
    except pymysql.MySQLError as exc:
        raise ActionError(f"database {database!r}: {exc}") from None
    finally:
        conn.close()
    return {"database": database, "account": account, "could_login_before": could_login,
            "sessions_terminated": killed}


def _set_login(ctx: ActionContext, database: str, account: str, login: bool, terminate: bool) -> dict[str, Any]:
    target = _target(ctx, database)
    fn = _mariadb_set_login if target.engine == "mariadb" else _pg_set_login
    return fn(ctx, database, target.dsn, account, login, terminate)


def _statement(ctx: ActionContext, database: str, account: str, login: bool) -> str:
    target = _target(ctx, database)
    if target.engine == "mariadb":
        quoted = "'" + account.replace("\\", "\\\\").replace("'", "\\'") + "'"
        return f"ALTER USER {quoted}@<each host> ACCOUNT {'UNLOCK' if login else 'LOCK'}"
    from psycopg import sql

    return f"ALTER ROLE {sql.Identifier(account).as_string(None)} {'LOGIN' if login else 'NOLOGIN'}"


class DisableDbAccount(Action):
    name = "disable_db_account"
    description = ("Stop an account from logging in to a warehouse database (PostgreSQL ALTER ROLE ... NOLOGIN, "
                   "MariaDB ACCOUNT LOCK) and end its open sessions.")
    inputs = {"database": Param("line", doc="name under playbooks.databases"),
              "account": Param("identifier", doc="role / user name, exactly as in the database"),
              "terminate_sessions": Param("bool", required=False, default=True)}
    outputs = {"database": "", "account": "", "could_login_before": "false when it was already disabled",
               "sessions_terminated": "open sessions ended"}
    destructive = True
    target = ("account", "user")

    def run(self, ctx: ActionContext, *, database: str, account: str, terminate_sessions: bool = True) -> dict[str, Any]:
        return _set_login(ctx, database, account, False, terminate_sessions)

    def describe(self, ctx: ActionContext, *, database: str, account: str, terminate_sessions: bool = True) -> str:
        return Message("msg.db.would_run", statement=_statement(ctx, database, account, False), database=repr(database),
                       sessions=Message("msg.db.end_sessions") if terminate_sessions else "")


class EnableDbAccount(Action):
    name = "enable_db_account"
    description = "Let a disabled warehouse account log in again (ALTER ROLE ... LOGIN / ACCOUNT UNLOCK)."
    inputs = {"database": Param("line"), "account": Param("identifier")}
    outputs = {"database": "", "account": "", "could_login_before": "", "sessions_terminated": "always 0"}

    def run(self, ctx: ActionContext, *, database: str, account: str) -> dict[str, Any]:
        return _set_login(ctx, database, account, True, False)

    def describe(self, ctx: ActionContext, *, database: str, account: str) -> str:
        return Message("msg.db.would_run", statement=_statement(ctx, database, account, True), database=repr(database),
                       sessions="")
