"""Runs the server process: builds every part from settings and supervises them.

:func:`build_server` is the composition root: it builds every part of ``serve`` once,
in dependency order, each handed what it needs when it is built, into one
:class:`ServerParts`; :func:`run_server` starts them, serves, and stops them. One
asyncio loop hosts uvicorn (API + console), the collectors' sources, the pipeline stages
and the scheduler; blocking work goes to threads inside the pipeline.
"""
from __future__ import annotations

import asyncio
import datetime as _dt
import logging
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import uvicorn

from api.app import create_app
from api.deps import AppState, Services
from api.stream import AlertBroadcaster
from core.timezones import effective_zone
from citysoc.wiring import build_alerting, build_pipeline, ensure_initial_admin, open_deadletters, open_soc, open_store
from citysoc.wiring import AssetRuntime, build_playbooks, build_reports, check_formats, intel_lookup_for
from citysoc.detection import DetectionRuntime, build_detection
from dashboards.console import mount_console
from citysoc.wiring import build_assets
from core.alerts import AlertRecorder
from core.gctune import tune_gc
from core.pipeline import Pipeline
from core.protocols import DeadLetterStore, EventStore, Source
from core.settings import Settings

if TYPE_CHECKING:
    from fastapi import FastAPI

    from citysoc.cluster import Cluster
    from citysoc.demo.sandbox import DemoSandbox
    from detections.scheduled import ScheduledRunner
    from playbooks.runner import Runner
    from reports.service import ReportGenerator

__all__ = ["run_server", "build_server", "ServerParts", "make_sources", "uvicorn_options", "graceful_stop_signals"]

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


def _build_playbooks(settings: Settings, soc: Any, detection: DetectionRuntime, assets: AssetRuntime,
                     alert_stream: AlertBroadcaster, *, dry_run_only: bool = False) -> Runner | None:
    """The playbook runner (library + folders), or None when ``playbooks.enabled`` is off.
    Its ``enrich`` action looks up the live asset index and the intel feeds; the console
    hears every run change. ``dry_run_only``: every run is a dry run (the demo without a
    sandbox)."""
    if not settings.playbooks.enabled:
        return None
    intel = intel_lookup_for(detection.intel_manager) if detection.intel_manager is not None else None
    runner, errors = build_playbooks(settings, soc, intel_lookup=intel, asset_lookup=assets.lookup,
                                     run_listeners=[alert_stream.run_listener], dry_run_only=dry_run_only)
    for e in errors:
        log.error("playbook not loaded (fix it and restart; `citysoc playbooks validate DIR` checks): %s", e)
    log.info("playbooks: %d loaded (%d rejected)", len(runner.playbooks), len(errors))
    return runner


async def _start_playbooks(runner: Runner) -> None:
    """Runs interrupted by the last shutdown are marked failed, approvals expire, schedules run."""
    ended = await runner.recover()
    if ended:
        log.warning("playbook runs %s were interrupted by the last shutdown; resume them", ended)
    runner.start_background()
    await runner.start_schedules()


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


async def _asset_checks(settings: Settings, monitor: Any, alert_sink: AlertRecorder) -> None:
    """Every ``assets.check_interval_s``: flush health counters, reload a changed inventory,
    raise ``asset:silent`` alerts (the monitor returns them; they are recorded here, so the
    asset runtime is built before the alert recorder, see :func:`build_server`)."""

    def tick() -> None:
        dets = monitor.tick()
        if dets:
            alert_sink.emit(dets)

    while True:
        await asyncio.sleep(settings.assets.check_interval_s)
        try:
            await asyncio.to_thread(tick)
        except Exception:
            log.exception("asset health check failed; will retry")


def _build_scheduled_rules(settings: Settings, store: Any, alert_sink: Any) -> ScheduledRunner | None:
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


