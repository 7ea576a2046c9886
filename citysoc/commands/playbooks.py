"""``citysoc playbooks``: list, validate, run (or dry-run), approve/reject, resume, re-run, show runs.

Runs started here execute in this process against the same data directory as the
server (runs in ``<data>/playbooks.db``, cases and the audit log in ``soc.db``). The
terminal user acts as an administrator of this host and is audited as ``cli:<user>``.
"""
from __future__ import annotations

import asyncio
import getpass
from dataclasses import asdict
from pathlib import Path
from typing import Any

import click
import orjson
from rich.table import Table

from citysoc.commands._common import config_option, err, load, out
from citysoc.wiring import build_playbooks, open_soc
from core.alerts import NotFound, TransitionError
from core.playbooks import RUN_STATUSES, ApprovalDenied, PlaybookInputError, Run

_ACTOR_ROLE = "admin"


def _actor() -> str:
    return f"cli:{getpass.getuser()}"


class _Ctx:
    def __init__(self, config: str | None):
        self.settings = load(config)
        self.soc = open_soc(self.settings)
        self.runner, self.errors = build_playbooks(self.settings, self.soc)
        for e in self.errors:
            err.print(f"[yellow]playbook not loaded: {e}[/]")

    def call(self, coro: Any) -> Any:
        async def main() -> Any:
            try:
                return await coro
            finally:
                await self.runner.drain()

        try:
            return asyncio.run(main())
        except (NotFound, TransitionError, PlaybookInputError, ApprovalDenied) as exc:
            raise click.ClickException(str(exc)) from None
        finally:
            self.runner.store.close()
            self.soc.close()


def _print_run(run: Run, as_json: bool) -> None:
    if as_json:
        click.echo(orjson.dumps(run.to_dict(), option=orjson.OPT_INDENT_2, default=str).decode())
        return
    colour = {"succeeded": "green", "completed_with_failures": "yellow", "failed": "red", "rejected": "red", "awaiting_approval": "yellow"}.get(run.status, "")
    out.print(f"run {run.id} of [bold]{run.playbook}[/] ({run.trigger}{', dry run' if run.dry_run else ''}"
              f"{', alert ' + str(run.alert_id) if run.alert_id else ''}): [{colour or 'white'}]{run.status}[/]"
              + (" (an earlier run with the same idempotency key)" if run.duplicate else ""))
    out.print(f"  {run.reason}", markup=False, highlight=False)
    t = Table(show_lines=False)
    for col in ("step", "action", "status", "tries", "ms", "inputs", "result"):
        t.add_column(col, overflow="fold")
    for s in run.steps:
        result = s.would or s.error or (orjson.dumps(s.output).decode() if s.output else "")
        if s.approved_by:
            result = f"approved by {s.approved_by}; {result}"
        t.add_row(s.name, s.action, s.status, str(s.attempts or ""), f"{s.duration_ms:.0f}" if s.duration_ms else "",
                  orjson.dumps(s.inputs).decode() if s.inputs else "", result)
    out.print(t)


@click.group()
def playbooks() -> None:
    """Response playbooks: what runs when an alert fires, and its runs."""


@playbooks.command("list")
@click.option("--json", "as_json", is_flag=True)
@config_option
def list_(as_json: bool, config: str | None) -> None:
    """The playbooks loaded from playbooks/library and playbooks.folders."""
    c = _Ctx(config)
    try:
        infos = c.runner.list_playbooks()
    finally:
        c.runner.store.close()
        c.soc.close()
    if as_json:
        for i in infos:
            click.echo(orjson.dumps(asdict(i)).decode())
        return
    t = Table(title=f"{len(infos)} playbooks")
    for col in ("name", "title", "trigger", "steps"):
        t.add_column(col, overflow="fold")
    for i in infos:
        trig = ", ".join(k for k in i.triggers if k != "manual" or i.triggers[k])
        steps = " -> ".join(s["action"] + ("*" if s["approval"] and "role" in s["approval"] else "") for s in i.steps)
        t.add_row(i.name, i.title, trig, steps)
    out.print(t)
    out.print("* waits for an approval")


@playbooks.command("validate")
@click.argument("folders", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False))
def validate(folders: tuple[str, ...]) -> None:
    """Check every playbook file in FOLDERS; prints each problem with file:line and YAML path."""
    from playbooks.actions import load_actions
    from playbooks.spec import load_folders

    cat = load_folders([Path(f) for f in folders], load_actions())
    for e in cat.errors:
        click.echo(str(e))
    click.echo(f"{len(cat.playbooks)} playbooks valid, {len({e.file for e in cat.errors})} files with errors")
    if cat.errors:
        raise SystemExit(1)


