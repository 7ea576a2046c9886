"""Builds the detection engines the detect stage runs, from settings.

One place decides which engines exist (Sigma with our pack and the configured folders,
the network detectors, YARA over files that events name, threat-intel matching) so
``serve`` and the demo run the same set. It also gives the API a
:class:`core.protocols.RuleCatalog` over all of them, with enable/disable toggles that
persist in ``<data>/rules-state.json``.
"""
from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from detections.packs import SIGMA_PACK
from core.events import Event
from core.protocols import Detection, Detector, RuleInfo
from core.settings import Settings

__all__ = ["DetectionRuntime", "build_detection", "sigma_folders", "sigma_cache", "SIGMA_PACK", "DetectionConfigError",
           "partition_stage"]

log = logging.getLogger("citysoc.detection")



class DetectionConfigError(ValueError):
    """A ``detection.*`` section of the settings is wrong; the message names the key."""


class _Guarded:
    """Runs a detector under the catalog's lock, so a toggle from the API never lands in
    the middle of an event (engines keep unlocked per-thread caches)."""

    def __init__(self, inner: Detector, lock: threading.Lock):
        self.inner = inner
        self.name = inner.name
        self._lock = lock

    def process(self, event: Event) -> list[Detection]:
        with self._lock:
            return self.inner.process(event)


