"""Settings: one YAML file (``citysoc.yml``) plus ``CITYSOC_*`` environment variables.

Every setting has a safe default so ``citysoc serve`` runs with no file at all. Unknown
keys are errors (a typo must not silently fall back to a default). Precedence, lowest
first: defaults, the YAML file, environment variables, command-line flags.
Nested keys map to variables with ``__``: ``storage.backend`` <- ``CITYSOC_STORAGE__BACKEND``;
top-level keys directly: ``data`` <- ``CITYSOC_DATA``.
"""
from __future__ import annotations

import copy
import ipaddress

import os
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from core.mappings import deep_merge
from core.alerts import AlertSettings
from core.assets import AssetSettings
from core.bus import BusSettings
from core.playbooks import PlaybookSettings
from core.reports import ReportSettings
from core.timezones import DEFAULT_SITE_ZONE, ZoneName

__all__ = ["Settings", "StorageSettings", "SyslogSettings", "TailSettings", "ServerSettings", "PipelineSettings", "ConsoleSettings", "DeadLetterSettings", "DemoSettings", "load_settings", "SettingsError"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StorageSettings(_Strict):
    backend: Literal["sqlite", "elasticsearch"] = "sqlite"
    """Where events are stored: the embedded SQLite store, or an Elasticsearch cluster."""
    retention_days: int = Field(30, ge=1)
    """Events older than this are dropped (SQLite: whole day partitions; ES: ILM)."""
    sqlite_cache_mib: int = Field(256, ge=1, le=65536)
    """The embedded store's page cache for its writer (each reader gets a quarter): the
    memory it may hold, filled over the first minutes of ingest. Smaller on a small
    machine (a district collector), at the cost of slower inserts once a day's indexes
    outgrow it."""
    elasticsearch_url: str | None = None
    """e.g. https://es:9200; required when backend is elasticsearch."""
    elasticsearch_api_key: str | None = None
    elasticsearch_username: str | None = None
    elasticsearch_password: str | None = None
    elasticsearch_ca_certs: str | None = None
    elasticsearch_verify_certs: bool = True
    elasticsearch_prefix: str = "citysoc"
    """Names of the data stream, index template and ILM policy start with this."""


def _check_network(value: str) -> str:
    """A CIDR network (host bits allowed: ``10.27.3.1/16`` is ``10.27.0.0/16``), normalised."""
    try:
        return str(ipaddress.ip_network(value.strip(), strict=False))
    except ValueError as exc:
        raise ValueError(f"{value!r} is not a network: write it as CIDR, e.g. 10.27.0.0/16") from exc


class SenderZone(_Strict):
    """A group of senders whose clocks share a zone (one district's cameras on local time)."""

    name: str
    """The group, e.g. cameras-d7 (named in errors and docs)."""
    networks: list[Annotated[str, AfterValidator(_check_network)]] = Field(min_length=1)
    """Sender networks of the group (CIDR, host bits allowed), e.g. 10.27.0.0/16."""
    timezone: ZoneName
    """IANA zone of the group's zone-less timestamps (checked at start-up)."""


class SyslogSettings(_Strict):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(5514, ge=0, le=65535)
    """UDP and TCP port of the syslog listener (0 picks a free port)."""
    udp: bool = True
    tcp: bool = True
    tls_port: int | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    format: str = "auto"
    """Parser id for received messages (auto sniffs RFC 5424/3164 and the app inside)."""
    timezone: ZoneName | None = None
    """Zone of device clocks that send local time without an offset, e.g. Asia/Ho_Chi_Minh (default: site.timezone)."""
    timezones: list[SenderZone] = Field(default_factory=list)
    """Zones per sender group: a message from an address in a group's networks is read in that
    group's zone (most specific network first), any other in ``timezone``."""
    max_message_size: int = Field(65535, ge=256)
    """Longer messages are cut and flagged ``truncated``."""
    relp_port: int | None = Field(None, ge=0, le=65535)
    """RELP listener (rsyslog ``omrelp``): each message acknowledged after it is committed."""
    max_connections: int = Field(1024, ge=1)
    """TCP, TLS and RELP connections at once, per listener."""
    max_connections_per_peer: int = Field(64, ge=1)
    """Connections at once from one address (a relay or a NAT gateway counts as one)."""
    idle_timeout: float = Field(600.0, gt=0)
    """Seconds a connection may stay silent before it is closed."""
    frame_timeout: float = Field(30.0, gt=0)
    """Seconds within which a started message must be finished (slow-sender guard)."""


class TailSettings(_Strict):
    """One file-tail source: which files, and how to read them."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.\-]+$")
    """Unique id of this source (names its checkpoint file and its metrics)."""
    paths: list[str]
    """Globs, e.g. /var/log/nginx/access.log* ; rotation and truncation are followed."""
    format: str = "auto"
    dataset: str | None = None
    timezone: ZoneName | None = None
    """Zone of zone-less timestamps in these files (default: site.timezone)."""
    start_at: Literal["beginning", "end"] = "beginning"


class ServerSettings(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    ingest_inflight_bytes: int = Field(512 * 1024 * 1024, ge=1024 * 1024)
    """Ingest bytes (``_bulk``, ``/api/v1/ingest``) held at once across requests; past it: 429."""
    limit_concurrency: int = Field(1000, ge=1)
    """Connections and requests served at once; more are answered 503 (uvicorn)."""
    timeout_keep_alive: float = Field(5.0, gt=0)
    """Seconds an idle keep-alive connection stays open."""
    header_timeout: float = Field(10.0, gt=0)
    """Seconds a client has to send a request's line and headers (from connecting, or from
    the previous response); a client that trickles them is disconnected."""
    max_header_bytes: int = Field(64 * 1024, ge=4096)
    """Request line + headers larger than this are refused with 400 (uvicorn/h11)."""
    trusted_proxies: list[str] = Field(default_factory=list)
    """Addresses (or CIDR networks) of reverse proxies whose ``X-Forwarded-For`` is believed.
    Default none: the client address is the TCP peer, so nobody can fake theirs for the
    login throttle or the audit log."""


class PipelineSettings(_Strict):
    queue_size: int = Field(10_000, ge=1)
    """Events each stage's queue holds before sources are slowed down (backpressure)."""
    batch_size: int = Field(1_000, ge=1)
    flush_ms: int = Field(200, ge=1)
    """The longest an event waits for its batch to fill before it is stored anyway."""
    workers: int | None = Field(None, ge=0)
    """Worker processes that parse, attribute to assets and match Sigma's base rules
    (``core.workers``, ``citysoc.wiring.worker_stage``). None (the default): one per core
    this process may use; N: N processes; 0: all of it in a thread of the server process
    (one core, no extra processes, e.g. for a tiny site or a debugger)."""
    detector_processes: int = Field(0, ge=0, le=64)
    """Processes that run the stateful detectors (Sigma correlations, the network detectors
    keyed by source), each owning the state keys that hash to it
    (``core.detector_processes``). 0 (the default): they run in the server's detect
    thread. The default stays 0 because on a 2-core machine the parse workers already use
    the second core and the extra processes only add a pipe round trip per batch
    (``bench/bench_detector_processes.py`` measures both); give N on a machine with cores to
    spare. Exactly the detections of 0 (tests/core/test_detector_processes.py)."""
    detector_replay_events: int = Field(50_000, ge=0)
    """Events kept per detector process to rebuild its state if it dies (see
    ``core.detector_processes``): memory is about 1 KB each."""
    detector_replay_window_s: float = Field(3600.0, ge=0)
    """How far back in event time that log reaches (past the longest correlation or
    network window, so a window spanning a crash still completes)."""


