"""``citysoc scheduled status|check``: scheduled Sigma query rules, from the shell.

``status`` reads the run state file (``<data>/scheduled.db``) that ``citysoc serve``
writes: the run log and the gaps (open ones are being caught up). It only reads, so it
works while the server runs. ``check`` converts rules and compiles each query against
the configured event store, printing every rule that could not be scheduled and why.
"""
from __future__ import annotations

from pathlib import Path

import click
import orjson
from rich.table import Table

from citysoc.commands._common import config_option, load, out
from citysoc.detection import SIGMA_PACK
from detections.scheduled import RunState, convert_files, list_gaps, list_runs, state_path, validate_queries

__all__ = ["scheduled"]


@click.group()
def scheduled() -> None:
    """Scheduled Sigma query rules: run log, gaps, conversion check."""


@scheduled.command("status")
@click.option("--rule", "rule_id", default=None, help="Only this rule id.")
@click.option("--limit", default=20, show_default=True, help="Runs to show.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object: {runs, gaps}.")
@config_option
def status(rule_id: str | None, limit: int, as_json: bool, config: str | None) -> None:
    """Recent runs and all recorded gaps (from <data>/scheduled.db)."""
    settings = load(config)
    path = state_path(settings.data)
    if not path.exists():
        raise click.ClickException(f"no scheduled-rule state at {path}: no scheduled rule has run yet "
                                   "(configure detection.scheduled.rules and start citysoc serve)")
    state = RunState(path)
    try:
        runs = list_runs(state, rule_id, limit=limit)
        gaps = list_gaps(state, rule_id, limit=1000)
    finally:
        state.close()
    if as_json:
        click.echo(orjson.dumps({"runs": runs, "gaps": gaps}, option=orjson.OPT_INDENT_2).decode())
        return
    t = Table(title=f"runs (newest {limit})")
    for col in ("rule", "kind", "window start", "window end", "hits", "alerts", "status"):
        t.add_column(col)
    for r in runs:
        t.add_row(r["rule_id"][:13], r["kind"], r["window_start"], r["window_end"], str(r["hits"]), str(r["alerts"]),
                  r["status"] + (f": {r['error']}" if r["error"] else ""))
    out.print(t)
    g = Table(title="gaps")
    for col in ("rule", "start", "end", "minutes", "caught up to", "state"):
        g.add_column(col)
    for x in gaps:
        g.add_row(x["rule_id"][:13], x["gap_start"], x["gap_end"], str(x["minutes"]), x["covered_until"],
                  "open" if x["open"] else f"closed {x['closed']}")
    out.print(g)


@scheduled.command("check")
@click.argument("dirs", nargs=-1, type=click.Path(exists=True))
@click.option("--no-case-variants", is_flag=True, help="Convert values as written (case-sensitive match).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per rule.")
@config_option
def check(dirs: tuple[str, ...], no_case_variants: bool, as_json: bool, config: str | None) -> None:
    """Convert rules (default: our pack) and compile every query on the configured store.
    Exits 1 when a rule cannot be scheduled."""
    from citysoc.wiring import open_store

    settings = load(config)
    paths = [Path(d) for d in dirs] or [SIGMA_PACK]
    rules, failures = convert_files(paths, case_variants=not no_case_variants)
    store = open_store(settings)
    try:
        ok, refused = validate_queries(store, rules)
    finally:
        store.close()
    failures += refused
    if as_json:
        for r in ok:
            click.echo(orjson.dumps({"id": r.id, "path": r.path, "ok": True, "case_variants": r.case_variants,
                                     "queries": [b.query for b in r.branches]}).decode())
        for f in failures:
            click.echo(orjson.dumps({"id": f.rule_id, "path": f.path, "ok": False, "reason": f.reason}).decode())
    else:
        for f in failures:
            out.print(f"[red]not scheduled[/red] {f.path} {f.rule_id or ''}: {f.reason}", markup=True, highlight=False)
        plain = [r for r in ok if not r.case_variants and not no_case_variants]
        for r in plain:
            out.print(f"[yellow]case-sensitive[/yellow] {r.path} {r.id}: the case-variant query is too large",
                      markup=True, highlight=False)
        out.print(f"{len(ok)} rules can be scheduled ({len(plain)} case-sensitive), {len(failures)} cannot")
    if failures:
        raise SystemExit(1)