@dataclass
class DetectionRuntime:
    """The engines of one process and what the API needs to show and toggle their rules."""

    detectors: list[Detector] = field(default_factory=list)
    sigma: Any = None
    network: Any = None
    yara_scanner: Any = None
    yara_files: Any = None
    """The file-event YARA detector (``detections.yara.FileEventScanner``), when folders are watched."""
    yara_queue_size: int = 256
    intel_manager: Any = None
    failures: list[str] = field(default_factory=list)
    state_path: Path | None = None
    attached: list[Any] = field(default_factory=list)
    """Detectors built elsewhere that the catalog lists and toggles (the asset detectors)."""
    disabled_at_start: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    extra_rules: list[RuleInfo] = field(default_factory=list)
    """Rules listed but not toggled here: our YARA pack's (YARA runs only over watched folders)."""
    partitions: Any = None
    """The detector processes (``core.detector_processes.DetectorPartitions``) when
    ``pipeline.detector_processes`` > 0: they run the correlations and the network
    detectors keyed by source; ``sigma`` and ``network`` here emit the rest."""

    # -- RuleCatalog ------------------------------------------------------------------
    def list_rules(self) -> list[RuleInfo]:
        out: list[RuleInfo] = []
        if self.sigma is not None:
            disabled = self.sigma.disabled
            for r in self.sigma.rules:
                s = r.spec
                out.append(RuleInfo(id=s.id, title=s.title, level=s.level, enabled=s.id not in disabled, tags=list(s.tags),
                                    engine="sigma", description=s.description, source=s.path,
                                    title_vi=s.title_vi, description_vi=s.description_vi))
            for s, _state in self.sigma.correlations:
                out.append(RuleInfo(id=s.id, title=s.title, level=s.level, enabled=s.id not in disabled, tags=list(s.tags),
                                    engine="sigma-correlation", description=s.description, source=s.path,
                                    title_vi=s.title_vi, description_vi=s.description_vi))
        if self.network is not None:
            out.extend(self.network.rules())
        for d in self.attached:
            s = d.spec
            out.append(RuleInfo(id=s.rule_id, title=s.title, title_vi=s.title_vi, level=d.level, enabled=d.enabled,
                                tags=list(s.tags), engine=s.engine, description=s.description,
                                source=f"{type(d).__module__}.{type(d).__name__}"))
        out.extend(self.extra_rules)
        return out

    def attach(self, *detectors: Any) -> None:
        """List and toggle detectors built outside this runtime: each has a ``spec``
        (:class:`core.detectors.DetectorSpec`), a ``level`` and an ``enabled`` flag it
        honours. A rule disabled in ``rules-state.json`` or settings starts disabled."""
        for d in detectors:
            d.enabled = d.spec.rule_id not in self.disabled_at_start
            self.attached.append(d)

    def get_rule(self, rule_id: str) -> RuleInfo | None:
        return next((r for r in self.list_rules() if r.id == rule_id), None)

    def set_enabled(self, rule_id: str, enabled: bool) -> RuleInfo:
        """Enable or disable a Sigma or network rule for the next event; ``KeyError`` for
        an id no toggleable engine has. The choice persists in ``rules-state.json``."""
        if self.network is not None and rule_id in self.network.by_rule:
            with self._lock:
                self.network.set_enabled(rule_id, enabled)
        elif self.sigma is not None and rule_id in set(self.sigma.rule_ids):
            with self._lock:
                (self.sigma.enable if enabled else self.sigma.disable)(rule_id)
        elif (d := next((d for d in self.attached if d.spec.rule_id == rule_id), None)) is not None:
            with self._lock:
                d.enabled = enabled
        else:
            raise KeyError(rule_id)
        self._save_state()
        info = self.get_rule(rule_id)
        assert info is not None
        return info

    def _save_state(self) -> None:
        if self.state_path is None:
            return
        # Ids this process does not run (another engine's, a rule file not loaded here)
        # keep the state they had; the rest are what the engines say now.
        known = {r.id for r in self.list_rules()}
        disabled = {r.id for r in self.list_rules() if not r.enabled} | (self.disabled_at_start - known)
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"disabled": sorted(disabled)}, indent=1))
        os.replace(tmp, self.state_path)

    def hits(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for engine in (self.sigma, self.network):
            if engine is not None:
                out.update(engine.hits)
        return out

    def state_sizes(self) -> dict[str, int]:
        """Tracked keys of every stateful engine in this process, ``<engine>.<what>``
        (``sigma.correlation_groups``, ``network.portscan.sources``, ...): what their memory
        bounds apply to, shown on ``/metrics``. Engines in detector processes keep their
        state there and are not counted here. Read without the detection lock: each figure
        is a ``len()``, and one a batch stale is good enough for a gauge."""
        out: dict[str, int] = {}
        for prefix, engine in (("sigma", self.sigma), ("network", self.network)):
            if engine is not None:
                out.update({f"{prefix}.{k}": n for k, n in engine.state_sizes().items()})
        for d in self.attached:
            sizes = getattr(d, "state_sizes", None)
            if sizes is not None:
                out.update({f"{d.spec.settings_key or d.spec.rule_id}.{k}": n for k, n in sizes().items()})
        return out

    def start_background(self, emit: Any) -> None:
        """Move watched-folder YARA scans off the detection thread: one worker scans and hands
        its detections to ``emit`` (the alert sink's, thread-safe). Servers call this; the CLI
        and the demo's seeding keep scans inline."""
        if self.yara_files is not None:
            self.yara_files.start(emit, queue_size=self.yara_queue_size)

    def close(self) -> None:
        if self.yara_files is not None:
            self.yara_files.stop()
        if self.intel_manager is not None:
            self.intel_manager.close()


def _yara_pack_rules() -> list[RuleInfo]:
    """Our YARA pack's rules (``yara:<namespace>.<rule>``), read from their meta; [] without yara."""
    try:
        import yara

        from detections.yara.compile import PACK_DIR, discover_rule_files
    except ImportError:
        return []
    out: list[RuleInfo] = []
    for ns, path in sorted(discover_rule_files([PACK_DIR]).items()):
        try:
            compiled = yara.compile(filepaths={ns: str(path)})
        except yara.Error as exc:
            log.warning("yara pack file not listed: %s: %s", path, exc)
            continue
        for r in compiled:
            meta = dict(r.meta)
            tags = str(meta.get("tags", "")).split()
            out.append(RuleInfo(id=f"yara:{ns}.{r.identifier}", title=str(meta.get("title") or r.identifier),
                                level=str(meta.get("level") or "high"), enabled=True, engine="yara",
                                tags=tags, description=str(meta.get("description") or ""), source=str(path),
                                title_vi=str(meta.get("title_vi") or ""), description_vi=str(meta.get("description_vi") or "")))
    return out


def sigma_folders(settings: Settings) -> list[Path]:
    """The Sigma rule folders this configuration loads: our pack, then ``rules:``. The parse
    workers load the same list (``citysoc.wiring.worker_stage``), so their matches name the
    rules the server's engine holds."""
    return ([SIGMA_PACK] if settings.detection.sigma_pack else []) + [Path(p) for p in settings.rules]


def sigma_cache(settings: Settings) -> Path:
    """Where compiled Sigma plans are cached (by rule file hash)."""
    return Path(settings.data) / "cache" / "sigma"


def build_detection(settings: Settings, *, start_feeds: bool = True, catalog_only: bool = False,
                    attach: Sequence[Any] = ()) -> DetectionRuntime:
    """Every configured engine, ready for ``build_pipeline(detectors=rt.detectors)``.

    ``catalog_only`` builds just the rule engines (Sigma, network) for listing rules and
    their coverage, e.g. in an offline report: no YARA compile, no intel feed fetch.
    ``attach``: detectors built elsewhere that the catalog lists and toggles
    (:meth:`DetectionRuntime.attach`; ``serve``: the asset detectors, built first), also
    when detection is disabled.

    Sigma rule files that fail to load are logged with their reason and listed in
    ``rt.failures`` (the rest run); a wrong settings section raises
    :class:`DetectionConfigError`.
    """
    d = settings.detection
    rt = DetectionRuntime()
    if not d.enabled:
        rt.attach(*attach)
        return rt
    data = Path(settings.data)
    cache = data / "cache"
    rt.state_path = data / "rules-state.json"
    partitioned = 0 if catalog_only else settings.pipeline.detector_processes
    if partitioned and settings.bus.backend != "embedded":
        raise DetectionConfigError(
            "pipeline.detector_processes is for one machine; with bus.backend: nats the detector nodes "
            "are the partitions: set it to 0")

    # Sigma: our pack + configured folders, compiled plans cached by file hash.
    from detections.sigma import SigmaEngine, load_rules

    folders = sigma_folders(settings)
    disabled = set(d.disabled_rules)
    if rt.state_path.exists():
        try:
            disabled |= set(json.loads(rt.state_path.read_text()).get("disabled", []))
        except (OSError, ValueError) as exc:
            log.warning("ignoring unreadable %s: %s", rt.state_path, exc)
    rt.disabled_at_start = disabled
    rt.attach(*attach)
    if folders:
        try:
            ruleset = load_rules(folders, cache_dir=sigma_cache(settings))
        except Exception as exc:  # a missing folder: say which, do not start half-blind
            raise DetectionConfigError(f"rules: {exc}") from exc
        rt.sigma = SigmaEngine(ruleset.rules, disabled=disabled, correlate=partitioned == 0)
        for f in [*ruleset.failures, *rt.sigma.failures]:
            msg = f"{f.path}: {f.reason}"
            rt.failures.append(msg)
            log.warning("sigma rule not loaded: %s", msg)
        log.info("sigma: %d rules loaded from %s (%d failed)", len(rt.sigma.rule_ids),
                 ", ".join(map(str, folders)), len(rt.failures))
        rt.detectors.append(_Guarded(rt.sigma, rt._lock))

    # Network detectors (scan, brute force, camera egress, beaconing, first-seen domains).
    from detections.network import NetworkDetectors

    try:
        rt.network = NetworkDetectors.from_settings(d.network, disabled=disabled,
                                                    scope="server" if partitioned else "all")
    except Exception as exc:
        raise DetectionConfigError(f"detection.network: {exc}") from exc
    rt.detectors.append(_Guarded(rt.network, rt._lock))
    if partitioned:
        rt.partitions = _partitions(settings, rt, folders, partitioned)
        rt.detectors.append(rt.partitions)
    rt.extra_rules = _yara_pack_rules()

    # Sensor alerts (Suricata, Zeek notices, FortiGate IPS, PAN-OS threats) as citysoc alerts.
    from detections.external import ExternalAlerts

    rt.detectors.append(ExternalAlerts())

    if catalog_only:
        return rt

    # YARA over files that file events name (only when folders to watch are configured).
    yara_cfg = dict(d.yara)
    if yara_cfg.get("enabled", True) and yara_cfg.get("watch_prefixes"):
        from detections.yara.settings import YaraSettings, build_file_event_scanner, build_scanner

        try:
            ys = YaraSettings.model_validate(yara_cfg)
        except Exception as exc:
            raise DetectionConfigError(f"detection.yara: {exc}") from exc
        rt.yara_scanner, _compiled = build_scanner(ys, cache_dir=cache / "yara")
        fe = build_file_event_scanner(ys, rt.yara_scanner)
        if fe is not None:
            rt.detectors.append(fe)
            rt.yara_files, rt.yara_queue_size = fe, ys.watch_queue_size

    # Threat intel: feeds refreshed in the background, matched on every event.
    intel_cfg = dict(d.intel)
    if intel_cfg.get("feeds") and intel_cfg.get("enabled", True):
        from detections.intel.settings import IntelSettings, build_feed_manager, build_matcher

        try:
            ins = IntelSettings.model_validate(intel_cfg)
        except Exception as exc:
            raise DetectionConfigError(f"detection.intel: {exc}") from exc
        rt.intel_manager = build_feed_manager(ins)
        outcome = rt.intel_manager.refresh(force=True)
        for name, result in outcome.items():
            log.info("intel feed %s: %s", name, result)
        if start_feeds:
            rt.intel_manager.start(ins.check_every_s)
        rt.detectors.append(build_matcher(ins, rt.intel_manager))
    return rt


def _partitions(settings: Settings, rt: DetectionRuntime, folders: Sequence[Path], n: int) -> Any:
    """The detector processes over ``rt``'s engines: the server routes each event by the
    state keys it feeds (its matched rules' correlation groups, its source for the network
    detectors keyed by source), counts their detections' hits and sends its toggles."""
    import functools

    from core.detector_processes import DetectorPartitions
    from core.events import matched_rules
    from detections.network import NetworkDetectors

    sigma = rt.sigma if rt.sigma is not None and rt.sigma.correlations else None
    network_key = NetworkDetectors.partition_key

    def keys(event: Event) -> list[tuple[Any, ...]]:
        out = []
        if sigma is not None:
            ids = matched_rules(event)
            if ids:
                out = sigma.correlation_keys(event, ids)
        k = network_key(event)
        if k is not None:
            out.append(k)
        return out

    def disabled() -> frozenset[str]:
        return frozenset(rt.network.disabled | (rt.sigma.disabled if rt.sigma is not None else set()))

    def count(found: list[Detection]) -> None:
        for det in found:
            engine = rt.network if det.engine == "network" or rt.sigma is None else rt.sigma
            engine.hits[det.rule_id] += 1

    p = settings.pipeline
    factory = functools.partial(partition_stage, [str(f) for f in folders] if sigma is not None else [],
                                str(sigma_cache(settings)), dict(settings.detection.network))
    return DetectorPartitions(factory, n, keys=keys, disabled=disabled, lock=rt._lock, on_detections=count,
                              replay_events=p.detector_replay_events, replay_window_s=p.detector_replay_window_s)


def partition_stage(rule_folders: list[str], cache_dir: str, network: dict[str, Any]) -> Any:
    """What a detector process runs (built inside it; a ``functools.partial`` of this
    function is the factory): the Sigma correlations of the server's rule folders, loaded
    from the same plan cache, fed the matches the server routed here
    (``SigmaEngine.apply`` with ``base=False``: the server emitted the base rules), and
    the network detectors keyed by source (``scope="partition"``). Toggles arrive with the
    batches (``set_disabled``)."""
    from core.detector_processes import PartitionStage
    from core.events import matched_rules
    from detections.network import NetworkDetectors

    sigma = None
    if rule_folders:
        from detections.sigma import SigmaEngine, load_rules

        # workers=1: a daemon process may not start processes; the server filled the cache.
        ruleset = load_rules([Path(f) for f in rule_folders], cache_dir=Path(cache_dir), workers=1)
        sigma = SigmaEngine(ruleset.rules)
    net = NetworkDetectors.from_settings(network, scope="partition")

    def process(event: Any, owns: Any) -> list[Detection]:
        out: list[Detection] = []
        if sigma is not None:
            ids = matched_rules(event)
            if ids:
                out = sigma.apply(event, ids, base=False, owns=owns)
        out.extend(net.process(event, owns))
        return out

    def set_disabled(ids: frozenset[str]) -> None:
        if sigma is not None:
            sigma.set_disabled(ids)
        net.set_disabled(ids)

    return PartitionStage(process=process, set_disabled=set_disabled)
