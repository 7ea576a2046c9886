"""Warehouse account actions: ``disable_db_account`` / ``enable_db_account`` (PostgreSQL).

The role name goes into ``ALTER ROLE`` as a quoted identifier built by psycopg's
``sql.Identifier`` (never by string formatting), and into the ``pg_stat_activity``
query as a bound parameter. The connection string comes from settings
(``playbooks.databases.<name>.dsn``) and never appears in a run record or the audit log.
"""
from __future__ import annotations

from typing import Any

from playbooks.actions.base import Action, ActionContext, ActionError, Param

__all__ = ["DisableDbAccount", "EnableDbAccount"]


def _connect(ctx: ActionContext, database: str) -> Any:
    try:
        import psycopg
    except ImportError:  # pragma: no cover - installed with citysoc
        raise ActionError("psycopg is not installed (pip install 'psycopg[binary]')") from None
    target = ctx.settings.databases.get(database)
    if target is None:
        raise ActionError(f"unknown database {database!r}; configured: "
                          f"{', '.join(ctx.settings.databases) or 'none (set playbooks.databases)'}")
    timeout_ms = int(max(1.0, ctx.timeout) * 1000)
    try:
        return psycopg.connect(target.dsn, connect_timeout=max(1, int(ctx.timeout)), autocommit=True,
                               options=f"-c statement_timeout={timeout_ms} -c lock_timeout={timeout_ms}")
    except psycopg.Error as exc:
        raise ActionError(f"cannot connect to database {database!r}: {str(exc).strip()}") from None


def _set_login(ctx: ActionContext, database: str, account: str, login: bool, terminate: bool) -> dict[str, Any]:
    import psycopg
    from psycopg import sql

    with _connect(ctx, database) as conn:
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


class DisableDbAccount(Action):
    name = "disable_db_account"
    description = "Stop an account from logging in to a warehouse database (ALTER ROLE ... NOLOGIN) and end its sessions."
    inputs = {"database": Param("line", doc="name under playbooks.databases"),
              "account": Param("identifier", doc="role name, exactly as in the database"),
              "terminate_sessions": Param("bool", required=False, default=True)}
    outputs = {"database": "", "account": "", "could_login_before": "false when it was already disabled",
               "sessions_terminated": "open sessions ended"}
    destructive = True

    def run(self, ctx: ActionContext, *, database: str, account: str, terminate_sessions: bool = True) -> dict[str, Any]:
        return _set_login(ctx, database, account, False, terminate_sessions)

    def describe(self, ctx: ActionContext, *, database: str, account: str, terminate_sessions: bool = True) -> str:
        from psycopg import sql

        if database not in ctx.settings.databases:
            raise ActionError(f"unknown database {database!r}")
        ident = sql.Identifier(account).as_string(None)
        return (f"would run ALTER ROLE {ident} NOLOGIN on {database!r}"
                + (" and end the account's open sessions" if terminate_sessions else ""))


class EnableDbAccount(Action):
    name = "enable_db_account"
    description = "Let a disabled warehouse account log in again (ALTER ROLE ... LOGIN)."
    inputs = {"database": Param("line"), "account": Param("identifier")}
    outputs = {"database": "", "account": "", "could_login_before": "", "sessions_terminated": "always 0"}

    def run(self, ctx: ActionContext, *, database: str, account: str) -> dict[str, Any]:
        return _set_login(ctx, database, account, True, False)

    def describe(self, ctx: ActionContext, *, database: str, account: str) -> str:
        from psycopg import sql

        return f"would run ALTER ROLE {sql.Identifier(account).as_string(None)} LOGIN on {database!r}"
