"""Runs the server process: builds every part from settings and supervises them.

One asyncio loop hosts uvicorn (API + console), the collectors' sources, the pipeline
stages and the scheduler; blocking work goes to threads inside the pipeline.
"""
from __future__ import annotations

import asyncio
import gc
import datetime as _dt
import logging
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import uvicorn

from api.app import create_app
from api.deps import AppState
from core.timezones import effective_zone
from citysoc.wiring import build_alerting, build_pipeline, ensure_initial_admin, open_deadletters, open_soc, open_store
from citysoc.wiring import build_playbooks, check_formats, intel_lookup_for
from citysoc.detection import build_detection
from dashboards.console import mount_console
from citysoc.wiring import build_assets
from core.protocols import Source
from core.settings import Settings

__all__ = ["run_server", "make_sources", "uvicorn_options", "graceful_stop_signals"]

log = logging.getLogger("citysoc.serve")


def make_sources(settings: Settings) -> list[Source]:
    """The listeners and tails ``citysoc.yml`` asks for (syslog UDP/TCP/TLS by default)."""
    sources: list[Source] = []
    sy = settings.syslog
    if sy.enabled:
        from collectors.sources.syslog import SyslogTCPSource, SyslogUDPSource

        zone: object = effective_zone(sy.timezone, settings.site.timezone)
        if sy.timezones:
            from collectors.sources.peer_zones import PeerZones

            zone = PeerZones([(g.name, g.networks, g.timezone) for g in sy.timezones], default=str(zone))
        common = {"format": sy.format, "timezone": zone, "max_message_size": sy.max_message_size}
        stream = {"max_connections": sy.max_connections, "max_connections_per_peer": sy.max_connections_per_peer,
                      "idle_timeout": sy.idle_timeout, "frame_timeout": sy.frame_timeout}
        if sy.udp:
            sources.append(SyslogUDPSource(host=sy.host, port=sy.port, **common))
        if sy.tcp:
            sources.append(SyslogTCPSource(host=sy.host, port=sy.port, **common, **stream))
        if sy.relp_port is not None:
            from collectors.sources.relp import RelpSource

            sources.append(RelpSource(host=sy.host, port=sy.relp_port, **common, **stream))
        if sy.tls_port is not None:
            if not (sy.tls_cert and sy.tls_key):
                raise ValueError("syslog.tls_port needs syslog.tls_cert and syslog.tls_key")
            sources.append(SyslogTCPSource(host=sy.host, port=sy.tls_port, tls_cert=sy.tls_cert, tls_key=sy.tls_key,
                                           **common, **stream))
    if settings.tail:
        from collectors.sources.tail import FileTailSource

        ckpt_dir = Path(settings.data) / "checkpoints"
        ckpt_dir.mkdir(parents=True, exist_ok=True)
        for t in settings.tail:
            sources.append(FileTailSource(t.paths, checkpoint=ckpt_dir / f"tail-{t.name}.json", format=t.format,
                                          dataset=t.dataset, name=f"tail-{t.name}", timezone=effective_zone(t.timezone, settings.site.timezone),
                                          start_at=t.start_at))
    return sources


async def _retention(settings: Settings, store: Any) -> None:
    """Drops events past ``storage.retention_days`` once an hour."""
    while True:
        cutoff = _dt.datetime.now(_dt.timezone.utc) - _dt.timedelta(days=settings.storage.retention_days)
        try:
            n = await asyncio.to_thread(store.delete_before, cutoff)
            if n:
                log.info("retention: dropped %d events older than %s", n, cutoff.isoformat())
        except Exception:
            log.exception("retention run failed; will retry in an hour")
        await asyncio.sleep(3600)


async def _start_playbooks(settings: Settings, soc: Any, alert_sink: Any, services: dict[str, Any], *,
                           dry_run_only: bool = False) -> tuple[Any, list[Any]]:
    """The playbook runner: loaded library + folders, subscribed to new alerts, its API routers.
    ``dry_run_only``: every run is a dry run (the demo without a sandbox)."""
    if not settings.playbooks.enabled:
        return None, []
    from api.routers.playbooks import routers

    runner, errors = build_playbooks(settings, soc)
    if dry_run_only:
        from citysoc.demo.sandbox import force_dry_runs

        force_dry_runs(runner)
    for e in errors:
        log.error("playbook not loaded (fix it and restart; `citysoc playbooks validate DIR` checks): %s", e)
    ended = await runner.recover()
    if ended:
        log.warning("playbook runs %s were interrupted by the last shutdown; resume them", ended)
    runner.start_background()
    await runner.start_schedules()
    alert_sink.listeners.append(runner.alert_listener(asyncio.get_running_loop()))
    if services.get("alert_stream") is not None:  # the console hears every run change live
        runner.run_listeners.append(services["alert_stream"].run_listener)
    services["playbooks"] = runner
    log.info("playbooks: %d loaded (%d rejected)", len(runner.playbooks), len(errors))
    return runner, list(routers)


