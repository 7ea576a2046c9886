"""``citysoc alerts``: list, show and triage alerts from the terminal (audited like the API)."""
from __future__ import annotations

import getpass

import click
import orjson
from rich import box
from rich.table import Table

from citysoc.commands._common import config_option, load, out
from citysoc.wiring import open_soc
from core.alerts import LEVELS, RESOLUTIONS, STATUSES, AlertFilter, NotFound, TransitionError, check_transition
from core.timezones import format_site_time, offset_label


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
    settings = load(config)
    soc = open_soc(settings)
    total, items = soc.alerts.list(AlertFilter(status=list(status) or None, level=list(level) or None,
                                               rule_id=rule_id, host=host, sort=sort, limit=limit,
                                               count_up_to=None))
    soc.close()
    if as_json:
        for a in items:
            click.echo(orjson.dumps(a.to_dict(with_events=False)).decode())
        return
    zone = settings.site.timezone
    t = Table(title=f"{total} alerts", caption=f"times: {zone} ({offset_label(zone)})", caption_justify="left",
              box=box.SIMPLE_HEAD, pad_edge=False)
    # (header, width, shown from this terminal width on); "rule" takes what is left.
    narrow = out.width < 100  # then "12-03 08:49:05" (month-day), the full date from 100 columns
    cols = [("id", 4, 0), ("last seen", 14 if narrow else 19, 0), ("level", 8, 0), ("risk", 4, 120), ("rule", 0, 0),
            ("host", 12, 0), ("user", 10, 140), ("src ip", 15, 110), ("count", 5, 130), ("status", 8, 0),
            ("assignee", 10, 150)]
    shown = [c for c in cols if out.width >= c[2]]
    left = out.width - sum(c[1] for c in shown) - 3 * len(shown) - 1  # padding and the gap between columns
    for name, width, _ in shown:
        t.add_column(name, width=width or max(left, 12), no_wrap=True, overflow="ellipsis")
    for a in items:
        e = a.entities
        cells = {"id": str(a.id), "last seen": format_site_time(a.last_seen, zone, with_zone=False)[5 if narrow else 0:], "level": a.level,
                 "risk": str(a.risk_score), "rule": a.rule_title, "host": e.host or "", "user": e.user or "",
                 "src ip": e.source_ip or "", "count": str(a.count), "status": a.status, "assignee": a.assignee or ""}
        t.add_row(*(cells[c[0]] for c in shown))
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
