"""Picks the concrete implementations and connects them: the only place that does.

Everything else depends on ``core`` protocols; this module knows that the embedded
store is ``storage.sqlite``, that parsing is ``collectors.parsers`` and so on.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.events import Event, get_field, set_field
from core.pipeline import Pipeline
from core.protocols import DeadLetterStore, Detector, EventStore, RawRecord
from core.settings import Settings

if TYPE_CHECKING:
    from api.deps import Services
    from api.stream import AlertBroadcaster
    from core.alerts import AlertListener, AlertRecorder

__all__ = ["open_store", "open_deadletters", "make_parse", "check_formats", "format_errors", "FormatConfigError", "build_pipeline", "data_dir", "open_soc",
           "ensure_initial_admin", "build_alerting", "build_playbooks", "build_assets", "open_assets", "AssetRuntime",
           "build_reports", "intel_lookup_for"]


def data_dir(settings: Settings) -> Path:
    """The data directory, created ``0700``; files in it are tightened to ``0600``.

    It holds password hashes, API key hashes, sessions and pickled scheduler jobs, so
    nobody but the SOC's own account may read it. A directory an older version left
    world-readable is tightened here too (only when this process owns it)."""
    d = Path(settings.data)
    d.mkdir(mode=0o700, parents=True, exist_ok=True)
    _tighten(d)
    return d


def _tighten(d: Path) -> None:
    import os
    import stat

    try:
        st = d.stat()
        if st.st_uid != os.geteuid():
            return  # not ours to change (a shared mount): leave it to its owner
        if st.st_mode & 0o077:
            os.chmod(d, 0o700)
        for entry in os.scandir(d):
            if entry.is_file(follow_symlinks=False) and entry.stat(follow_symlinks=False).st_mode & 0o077:
                os.chmod(entry.path, stat.S_IMODE(entry.stat(follow_symlinks=False).st_mode) & 0o700)
    except OSError:
        pass  # best effort: the stores still open and say so if they cannot


def open_store(settings: Settings) -> EventStore:
    """The configured event store: embedded SQLite (default) or Elasticsearch."""
    if settings.storage.backend == "elasticsearch":
        from storage.elasticsearch import ElasticsearchEventStore

        return ElasticsearchEventStore(settings.storage)
    from storage.sqlite import SQLiteEventStore

    return SQLiteEventStore(data_dir(settings) / "events.db", cache_mib=settings.storage.sqlite_cache_mib)


def open_deadletters(settings: Settings) -> DeadLetterStore:
    from storage.deadletters import SQLiteDeadLetterStore

    dl = settings.deadletters
    return SQLiteDeadLetterStore(data_dir(settings) / "deadletters.db", max_entry_bytes=dl.max_entry_bytes,
                                 max_total_bytes=dl.max_total_bytes, retention_days=dl.retention_days)


class FormatConfigError(ValueError):
    """A ``format`` setting names no parser (the message lists every problem and the valid ids)."""


def format_errors(settings: Settings) -> list[str]:
    """Every ``format`` setting of ``citysoc.yml`` that names no registered parser, one line each."""
    from collectors.parsers import check_format

    checks = [("syslog.format", settings.syslog.format)]
    checks += [(f"tail[{i}].format ({t.name})", t.format) for i, t in enumerate(settings.tail or [])]
    return [e for where, value in checks if (e := check_format(value, where)) is not None]


def check_formats(settings: Settings) -> None:
    """Refuse to start on a misspelt format id: otherwise every line would be dead-lettered."""
    errors = format_errors(settings)
    if errors:
        raise FormatConfigError("\n".join(errors))


def make_parse() -> Any:
    """The pipeline's parse function: our parser registry (``ecs`` passthrough included)."""
    from collectors.parsers import parse_record

    def parse(record: RawRecord) -> Event:
        ev = parse_record(record)
        if record.dataset and get_field(ev, "event.dataset") is None:
            set_field(ev, "event.dataset", record.dataset)
        return ev

    return parse


class _WorkerAssets:
    """A worker's asset attribution: the same :class:`collectors.enrich.AssetIndex` the
    server builds, over ``<data>/assets.db``, rebuilt whenever the version the server
    sends with a batch differs from the one loaded (the server bumps it after every
    inventory change it sees, :class:`AssetRuntime`), so an event parsed after a change
    is attributed with the new inventory, as it would be in the server."""

    def __init__(self, path: str) -> None:
        from collectors.enrich import AssetIndex

        self.path = Path(path)
        self.version: object = object()  # matches no version: the first batch loads
        self.index = AssetIndex([])

    def refresh(self, version: object) -> None:
        if version == self.version:
            return
        from collectors.enrich import AssetIndex
        from storage.assets import SQLiteAssetStore

        self.index = load_asset_index(SQLiteAssetStore(self.path)) if self.path.exists() else AssetIndex([])
        self.version = version

    def enrich(self, event: Event) -> None:
        self.index.enrich(event)