def _open_demo_sandbox(settings: Settings) -> tuple[Any, bool]:
    """The served demo (``demo.enabled``) never acts on this machine: its nft actions get a
    network namespace of their own, or every run is a dry run. Returns (sandbox or None,
    dry_run_only). A demo config that names its own ``command_prefix`` keeps it."""
    if not settings.demo.enabled or not settings.playbooks.enabled:
        return None, False
    if settings.playbooks.nft.command_prefix:
        log.info("demo: playbook nft actions run through the configured command_prefix %s",
                 settings.playbooks.nft.command_prefix)
        return None, False
    why = "demo.sandbox is dry-run"
    if settings.demo.sandbox == "netns":
        from citysoc.demo.sandbox import DemoSandbox

        sandbox, why = DemoSandbox.open()
        if sandbox is not None:
            settings.playbooks.nft.command_prefix = sandbox.prefix
            log.warning("demo: playbook firewall actions act in network namespace %s (removed at stop), "
                        "never on this machine's nftables", sandbox.ns)
            return sandbox, False
    log.warning("demo: every playbook run is a dry run (%s): nothing acts on this machine", why)
    return None, True


async def _asset_checks(settings: Settings, monitor: Any) -> None:
    """Every ``assets.check_interval_s``: flush health counters, reload a changed inventory,
    raise ``asset:silent`` alerts."""
    while True:
        await asyncio.sleep(settings.assets.check_interval_s)
        try:
            await asyncio.to_thread(monitor.tick)
        except Exception:
            log.exception("asset health check failed; will retry")


def _start_scheduled_rules(settings: Settings, store: Any, alert_sink: Any, services: dict[str, Any]) -> Any:
    """Scheduled Sigma query rules (``detection.scheduled``), or None when none are configured.
    Rules that cannot be scheduled are logged with their reason; the runner's state file is
    ``<data>/scheduled.db`` (``citysoc scheduled status`` reads it)."""
    cfg = settings.detection.scheduled
    if not (settings.detection.enabled and cfg.get("enabled", True) and cfg.get("rules")):
        return None
    from citysoc.detection import SIGMA_PACK
    from detections.scheduled import build_scheduled

    paths = ([SIGMA_PACK] if settings.detection.sigma_pack else []) + [Path(p) for p in settings.rules]
    runner = build_scheduled(cfg, store, alert_sink, settings.data, search_paths=paths)
    for f in runner.failures:
        log.error("scheduled rule not scheduled: %s %s: %s", f.path, f.rule_id or "", f.reason)
    log.info("scheduled rules: %d scheduled (%d not)", len(runner.rules), len(runner.failures))
    services["scheduled_rules"] = runner
    return runner


