"""``citysoc deadletters``: read what failed a stage, with the reason."""
from __future__ import annotations

import sys

import click
import orjson
from rich.table import Table

from citysoc.commands._common import config_option, load, out
from citysoc.wiring import open_deadletters


@click.command()
@click.option("--stage", help="Only this stage (parse, store, ...).")
@click.option("--limit", type=click.IntRange(1, 100_000), default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line, raw input as text and base64.")
@config_option
def deadletters(stage: str | None, limit: int, as_json: bool, config: str | None) -> None:
    """List inputs that failed parsing or storing, newest first."""
    import base64

    dl = open_deadletters(load(config))
    items = dl.list(limit=limit, stage=stage)
    total = dl.count(stage=stage)
    if as_json:
        for d in items:
            sys.stdout.buffer.write(orjson.dumps({
                "id": d.id, "time": d.time, "stage": d.stage, "reason": d.reason, "source": d.source,
                "raw_text": d.raw.decode("utf-8", "replace"), "raw_base64": base64.b64encode(d.raw).decode(),
                "meta": d.meta}) + b"\n")
        return
    table = Table(title=f"{total} dead letters")
    for col in ("id", "time", "stage", "source", "reason", "raw"):
        table.add_column(col, overflow="fold")
    for d in items:
        table.add_row(str(d.id), d.time, d.stage, d.source, d.reason[:120], d.raw[:120].decode("utf-8", "replace"))
    out.print(table)
