"""``citysoc demo``: generate the demo city and play its week, with attacks.

Offline (default): generated into ``--data`` (default: the configured data folder) and
replayed through the same pipeline a server runs; afterwards ``citysoc serve`` on that
folder shows the week (alerts, cases, assets and their health). ``--check`` then judges
every injected scenario. ``--server`` instead sends the city to a running server
through syslog TCP and the HTTP ingest API.
"""
from __future__ import annotations

import shutil
import time
from pathlib import Path

import click
import orjson
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from citysoc.commands._common import config_option, err, load, out

__all__ = ["demo"]


def _already(data: Path) -> bool:
    db = data / "assets.db"
    if not db.exists():
        return False
    from storage.assets import SQLiteAssetStore

    s = SQLiteAssetStore(db)
    try:
        return s.count() > 0
    finally:
        s.close()


@click.command()
@click.option("--data", "data", type=click.Path(file_okay=False), default=None,
              help="Folder to generate into and replay in (default: the configured data folder).")
@click.option("--cameras", type=click.IntRange(22, 5000), default=240, show_default=True,
              help="Cameras across the city's 22 districts.")
@click.option("--days", type=click.FloatRange(3, 30), default=7.0, show_default=True,
              help="Days of normal activity (the attacks fall in the last 2.5 days).")
@click.option("--seed", type=int, default=7, show_default=True)
@click.option("--check", is_flag=True, help="Judge each injected scenario; exit 1 unless all are green.")
@click.option("--json", "json_out", type=click.Path(dir_okay=False), help="Also write the verdicts as JSON here.")
@click.option("--if-empty", is_flag=True, help="Do nothing when the data folder already holds an inventory "
                                                "(what `make run DEMO=1` uses).")
@click.option("--server", metavar="URL", help="Send to a running citysoc (e.g. http://127.0.0.1:8000) instead.")
@click.option("--api-key", envvar="CITYSOC_API_KEY", help="With --server: a key with events:ingest and assets:write.")
@click.option("--syslog", "syslog_addr", default="127.0.0.1:5514", show_default=True,
              help="With --server: the syslog TCP listener.")
@config_option
def demo(data: str | None, cameras: int, days: float, seed: int, check: bool, json_out: str | None, if_empty: bool,
         server: str | None, api_key: str | None, syslog_addr: str, config: str | None) -> None:
    """The demo city: hundreds of cameras over Ho Chi Minh City's districts, their NVRs
    and VMS, the data warehouse, the forecasting center and the SOC; a week of their
    logs and camera-network pcaps, with attacks injected.

    \b
    Examples:
      citysoc demo --check                 # generate, replay, judge (in <data>/demo-check, renewed each time)
      citysoc demo --data ./demo-data      # then: citysoc serve --config ./demo-data/citysoc-demo.yml
      citysoc demo --server http://127.0.0.1:8000 --api-key csk_...
    """
    from citysoc.demo.run import build_world, demo_settings, replay_world

    settings = load(config)
    folder = Path(data) if data else Path(settings.data)
    if check and not data and not server:
        # a check starts from nothing every time, beside (never inside) the real data
        folder = Path(settings.data) / "demo-check"
        if folder.exists():
            shutil.rmtree(folder)
    if _already(folder) and not server:
        if if_empty:
            if not (folder / "citysoc-demo.yml").exists():
                demo_settings(folder, folder / "warehouse-ingest")
            out.print(f"demo: {folder} already holds an inventory; left as it is")
            return
        raise click.ClickException(f"{folder} already holds an inventory: replaying the demo into it would mix the "
                                   "two; give an empty --data folder (or --if-empty to keep what is there)")
    if server:
        if not api_key:
            raise click.ClickException("--server needs --api-key (or CITYSOC_API_KEY) with events:ingest and "
                                       "assets:write; create one: citysoc apikeys create demo --role admin")
        from citysoc.demo.send import send_world

        host, _, port = syslog_addr.rpartition(":")
        t0 = time.perf_counter()
        world = build_world(folder / "demo-generated", cameras=cameras, days=days, seed=seed)
        gen_s = time.perf_counter() - t0
        t1 = time.perf_counter()
        counts = send_world(world, server, api_key, (host or "127.0.0.1", int(port)))
        dt = time.perf_counter() - t1
        out.print(f"generated {len(world.records):,} records in {gen_s:.1f}s; sent in {dt:.1f}s "
                  f"({sum(v for k, v in counts.items() if k != 'assets') / dt:,.0f} records/s): {counts}")
        return
    import asyncio

    t0 = time.perf_counter()
    world = build_world(folder, cameras=cameras, days=days, seed=seed)
    gen_s = time.perf_counter() - t0
    err.print(f"generated {len(world.city.assets)} assets, {world.lines:,} log lines, {world.net_events:,} network "
              f"events from {len(world.pcaps)} pcaps, {len(world.scenarios)} scenarios in {gen_s:.1f}s")
    with Progress(TextColumn("replaying the week"), BarColumn(), TextColumn("{task.completed:,}/{task.total:,}"),
                  TimeElapsedColumn(), console=err, disable=not err.is_terminal) as prog:
        task = prog.add_task("replay", total=len(world.records))
        run = asyncio.run(replay_world(world, demo_settings(folder, world.ingest_dir),
                                  lambda i, n: prog.update(task, completed=i)))
    rate = run.events / run.seconds if run.seconds else 0.0
    out.print(f"replayed {run.events:,} records through the pipeline in {run.seconds:.1f}s ({rate:,.0f} records/s): "
              f"{run.alerts} alerts, {run.dead_letters} dead letters; data in {folder}")
    if not check:
        out.print(f"see it: citysoc serve --config {folder / 'citysoc-demo.yml'}   (or: citysoc demo --check)")
        return
    from citysoc.demo.check import judge, verdict_table

    verdicts, unexplained = judge(run)
    titles = {h.rule_id: h.title for h in run.hits if h.engine == "sigma"}
    from rich.console import Console

    (out if out.is_terminal else Console(width=150)).print(verdict_table(verdicts, titles))
    green = sum(v.ok for v in verdicts)
    out.print(f"[{'green' if green == len(verdicts) else 'red'}]{green}/{len(verdicts)} scenarios detected with "
              f"their playbook[/]; detections outside any scenario: "
              + (", ".join(f"{k} x{v}" for k, v in sorted(unexplained.items())) or "none"))
    if json_out:
        Path(json_out).write_bytes(orjson.dumps({
            "records": run.events, "replay_s": run.seconds, "records_per_s": rate, "generate_s": gen_s,
            "alerts": run.alerts, "unexplained": unexplained,
            "scenarios": [{"id": v.id, "detected": v.detected, "rules": v.fired, "ttd_s": v.ttd_s,
                           "playbooks": v.playbooks, "ok": v.ok} for v in verdicts]}, option=orjson.OPT_INDENT_2))
    if green != len(verdicts):
        raise SystemExit(1)