async def _start_demo_logs(settings: Settings, assets: Any, pipeline: Any) -> Any:
    """The served demo's background logs (``demo.background_logs``): the first lines go in
    and through every stage before the asset checks start, so the city is heard again
    before anyone looks for silence. Returns the :class:`citysoc.demo.live.LiveCity` to
    feed on, or None."""
    if not (settings.demo.enabled and settings.demo.background_logs):
        return None
    from citysoc.demo.live import LiveCity

    live = await asyncio.to_thread(lambda: LiveCity(assets.store.list(), assets.store.health(), time.time()))
    first = [r for _t, r in live.due(time.time())]
    if first:
        await pipeline.submit(first)
        await pipeline.drain()
    log.info("demo: background logs for %d assets every %.0f s (%d kept silent: %s)", len(live.assets),
             settings.demo.background_interval_s, len(live.quiet), ", ".join(live.quiet) or "none")
    return live


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """The HTTP server's limits from ``server:`` settings: concurrency, keep-alive, a
    deadline and a size cap for request headers, and which proxies' ``X-Forwarded-For``
    is believed (none unless listed; uvicorn's own default trusts loopback)."""
    from api.header_timeout import header_timeout_protocol

    srv = settings.server
    return {"host": srv.host, "port": srv.port, "limit_concurrency": srv.limit_concurrency,
                "timeout_keep_alive": srv.timeout_keep_alive, "http": header_timeout_protocol(srv.header_timeout),
                "h11_max_incomplete_event_size": srv.max_header_bytes,
                "proxy_headers": bool(srv.trusted_proxies), "forwarded_allow_ips": list(srv.trusted_proxies) or None}


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextmanager
def graceful_stop_signals(on_stop: list[Any]) -> Iterator[list[int]]:
    """SIGINT/SIGTERM ask for a stop instead of killing the process, for all of ``serve``.

    Why: uvicorn catches these signals only while ``Server.serve()`` runs and, when it
    returns, *raises the caught signal again* with the handler that was there before. With
    Python's default SIGTERM handler that kills the process on the spot, before
    ``run_server``'s cleanup: accepted events still in the queues were never stored, SQLite
    was not closed and the parse worker processes were orphaned (they kept the caller's
    stdout/stderr open, so a supervisor waiting for them saw ``serve`` hang). Installed
    around the whole of ``run_server``, this handler is the one uvicorn restores and
    re-raises into: it only records the signal, and the cleanup runs.

    ``on_stop`` holds what a signal should stop (uvicorn's server, once it exists); the
    yielded list collects the signals received.
    """
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():  # signals are the main thread's
        yield received
        return

    def _handle(sig: int, _frame: Any) -> None:
        if not received:
            log.info("%s received: stopping (accepted events are stored first)", signal.Signals(sig).name)
        received.append(sig)
        for server in on_stop:
            server.should_exit = True

    previous = {sig: signal.signal(sig, _handle) for sig in STOP_SIGNALS}
    try:
        yield received
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


async def run_server(settings: Settings, *, log_level: str = "info") -> None:
    """Build every part, serve until SIGINT/SIGTERM (or a source fails), then stop them in
    order: sources, pipeline (drained: what was accepted is stored and detected), parse
    workers, stores."""
    check_formats(settings)
    stoppers: list[Any] = []
    with graceful_stop_signals(stoppers) as received:
        await _run_server(settings, log_level=log_level, stoppers=stoppers, received=received)