@dataclass
class ServerParts:
    """Every part of one ``citysoc serve`` process, as :func:`build_server` built them (in
    this order). Nothing is patched into a part after it is built; :meth:`close` stops
    and closes them."""

    settings: Settings
    store: EventStore
    deadletters: DeadLetterStore
    soc: Any
    """``storage.socdb``: users, alerts, cases, incidents, audit."""
    demo_sandbox: DemoSandbox | None
    assets: AssetRuntime
    detection: DetectionRuntime
    alert_stream: AlertBroadcaster
    playbooks: Runner | None
    alert_sink: AlertRecorder
    cluster: Cluster | None
    pipeline: Pipeline
    reports: ReportGenerator
    scheduled_rules: ScheduledRunner | None
    state: AppState
    app: FastAPI
    sources: list[Source]
    """The listeners and tails this node runs (none without the ``collector`` role)."""

    async def close(self) -> None:
        """Drain and stop the pipeline and the parse workers, leave the cluster, keep the
        health counters, stop the runner and close every store."""
        await self.pipeline.stop()
        if self.cluster is not None:
            await self.cluster.close()
        self.assets.store.save_health(self.assets.tracker.snapshot())
        if self.playbooks is not None:
            await self.playbooks.stop()
        if self.demo_sandbox is not None:  # nothing acts in it any more
            self.demo_sandbox.close()
        if self.scheduled_rules is not None:
            self.scheduled_rules.state.close()
        self.store.close()
        self.soc.close()
        self.detection.close()


async def build_server(settings: Settings) -> ServerParts:
    """Build every part of ``serve`` once, in dependency order, each given the parts it
    needs as constructor arguments:

    1. the stores (events, dead letters, soc.db with the first admin) and the served
       demo's sandbox (it sets the nft command prefix the playbook actions use);
    2. the asset runtime (store, live index, health tracker, asset detectors);
    3. the detection engines, their rule catalog listing the asset detectors;
    4. the console's alert stream, then the playbook runner with the live asset and intel
       lookups and the stream as run listener, started (interrupted runs marked failed,
       schedules) before anything can raise an alert;
    5. the alert recorder, told of every change by the stream and the runner;
    6. with ``bus.backend: nats`` this node's cluster roles (they record into the
       recorder; a collector publishes where the store would be);
    7. the pipeline: engines and asset detectors, the live asset index as enricher, the
       inventory version for the parse workers;
    8. reports and scheduled rules, then :class:`api.deps.Services`, the app (every
       router of :data:`api.app.ROUTERS`; the console on nodes with the ``api`` role) and
       the sources (nodes with the ``collector`` role).

    There was one cycle: the recorder calls the runner, the runner's ``enrich`` action
    reads the asset index, and the asset monitor sent its ``asset:silent`` detections to
    the recorder. The monitor now returns them from ``tick`` and the asset-health task
    records them (:func:`_asset_checks`), so assets come first and need nothing later.
    """
    store = open_store(settings)
    deadletters = open_deadletters(settings)
    soc = open_soc(settings)
    ensure_initial_admin(settings, soc)
    demo_sandbox, dry_run_only = _open_demo_sandbox(settings)
    assets = build_assets(settings)
    detection = build_detection(settings, attach=assets.toggled)
    alert_stream = AlertBroadcaster()
    runner = _build_playbooks(settings, soc, detection, assets, alert_stream, dry_run_only=dry_run_only)
    if runner is not None:
        await _start_playbooks(runner)
    listeners = [runner.alert_listener(asyncio.get_running_loop())] if runner is not None else []
    alert_sink, alerting = build_alerting(soc, settings, broadcaster=alert_stream, listeners=listeners)
    cluster = None
    if settings.bus.backend == "nats":  # this node's roles on NATS JetStream (citysoc/cluster.py)
        from citysoc.cluster import start_cluster

        cluster = await start_cluster(settings, store=store, deadletters=deadletters,
                                      detectors=detection.detectors, alert_sink=alert_sink)
    # A collector publishes where the store would be; detection runs on the detector nodes.
    pipeline = build_pipeline(settings, store if cluster is None else (cluster.publisher or store), deadletters,
                              detectors=[*(detection.detectors if cluster is None else []), *assets.detectors],
                              alert_sink=alert_sink, enrichers=[assets.enrich],
                              worker_context=assets.inventory_version)
    if detection.partitions is not None:  # started and stopped with the pipeline
        pipeline.sources["detector-processes"] = detection.partitions.counters
    if cluster is None:
        detection.start_background(alert_sink.emit)  # watched-folder YARA scans on their own worker
        if detection.yara_files is not None:
            pipeline.sources["yara-file-scans"] = detection.yara_files.metrics
    else:
        pipeline.sources["bus"] = cluster.counters
    reports, _evidence = build_reports(settings, soc, events=store, assets=assets.store, runs=runner,
                                       rules=lambda: detection)
    scheduled_rules = _build_scheduled_rules(settings, store, alert_sink)
    services: Services = assets.services(replace(
        alerting, rules=detection, playbooks=runner, scheduled_rules=scheduled_rules, reports=reports,
        detector_state=detection.state_sizes,
        bus_counters=cluster.counters if cluster is not None else None))
    state = AppState(settings=settings, store=store, deadletters=deadletters, pipeline=pipeline, started_at=time.time(),
                     services=services)
    app = create_app(state)
    if cluster is None or "api" in cluster.roles:
        mount_console(app)  # the web console at / (browsers); GET / still answers shippers with ES info
    sources = make_sources(settings) if cluster is None or "collector" in cluster.roles else []
    return ServerParts(settings=settings, store=store, deadletters=deadletters, soc=soc, demo_sandbox=demo_sandbox,
                       assets=assets, detection=detection, alert_stream=alert_stream, playbooks=runner,
                       alert_sink=alert_sink, cluster=cluster, pipeline=pipeline, reports=reports,
                       scheduled_rules=scheduled_rules, state=state, app=app, sources=sources)


