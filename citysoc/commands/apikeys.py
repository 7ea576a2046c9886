"""``citysoc apikeys``: keys for shippers, scripts and Prometheus. The key is printed once."""
from __future__ import annotations

import base64
import getpass

import click
from rich.table import Table

from citysoc.commands._common import config_option, load, out
from citysoc.wiring import open_soc
from core.auth import ROLES, AuthError


@click.group()
def apikeys() -> None:
    """Create, list and revoke API keys."""


@apikeys.command("create")
@click.argument("name")
@click.option("--role", type=click.Choice(ROLES), required=True,
              help="ingest for shippers (/_bulk, /api/v1/ingest only), viewer for Prometheus, ...")
@config_option
def create(name: str, role: str, config: str | None) -> None:
    """Create key NAME with ROLE; prints the key once (only its hash is stored)."""
    soc = open_soc(load(config))
    actor = f"cli:{getpass.getuser()}"
    try:
        k, full = soc.users.create_api_key(name, role, actor)
    except AuthError as exc:
        raise click.ClickException(str(exc)) from exc
    soc.audit.append(actor, "apikey.create", f"apikey:{k.id}", after={"id": k.id, "name": k.name, "role": k.role})
    soc.close()
    click.echo(f"id:      {k.id}")
    click.echo(f"key:     {full}")
    click.echo(f"encoded: {base64.b64encode(f'{k.id}:{full}'.encode()).decode()}")
    click.echo("Shown once. Send `Authorization: ApiKey <key>` (or `Bearer <key>`); Elasticsearch clients take "
               "id + key (they send the encoded form); for /_bulk with basic auth use user `apikey`, password <key>.",
               err=True)


@apikeys.command("list")
@config_option
def list_(config: str | None) -> None:
    """List keys (never the secrets)."""
    soc = open_soc(load(config))
    t = Table()
    for col in ("id", "name", "role", "created by", "created", "last used", "revoked"):
        t.add_column(col)
    for k in soc.users.list_api_keys():
        t.add_row(k.id, k.name, k.role, k.created_by, k.created_at, k.last_used or "", "yes" if k.revoked else "")
    soc.close()
    out.print(t)


@apikeys.command("revoke")
@click.argument("key_id")
@config_option
def revoke(key_id: str, config: str | None) -> None:
    """Revoke KEY_ID: it stops working at once."""
    soc = open_soc(load(config))
    actor = f"cli:{getpass.getuser()}"
    try:
        k = soc.users.revoke_api_key(key_id)
    except AuthError as exc:
        raise click.ClickException(str(exc)) from exc
    soc.audit.append(actor, "apikey.revoke", f"apikey:{k.id}", before={"revoked": False}, after={"revoked": True})
    soc.close()
    out.print(f"revoked {k.id} ({k.name})")
