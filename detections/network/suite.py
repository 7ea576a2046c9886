"""All network detectors behind one ``Detector``, each event offered only to those that use it.

The detectors and what they consume come from :mod:`detections.network.registry`:
each detector's ``spec.consumes`` lists the ``event.action`` values it reads (a flow
summary goes to scan, brute force, camera egress and beaconing, a DNS query to
first-seen domains) and :data:`core.detectors.FAILED_LOGINS` for failed events of any
other action (brute force); every other event costs one dictionary read. A disabled
rule's detector is taken out of the routing, so it sees nothing until enabled again.

Example::

    nd = NetworkDetectors.from_settings({"zones": {"10.20.0.0/16": "camera-lan"},
                                         "camera_egress": {"camera_cidrs": ["10.20.0.0/16"]}})
    for det in nd.process(event):
        print(det.rule_id, det.group_key, det.extra)
    nd.set_enabled("net:port_scan", False)
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal

from core.detectors import FAILED_LOGINS
from core.events import Event
from core.protocols import Detection, RuleInfo
from detections.network._common import EMPTY, nested
from detections.network.base import NetworkDetector
from detections.network.registry import (
    DETECTORS,
    SPECS,
    NetworkDetectorSettings,
    NetworkSettingsBase,
)
from detections.network.zones import ZoneMap

__all__ = ["NetworkDetectors", "RULES"]

RULES: dict[str, str] = {rid: spec.title for rid, spec in SPECS.items()}
"""Rule id -> title of every network detector, for rule listings."""

Scope = Literal["all", "server", "partition"]
"""Which detectors a suite runs: every one (one process), those that stay in the server
(``partitioned = False``), or those a detector process runs for its sources."""

_PARTITION_ACTIONS: frozenset[str] = frozenset(
    what for cls in DETECTORS if cls.partitioned for what in cls.spec.consumes if what != FAILED_LOGINS)
_PARTITION_FAILURES = any(FAILED_LOGINS in cls.spec.consumes for cls in DETECTORS if cls.partitioned)


class NetworkDetectors:
    """``core.protocols.Detector`` running every enabled network detector."""

    name = "network"

    def __init__(self, settings: NetworkSettingsBase | None = None, *, disabled: Iterable[str] = (),
                 scope: Scope = "all") -> None:
        s = self.settings = settings or NetworkDetectorSettings()
        zones = ZoneMap(s.zones)
        self.detectors: tuple[NetworkDetector, ...] = tuple(
            cls(s.section(cls.spec.settings_key), zones) for cls in DETECTORS)  # type: ignore[call-arg]
        self.by_rule: dict[str, NetworkDetector] = {d.rule_id: d for d in self.detectors}
        self.disabled: set[str] = {r for r in disabled if r in self.by_rule}
        self.scope = scope
        """``server``/``partition`` when the detectors keyed by source run in detector
        processes (``core.detector_processes``): see :data:`Scope`. Every detector is
        built whatever the scope (the catalog lists and toggles them all); the scope only
        decides which are offered events here."""
        self._by_action: dict[str, tuple[NetworkDetector, ...]] = {}
        self._failure: tuple[NetworkDetector, ...] = ()
        self._route()
        self.hits: Counter[str] = Counter()
        self.events_seen = 0

    @classmethod
    def from_settings(cls, data: Mapping[str, Any] | None, *, disabled: Iterable[str] = (),
                      scope: Scope = "all") -> NetworkDetectors:
        """Build from a plain mapping (the ``detection.network`` section of a config file)."""
        return cls(NetworkDetectorSettings.model_validate(dict(data or {})), disabled=disabled, scope=scope)

    @staticmethod
    def partition_key(event: Event) -> tuple[Any] | None:
        """``(source.ip,)`` when a detector keyed by source (``partitioned``) would be
        offered ``event``, else None: what the server routes an event to the detector
        process of its source by. Toggles are not consulted (a disabled detector in the
        process simply does not take it), so a toggle needs no new routing here."""
        ev = nested(event)
        e = ev.get("event") or EMPTY
        action = e.get("action")
        if action not in _PARTITION_ACTIONS and not (_PARTITION_FAILURES and e.get("outcome") == "failure"):
            return None
        src = (ev.get("source") or EMPTY).get("ip")
        return None if src is None else (src,)

    def _route(self) -> None:
        by_action: dict[str, list[NetworkDetector]] = {}
        failure: list[NetworkDetector] = []
        scope = self.scope
        for det in self.detectors:
            if det.rule_id in self.disabled or (scope != "all" and det.partitioned != (scope == "partition")):
                continue
            for what in det.spec.consumes:
                (failure if what == FAILED_LOGINS else by_action.setdefault(what, [])).append(det)
        self._by_action = {k: tuple(v) for k, v in by_action.items()}
        self._failure = tuple(failure)

    def detector(self, rule_id: str) -> NetworkDetector:
        """The running detector of ``rule_id`` (``KeyError`` if it is not a network rule)."""
        return self.by_rule[rule_id]

    def set_enabled(self, rule_id: str, enabled: bool) -> None:
        """Take a detector into or out of the routing; ``KeyError`` for an unknown id.
        Callers serialise this with :meth:`process` (the catalog's lock)."""
        if rule_id not in self.by_rule:
            raise KeyError(rule_id)
        (self.disabled.discard if enabled else self.disabled.add)(rule_id)
        self._route()

    def set_disabled(self, rule_ids: Iterable[str]) -> None:
        """Make exactly ``rule_ids`` (the network ones among them) the disabled set: how a
        detector process takes the server's toggles (``core.detector_processes``)."""
        self.disabled = {r for r in rule_ids if r in self.by_rule}
        self._route()

    def rules(self) -> list[RuleInfo]:
        """Every network rule as the catalog lists it: the level configured at this site."""
        return [RuleInfo(id=d.rule_id, title=d.spec.title, title_vi=d.spec.title_vi, level=d.level,
                         enabled=d.rule_id not in self.disabled, tags=list(d.spec.tags), engine="network",
                         description=d.spec.description, source=f"detections/network ({type(d).__name__})")
                for d in self.detectors]

    def process(self, event: Event, owns: Callable[[tuple[Any, ...]], bool] | None = None) -> list[Detection]:
        """The detections ``event`` completes. ``owns`` (in a detector process): whether
        this process keeps the state of a source, ``owns((source.ip,))``; an event of a
        source it does not own was sent here for another detector and is skipped."""
        self.events_seen += 1
        event = nested(event)  # type: ignore[assignment]
        if owns is not None:
            src = (event.get("source") or EMPTY).get("ip")
            if src is None or not owns((src,)):
                return []
        e = event.get("event") or EMPTY
        action = e.get("action")
        targets = self._by_action.get(action) if action is not None else None
        if targets is None:
            if e.get("outcome") != "failure":
                return []
            targets = self._failure
        out: list[Detection] = []
        for det in targets:
            det.events += 1
            found = det.check(event)
            if found:
                det.fired += len(found)
                for d in found:
                    self.hits[d.rule_id] += 1
                out.extend(found)
        return out

    def state_sizes(self) -> dict[str, int]:
        """Tracked keys per detector (what memory bounds apply to), ``<settings_key>.<what>``."""
        return {f"{d.spec.settings_key}.{k}": n for d in self.detectors for k, n in d.state_sizes().items()}
