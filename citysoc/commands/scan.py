"""``citysoc scan``: YARA-scan files, folders and archives with our pack and extra rule folders.

Exit codes (as ClamAV and YARA-based scanners do, so scripts can branch on them):
0 nothing matched, 1 at least one match, 2 error (rules that do not compile, a path
that does not exist).
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import click
import orjson
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from citysoc.commands._common import err, out
from detections.yara import MiB, ScanLimits, YaraCompileError, YaraScanner, compile_rules, iter_files
from detections.yara.results import LEVELS

__all__ = ["scan"]


def _default_cache() -> Path:
    if os.environ.get("CITYSOC_DATA"):
        return Path(os.environ["CITYSOC_DATA"]) / "cache" / "yara"
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "citysoc" / "yara"


def _level(meta: dict) -> str:
    v = str(meta.get("level") or meta.get("severity") or "").lower()
    return v if v in LEVELS else "high"


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--rules", "rule_dirs", multiple=True, type=click.Path(exists=True, path_type=Path),
              help="Extra YARA rule folder or file (repeatable); a folder with index.yar compiles through it.")
@click.option("--no-pack", is_flag=True, help="Do not load citysoc's own rule pack.")
@click.option("--json", "as_json", is_flag=True, help="One JSON line per scanned file or archive member.")
@click.option("--max-size", type=click.FloatRange(min=0, min_open=True), default=64, show_default=True,
              help="Skip files (and archive members) larger than this many MB.")
@click.option("--timeout", type=click.IntRange(min=1), default=10, show_default=True,
              help="Seconds yara may spend on one file or member.")
@click.option("--max-depth", type=click.IntRange(min=0), default=3, show_default=True,
              help="Archive nesting levels scanned (0: do not open archives).")
@click.option("--max-extracted", type=click.FloatRange(min=0, min_open=True), default=256, show_default=True,
              help="MB decompressed from one file's archive members at most (zip bomb guard).")
@click.option("--workers", type=click.IntRange(min=1), default=min(4, os.cpu_count() or 1), show_default=True,
              help="Files scanned in parallel.")
@click.option("--skip-bad-rules", is_flag=True, help="Report rule files that fail to compile, then scan with the rest.")
@click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where compiled rules are cached [default: $CITYSOC_DATA/cache/yara or ~/.cache/citysoc/yara].")
@click.option("--no-cache", is_flag=True, help="Always compile the rules afresh.")
@click.pass_context
def scan(ctx: click.Context, paths: tuple[Path, ...], rule_dirs: tuple[Path, ...], no_pack: bool, as_json: bool,
         max_size: float, timeout: int, max_depth: int, max_extracted: float, workers: int, skip_bad_rules: bool,
         cache_dir: Path | None, no_cache: bool) -> None:
    """YARA-scan PATHS (files and folders, archives member by member).

    \b
    Exit codes: 0 nothing matched, 1 something matched, 2 error.
    Examples:
      citysoc scan /srv/warehouse/ingest
      citysoc scan firmware.bin --rules ../shared/corpora/yara-iot --json
      citysoc scan uploads/ --rules ../shared/corpora/yara --max-size 16 --timeout 5
    """
    try:
        compiled = compile_rules(list(rule_dirs), include_pack=not no_pack, strict=not skip_bad_rules,
                                 cache_dir=None if no_cache else (cache_dir or _default_cache()))
    except YaraCompileError as exc:
        click.echo(f"error: {exc}\n(citysoc scan: --skip-bad-rules scans with the rule files that compile)", err=True)
        ctx.exit(2)
    for e in compiled.errors:
        click.echo(f"warning: skipped rule file {e}", err=True)
    for w in compiled.warnings:
        click.echo(f"warning: yara: {w}", err=True)
    limits = ScanLimits(max_file_size=int(max_size * MiB), timeout=timeout, max_depth=max_depth,
                        max_extracted=int(max_extracted * MiB))
    scanner = YaraScanner(compiled.rules, limits)
    path_errors: list[str] = []
    files = list(iter_files(paths, path_errors))
    for e in path_errors:
        click.echo(f"error: {e}", err=True)

    matched = scanned = skipped = 0
    rows: list[tuple[str, str, str, str, int]] = []
    skips: list[tuple[str, str]] = []
    w = sys.stdout.buffer
    progress = Progress(TextColumn("scanning"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        TextColumn("{task.fields[name]}"), console=err, transient=True, disable=not err.is_terminal)
    with progress:
        task = progress.add_task("scan", total=len(files), name="")
        for res in scanner.scan_paths(files, workers=workers,
                                      on_file=lambda p: progress.update(task, advance=1, name=p.name)):
            scanned += 1
            if res.skipped:
                skipped += 1
                skips.append((res.path, res.skipped))
            if res.matches:
                matched += 1
            if as_json:
                w.write(orjson.dumps(res.to_dict()) + b"\n")
                continue
            for m in res.matches:
                rows.append((res.path, f"{m.namespace}.{m.rule}", _level(m.meta),
                             ", ".join(sorted({s.id for s in m.strings}))[:60], len(m.strings)))
    if as_json:
        w.flush()
    else:
        table = Table(title=f"{scanned} scanned, {matched} matched, {skipped} skipped "
                            f"({compiled.rule_count} rules{', cached' if compiled.cache_hit else ''})")
        for col in ("path", "rule", "level", "strings", "hits"):
            table.add_column(col, overflow="fold")
        for path, rule, level, strings, hits in rows:
            table.add_row(path, rule, level, strings, str(hits))
        out.print(table)
        for path, reason in skips:
            out.print(f"skipped {path}: {reason}", highlight=False)
    if path_errors:
        ctx.exit(2)
    ctx.exit(1 if matched else 0)