async def run_server(settings: Settings, *, log_level: str = "info") -> None:
    """Build every part, serve until SIGINT/SIGTERM (or a source fails), then stop them in
    order: sources, pipeline (drained: what was accepted is stored and detected), parse
    workers, stores."""
    check_formats(settings)
    stoppers: list[Any] = []
    with graceful_stop_signals(stoppers) as received:
        await _run_server(settings, log_level=log_level, stoppers=stoppers, received=received)


async def _run_server(settings: Settings, *, log_level: str, stoppers: list[Any], received: list[int]) -> None:
    parts = await build_server(settings)
    pipeline, state = parts.pipeline, parts.state
    tasks: list[asyncio.Task[None]] = []
    failures: list[BaseException] = []
    try:
        await pipeline.start()
        demo_live = await _start_demo_logs(settings, parts.assets, pipeline)
        from api.bodies import INFLIGHT

        INFLIGHT.limit = settings.server.ingest_inflight_bytes  # one process-wide budget for ingest bodies
        # What start-up built (rule plans, the intel index, the asset index, the app) lives
        # until exit: keep the cyclic GC from walking it, and collect young objects every
        # 50,000 allocations instead of 700 (issue 14's profile: 27 % of the
        # main process's GIL time went to the line that loads a parsed batch; why and the
        # figures in core/gctune.py).
        tune_gc()
        config = uvicorn.Config(parts.app, **uvicorn_options(settings), log_level=log_level, lifespan="off",
                                access_log=False)
        server = uvicorn.Server(config)
        stoppers.append(server)
        if received:  # a signal came during start-up
            server.should_exit = True

        def _supervise(task: asyncio.Task[None]) -> None:
            # A collector that cannot listen (port taken, bad certificate) stops the server:
            # silently running without it would leave the city's devices unheard.
            if not task.cancelled() and task.exception() is not None:
                log.error("%s failed: %s", task.get_name(), task.exception())
                failures.append(task.exception())  # type: ignore[arg-type]
                server.should_exit = True

        for src in parts.sources:
            pipeline.sources[src.name] = src.counters
            t = asyncio.create_task(src.run(pipeline.submit), name=f"source-{src.name}")
            t.add_done_callback(_supervise)
            tasks.append(t)
        tasks.append(asyncio.create_task(_retention(settings, parts.store), name="retention"))
        tasks.append(asyncio.create_task(_asset_checks(settings, parts.assets.monitor, parts.alert_sink),
                                         name="asset-health"))
        if demo_live is not None:
            from citysoc.demo.live import feed_forever

            tasks.append(asyncio.create_task(feed_forever(demo_live, pipeline.submit,
                                                          settings.demo.background_interval_s),
                                             name="demo-background-logs"))
        if settings.reports.schedules:
            tasks.append(asyncio.create_task(parts.reports.run_forever(), name="scheduled-reports"))
        if parts.scheduled_rules is not None:
            tasks.append(asyncio.create_task(parts.scheduled_rules.run_forever(), name="scheduled-rules"))

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
            parts.alert_stream.close()

        tasks.append(asyncio.create_task(_end_alert_streams(), name="end-alert-streams"))
        await server.serve()
    finally:
        state.ready = False
        for t in tasks:
            t.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        for t, r in zip(tasks, results):
            if isinstance(r, Exception) and not isinstance(r, asyncio.CancelledError):
                log.error("%s ended with %r", t.get_name(), r)
        await parts.close()
    if failures:
        raise failures[0]