def worker_stage(rule_folders: list[str] | None, cache_dir: str | None, assets_db: str | None = None,
                 store_rows: bool = False) -> Any:
    """A parse worker's stage (built inside the worker process; a picklable
    ``functools.partial`` of this function is the factory): our parsers; then asset
    attribution over ``assets_db``; then Sigma's base rules matched on each parsed event
    (``SigmaEngine.match_ids``; ``core.events`` invariant 5). The rules are the server's
    own folders, loaded from the same plan cache; toggles and correlation state stay with
    the server's engine, which applies the matches after the commit. With ``store_rows``
    (the server stores in the embedded SQLite store) each event is also encoded as that
    store writes it (``storage.sqlite.encode_row``; ``core.events`` invariant 6)."""
    from core.workers import WorkerStage

    match = None
    if rule_folders:
        from detections.sigma import SigmaEngine, load_rules

        # workers=1: a pool worker may not start processes of its own; the server filled the cache.
        ruleset = load_rules([Path(f) for f in rule_folders], cache_dir=Path(cache_dir) if cache_dir else None,
                             workers=1)
        match = SigmaEngine(ruleset.rules, include_events=False).match_ids
    assets = _WorkerAssets(assets_db) if assets_db else None
    encode = None
    if store_rows:
        from storage.sqlite import encode_row as encode
    return WorkerStage(parse=make_parse(), match=match, enrich=assets.enrich if assets else None,
                       refresh=assets.refresh if assets else None, encode=encode)


def parse_factory(settings: Settings, detectors: list[Detector], *, store_rows: bool = False) -> Any:
    """What the parse workers build (:func:`worker_stage`): the parsers, asset attribution
    over ``<data>/assets.db`` (an empty index while there is none), and, when this pipeline runs Sigma (a detector named ``sigma``), Sigma matching. A
    collector node (no detectors) does not match: its events are detected elsewhere.
    ``store_rows``: the pipeline stores in the embedded SQLite store, so the workers encode
    its rows (:func:`worker_stage`)."""
    import functools

    from citysoc.detection import sigma_cache, sigma_folders

    sigma = any(getattr(d, "name", None) == "sigma" for d in detectors)
    return functools.partial(worker_stage, [str(f) for f in sigma_folders(settings)] if sigma else None,
                             str(sigma_cache(settings)) if sigma else None, str(data_dir(settings) / "assets.db"),
                             store_rows)


def make_enrichers(settings: Settings) -> list[Any]:
    """Attribution for a pipeline without a live :class:`AssetRuntime` (``citysoc ingest``):
    one index over the asset store, which the API and CLI edit (the ``inventory`` file is
    imported into it on first use, see :func:`open_assets`). ``serve`` hands
    :func:`build_pipeline` the live index instead (:meth:`AssetRuntime.enrich`)."""
    if settings.inventory is None and not (data_dir(settings) / "assets.db").exists():
        return []
    index = load_asset_index(open_assets(settings))
    return [index.enrich] if len(index) else []


def load_asset_index(store: Any) -> Any:
    """A :class:`collectors.enrich.AssetIndex` over every asset of ``store``, which is
    closed after: what a worker rebuilds on an inventory change and ``citysoc ingest`` uses."""
    from collectors.enrich import AssetIndex

    try:
        return AssetIndex(store.list())
    finally:
        store.close()


def build_pipeline(
    settings: Settings,
    store: EventStore,
    deadletters: DeadLetterStore,
    *,
    detectors: list[Detector] | None = None,
    alert_sink: Any = None,
    enrichers: Sequence[Callable[[Event], None]] | None = None,
    worker_context: Callable[[], object] | None = None,
) -> Pipeline:
    """The pipeline over ``store``, every part handed in: ``detectors`` in the order they
    run, ``enrichers`` (None: an index over the asset store, :func:`make_enrichers`, as
    ``citysoc ingest`` wants; ``serve`` passes the live :meth:`AssetRuntime.enrich`),
    ``worker_context`` (what the parse workers get with each batch: ``serve``'s
    :meth:`AssetRuntime.inventory_version`, so they rebuild their asset index after a
    change). The workers match Sigma when ``detectors`` hold the Sigma engine."""
    p = settings.pipeline
    from core.workers import ParseWorkers, default_workers

    n = default_workers() if p.workers is None else p.workers
    detectors = list(detectors or [])
    # The factory is pickled into each worker, which builds the parser registry there.
    from storage.sqlite import SQLiteEventStore

    factory = parse_factory(settings, detectors, store_rows=isinstance(store, SQLiteEventStore))
    workers = ParseWorkers(factory, n, context=worker_context) if n > 0 else None
    return Pipeline(
        workers=workers,
        store=store,
        deadletters=deadletters,
        parse=make_parse(),
        enrichers=make_enrichers(settings) if enrichers is None else enrichers,
        detectors=detectors,
        alert_sink=alert_sink,
        queue_size=p.queue_size,
        batch_size=p.batch_size,
        flush_ms=p.flush_ms,
    )


