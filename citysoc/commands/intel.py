"""``citysoc intel``: validate threat-intel feeds and match event files against them offline.

``check`` exits 0 when every feed loaded cleanly, 1 when some indicators were rejected
(listed with file and indicator/line), 2 when a feed could not be loaded at all.
``match`` exits 0 without matches, 1 with matches, 2 on errors (as ``citysoc scan``).
"""
from __future__ import annotations

import gzip
import sys
from collections.abc import Iterator
from pathlib import Path

import click
import orjson
from rich.table import Table

from citysoc.commands._common import out
from detections.intel import IOC_TYPES, FeedLoad, FeedManager, FeedSpec, IntelMatcher

__all__ = ["intel"]


@click.group()
def intel() -> None:
    """Threat-intel feeds: STIX 2.1 bundles, MISP feeds, CSV."""


def _specs(feeds: tuple[str, ...], fmt: str) -> list[FeedSpec]:
    try:
        return [FeedSpec.parse(f, format=fmt) for f in feeds]
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc


def _load_all(ctx: click.Context, specs: list[FeedSpec]) -> tuple[FeedManager, list[tuple[str, str]]]:
    try:
        mgr = FeedManager(specs)
    except ValueError as exc:
        click.echo(f"error: {exc}", err=True)
        ctx.exit(2)
    outcome = mgr.refresh(force=True)
    failed = [(n, r[len("failed: "):]) for n, r in outcome.items() if r.startswith("failed")]
    return mgr, failed


@intel.command()
@click.argument("feeds", nargs=-1, required=True)
@click.option("--format", "fmt", type=click.Choice(["auto", "stix", "misp", "csv"]), default="auto", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per feed.")
@click.pass_context
def check(ctx: click.Context, feeds: tuple[str, ...], fmt: str, as_json: bool) -> None:
    """Validate FEEDS (files, MISP feed folders, http(s) URLs; NAME=LOCATION to name one)
    and print counts per IOC type.

    \b
    Examples:
      citysoc intel check feeds/vncert.json feeds/partners.csv
      citysoc intel check circl=https://www.circl.lu/doc/misp/feed-osint/manifest.json
    """
    mgr, failed = _load_all(ctx, _specs(feeds, fmt))
    loads: list[FeedLoad] = [st.load for st in mgr.feeds.values() if st.load is not None]
    if as_json:
        for load in loads:
            click.echo(orjson.dumps({
                "feed": load.name, "format": load.format, "origin": load.origin, "counts": load.counts(),
                "expired": load.skipped_expired, "ignored": load.ignored,
                "problems": [{"where": p.where, "severity": p.severity, "message": p.message} for p in load.problems],
            }).decode())
        for name, reason in failed:
            click.echo(orjson.dumps({"feed": name, "error": reason}).decode())
    else:
        table = Table(title="threat-intel feeds")
        for col in ("feed", "format", *IOC_TYPES, "total", "expired", "ignored", "problems"):
            table.add_column(col, justify="left" if col in ("feed", "format") else "right")
        for load in loads:
            c = load.counts()
            table.add_row(load.name, load.format, *(str(c.get(t, 0)) for t in IOC_TYPES), str(sum(c.values())),
                          str(load.skipped_expired), str(sum(load.ignored.values())), str(len(load.problems)))
        out.print(table)
        for load in loads:
            for p in load.problems:
                click.echo(str(p))
            if load.ignored:
                click.echo(f"{load.origin}: ignored entries of types we do not match: "
                           + ", ".join(f"{k} ({v})" for k, v in sorted(load.ignored.items())))
    for name, reason in failed:
        click.echo(f"error: feed {name}: {reason}", err=True)
    mgr.close()
    if failed:
        ctx.exit(2)
    ctx.exit(1 if any(load.errors for load in loads) else 0)


def _events(path: Path) -> Iterator[tuple[int, dict | None, str | None]]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                doc = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                yield n, None, f"invalid JSON: {exc}"
                continue
            if not isinstance(doc, dict):
                yield n, None, "not a JSON object"
                continue
            yield n, doc, None


@intel.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--feed", "feeds", multiple=True, required=True,
              help="Feed to match against (file, MISP folder, URL, NAME=LOCATION); repeatable.")
@click.option("--format", "fmt", type=click.Choice(["auto", "stix", "misp", "csv"]), default="auto", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON line per detection.")
@click.pass_context
def match(ctx: click.Context, files: tuple[Path, ...], feeds: tuple[str, ...], fmt: str, as_json: bool) -> None:
    """Match NDJSON event FILES (.gz too) against feeds, offline.

    \b
    Exit codes: 0 no match, 1 matches, 2 error.
    Example:
      citysoc intel match events.ndjson --feed feeds/vncert.json --json
    """
    mgr, failed = _load_all(ctx, _specs(feeds, fmt))
    for name, reason in failed:
        click.echo(f"error: feed {name}: {reason}", err=True)
    if failed:
        mgr.close()
        ctx.exit(2)
    matcher = IntelMatcher(mgr.current)
    total = hits = bad = 0
    rows = []
    w = sys.stdout.buffer
    for path in files:
        for lineno, doc, problem in _events(path):
            if doc is None:
                bad += 1
                click.echo(f"warning: {path}:{lineno}: {problem}; line skipped", err=True)
                continue
            total += 1
            for det in matcher.process(doc):
                hits += 1
                if as_json:
                    w.write(orjson.dumps({"file": str(path), "line": lineno, "rule_id": det.rule_id,
                                          "level": det.level, "title": det.title, "field": det.extra["field"],
                                          "value": det.extra["matched_value"], "indicator": det.extra["indicator"],
                                          "event": doc}) + b"\n")
                else:
                    ind = det.extra["indicator"]
                    rows.append((f"{path.name}:{lineno}", det.rule_id, det.level, det.extra["field"],
                                 str(det.extra["matched_value"]), f"{ind['type']} {ind['value']}"))
    mgr.close()
    if as_json:
        w.flush()
    else:
        table = Table(title=f"{total} events, {hits} matches ({len(mgr.current())} indicators)")
        for col in ("event", "rule", "level", "field", "value", "indicator"):
            table.add_column(col, overflow="fold")
        for r in rows:
            table.add_row(*r)
        out.print(table)
    ctx.exit(1 if hits else 0)
