"""``citysoc ingest``: load log files, EVTX and pcaps through the same pipeline the server runs."""
from __future__ import annotations

import asyncio
import gzip
from collections.abc import Iterator
from pathlib import Path

import click
import orjson
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn
from rich.table import Table

from citysoc.commands._common import config_option, err, load, out
from citysoc.wiring import build_pipeline, open_deadletters, open_store
from core.protocols import RawRecord

BATCH = 5_000
EVTX_EXT = {".evtx"}
PCAP_EXT = {".pcap", ".pcapng", ".cap"}


# When walking a directory, documentation and code next to the logs are not logs.
# Files named explicitly are always read.
SKIP_IN_DIRS = {".md", ".rst", ".yml", ".yaml", ".py", ".pdf", ".png", ".jpg", ".jpeg", ".zip", ".html", ".sh"}
SKIP_NAMES = ("LICENSE", "README", "COPYING", "NOTICE")


def _loggish(p: Path) -> bool:
    return p.suffix.lower() not in SKIP_IN_DIRS and not p.name.upper().startswith(SKIP_NAMES) and not p.name.startswith(".")


def _expand(paths: tuple[str, ...]) -> list[Path]:
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files.extend(sorted(x for x in p.rglob("*") if x.is_file() and _loggish(x)))
        elif p.is_file():
            files.append(p)
        else:
            raise click.BadParameter(f"{p}: no such file or directory", param_hint="FILES")
    return files


def _kind(path: Path, fmt: str) -> str:
    if fmt in ("evtx", "pcap"):
        return fmt
    ext = path.suffix.lower()
    if ext in EVTX_EXT:
        return "evtx"
    if ext in PCAP_EXT:
        return "pcap"
    return "lines"


def _line_records(path: Path, fmt: str, dataset: str | None, advance) -> Iterator[RawRecord]:
    opener = gzip.open if path.suffix == ".gz" else open
    src = f"file:{path}"
    with opener(path, "rb") as fh:
        lineno = 0
        pending = 0
        for line in fh:
            lineno += 1
            pending += len(line)
            if pending >= 1 << 20:  # the bar moves per MiB, not per line: lines are cheap, redraws are not
                advance(pending)
                pending = 0
            data = line.rstrip(b"\r\n")
            if not data.strip():
                continue
            yield RawRecord(data=data, format=fmt, source=src, dataset=dataset,
                            meta={"log.file.path": str(path), "log.offset": lineno})
        advance(pending)


def _event_records(events: Iterator[dict], src: str, dataset: str | None) -> Iterator[RawRecord]:
    for ev in events:
        yield RawRecord(data=orjson.dumps(ev), format="ecs", source=src, dataset=dataset)


def _records(path: Path, kind: str, fmt: str, dataset: str | None, advance) -> Iterator[RawRecord]:
    if kind == "evtx":
        from collectors.evtx import read_evtx

        size = path.stat().st_size
        yield from _event_records(read_evtx(path), f"evtx:{path}", dataset)
        advance(size)
    elif kind == "pcap":
        from collectors.network import pcap_events

        size = path.stat().st_size
        yield from _event_records(pcap_events(path), f"pcap:{path}", dataset)
        advance(size)
    else:
        yield from _line_records(path, fmt, dataset, advance)


async def _run(files: list[Path], fmt: str, dataset: str | None, settings, progress: Progress) -> dict[str, int]:
    store = open_store(settings)
    dls = open_deadletters(settings)
    pipeline = build_pipeline(settings, store, dls)
    await pipeline.start()
    total = sum(f.stat().st_size for f in files)
    task = progress.add_task("ingesting", total=total)
    failed_files = 0
    try:
        for f in files:
            kind = _kind(f, fmt)
            progress.update(task, description=f"{f.name[:40]}")
            batch: list[RawRecord] = []
            try:
                for rec in _records(f, kind, "auto" if kind != "lines" else fmt, dataset,
                                    lambda n: progress.advance(task, n)):
                    batch.append(rec)
                    if len(batch) >= BATCH:
                        await pipeline.submit(batch)
                        batch = []
            except Exception as exc:  # a corrupt file must not stop the others
                failed_files += 1
                err.print(f"[red]{f}: {exc}[/red] (records read before the error are kept)")
            if batch:
                await pipeline.submit(batch)
        await pipeline.drain()
    finally:
        await pipeline.stop()
        store.close()
    c = pipeline.counters
    return {
        "files": len(files),
        "failed_files": failed_files,
        "received": c["parse"].received,
        "stored": c["store"].emitted,
        "dead_lettered": c["parse"].errors + c["store"].errors,
    }


@click.command()
@click.argument("files", nargs=-1, required=True)
@click.option("--format", "fmt", default="auto", show_default=True,
              help="Parser for text lines (auto sniffs: ndjson, syslog, sshd, nginx, ...); evtx and pcap by extension.")
@click.option("--dataset", help="event.dataset for events that do not say (e.g. camera.hikvision).")
@config_option
def ingest(files: tuple[str, ...], fmt: str, dataset: str | None, config: str | None) -> None:
    """Parse FILES (log lines, NDJSON, .gz, .evtx, .pcap; directories are walked) into the store.

    Lines that cannot be parsed go to the dead-letter store with the reason
    (see `citysoc deadletters`); good lines around them are kept.
    """
    settings = load(config)
    paths = _expand(files)
    with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                  TimeRemainingColumn(), console=err, transient=False) as progress:
        summary = asyncio.run(_run(paths, fmt, dataset, settings, progress))
    table = Table(title="ingest summary")
    table.add_column("files")
    table.add_column("received")
    table.add_column("stored")
    table.add_column("dead-lettered")
    table.add_row(str(summary["files"]), str(summary["received"]), str(summary["stored"]), str(summary["dead_lettered"]))
    out.print(table)
    if summary["failed_files"]:
        raise SystemExit(1)