def open_soc(settings: Settings) -> Any:
    """Alerts, cases, users and the audit log: ``<data>/soc.db`` (``storage.socdb``)."""
    from storage.socdb import open_socdb

    soc = open_socdb(data_dir(settings))
    soc.users.password_changed.append(lambda user: _forget_initial_password(settings, user))
    return soc


def initial_password_path(settings: Settings) -> Path:
    return Path(settings.data) / "initial-admin-password"


def _forget_initial_password(settings: Settings, user: Any) -> None:
    """The generated password is a secret on disk until it is changed: then it is useless
    and is removed (it would otherwise sit in backups of the data folder forever)."""
    if user.name == "admin":
        initial_password_path(settings).unlink(missing_ok=True)


def _drop_stale_initial_password(settings: Settings, soc: Any) -> None:
    """The file left by an older version, or by a password changed while no hook ran:
    removed once it no longer opens the admin account."""
    from core.auth import verify_password

    path = initial_password_path(settings)
    if not path.exists():
        return
    admin = soc.users.get_user("admin")
    try:
        kept = path.read_text(encoding="utf-8").strip()
    except OSError:
        return
    if admin is None or not verify_password(admin.password_hash, kept):
        path.unlink(missing_ok=True)


def ensure_initial_admin(settings: Settings, soc: Any, echo: Any = None) -> str | None:
    """First start with no users: create ``admin`` with a random password, print it once
    to the terminal (stderr, never through logging, never again on later starts) and keep
    it in ``<data>/initial-admin-password`` (mode 0600), so ``make run`` works with zero
    setup. The file is removed as soon as the admin's password is changed (CLI or API),
    and at start when it no longer matches. Returns the password, or None when users exist."""
    import os
    import sys

    from core.auth import generate_password

    if soc.users.count_users():
        _drop_stale_initial_password(settings, soc)
        return None
    password = generate_password()
    soc.users.create_user("admin", "admin", password)
    path = data_dir(settings) / initial_password_path(settings).name
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(password + "\n")
    os.chmod(path, 0o600)
    soc.audit.append("system:serve", "user.create", "user:admin", after={"name": "admin", "role": "admin"},
                     details={"password": f"generated; written to {path}"})
    # Printed to the terminal, never through logging: no secret goes to a log.
    (echo or (lambda m: print(m, file=sys.stderr, flush=True)))(
        f"citysoc: created user 'admin' with password {password}\n"
        f"         (also in {path}; change it with `citysoc users password admin`)")
    return password


def build_alerting(soc: Any, settings: Settings | None = None, *, broadcaster: AlertBroadcaster | None = None,
                   listeners: Sequence[AlertListener] = ()) -> tuple[AlertRecorder, Services]:
    """The pipeline's alert sink and the API services around alerts, incidents, cases and
    users. ``settings.alerts`` sets the dedupe window, folding and incident grouping.

    The recorder tells ``broadcaster`` (the console's live stream; a new one when None)
    and then each of ``listeners`` (``serve``: the playbook runner's trigger) of every
    change, from its construction on."""
    from api.deps import Services
    from api.stream import AlertBroadcaster
    from core.alerts import AlertRecorder, AlertSettings, GroupingPolicy

    if broadcaster is None:
        broadcaster = AlertBroadcaster()
    cfg = settings.alerts if settings is not None else AlertSettings()
    recorder = AlertRecorder(soc.alerts, listeners=[broadcaster.publish, *listeners], window_s=cfg.dedupe_window_s,
                             policy=GroupingPolicy(cfg))
    from detections.yara.attachments import YaraAttachmentScanner

    services = Services(users=soc.users, alerts=soc.alerts, cases=soc.cases, incidents=soc.incidents, audit=soc.audit,
                        alert_stream=broadcaster, alert_recorder=recorder,
                        attachment_scanner=YaraAttachmentScanner())  # case uploads are YARA-scanned
    return recorder, services


