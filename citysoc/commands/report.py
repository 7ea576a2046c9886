"""``citysoc report``: period reports for auditors, evidence archives, and their check.

Examples::

    citysoc report --from 2026-11-16 --to 2026-11-22 --format pdf --lang vi -o week.pdf
    citysoc report evidence --case 12 -o case-12.zip
    citysoc report verify week.pdf        # exit 0 intact, 1 tampered (says what differs)
"""
from __future__ import annotations

import getpass
import sys
from pathlib import Path

import click

from citysoc.commands._common import config_option, err, load
from core.reports import FORMATS, LANGS, ReportError

__all__ = ["report"]


def _actor() -> str:
    return f"cli:{getpass.getuser()}"


class _ReportGroup(click.Group):
    """``citysoc report --from ...`` makes a report; ``verify``/``evidence`` are subcommands."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help"):
            args = ["make", *args]
        return super().parse_args(ctx, args)


@click.group(cls=_ReportGroup, invoke_without_command=True)
@click.pass_context
def report(ctx: click.Context) -> None:
    """Reports for auditors: `citysoc report --from DATE --to DATE --format pdf|csv|json|html
    --lang vi|en -o FILE`, plus `report evidence` and `report verify`.

    Dates are days in --tz (default Asia/Ho_Chi_Minh); --to includes that whole day.
    Alerts belong to the period by last_seen, as in the alerts API. Every output gets a
    sidecar FILE.manifest.json (SHA-256, audit-chain head) and is recorded in the audit log."""
    if ctx.invoked_subcommand is None:
        click.echo(ctx.get_help())


@report.command("make")
@click.option("--from", "start", required=True, help="First day (2026-11-16) or an ISO time.")
@click.option("--to", "end", required=True, help="Last day, included (2026-11-22), or an ISO time (excluded).")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="pdf", show_default=True)
@click.option("--lang", default="vi", show_default=True, help=f"Language: {', '.join(LANGS)}.")
@click.option("--tz", default=None, help="Zone for days and printed times (default: reports.tz, Asia/Ho_Chi_Minh).")
@click.option("-o", "--output", "output", required=True, type=click.Path(dir_okay=False, path_type=Path))
@config_option
def make(start: str, end: str, fmt: str, lang: str, tz: str | None, output: Path, config: str | None) -> None:
    """Make one period report."""
    from citysoc.wiring import build_reports, open_soc
    from reports.generate import generate_report
    from reports.period import parse_period

    settings = load(config)
    try:
        if lang not in LANGS:
            raise ReportError(f"unknown language {lang!r}; use one of {', '.join(LANGS)}")
        period = parse_period(start, end, tz or settings.reports.tz)
        soc = open_soc(settings)
        try:
            from citysoc.detection import build_detection

            # The rules this installation runs (our pack, configured folders, saved toggles),
            # for the ATT&CK coverage section; built only if the report asks for it.
            gen, _ev = build_reports(settings, soc, rules=lambda: build_detection(settings, catalog_only=True))
            m = generate_report(gen.sources, period, output, fmt=fmt, lang=lang, actor=_actor())
        finally:
            soc.close()
    except ReportError as exc:
        raise click.ClickException(str(exc)) from exc
    f = m["figures"]
    na = f", not available: {', '.join(f['not_available'])}" if f["not_available"] else ""
    click.echo(f"{output}: {f['alerts']} alerts, {m['size']} bytes, sha256 {m['sha256']}{na}")
    click.echo(f"manifest: {output}.manifest.json (audit head {m['audit_head']})")


@report.command("evidence")
@click.option("--case", "case_id", type=click.IntRange(1), help="Case id.")
@click.option("--alert", "alert_id", type=click.IntRange(1), help="Alert id.")
@click.option("--margin", default=300, show_default=True, type=click.IntRange(0),
              help="Seconds before first_seen and after last_seen searched for events.")
@click.option("--max-events", default=100_000, show_default=True, type=click.IntRange(1))
@click.option("-o", "--output", "output", required=True, type=click.Path(dir_okay=False, path_type=Path))
@config_option
def evidence(case_id: int | None, alert_id: int | None, margin: int, max_events: int, output: Path,
             config: str | None) -> None:
    """Export a case or an alert with its events, timeline, playbook runs and audit entries (zip)."""
    from citysoc.wiring import build_reports, open_soc, open_store
    from reports.evidence import export_evidence

    settings = load(config)
    soc = open_soc(settings)
    store = open_store(settings)
    try:
        _gen, src = build_reports(settings, soc, events=store)
        m = export_evidence(src, output, actor=_actor(), case_id=case_id, alert_id=alert_id, margin_s=margin,
                            max_events=max_events)
    except ReportError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        store.close()
        soc.close()
    click.echo(f"{output}: {m['members']} members, sha256 {m['sha256']}")
    click.echo(f"manifest: {output}.manifest.json (audit head {m['audit_head']})")


@report.command("verify")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--audit/--no-audit", "use_audit", default=True, show_default=True,
              help="Also check that this data directory's audit log recorded the file's hash (when soc.db exists).")
@config_option
def verify_cmd(file: Path, use_audit: bool, config: str | None) -> None:
    """Check a report or evidence archive against its manifest. Exit 0 intact, 1 tampered,
    2 not verified (no manifest beside the file: download it too, e.g. the console's
    "manifest" link next to the report, and save it as <file>.manifest.json)."""
    from reports.manifest import verify

    soc = None
    if use_audit:
        settings = load(config)
        if (Path(settings.data) / "soc.db").exists():
            from citysoc.wiring import open_soc

            soc = open_soc(settings)
    try:
        r = verify(file, audit=soc.audit if soc is not None else None)
    finally:
        if soc is not None:
            soc.close()
    for n in r.notes:
        click.echo(f"  {n}")
    if r.no_manifest and len(r.problems) == 1:
        # a missing manifest proves nothing either way: say so, do not call it tampering
        err.print(f"[bold yellow]NOT VERIFIED[/] {r.file}: no manifest beside it. Download the report's "
                  f"manifest too (the console's manifest link, or GET /api/v1/reports/<name>/manifest) and "
                  f"save it as {r.file.name}.manifest.json next to the file, then verify again.",
                  markup=True, highlight=False)
        sys.exit(2)
    if not r.ok:
        err.print(f"[bold red]TAMPERED[/] {r.file}:")
        for p in r.problems:
            err.print(f"  - {p}", markup=False, highlight=False)
        sys.exit(1)
    m = r.manifest or {}
    click.echo(f"{r.file}: intact (sha256 {m.get('sha256', '-')}, audit head {m.get('audit_head', '-')}"
               f"{'' if soc is not None else '; audit log not consulted'})")
