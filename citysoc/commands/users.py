"""``citysoc users``: console accounts (argon2-hashed passwords). Changes are audited."""
from __future__ import annotations

import getpass

import click
from rich.table import Table

from citysoc.commands._common import config_option, err, load, out
from citysoc.wiring import open_soc
from core.auth import ROLES, AuthError, generate_password


def _actor() -> str:
    return f"cli:{getpass.getuser()}"


@click.group()
def users() -> None:
    """Create and manage console users (roles: ingest, viewer, auditor, analyst, responder, admin)."""


@users.command("create")
@click.argument("name")
@click.option("--role", type=click.Choice(ROLES), required=True)
@click.option("--password", help="At least 10 characters. Omit to get a generated one, printed once.")
@config_option
def create(name: str, role: str, password: str | None, config: str | None) -> None:
    """Create user NAME with ROLE."""
    soc = open_soc(load(config))
    generated = password is None
    pw = password or generate_password()
    try:
        u = soc.users.create_user(name, role, pw)
    except AuthError as exc:
        raise click.ClickException(str(exc)) from exc
    soc.audit.append(_actor(), "user.create", f"user:{u.name}", after={"name": u.name, "role": u.role},
                     details={"password": "generated" if generated else "given"})
    soc.close()
    out.print(f"created user [bold]{u.name}[/] with role {u.role}")
    if generated:
        click.echo(f"password (shown once): {pw}")


@users.command("list")
@config_option
def list_(config: str | None) -> None:
    """List users."""
    soc = open_soc(load(config))
    t = Table()
    for col in ("name", "role", "disabled", "created", "last login"):
        t.add_column(col)
    for u in soc.users.list_users():
        t.add_row(u.name, u.role, "yes" if u.disabled else "", u.created_at, u.last_login or "")
    soc.close()
    out.print(t)


def _update(config: str | None, name: str, **changes) -> None:
    soc = open_soc(load(config))
    try:
        before, after = soc.users.update_user(name, **changes)
    except AuthError as exc:
        raise click.ClickException(str(exc)) from exc
    view = lambda u: {"name": u.name, "role": u.role, "disabled": u.disabled}  # noqa: E731
    soc.audit.append(_actor(), "user.update", f"user:{name}", before=view(before), after=view(after),
                     details={"password_changed": changes.get("password") is not None})
    soc.close()


@users.command("password")
@click.argument("name")
@click.option("--password", help="New password (at least 10 characters). Omit to get a generated one.")
@config_option
def password(name: str, password: str | None, config: str | None) -> None:
    """Set NAME's password (ends the user's open sessions)."""
    pw = password or generate_password()
    _update(config, name, password=pw)
    out.print(f"password of {name} changed")
    if password is None:
        click.echo(f"password (shown once): {pw}")


@users.command("role")
@click.argument("name")
@click.argument("role", type=click.Choice(ROLES))
@config_option
def role(name: str, role: str, config: str | None) -> None:
    """Give NAME another ROLE."""
    _update(config, name, role=role)
    out.print(f"{name} is now {role}")


@users.command("disable")
@click.argument("name")
@config_option
def disable(name: str, config: str | None) -> None:
    """Disable NAME (cannot sign in; sessions end)."""
    _update(config, name, disabled=True)
    err.print(f"{name} disabled")


@users.command("enable")
@click.argument("name")
@config_option
def enable(name: str, config: str | None) -> None:
    """Enable NAME again."""
    _update(config, name, disabled=False)
    out.print(f"{name} enabled")
