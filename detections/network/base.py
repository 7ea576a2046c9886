"""The base of every network detector: its spec, its counters, its one entry point.

A network detector is a class with a :class:`core.detectors.DetectorSpec` as ``spec``,
built as ``cls(settings, zones)`` (its own settings section, the shared
:class:`~detections.network.zones.ZoneMap`), with :meth:`check` over nested events and
:meth:`state_sizes` naming what its memory bound applies to. Listing the class in
:data:`detections.network.registry.DETECTORS` is all the wiring there is: the suite
routes events to it by ``spec.consumes``, the settings grow its section, the rule
catalog lists and toggles it.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from core.detectors import DetectorSpec
from core.events import Event
from core.protocols import Detection
from detections.network._common import nested

__all__ = ["NetworkDetector"]


class NetworkDetector:
    """``core.protocols.Detector`` base: ``name``/``rule_id`` come from ``spec``.

    ``events`` counts events offered, ``fired`` detections returned (both through
    :meth:`process` and through the suite, which calls :meth:`check` directly because it
    has made the event nested once for all detectors).
    """

    spec: ClassVar[DetectorSpec]
    partitioned: ClassVar[bool] = True
    """Its state is keyed by ``source.ip`` and it skips events without one, so it may run
    in the detector process that source hashes to (``core.detector_processes``) and N
    processes give the detections of one. False for a detector with state over every
    source (first-seen domains' learning period): it stays in the server process."""
    name: ClassVar[str]
    rule_id: ClassVar[str]
    settings: Any
    events = 0
    fired = 0

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.name = cls.rule_id = cls.spec.rule_id

    def process(self, event: Event) -> list[Detection]:
        """Check one event in any ECS form (nested or dotted keys)."""
        self.events += 1
        found = self.check(nested(event))
        self.fired += len(found)
        return found

    def check(self, event: Mapping[str, Any]) -> list[Detection]:
        """Check one nested event; the detections it completes."""
        raise NotImplementedError

    def state_sizes(self) -> dict[str, int]:
        """Tracked keys by name (``{"sources": 12}``): what ``max_keys`` bounds."""
        raise NotImplementedError

    @property
    def level(self) -> str:
        """The level its detections carry by default at this site (``default.level``)."""
        default = getattr(self.settings, "default", None)
        return str(getattr(default, "level", self.spec.level))

    def counters(self) -> dict[str, int]:
        """Events offered and detections returned so far."""
        return {"events": self.events, "detections": self.fired}