def build_playbooks(settings: Settings, soc: Any, *, rescan: Any = None, execute: Any = None,
                    intel_lookup: Callable[[str], list[dict[str, Any]]] | None = None,
                    asset_lookup: Callable[[str], dict[str, Any] | None] | None = None,
                    run_listeners: Sequence[Callable[[Any, str], None]] = (),
                    dry_run_only: bool = False) -> tuple[Any, list[Any]]:
    """The playbook runner over ``playbooks/library`` + ``playbooks.folders``, its runs in
    ``<data>/playbooks.db``, its actions wired to soc.db's alerts/cases/audit,
    ``asset_lookup`` (``address or host -> asset``; ``serve``: :meth:`AssetRuntime.lookup`,
    the live index over the store the API edits) and ``intel_lookup``
    (``indicator -> [records]``), both for the ``enrich`` action, and YARA (rescan of
    quarantined files). ``run_listeners`` hear every run change (``serve``: the console's
    stream); ``dry_run_only`` makes every run a dry run (the served demo without a
    sandbox, :func:`citysoc.demo.sandbox.force_dry_runs`). Returns (runner, load errors):
    a malformed playbook file is left out whole and reported, the others run."""
    from playbooks.actions import ActionContext, load_actions
    from playbooks.runner import Runner, real_execute
    from playbooks.spec import LIBRARY, load_folders
    from storage.playbook_runs import SQLiteJobStore, SQLiteRunStore

    ps = settings.playbooks
    actions = load_actions()
    catalog = load_folders([LIBRARY, *ps.folders], actions)
    if rescan is None:
        from detections.yara.attachments import YaraAttachmentScanner

        rescan = YaraAttachmentScanner()
    ctx = ActionContext(settings=ps, data_dir=data_dir(settings), alerts=soc.alerts, cases=soc.cases,
                        asset_lookup=asset_lookup, intel_lookup=intel_lookup, rescan=rescan)
    store = SQLiteRunStore(data_dir(settings) / "playbooks.db")
    runner = Runner(catalog.playbooks, store, actions, ctx, settings=ps, audit=soc.audit, alerts=soc.alerts,
                    execute=execute or real_execute, jobstore=SQLiteJobStore(data_dir(settings) / "playbooks.db"),
                    run_listeners=run_listeners)
    if dry_run_only:
        from citysoc.demo.sandbox import force_dry_runs

        force_dry_runs(runner)
    return runner, catalog.errors


class AssetRuntime:
    """The asset parts of one server: the store, the live enricher (rebuilt from the store
    when the inventory changes), the health tracker and unmanaged-device detector that ride
    the pipeline, and the monitor the scheduler ticks (see ``core.assets``).

    Built before the pipeline, which gets :meth:`enrich`, :attr:`tracker`,
    :attr:`unmanaged` and :meth:`inventory_version` when it is built. ``alert_sink``: where
    the monitor's ``tick`` sends ``asset:silent`` detections; ``serve`` leaves it None and
    records what ``tick`` returns itself (``citysoc.runtime``), so the assets need nothing
    built after them."""

    def __init__(self, settings: Settings, store: Any, alert_sink: Any = None, *, clock: str = "wall",
                 now: Any = None) -> None:
        import time as _time

        from collectors.enrich import AssetIndex
        from core.assets import AssetMonitor, HealthTracker
        from detections.assets import SilentAssetDetector, UnmanagedAssetDetector

        self.store = store
        self.index = AssetIndex([])
        self.version = 0
        """Bumped on every inventory change; sent with each batch to the parse workers."""
        now = now or _time.time
        self.tracker = HealthTracker(clock=clock, initial=store.health(), now=now)
        s = settings.assets
        self.unmanaged = UnmanagedAssetDetector(s.camera_cidrs, lambda ip: self.index.lookup_ip(ip) is not None,
                                                level=s.unmanaged_level)
        self.silent = SilentAssetDetector(level=s.silent_level)
        self.monitor = AssetMonitor(store, self.tracker, alert_sink=alert_sink, on_change=self._rebuild,
                                    silent=self.silent.check, clock=now)
        self.monitor.refresh(force=True)

    def _rebuild(self, assets: list[Any]) -> None:
        from collectors.enrich import AssetIndex

        self.index = AssetIndex(assets)
        self.version += 1  # the parse workers rebuild theirs before their next batch
        self.unmanaged.forget()

    def enrich(self, event: Event) -> None:
        self.index.enrich(event)

    def lookup(self, value: str) -> dict[str, Any] | None:
        """The asset owning an address or host name, as the playbook ``enrich`` action wants it."""
        index = self.index
        a = index.lookup_ip(value) or index.lookup_host(value)
        return a.to_dict() if a is not None else None

    def changed(self) -> None:
        """Called by the API after a write: rebuild now rather than at the next tick."""
        self.monitor.refresh()

    def inventory_version(self) -> int:
        """The parse workers' context: they rebuild their asset index when it moves."""
        return self.version

    def now(self) -> float:
        """The monitor's "now" (event time in a replay), for the API's health views."""
        return float(self.monitor.clock())

    @property
    def detectors(self) -> list[Detector]:
        """What rides the pipeline's detect stage: health counting, unmanaged devices."""
        return [self.tracker, self.unmanaged]

    @property
    def toggled(self) -> tuple[Any, ...]:
        """The detectors the rule catalog lists and toggles (``build_detection(attach=...)``)."""
        return (self.unmanaged, self.silent)

    def services(self, base: Services) -> Services:
        """``base`` with the API's asset parts: the store, the live tracker, the rebuild
        hook and the monitor's clock."""
        import dataclasses

        return dataclasses.replace(base, assets=self.store, asset_tracker=self.tracker, assets_changed=self.changed,
                                   asset_clock=self.now)