class DeadLetterSettings(_Strict):
    """How much of what failed a stage is kept (``<data>/deadletters.db``): bounded, since
    its content is whatever a sender chose to send."""

    max_entry_bytes: int = Field(256 * 1024, ge=1024)
    """Raw input kept per entry; longer input is cut (its length is kept in ``meta.raw_bytes``)."""
    max_total_bytes: int = Field(1024 * 1024 * 1024, ge=1024 * 1024)
    """All entries together; past it the oldest are removed."""
    retention_days: float = Field(14.0, gt=0)
    """Entries older than this are removed."""


class ConsoleSettings(_Strict):
    """The web console (served at ``/``)."""

    default_language: Literal["vi", "en"] = "vi"
    """Language for people who have not picked one yet (the switch in the menu sets a cookie)."""


class DetectionSettings(_Strict):
    """Which detection engines run in the pipeline. Engine-specific sections (``network``,
    ``yara``, ``intel``) are validated by their engines' own settings models at start-up,
    with errors that name the key, because ``core`` does not import ``detections``."""

    enabled: bool = True
    """Run the detect stage at all (off: store only, e.g. a collector-only node)."""
    sigma_pack: bool = True
    """Load citysoc's smart-city Sigma pack (detections/rules/sigma) beside ``rules``."""
    disabled_rules: list[str] = Field(default_factory=list)
    """Rule ids that start disabled (the console/API can toggle them; toggles persist)."""
    network: dict[str, Any] = Field(default_factory=dict)
    """Network detector thresholds per zone (see detections/network/README.md)."""
    yara: dict[str, Any] = Field(default_factory=dict)
    """YARA scanning of files named by events (see detections/yara/README.md)."""
    intel: dict[str, Any] = Field(default_factory=dict)
    """Threat-intel feeds matched on every event (see detections/intel/README.md)."""
    scheduled: dict[str, Any] = Field(default_factory=dict)
    """Scheduled Sigma query rules: which rules, interval, lookback (see detections/scheduled/README.md)."""


class DemoSettings(_Strict):
    """The demo city (``citysoc demo`` writes ``enabled: true`` into ``citysoc-demo.yml``).
    A demo must never change the machine it runs on, and must not flood itself."""

    enabled: bool = False
    """This data folder holds the demo city: ``serve`` sandboxes the playbooks' firewall
    actions (``sandbox``) and keeps the city's devices logging (``background_logs``)."""
    sandbox: Literal["netns", "dry-run"] = "netns"
    """``netns``: serve creates a network namespace at start (root; removed at stop) and the
    nft actions act there (``playbooks.nft.command_prefix``); when it cannot (not root, no
    ``ip``/``nft``), or with ``dry-run``, every playbook run is a dry run."""
    background_logs: bool = True
    """Feed the pipeline the city's ordinary device logs while serving, so assets with a log
    interval do not all go silent after the recorded week (and raise ``asset:silent``)."""
    background_interval_s: float = Field(30.0, gt=0, le=3600)
    """How often the background feed submits the lines that fell due."""