def _inputs(pairs: tuple[str, ...]) -> dict[str, Any]:
    got: dict[str, Any] = {}
    for p in pairs:
        k, sep, v = p.partition("=")
        if not sep or not k:
            raise click.BadParameter(f"{p!r}: use NAME=VALUE", param_hint="--input")
        got[k] = v
    return got


@playbooks.command("run")
@click.argument("name")
@click.option("--alert", "alert_id", type=int, help="Run against this alert (its fields fill the inputs).")
@click.option("--input", "inputs", multiple=True, metavar="NAME=VALUE", help="An input value (repeatable).")
@click.option("--dry-run", is_flag=True, help="Show each step's inputs and what it would do; change nothing.")
@click.option("--json", "as_json", is_flag=True)
@config_option
def run(name: str, alert_id: int | None, inputs: tuple[str, ...], dry_run: bool, as_json: bool,
        config: str | None) -> None:
    """Run playbook NAME now, in this process; ends when it ends or waits for an approval."""
    c = _Ctx(config)
    r = c.call(c.runner.start(name, actor=_actor(), alert_id=alert_id, inputs=_inputs(inputs), dry_run=dry_run))
    _print_run(r, as_json)
    if r.status == "failed":
        raise SystemExit(1)


@playbooks.command("approve")
@click.argument("run_id", type=int)
@click.option("--comment", default="")
@click.option("--json", "as_json", is_flag=True)
@config_option
def approve(run_id: int, comment: str, as_json: bool, config: str | None) -> None:
    """Approve the step RUN_ID waits on; the run continues here."""
    c = _Ctx(config)
    _print_run(c.call(c.runner.approve(run_id, actor=_actor(), role=_ACTOR_ROLE, comment=comment)), as_json)


@playbooks.command("reject")
@click.argument("run_id", type=int)
@click.option("--comment", default="")
@config_option
def reject(run_id: int, comment: str, config: str | None) -> None:
    """Refuse the step RUN_ID waits on; the run ends rejected."""
    c = _Ctx(config)
    _print_run(c.call(c.runner.reject(run_id, actor=_actor(), role=_ACTOR_ROLE, comment=comment)), False)


@playbooks.command("resume")
@click.argument("run_id", type=int)
@config_option
def resume(run_id: int, config: str | None) -> None:
    """Continue failed run RUN_ID from the step that failed."""
    c = _Ctx(config)
    _print_run(c.call(c.runner.resume(run_id, actor=_actor())), False)


@playbooks.command("rerun")
@click.argument("run_id", type=int)
@click.option("--dry-run", is_flag=True)
@config_option
def rerun(run_id: int, dry_run: bool, config: str | None) -> None:
    """Start a new run with the inputs of RUN_ID."""
    c = _Ctx(config)
    _print_run(c.call(c.runner.rerun(run_id, actor=_actor(), dry_run=dry_run)), False)


@playbooks.command("runs")
@click.option("--playbook")
@click.option("--status", type=click.Choice(RUN_STATUSES))
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True)
@config_option
def runs(playbook: str | None, status: str | None, limit: int, config: str | None) -> None:
    """Recent runs, newest first."""
    c = _Ctx(config)
    try:
        total, items = c.runner.list_runs(playbook=playbook, status=status, limit=limit)
    finally:
        c.runner.store.close()
        c.soc.close()
    t = Table(title=f"{total} runs")
    for col in ("id", "playbook", "status", "trigger", "alert", "created", "reason"):
        t.add_column(col, overflow="fold")
    for r in items:
        t.add_row(str(r.id), r.playbook, r.status + (" (dry)" if r.dry_run else ""), r.trigger,
                  str(r.alert_id or ""), r.created_at, r.reason[:120])
    out.print(t)


@playbooks.command("show")
@click.argument("run_id", type=int)
@click.option("--json", "as_json", is_flag=True)
@config_option
def show(run_id: int, as_json: bool, config: str | None) -> None:
    """One run with every step's inputs, output, timing and approval."""
    c = _Ctx(config)
    try:
        r = c.runner.get_run(run_id)
    except NotFound as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        c.runner.store.close()
        c.soc.close()
    _print_run(r, as_json)