def open_assets(settings: Settings) -> Any:
    """The asset store, ``<data>/assets.db``. On first use with ``inventory`` set, that file
    is imported into it (:func:`core.assets.load_inventory_file`); a file the asset model
    rejects is reported with every bad row and nothing of it is imported."""
    import logging

    from core.assets import AssetError, load_inventory_file
    from storage.assets import SQLiteAssetStore

    store = SQLiteAssetStore(data_dir(settings) / "assets.db")
    inv = settings.inventory
    if inv is not None and store.count() == 0:
        try:
            store.put_many(load_inventory_file(inv))
        except AssetError as exc:
            logging.getLogger("citysoc.assets").warning("inventory %s not imported into the asset store: %s", inv, exc)
    return store


def build_assets(settings: Settings, alert_sink: Any = None) -> AssetRuntime:
    """The asset runtime over :func:`open_assets`."""
    store = open_assets(settings)
    return AssetRuntime(settings, store, alert_sink)


def build_reports(settings: Settings, soc: Any, *, events: EventStore | None = None, assets: Any = None,
                  runs: Any = None, rules: Any = None) -> tuple[Any, Any]:
    """The report generator over ``<data>/reports/`` and the evidence exporter's sources.

    Parts not handed in are opened from the data directory when their database exists
    (``assets.db``, ``playbooks.db``), so the CLI reports what the server recorded; a part
    that does not exist stays None and its report section says "not available"."""
    from reports.collect import Sources
    from reports.evidence import EvidenceSources
    from reports.service import ReportGenerator

    d = data_dir(settings)
    if assets is None and (d / "assets.db").exists():
        from storage.assets import SQLiteAssetStore

        assets = SQLiteAssetStore(d / "assets.db")
    if runs is None and (d / "playbooks.db").exists():
        from storage.playbook_runs import SQLiteRunStore

        runs = SQLiteRunStore(d / "playbooks.db")
    sources = Sources(alerts=soc.alerts, cases=soc.cases, audit=soc.audit, assets=assets, runs=runs, rules=rules)
    evidence = EvidenceSources(alerts=soc.alerts, cases=soc.cases, audit=soc.audit, events=events, runs=runs)
    return ReportGenerator(d / "reports", sources, settings.reports, evidence=evidence), evidence


def intel_lookup_for(manager: Any) -> Any:
    """``indicator -> [intel records]`` over a ``detections.intel.FeedManager``'s current index,
    for the playbooks' ``enrich`` action (IP, hash, URL or domain, told apart by shape)."""
    import ipaddress
    import re

    hash_re = re.compile(r"^(?:[0-9a-fA-F]{32}|[0-9a-fA-F]{40}|[0-9a-fA-F]{64})$")

    def lookup(value: str) -> list[dict[str, Any]]:
        index = manager.current()
        v = value.strip()
        try:
            ipaddress.ip_address(v)
            found = index.lookup_ip(v)
        except ValueError:
            if hash_re.match(v):
                found = index.lookup_hash(v)
            elif "://" in v:
                found = index.lookup_url(v)
            else:
                found = index.lookup_domain(v)
        return [{"type": i.type, "value": i.value, "feed": i.feed, "source": i.source, "confidence": i.confidence,
                 "description": i.description, "labels": list(i.labels)} for i in found]

    return lookup
