"""``citysoc rules list|check|coverage|test``: look after Sigma rule folders.

``check`` is what CI runs over a rule pack: every rule that cannot be loaded is printed
with its reason and the command exits non-zero. ``test`` runs each rule's test events
(``X.tests.yml`` beside ``X.yml``, see ``detections.sigma.ruletests``).
"""
from __future__ import annotations

import re
import sys
from collections import Counter, defaultdict
from pathlib import Path

import click
import orjson
from rich.table import Table

from citysoc.commands._common import config_option, load, out
from citysoc.commands.detect import load_ruleset, placeholder_option, rule_dirs
from detections.sigma import SigmaEngine
from detections.sigma.ruletests import run_rule_tests

__all__ = ["rules"]

_ATTACK_ID = re.compile(r"^[tgs]\d{4}")  # technique, group, software ids (not tactics)


def _dirs(dirs: tuple[str, ...], config: str | None) -> tuple[list[Path], Path]:
    settings = load(config)
    return rule_dirs(dirs, settings.rules), settings.data


@click.group()
def rules() -> None:
    """List, check, test and measure Sigma rules."""


@rules.command("list")
@click.argument("dirs", nargs=-1, type=click.Path(exists=True))
@click.option("--json", "as_json", is_flag=True, help="One JSON object per rule.")
@config_option
def list_(dirs: tuple[str, ...], as_json: bool, config: str | None) -> None:
    """List the rules under DIRS (default: our pack): id, level, log source, title."""
    paths, data = _dirs(dirs, config)
    rs = load_ruleset(paths, data)
    if as_json:
        for s in rs.rules:
            sys.stdout.buffer.write(orjson.dumps({
                "id": s.id, "title": s.title, "level": s.level, "status": s.status, "kind": s.kind,
                "logsource": {"product": s.product, "category": s.category, "service": s.service},
                "tags": s.tags, "path": s.path,
            }) + b"\n")
        return
    table = Table(title=f"{len(rs.rules)} rules")
    for col in ("id", "level", "logsource", "title"):
        table.add_column(col, overflow="fold")
    for s in sorted(rs.rules, key=lambda s: (s.product or "", s.category or s.service or "", s.title)):
        ls = "/".join(x for x in (s.product, s.category, s.service) if x) or ("correlation" if s.correlation else "-")
        table.add_row(s.id, s.level, ls, s.title)
    out.print(table)


@rules.command()
@click.argument("dirs", nargs=-1, type=click.Path(exists=True))
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@placeholder_option
@config_option
def check(dirs: tuple[str, ...], as_json: bool, placeholders: tuple[str, ...], config: str | None) -> None:
    """Load every rule under DIRS; print each failure with its reason; exit 1 if any failed."""
    paths, data = _dirs(dirs, config)
    rs = load_ruleset(paths, data, placeholders, use_cache=False)
    engine = SigmaEngine(rs.rules)
    engine.compile_all()
    failures = rs.failures + engine.failures
    warnings = [(s.path, s.id, w) for s in rs.rules for w in s.warnings]
    if as_json:
        report = {
            "files": rs.files, "loaded": len(rs.rules) - len(engine.failures), "failed": len(failures),
            "load_rate": round((len(rs.rules) - len(engine.failures)) / (rs.total or 1), 5),
            "failures": [f.as_dict() for f in failures],
            "warnings": [{"path": p, "rule_id": i, "warning": w} for p, i, w in warnings],
        }
        sys.stdout.buffer.write(orjson.dumps(report, option=orjson.OPT_INDENT_2) + b"\n")
    else:
        if failures:
            table = Table(title=f"{len(failures)} rules could not be loaded")
            table.add_column("file", overflow="fold")
            table.add_column("rule", overflow="fold")
            table.add_column("reason", overflow="fold")
            for f in failures:
                table.add_row(f.path, f.title or f.rule_id or "", f.reason)
            out.print(table)
        for p, _i, w in warnings:
            out.print(f"[yellow]warning[/] {p}: {w}")
        rate = 100.0 * (len(rs.rules) - len(engine.failures)) / (rs.total or 1)
        out.print(f"{rs.files} files, {len(rs.rules) - len(engine.failures)} rules loaded, {len(failures)} failed ({rate:.2f} % loaded)")
    if failures:
        sys.exit(1)


@rules.command()
@click.argument("dirs", nargs=-1, type=click.Path(exists=True))
@click.option("--json", "as_json", is_flag=True, help="Technique -> rule ids, as JSON.")
@config_option
def coverage(dirs: tuple[str, ...], as_json: bool, config: str | None) -> None:
    """ATT&CK technique coverage of the rules under DIRS (from their attack.tNNNN tags)."""
    paths, data = _dirs(dirs, config)
    rs = load_ruleset(paths, data)
    by_tech: dict[str, list[str]] = defaultdict(list)
    tactics: Counter[str] = Counter()
    untagged = 0
    for s in rs.rules:
        techs = s.techniques
        if not techs:
            untagged += 1
        for t in techs:
            by_tech[t].append(s.id)
        for tag in s.tags:
            low = tag.lower()
            if low.startswith("attack.") and not _ATTACK_ID.match(low[7:]):
                tactics[low[7:]] += 1
    if as_json:
        sys.stdout.buffer.write(orjson.dumps({"techniques": dict(sorted(by_tech.items())), "tactics": dict(tactics),
                                              "rules": len(rs.rules), "untagged": untagged}) + b"\n")
        return
    parents = {t.split(".")[0] for t in by_tech}
    table = Table(title=f"ATT&CK coverage: {len(parents)} techniques, {len(by_tech) - len(parents & set(by_tech))} "
                        f"further sub-techniques, by {len(rs.rules)} rules ({untagged} without a technique tag)")
    table.add_column("technique")
    table.add_column("rules", justify="right")
    for t in sorted(by_tech, key=lambda t: (-len(by_tech[t]), t)):
        table.add_row(t, str(len(by_tech[t])))
    out.print(table)
    if tactics:
        out.print("tactics: " + ", ".join(f"{k} {v}" for k, v in tactics.most_common()))


@rules.command("test")
@click.argument("dirs", nargs=-1, type=click.Path(exists=True))
@click.option("--require-tests", is_flag=True, help="A rule without a tests file fails too.")
@config_option
def test_(dirs: tuple[str, ...], require_tests: bool, config: str | None) -> None:
    """Run each rule's test events (X.tests.yml beside X.yml: 'match' and 'nomatch' lists).

    Exits 1 when a match event does not match, a nomatch event matches, or a rule fails to load.
    """
    paths, data = _dirs(dirs, config)
    rs = load_ruleset(paths, data, use_cache=False)
    results = run_rule_tests(paths, rs)
    table = Table(title="rule tests")
    table.add_column("status")
    table.add_column("rule file", overflow="fold")
    table.add_column("problems", overflow="fold")
    failed = 0
    for r in results:
        status = r.status
        if status == "no tests" and require_tests:
            status = "fail"
            r.problems.append("no tests file (X.tests.yml)")
        if status == "fail":
            failed += 1
        style = {"pass": "green", "fail": "red"}.get(status, "yellow")
        table.add_row(f"[{style}]{status}[/]", r.path, "\n".join(r.problems))
    out.print(table)
    counts = Counter(r.status for r in results)
    out.print(f"{counts.get('pass', 0)} passed, {failed} failed, {counts.get('no tests', 0)} without tests")
    if failed:
        sys.exit(1)
