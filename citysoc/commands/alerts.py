"""``citysoc alerts``: list, show and triage alerts from the terminal (audited like the API)."""
from __future__ import annotations

import getpass

import click
import orjson
from rich.table import Table

from citysoc.commands._common import config_option, load, out
from citysoc.wiring import open_soc
from core.alerts import LEVELS, RESOLUTIONS, STATUSES, AlertFilter, NotFound, TransitionError, check_transition


@click.group()
def alerts() -> None:
    """Alerts raised by the detection rules."""


@alerts.command("list")
@click.option("--status", type=click.Choice(STATUSES), multiple=True)
@click.option("--level", type=click.Choice(list(LEVELS)), multiple=True)
@click.option("--rule", "rule_id")
@click.option("--host")
@click.option("--sort", default="-last_seen", show_default=True,
              type=click.Choice(["-last_seen", "last_seen", "-first_seen", "-risk_score", "-count", "-id", "id"]))
@click.option("--limit", type=click.IntRange(1, 10_000), default=30, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@config_option
def list_(status, level, rule_id, host, sort, limit, as_json, config) -> None:
    """List alerts, most recent activity first."""
    soc = open_soc(load(config))
    total, items = soc.alerts.list(AlertFilter(status=list(status) or None, level=list(level) or None,
                                               rule_id=rule_id, host=host, sort=sort, limit=limit,
                                               count_up_to=None))
    soc.close()
    if as_json:
        for a in items:
            click.echo(orjson.dumps(a.to_dict(with_events=False)).decode())
        return
    t = Table(title=f"{total} alerts")
    for col in ("id", "last seen", "level", "risk", "rule", "host", "user", "src ip", "count", "status", "assignee"):
        t.add_column(col, overflow="fold")
    for a in items:
        e = a.entities
        t.add_row(str(a.id), a.last_seen, a.level, str(a.risk_score), a.rule_title[:60], e.host or "", e.user or "",
                  e.source_ip or "", str(a.count), a.status, a.assignee or "")
    out.print(t)


@alerts.command("show")
@click.argument("alert_id", type=int)
@config_option
def show(alert_id: int, config: str | None) -> None:
    """Print one alert with its sample events and comments as JSON."""
    soc = open_soc(load(config))
    try:
        a = soc.alerts.get(alert_id)
        comments = soc.alerts.comments(alert_id)
    except NotFound as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        soc.close()
    doc = a.to_dict()
    doc["comments"] = [{"author": c.author, "time": c.time, "text": c.text} for c in comments]
    click.echo(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode())


@alerts.command("update")
@click.argument("alert_ids", type=int, nargs=-1, required=True)
@click.option("--status", type=click.Choice(STATUSES))
@click.option("--resolution", type=click.Choice(RESOLUTIONS), help="Required with --status closed.")
@click.option("--assignee")
@click.option("--comment")
@config_option
def update(alert_ids, status, resolution, assignee, comment, config) -> None:
    """Change status/assignee of ALERT_IDS and/or comment on them."""
    if not (status or assignee or comment):
        raise click.UsageError("give --status, --assignee or --comment")
    actor = f"cli:{getpass.getuser()}"
    soc = open_soc(load(config))
    failed = 0
    try:
        for aid in alert_ids:
            try:
                cur = soc.alerts.get(aid)
                if status:
                    check_transition(cur.status, status, resolution)
                if status or assignee:
                    before, after = soc.alerts.update(aid, status=status, resolution=resolution, assignee=assignee)
                    view = lambda x: {"status": x.status, "resolution": x.resolution, "assignee": x.assignee}  # noqa: E731
                    soc.audit.append(actor, "alert.update", f"alert:{aid}", before=view(before), after=view(after))
                if comment:
                    c = soc.alerts.add_comment(aid, actor, comment)
                    soc.audit.append(actor, "alert.comment", f"alert:{aid}", details={"comment_id": c.id})
                out.print(f"alert {aid}: done")
            except (NotFound, TransitionError) as exc:
                failed += 1
                out.print(f"[red]alert {aid}: {exc}[/]")
    finally:
        soc.close()
    if failed:
        raise click.ClickException(f"{failed} of {len(alert_ids)} alerts not changed")
