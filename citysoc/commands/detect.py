"""``citysoc detect``: an offline hunt. Run the streaming Sigma engine over EVTX and
NDJSON files, no server needed: for incident responders with a folder of logs.

Also holds what ``citysoc rules`` shares with it: choosing rule folders, the cache
folder, and loading rules with their failures shown.
"""
from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import orjson
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from citysoc.commands._common import config_option, err, load, out
from collectors.evtx import EvtxError, EvtxReader, record_to_ecs
from core.gctune import tune_gc
from core.levels import LEVELS, at_least
from detections.packs import SIGMA_PACK
from core.events import expand_dots
from detections.sigma import RuleLoadError, RuleSet, SigmaEngine, load_rules

__all__ = ["detect", "PACK_DIR", "rule_dirs", "load_ruleset", "rules_option", "placeholder_option", "iter_events"]

PACK_DIR = SIGMA_PACK
"""Our Sigma pack (a module attribute, so tests can point it at an empty folder)."""
"""Our own smart-city Sigma pack, loaded when no --rules is given."""

_EVENT_SUFFIXES = (".evtx", ".json", ".ndjson", ".jsonl")

rules_option = click.option(
    "--rules", "rules", multiple=True, type=click.Path(exists=True),
    help="Sigma rule folder or file (repeatable). Default: our pack plus the 'rules' setting.",
)
placeholder_option = click.option(
    "--placeholder", "placeholders", multiple=True, metavar="NAME=V1[,V2]",
    help="Values for a rule placeholder used with the 'expand' modifier (repeatable).",
)


def _pack_has_rules() -> bool:
    return PACK_DIR.is_dir() and any(
        p.suffix in (".yml", ".yaml") and not p.name.endswith((".tests.yml", ".tests.yaml")) for p in PACK_DIR.rglob("*")
    )


def rule_dirs(given: tuple[str, ...], settings_rules: list[Path]) -> list[Path]:
    """The rule folders to load, or a ClickException saying how to give some."""
    if given:
        return [Path(g) for g in given]
    dirs = ([PACK_DIR] if _pack_has_rules() else []) + [Path(p) for p in settings_rules]
    if not dirs:
        raise click.ClickException(
            "no Sigma rules to use: our rule pack (detections/rules/sigma) has no rules yet and no 'rules' "
            "folders are configured. Give a rules folder with --rules DIR (for example a SigmaHQ checkout's rules/)."
        )
    return dirs


def _parse_placeholders(items: tuple[str, ...]) -> dict[str, list[str]] | None:
    out_: dict[str, list[str]] = {}
    for item in items:
        if "=" not in item:
            raise click.BadParameter(f"{item!r}: write NAME=VALUE[,VALUE...]", param_hint="--placeholder")
        name, values = item.split("=", 1)
        out_.setdefault(name.strip().strip("%"), []).extend(v for v in values.split(",") if v)
    return out_ or None


def load_ruleset(dirs: list[Path], data_dir: Path, placeholders: tuple[str, ...] = (), use_cache: bool = True) -> RuleSet:
    cache = data_dir / "cache" / "sigma" if use_cache else None
    try:
        return load_rules(dirs, cache_dir=cache, placeholders=_parse_placeholders(placeholders))
    except RuleLoadError as exc:
        raise click.ClickException(str(exc)) from exc


def _event_files(paths: tuple[str, ...]) -> list[Path]:
    files: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            files.extend(f for f in sorted(p.rglob("*")) if f.is_file() and f.suffix.lower() in _EVENT_SUFFIXES)
        elif p.is_file():
            files.append(p)
        else:
            raise click.ClickException(f"{p}: no such file or folder")
    return files


def _to_event(doc: dict[str, Any], path: Path) -> dict[str, Any]:
    """ECS documents pass (dotted keys expanded); EVTX records as JSON (``evtx_dump`` output,
    SigmaHQ's regression samples) are mapped like records read from an .evtx file."""
    inner = doc.get("Event")
    if isinstance(inner, dict) and isinstance(inner.get("System"), dict):
        return record_to_ecs(doc, path=str(path))
    return expand_dots(doc)


