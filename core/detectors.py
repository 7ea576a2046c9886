"""What a detector declares about itself, once: the detector registry's entry type.

A streaming detector class carries one :class:`DetectorSpec` as its ``spec`` class
attribute: rule id, English and Vietnamese titles, default level, ATT&CK tags, the
events it consumes and its settings model. The engine that runs the detectors routes
events by ``consumes``, the rule catalog (``citysoc/detection.py``) lists and toggles
rules by ``rule_id`` with the title and level from here, and the console's rules page
reads the catalog; nothing else writes these facts down again.

Example::

    class PortScanDetector:
        spec = DetectorSpec(rule_id="net:port_scan", title="Port scan from one source",
                            title_vi="Quét cổng từ một nguồn", level="medium",
                            tags=("attack.discovery", "attack.t1046"),
                            consumes=("network_flow", "connection_attempt"),
                            settings_key="port_scan", settings=PortScanSettings)
"""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from core.levels import LEVELS, Level

__all__ = ["DetectorSpec", "FAILED_LOGINS", "IdleSweep"]

FAILED_LOGINS = "event.outcome:failure"
"""The ``consumes`` entry of a detector that wants every failed event whose
``event.action`` no other entry names (failed logins from any log source)."""


@dataclass(frozen=True)
class DetectorSpec:
    """One detector's declaration (see the module docstring)."""

    rule_id: str
    """The ``rule_id`` of its detections, ``<engine>:<name>``; unique over all engines."""
    title: str
    """English title, as rule listings show it."""
    title_vi: str
    """Vietnamese title."""
    level: Level
    """Default level; a settings model with a ``default.level`` may change it per site."""
    tags: tuple[str, ...]
    """ATT&CK tags (``attack.<tactic>``, ``attack.tNNNN``) its detections carry."""
    consumes: tuple[str, ...]
    """``event.action`` values it reads, and/or :data:`FAILED_LOGINS` (the network suite
    routes by these); ``field:value`` entries for detectors that filter otherwise; empty
    for a periodic check that reads no events (``asset:silent``)."""
    settings_key: str = ""
    """Its section under the engine's settings (``detection.network.<key>``)."""
    settings: Any = None
    """Its pydantic settings model (class), built from that section."""
    engine: str = "network"
    description: str = ""
    """What it finds and the triage note (why it fires, what to check first)."""

    def __post_init__(self) -> None:
        if self.level not in LEVELS:
            raise ValueError(f"{self.rule_id}: level {self.level!r} is not one of {', '.join(LEVELS)}")
        if ":" not in self.rule_id:
            raise ValueError(f"{self.rule_id!r}: a rule id is '<engine>:<name>'")


class IdleSweep:
    """Drops a detector's idle state by event time: the one sweep behind the network
    detectors' ``BoundedMap.expire_idle`` and the Sigma correlations' groups.

    Why: without it state leaves only under ``max_keys``/``max_groups`` pressure, so memory
    grows with every source ever seen (an hour of a scan's forged sources at city rates)
    instead of with the sources of the last windows. ``entries`` is an ``OrderedDict`` in
    touch order (``move_to_end`` on use), which is event order for events that arrive in
    time, so the sweep starts at the least recently touched entry and stops at the first
    live one; it runs at most once per second of the newest event time seen. Callers pass
    a multiple of their window as ``idle_s``, so a dropped entry could no longer change a
    result (only an event later than that could have met it)."""

    __slots__ = ("expired", "_newest", "_swept_at")

    def __init__(self) -> None:
        self.expired = 0
        """Entries dropped for being idle (not pushed out)."""
        self._newest = float("-inf")
        self._swept_at = float("-inf")

    def __call__(self, entries: OrderedDict[Any, Any], now: float, idle_s: float,
                 last: Callable[[Any], float]) -> int:
        """Drop the entries whose ``last(value)`` (newest event time) is more than
        ``idle_s`` before the newest ``now`` seen; returns how many went."""
        if now > self._newest:
            self._newest = now
        if self._newest - self._swept_at < 1.0:
            return 0
        self._swept_at = self._newest
        cut = self._newest - idle_s
        n = 0
        while entries:
            key = next(iter(entries))
            if last(entries[key]) >= cut:
                break
            del entries[key]
            n += 1
        self.expired += n
        return n
