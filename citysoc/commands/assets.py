"""``citysoc assets``: the inventory from the terminal: import and export YAML/CSV, list
with health status, per-center summary. Changes are audited like the API's, and a
running server picks them up at its next asset check (the store's version moved)."""
from __future__ import annotations

import getpass
import sys
import time
from pathlib import Path

import click
from rich.table import Table

from citysoc.commands._common import config_option, load, out
from citysoc.wiring import data_dir, open_soc
from core.alerts import AlertFilter
from core.assets import (ASSET_TYPES, CENTERS, AssetError, center_summary, dump_csv, dump_yaml, health_status,
                         load_inventory_text)
from core.events import to_utc_iso

__all__ = ["assets"]

_STATUS_STYLE = {"healthy": "green", "degraded": "yellow", "silent": "red", "unknown": "dim"}


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli:unknown"


def _store(settings):
    from storage.assets import SQLiteAssetStore

    return SQLiteAssetStore(data_dir(settings) / "assets.db")


@click.group()
def assets() -> None:
    """The city's asset inventory, its health and risk."""


@assets.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, allow_dash=True))
@click.option("--format", "fmt", type=click.Choice(["auto", "yaml", "csv"]), default="auto", show_default=True,
              help="auto: by the file's extension (.csv is CSV, anything else YAML).")
@config_option
def import_(file: str, fmt: str, config: str | None) -> None:
    """Add or replace the assets listed in FILE (YAML or CSV); every change is audited.

    Nothing is written when any row is bad: the error lists every bad row.
    """
    settings = load(config)
    text = sys.stdin.read() if file == "-" else Path(file).read_text(encoding="utf-8")
    if fmt == "auto":
        fmt = "csv" if file.lower().endswith(".csv") else "yaml"
    try:
        items = load_inventory_text(text, fmt=fmt, source=file)
    except AssetError as exc:
        raise click.ClickException(str(exc)) from exc
    store = _store(settings)
    soc = open_soc(settings)
    actor = _actor()
    created = updated = unchanged = 0
    try:
        for a in items:
            before = store.get(a.id)
            if before == a:
                unchanged += 1
                continue
            store.put(a)
            soc.audit.append(actor, "asset.update" if before else "asset.create", f"asset:{a.id}",
                             before=before.to_record() if before else None, after=a.to_record(),
                             details={"via": f"citysoc assets import {Path(file).name}"})
            if before:
                updated += 1
            else:
                created += 1
    finally:
        store.close()
        soc.close()
    click.echo(f"{len(items)} assets in {file}: {created} created, {updated} updated, {unchanged} unchanged")


@assets.command("export")
@click.option("--format", "fmt", type=click.Choice(["yaml", "csv"]), default="yaml", show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write here instead of stdout.")
@config_option
def export(fmt: str, output: str | None, config: str | None) -> None:
    """Write the inventory as YAML or CSV (readable back by `assets import` and by the enricher)."""
    store = _store(load(config))
    items = store.list()
    store.close()
    text = dump_csv(items) if fmt == "csv" else dump_yaml(items)
    if output:
        Path(output).write_text(text, encoding="utf-8")
        out.print(f"{len(items)} assets written to {output}")
    else:
        click.echo(text, nl=False)


@assets.command("list")
@click.option("--center", type=click.Choice(CENTERS))
@click.option("--type", "type_", type=click.Choice(ASSET_TYPES))
@click.option("--status", type=click.Choice(["healthy", "degraded", "silent", "unknown"]))
@click.option("--limit", type=click.IntRange(1, 100_000), default=50, show_default=True)
@config_option
def list_(center: str | None, type_: str | None, status: str | None, limit: int, config: str | None) -> None:
    """Assets with their health (as of the server's last flush of its counters)."""
    store = _store(load(config))
    items, health = store.list(center=center, type=type_), store.health()
    store.close()
    now = time.time()
    table = Table(title="assets")
    table.add_column("id", no_wrap=True)
    for col in ( "type", "center", "crit", "status", "last seen", "events/h (last, baseline)", "addresses"):
        table.add_column(col)
    shown = 0
    for a in items:
        h = health.get(a.id)
        st = health_status(a, h, now)
        if status and st != status:
            continue
        shown += 1
        if shown > limit:
            break
        rate = f"{h.last_hour_count if h.last_hour_count is not None else '-'}, " \
               f"{h.baseline:.1f}" if h and h.baseline is not None else "-"
        table.add_row(a.id, a.type, a.center, str(a.criticality), f"[{_STATUS_STYLE[st]}]{st}[/]",
                      h.to_dict()["last_seen_iso"] or "-" if h else "-", rate, " ".join(a.addresses())[:60])
    out.print(table)
    click.echo(f"{min(shown, limit)} shown of {len(items)} assets")


@assets.command("summary")
@config_option
def summary(config: str | None) -> None:
    """Per center: assets by health status, open alerts and the highest asset risk."""
    import datetime as _dt

    settings = load(config)
    store = _store(settings)
    items, health = store.list(), store.health()
    store.close()
    soc = open_soc(settings)
    now = time.time()
    since = to_utc_iso(_dt.datetime.now(_dt.timezone.utc) - _dt.timedelta(days=7))
    _n, alerts = soc.alerts.list(AlertFilter(since=since, limit=5000, count_up_to=0))
    soc.close()
    table = Table(title="centers")
    table.add_column("center", no_wrap=True)
    for col in ( "assets", "healthy", "degraded", "silent", "unknown", "open alerts", "max risk", "riskiest"):
        table.add_column(col)
    for c in CENTERS:
        s = center_summary(c, [a for a in items if a.center == c], health,
                           [al for al in alerts if al.entities.center == c], now)
        b = s["by_status"]
        table.add_row(c, str(s["assets"]), str(b["healthy"]), str(b["degraded"]), str(b["silent"]), str(b["unknown"]),
                      str(s["open_alerts"]), str(s["risk"]),
                      ", ".join(f"{t['asset_id']} ({t['risk']})" for t in s["top_risk"][:3]))
    out.print(table)