async def _run_server(settings: Settings, *, log_level: str, stoppers: list[Any], received: list[int]) -> None:
    store = open_store(settings)
    deadletters = open_deadletters(settings)
    soc = open_soc(settings)
    ensure_initial_admin(settings, soc)
    alert_sink, services = build_alerting(soc, settings)
    demo_sandbox, dry_run_only = _open_demo_sandbox(settings)
    playbook_runner, extra_routers = await _start_playbooks(settings, soc, alert_sink, services,
                                                            dry_run_only=dry_run_only)
    detection = build_detection(settings)
    services["rules"] = detection
    if playbook_runner is not None and detection.intel_manager is not None:
        playbook_runner.ctx.intel_lookup = intel_lookup_for(detection.intel_manager)  # the enrich action
    cluster = None
    if settings.bus.backend == "nats":  # this node's roles on NATS JetStream (citysoc/cluster.py)
        from citysoc.cluster import start_cluster

        cluster = await start_cluster(settings, store=store, deadletters=deadletters,
                                      detectors=detection.detectors, alert_sink=alert_sink)
        services["cluster"] = cluster
    if cluster is None:
        pipeline = build_pipeline(settings, store, deadletters, detectors=detection.detectors, alert_sink=alert_sink)
        detection.start_background(alert_sink.emit)  # watched-folder YARA scans on their own worker
        if detection.yara_files is not None:
            pipeline.sources["yara-file-scans"] = detection.yara_files.metrics
    else:  # a collector publishes where the store would be; detection runs on the detector nodes
        pipeline = build_pipeline(settings, cluster.publisher or store, deadletters, detectors=[],
                                  alert_sink=alert_sink)
        pipeline.sources["bus"] = cluster.counters
    assets = build_assets(settings, alert_sink)
    assets.install(pipeline, services)
    if playbook_runner is not None:
        playbook_runner.ctx.asset_lookup = assets.lookup  # the enrich action sees what the API edits
    from api.routers.assets import router as assets_router

    extra_routers = [*extra_routers, assets_router]
    from api.routers.reports import router as reports_router
    from citysoc.wiring import build_reports

    reports, _evidence = build_reports(settings, soc, events=store, assets=assets.store,
                                       runs=services.get("playbooks"), rules=lambda: services.get("rules"))
    services["reports"] = reports
    extra_routers = [*extra_routers, reports_router]
    from api.routers.scheduled import router as scheduled_router

    extra_routers = [*extra_routers, scheduled_router]  # 503 until scheduled rules are configured
    await pipeline.start()
    demo_live = await _start_demo_logs(settings, assets, pipeline)
    state = AppState(settings=settings, store=store, deadletters=deadletters, pipeline=pipeline, started_at=time.time(),
                     services=services)
    app = create_app(state, extra_routers=extra_routers)
    if cluster is None or "api" in cluster.roles:
        mount_console(app)  # the web console at / (browsers); GET / still answers shippers with ES info
    sources = make_sources(settings) if cluster is None or "collector" in cluster.roles else []
    from api.bodies import INFLIGHT

    INFLIGHT.limit = settings.server.ingest_inflight_bytes  # one process-wide budget for ingest bodies
    # What start-up built (rule plans, the intel index, the asset index, the app) lives
    # until exit: keep the cyclic GC from walking it on every full collection. Each
    # event batch allocates tens of thousands of containers, so full collections are
    # frequent, and with 100k IOCs and 3k rules loaded each one walked millions of
    # objects (issue 14's profile: 27 % of the main process's GIL time went to the line
    # that loads a parsed batch).
    gc.freeze()
    config = uvicorn.Config(app, **uvicorn_options(settings), log_level=log_level, lifespan="off", access_log=False)
    server = uvicorn.Server(config)
    stoppers.append(server)
    if received:  # a signal came during start-up
        server.should_exit = True
    failures: list[BaseException] = []

    def _supervise(task: asyncio.Task[None]) -> None:
        # A collector that cannot listen (port taken, bad certificate) stops the server:
        # silently running without it would leave the city's devices unheard.
        if not task.cancelled() and task.exception() is not None:
            log.error("%s failed: %s", task.get_name(), task.exception())
            failures.append(task.exception())  # type: ignore[arg-type]
            server.should_exit = True

    tasks: list[asyncio.Task[None]] = []
    for src in sources:
        pipeline.sources[src.name] = src.counters
        t = asyncio.create_task(src.run(pipeline.submit), name=f"source-{src.name}")
        t.add_done_callback(_supervise)
        tasks.append(t)
    tasks.append(asyncio.create_task(_retention(settings, store), name="retention"))
    tasks.append(asyncio.create_task(_asset_checks(settings, assets.monitor), name="asset-health"))
    if demo_live is not None:
        from citysoc.demo.live import feed_forever

        tasks.append(asyncio.create_task(feed_forever(demo_live, pipeline.submit, settings.demo.background_interval_s),
                                         name="demo-background-logs"))
    if settings.reports.schedules:
        tasks.append(asyncio.create_task(reports.run_forever(), name="scheduled-reports"))
    scheduled_rules = _start_scheduled_rules(settings, store, alert_sink, services)
    if scheduled_rules is not None:
        tasks.append(asyncio.create_task(scheduled_rules.run_forever(), name="scheduled-rules"))

    async def _mark_ready() -> None:
        while not server.started:
            if server.should_exit:
                return
            await asyncio.sleep(0.05)
        state.ready = True
        log.info("citysoc ready: console/API http://%s:%d, data in %s",
                 settings.server.host, settings.server.port, settings.data)

    tasks.append(asyncio.create_task(_mark_ready(), name="ready"))

    async def _end_alert_streams() -> None:
        # uvicorn waits for open responses before it stops; SSE streams never end on
        # their own, so end them as soon as shutdown begins.
        while not server.should_exit:  # noqa: ASYNC110 -- uvicorn exposes a flag, not an event
            await asyncio.sleep(0.2)
        services["alert_stream"].close()

    tasks.append(asyncio.create_task(_end_alert_streams(), name="end-alert-streams"))
    try:
        await server.serve()
    finally:
        state.ready = False
        for t in tasks:
            t.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        for t, r in zip(tasks, results):
            if isinstance(r, Exception) and not isinstance(r, asyncio.CancelledError):
                log.error("%s ended with %r", t.get_name(), r)
        await pipeline.stop()
        if cluster is not None:
            await cluster.close()
        assets.store.save_health(assets.tracker.snapshot())
        if playbook_runner is not None:
            await playbook_runner.stop()
        if demo_sandbox is not None:  # nothing acts in it any more
            demo_sandbox.close()
        if scheduled_rules is not None:
            scheduled_rules.state.close()
        store.close()
        soc.close()
        detection.close()
    if failures:
        raise failures[0]