class SiteSettings(_Strict):
    timezone: ZoneName = DEFAULT_SITE_ZONE
    """Site-wide zone for zone-less timestamps of sources that set none (IANA name, checked at start-up)."""


class Settings(_Strict):
    site: SiteSettings = SiteSettings()
    """The site: its time zone."""
    data: Path = Path("./data")
    """Data directory: the SQLite store, dead letters, checkpoints, reports."""
    server: ServerSettings = ServerSettings()
    storage: StorageSettings = StorageSettings()
    syslog: SyslogSettings = SyslogSettings()
    pipeline: PipelineSettings = PipelineSettings()
    tail: list[TailSettings] = Field(default_factory=list)
    """Files to follow (a list of tail sources)."""
    inventory: Path | None = None
    """YAML or CSV asset inventory used to attribute events to assets and centers."""
    rules: list[Path] = Field(default_factory=list)
    """Extra Sigma rule folders loaded beside our own pack."""
    detection: DetectionSettings = DetectionSettings()
    alerts: AlertSettings = AlertSettings()
    """Alert dedupe window, same-behaviour folding and incident grouping (keys, window)."""
    playbooks: PlaybookSettings = PlaybookSettings()
    """Playbook folders, concurrency, and what actions may reach (gateway, SMTP, webhooks, databases)."""
    assets: AssetSettings = AssetSettings()
    """Asset health checks, silent-asset alerts and the camera networks watched for unmanaged devices."""
    console: ConsoleSettings = ConsoleSettings()
    """Web console: default language."""
    deadletters: DeadLetterSettings = DeadLetterSettings()
    """Caps and retention of the dead-letter store."""
    bus: BusSettings = BusSettings()
    """Embedded (one machine) or NATS JetStream (collectors, detectors, writers as nodes) and this node's roles."""
    demo: DemoSettings = DemoSettings()
    """The demo city's sandbox and background logs (off unless ``citysoc demo`` wrote it)."""
    reports: ReportSettings = ReportSettings()
    """Scheduled reports (daily/weekly/monthly), their formats and languages; kept in ``<data>/reports/``."""


class SettingsError(ValueError):
    """The configuration is unusable; the message names the file and key."""


def _env_overrides(environ: dict[str, str]) -> dict[str, Any]:
    """``CITYSOC_<SECTION>__<KEY>`` variables as nested overrides. Only those whose first
    part names a settings section or top-level key are settings: the prefix is shared with
    the tools' own variables (``CITYSOC_CORPORA`` for the tests, ``CITYSOC_API_KEY`` for
    clients, the benchmarks'), and one of those set in a shell must not stop the server.
    Below a known section the strict models still refuse a misspelt key."""
    out: dict[str, Any] = {}
    sections = set(Settings.model_fields)
    for key, value in environ.items():
        if not key.startswith("CITYSOC_") or key in ("CITYSOC_CONFIG",):
            continue
        path = key[len("CITYSOC_"):].lower().split("__")
        if path[0] not in sections:
            continue
        node = out
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = value
    return out


def load_settings(
    path: str | Path | None = None,
    *,
    environ: dict[str, str] | None = None,
    overrides: dict[str, Any] | None = None,
) -> Settings:
    """Load settings from ``path`` (or ``$CITYSOC_CONFIG``, or ``./citysoc.yml`` if present)."""
    env = dict(os.environ if environ is None else environ)
    cfg_path = Path(path) if path else Path(env["CITYSOC_CONFIG"]) if env.get("CITYSOC_CONFIG") else None
    if cfg_path is None and Path("citysoc.yml").exists():
        cfg_path = Path("citysoc.yml")
    raw: dict[str, Any] = {}
    if cfg_path is not None:
        try:
            loaded = yaml.safe_load(cfg_path.read_text(encoding="utf-8")) or {}
        except OSError as exc:
            raise SettingsError(f"cannot read config {cfg_path}: {exc.strerror}") from exc
        except yaml.YAMLError as exc:
            raise SettingsError(f"{cfg_path}: invalid YAML: {exc}") from exc
        if not isinstance(loaded, dict):
            raise SettingsError(f"{cfg_path}: top level must be a mapping of settings")
        raw = loaded
    merged = deep_merge(copy.deepcopy(raw), _env_overrides(env))
    if overrides:
        merged = deep_merge(merged, {k: v for k, v in overrides.items() if v is not None})
    try:
        return Settings.model_validate(merged)
    except ValidationError as exc:
        where = str(cfg_path) if cfg_path else "environment"
        lines = [f"{where}: invalid settings:"]
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"])
            lines.append(f"  {loc}: {err['msg']}")
        raise SettingsError("\n".join(lines)) from exc
