"""``citysoc search``: query stored events from the command line."""
from __future__ import annotations

import datetime as _dt
import sys

import click
import orjson
from rich.table import Table

from api.timeparams import parse_since, parse_time_bound
from citysoc.commands._common import config_option, load, out
from citysoc.wiring import open_store
from core.events import get_field
from core.protocols import QueryError
from core.timezones import format_site_time, offset_label


@click.command()
@click.argument("query", default="*")
@click.option("--since", help="Only events newer than this, e.g. 15m, 24h, 7d.")
@click.option("--from", "start", help="Start time (ISO 8601, epoch, now-24h).")
@click.option("--to", "end", help="End time (exclusive).")
@click.option("--limit", type=click.IntRange(1, 100_000), default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON document per line.")
@click.option("--count", "count_only", is_flag=True, help="Print only the number of matching events.")
@click.option("--asc", is_flag=True, help="Oldest first.")
@config_option
def search(query: str, since: str | None, start: str | None, end: str | None, limit: int, as_json: bool,
           count_only: bool, asc: bool, config: str | None) -> None:
    """Search stored events with a Lucene QUERY, as in Kibana.

    \b
    Examples:
      citysoc search 'host.name:cam-* AND event.outcome:failure' --since 24h
      citysoc search 'source.ip:10.20.0.0/16' --count
      citysoc search '"Failed password"' --json --limit 1000
    """
    settings = load(config)
    try:
        s = parse_time_bound(start)
        e = parse_time_bound(end)
        if since:
            s = _dt.datetime.now(_dt.timezone.utc) - parse_since(since)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc
    if s is not None and e is not None and s > e:
        raise click.BadParameter(f"--from ({start}) is later than --to ({end}): nothing can match; swap them")
    store = open_store(settings)
    try:
        if count_only:
            click.echo(store.count(query, start=s, end=e))
            return
        res = store.search(query, start=s, end=e, limit=limit, sort="asc" if asc else "desc")
    except QueryError as exc:
        pointer = ""
        if exc.position is not None:
            pointer = f"\n  {query}\n  {' ' * exc.position}^"
        raise click.ClickException(f"invalid query: {exc.message}{pointer}") from exc
    finally:
        store.close()
    if as_json:
        w = sys.stdout.buffer
        for hit in res.hits:
            w.write(orjson.dumps(hit) + b"\n")
        w.flush()
        return
    zone = settings.site.timezone
    table = Table(title=f"{res.total} events ({res.took_ms:.0f} ms)", show_lines=False,
                  caption=f"times: {zone} ({offset_label(zone)})", caption_justify="left")
    table.add_column("time", no_wrap=True, min_width=19)
    for col in ("event.dataset", "host.name", "source.ip", "user.name"):
        table.add_column(col, no_wrap=True, overflow="ellipsis", min_width=6, ratio=1)
    table.add_column("message", overflow="fold", ratio=3, min_width=16)
    for hit in res.hits:
        msg = get_field(hit, "message") or get_field(hit, "event.original") or ""
        table.add_row(format_site_time(str(get_field(hit, "@timestamp") or ""), zone, with_zone=False),
                      *(str(get_field(hit, c) or "") for c in ("event.dataset", "host.name", "source.ip", "user.name")),
                      str(msg)[:200])
    out.print(table)
