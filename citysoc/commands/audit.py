"""``citysoc audit``: verify the hash chain, read or export the log."""
from __future__ import annotations

import getpass
import sys

import click
import orjson
from rich.table import Table

from citysoc.commands._common import config_option, err, load, out
from citysoc.wiring import open_soc


@click.group()
def audit() -> None:
    """The tamper-evident audit log."""


@audit.command("verify")
@click.option("--expect-head", help="Head hash recorded earlier: also catches entries cut off the end.")
@config_option
def verify(expect_head: str | None, config: str | None) -> None:
    """Recompute the hash chain; name the first entry that was edited, deleted or reordered.

    Exits 1 when the chain is broken."""
    soc = open_soc(load(config))
    r = soc.audit.verify()
    soc.close()
    if not r.ok:
        err.print(f"[bold red]audit log BROKEN[/] at entry {r.first_bad_seq}: {r.reason} "
                  f"({r.checked} entries before it are intact)")
        sys.exit(1)
    if expect_head and expect_head != r.head:
        err.print(f"[bold red]audit log BROKEN[/]: the chain is intact but its head {r.head} is not the expected "
                  f"{expect_head}: entries were removed from the end (or the expected hash is from another log)")
        sys.exit(1)
    click.echo(f"audit log intact: {r.checked} entries, head {r.head}")


@audit.command("list")
@click.option("--limit", type=click.IntRange(1, 100_000), default=30, show_default=True)
@click.option("--actor")
@click.option("--action")
@click.option("--target")
@config_option
def list_(limit: int, actor: str | None, action: str | None, target: str | None, config: str | None) -> None:
    """Newest entries first."""
    soc = open_soc(load(config))
    total, items = soc.audit.list(limit=limit, actor=actor, action=action, target=target)
    soc.close()
    t = Table(title=f"{total} audit entries")
    for col in ("seq", "time", "actor", "action", "target", "from", "change"):
        t.add_column(col, overflow="fold")
    for e in items:
        change = ""
        if e.before is not None or e.after is not None:
            change = f"{orjson.dumps(e.before).decode()} -> {orjson.dumps(e.after).decode()}"
        t.add_row(str(e.seq), e.time, e.actor, e.action, e.target, e.source_ip, change[:200])
    out.print(t)


@audit.command("export")
@config_option
def export(config: str | None) -> None:
    """The whole log as NDJSON on stdout, oldest first (the export itself is audited)."""
    soc = open_soc(load(config))
    soc.audit.append(f"cli:{getpass.getuser()}", "audit.export", "audit")
    for e in soc.audit.iter_all():
        sys.stdout.buffer.write(orjson.dumps(e.to_dict()) + b"\n")
    soc.close()