def iter_events(path: Path, problems: list[str]) -> Iterator[dict[str, Any]]:
    """Events of one file: EVTX by its header; otherwise JSON, either one object a line
    (NDJSON) or whole objects one after another (pretty-printed or concatenated)."""
    with path.open("rb") as fh:
        magic = fh.read(8)
    if magic == b"ElfFile\x00":
        reader = EvtxReader(path)
        try:
            yield from reader
        except EvtxError as exc:
            problems.append(str(exc))
        if reader.report.failed:
            problems.append(f"{path}: {reader.report.failed} EVTX records could not be read, e.g. {reader.report.failures[0][1]}")
        return
    data = path.read_bytes()
    first = data.lstrip()[:1]
    first_line = data.lstrip().split(b"\n", 1)[0]
    if first == b"{":
        try:
            orjson.loads(first_line)
        except orjson.JSONDecodeError:
            yield from _iter_concatenated(data, path, problems)
            return
    bad = 0
    first_bad = ""
    for n, line in enumerate(data.splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        try:
            doc = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            bad += 1
            first_bad = first_bad or f"line {n}: {exc}"
            continue
        if isinstance(doc, dict):
            try:
                yield _to_event(doc, path)
            except ValueError as exc:
                bad += 1
                first_bad = first_bad or f"line {n}: {exc}"
        else:
            bad += 1
            first_bad = first_bad or f"line {n}: not a JSON object"
    if bad:
        problems.append(f"{path}: {bad} lines are not usable JSON objects ({first_bad}); is it NDJSON?")


def _iter_concatenated(data: bytes, path: Path, problems: list[str]) -> Iterator[dict[str, Any]]:
    decoder = json.JSONDecoder()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        problems.append(f"{path}: not UTF-8 text ({exc}); give NDJSON or EVTX files")
        return
    pos = 0
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos >= len(text):
            return
        try:
            doc, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            problems.append(f"{path}: invalid JSON at character {exc.pos}: {exc.msg}; the rest of the file is skipped")
            return
        if isinstance(doc, dict):
            try:
                yield _to_event(doc, path)
            except ValueError as exc:
                problems.append(f"{path}: an EVTX record could not be mapped: {exc}")


def _detection_doc(d: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {"rule_id": d.rule_id, "title": d.title, "level": d.level, "tags": d.tags, "engine": d.engine}
    if d.group_key:
        doc["group"] = d.extra.get("group")
    if len(d.events) == 1:
        doc["event"] = d.events[0]
    else:
        doc["events"] = d.events
    return doc


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@rules_option
@click.option("--json", "json_out", type=click.Path(dir_okay=False, allow_dash=True),
              help="Write one JSON line per detection to this file ('-' for stdout).")
@click.option("--disable", "disabled", multiple=True, metavar="RULE_ID", help="Rule id to leave out (repeatable).")
@click.option("--min-level", type=click.Choice(LEVELS), default=None,
              help="Only rules of this level or above.")
@click.option("--no-cache", is_flag=True, help="Parse every rule again instead of using the compiled-rule cache.")
@placeholder_option
@config_option
def detect(paths: tuple[str, ...], rules: tuple[str, ...], json_out: str | None, disabled: tuple[str, ...],
           min_level: str | None, no_cache: bool, placeholders: tuple[str, ...], config: str | None) -> None:
    """Hunt through EVTX and NDJSON files (folders are recursed) with Sigma rules.

    \b
    Examples:
      citysoc detect ./evidence --rules ~/sigma/rules/windows --json hits.ndjson
      citysoc detect Security.evtx Sysmon.evtx --rules ~/sigma/rules --min-level high
    """
    settings = load(config)
    t0 = time.perf_counter()
    ruleset = load_ruleset(rule_dirs(rules, settings.rules), settings.data, placeholders, use_cache=not no_cache)
    specs = ruleset.rules
    if min_level:
        kept = [s for s in specs if s.level in LEVELS and at_least(s.level, min_level)]
        # Rules a kept correlation builds on stay, whatever their own level.
        refs = {r for s in kept if s.correlation is not None for r in s.correlation.rules}
        kept_ids = {s.id for s in kept}
        specs = kept + [s for s in specs if s.id not in kept_ids and (s.id in refs or (s.name and s.name in refs))]
    engine = SigmaEngine(specs, disabled=disabled)
    # The loaded rule plans live until exit: keep the cyclic GC from walking them, and
    # from collecting every 700 allocations (core/gctune.py).
    tune_gc()
    load_s = time.perf_counter() - t0
    failures = ruleset.failures + engine.failures
    err.print(
        f"[bold]{len(engine.rule_ids)}[/] rules loaded in {load_s:.2f}s "
        f"({ruleset.cached_files}/{ruleset.files} files from cache)"
        + (f", [yellow]{len(failures)} could not be loaded[/] (see: citysoc rules check)" if failures else "")
    )
    files = _event_files(paths)
    if not files:
        raise click.ClickException("no .evtx/.json/.ndjson/.jsonl files found under the given paths")
    sink = None
    if json_out == "-":
        sink = sys.stdout.buffer
    elif json_out:
        sink = open(json_out, "wb")
    problems: list[str] = []
    detections = 0
    events = 0
    t1 = time.perf_counter()
    try:
        with Progress(
            TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[events]} events, {task.fields[hits]} hits"), TimeElapsedColumn(),
            console=err, transient=False, disable=not err.is_terminal,
        ) as progress:
            task = progress.add_task("hunting", total=len(files), events=0, hits=0)
            for f in files:
                progress.update(task, description=f.name[:40])
                for ev in iter_events(f, problems):
                    events += 1
                    for d in engine.process(ev):
                        detections += 1
                        if sink is not None:
                            sink.write(orjson.dumps(_detection_doc(d), option=orjson.OPT_NON_STR_KEYS) + b"\n")
                progress.update(task, advance=1, events=events, hits=detections)
    finally:
        if sink is not None and sink is not sys.stdout.buffer:
            sink.close()
        elif sink is not None:
            sink.flush()
    dt = time.perf_counter() - t1
    for p in problems:
        err.print(f"[yellow]warning:[/] {p}")
    table = Table(title=f"Sigma hits: {events} events in {len(files)} files, {dt:.2f}s ({events / dt if dt else 0:,.0f} events/s)")
    table.add_column("hits", justify="right")
    table.add_column("level")
    table.add_column("rule")
    table.add_column("id", style="dim")
    titles = {s.id: (s.title, s.level) for s in ruleset.rules}
    for rid, n in engine.hits.most_common():
        title, level = titles.get(rid, (rid, ""))
        table.add_row(str(n), level, title, rid)
    console = err if json_out == "-" else out
    console.print(table)
    console.print(f"{detections} detections from {len(engine.hits)} rules")
