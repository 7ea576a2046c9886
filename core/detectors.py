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

from dataclasses import dataclass
from typing import Any

from core.levels import LEVELS, Level

__all__ = ["DetectorSpec", "FAILED_LOGINS"]

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
