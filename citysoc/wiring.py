"""Picks the concrete implementations and connects them: the only place that does.

Everything else depends on ``core`` protocols; this module knows that the embedded
store is ``storage.sqlite``, that parsing is ``collectors.parsers`` and so on.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from core.events import Event, expand_dots, get_field, set_field, utc_now_iso
from core.pipeline import Pipeline
from core.protocols import DeadLetterStore, Detector, EventStore, ParseError, RawRecord
from core.settings import Settings

__all__ = ["open_store", "open_deadletters", "make_parse", "build_pipeline", "data_dir", "open_soc",
           "ensure_initial_admin", "build_alerting", "build_playbooks"]


def data_dir(settings: Settings) -> Path:
    d = Path(settings.data)
    d.mkdir(parents=True, exist_ok=True)
    return d


def open_store(settings: Settings) -> EventStore:
    """The configured event store: embedded SQLite (default) or Elasticsearch."""
    if settings.storage.backend == "elasticsearch":
        from storage.elasticsearch import ElasticsearchEventStore

        return ElasticsearchEventStore(settings.storage)
    from storage.sqlite import SQLiteEventStore

    return SQLiteEventStore(data_dir(settings) / "events.db")


def open_deadletters(settings: Settings) -> DeadLetterStore:
    from storage.deadletters import SQLiteDeadLetterStore

    return SQLiteDeadLetterStore(data_dir(settings) / "deadletters.db")


def _parse_ecs(record: RawRecord) -> Event:
    """``format=ecs``: the record already is an ECS document (EVTX import, pcap decoder)."""
    try:
        doc = orjson.loads(record.data)
    except orjson.JSONDecodeError as exc:
        raise ParseError(f"invalid JSON in an ECS record: {exc}") from exc
    if not isinstance(doc, dict):
        raise ParseError("an ECS record must be a JSON object")
    ev = expand_dots(doc)
    if "@timestamp" not in ev:
        ev["@timestamp"] = utc_now_iso()
    if get_field(ev, "event.ingested") is None:
        set_field(ev, "event.ingested", utc_now_iso())
    return ev


def make_parse() -> Any:
    """The pipeline's parse function: our parser registry, plus the ``ecs`` passthrough."""
    from collectors.parsers import parse_record

    def parse(record: RawRecord) -> Event:
        if record.format == "ecs":
            ev = _parse_ecs(record)
        else:
            ev = parse_record(record)
        if record.dataset and get_field(ev, "event.dataset") is None:
            set_field(ev, "event.dataset", record.dataset)
        return ev

    return parse


def make_enrichers(settings: Settings) -> list[Any]:
    if settings.inventory is None:
        return []
    from collectors.enrich import AssetIndex

    index = AssetIndex.load(settings.inventory)
    return [index.enrich]


def build_pipeline(
    settings: Settings,
    store: EventStore,
    deadletters: DeadLetterStore,
    *,
    detectors: list[Detector] | None = None,
    alert_sink: Any = None,
) -> Pipeline:
    p = settings.pipeline
    return Pipeline(
        store=store,
        deadletters=deadletters,
        parse=make_parse(),
        enrichers=make_enrichers(settings),
        detectors=detectors or [],
        alert_sink=alert_sink,
        queue_size=p.queue_size,
        batch_size=p.batch_size,
        flush_ms=p.flush_ms,
    )


def open_soc(settings: Settings) -> Any:
    """Alerts, cases, users and the audit log: ``<data>/soc.db`` (``storage.socdb``)."""
    from storage.socdb import open_socdb

    return open_socdb(data_dir(settings))


def ensure_initial_admin(settings: Settings, soc: Any, echo: Any = None) -> str | None:
    """First start with no users: create ``admin`` with a random password, print it once
    to the terminal and keep it in ``<data>/initial-admin-password`` (mode 0600), so
    ``make run`` works with zero setup. Returns the password, or None when users exist."""
    import os
    import sys

    from core.auth import generate_password

    if soc.users.count_users():
        return None
    password = generate_password()
    soc.users.create_user("admin", "admin", password)
    path = data_dir(settings) / "initial-admin-password"
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


def build_alerting(soc: Any) -> tuple[Any, dict[str, Any]]:
    """The pipeline's alert sink and the API services around alerts, cases and users."""
    from api.stream import AlertBroadcaster
    from core.alerts import AlertRecorder
    from core.auth import LoginThrottle

    broadcaster = AlertBroadcaster()
    recorder = AlertRecorder(soc.alerts, listeners=[broadcaster.publish])
    services = {"users": soc.users, "alerts": soc.alerts, "cases": soc.cases, "audit": soc.audit,
                "alert_stream": broadcaster, "alert_recorder": recorder, "login_throttle": LoginThrottle()}
    return recorder, services


def build_playbooks(settings: Settings, soc: Any, *, rescan: Any = None, execute: Any = None) -> tuple[Any, list[Any]]:
    """The playbook runner over ``playbooks/library`` + ``playbooks.folders``, its runs in
    ``<data>/playbooks.db``, its actions wired to soc.db's alerts/cases/audit, the asset
    inventory (enrich) and YARA (rescan of quarantined files). Returns (runner, load errors):
    a malformed playbook file is left out whole and reported, the others run."""
    from dataclasses import asdict

    from playbooks.actions import ActionContext, load_actions
    from playbooks.runner import Runner, real_execute
    from playbooks.spec import LIBRARY, load_folders
    from storage.playbook_runs import SQLiteJobStore, SQLiteRunStore

    ps = settings.playbooks
    actions = load_actions()
    catalog = load_folders([LIBRARY, *ps.folders], actions)
    asset_lookup = None
    if settings.inventory is not None:
        from collectors.enrich import AssetIndex

        index = AssetIndex.load(settings.inventory)

        def asset_lookup(value: str) -> dict[str, Any] | None:
            a = index.lookup_ip(value) or index.lookup_host(value)
            return asdict(a) if a is not None else None

    if rescan is None:
        from detections.yara.attachments import YaraAttachmentScanner

        rescan = YaraAttachmentScanner()
    ctx = ActionContext(settings=ps, data_dir=data_dir(settings), alerts=soc.alerts, cases=soc.cases,
                        asset_lookup=asset_lookup, rescan=rescan)
    store = SQLiteRunStore(data_dir(settings) / "playbooks.db")
    runner = Runner(catalog.playbooks, store, actions, ctx, settings=ps, audit=soc.audit, alerts=soc.alerts,
                    execute=execute or real_execute)
    runner.jobstore = SQLiteJobStore(data_dir(settings) / "playbooks.db")
    return runner, catalog.errors
