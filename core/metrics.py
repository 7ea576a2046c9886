"""Stage counters and their Prometheus text exposition.

Every stage and source reports the same counters (the component spec: received,
emitted, errors, dropped, plus queue depth and lag where a queue exists), so one
``/metrics`` page and one compliance test cover them all.
"""
from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

__all__ = ["StageCounters", "render_prometheus"]


@dataclass
class StageCounters:
    """Counters of one component. Thread-safe increments: stages run work in threads."""

    name: str
    kind: str = "stage"
    received: int = 0
    emitted: int = 0
    errors: int = 0
    dropped: int = 0
    queue_depth: int = 0
    queue_capacity: int = 0
    oldest_enqueued: float | None = None
    cpu_seconds: float = 0.0
    """CPU time the component's work took, in every process that did it (parse workers too)."""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, *, received: int = 0, emitted: int = 0, errors: int = 0, dropped: int = 0,
            cpu_seconds: float = 0.0) -> None:
        with self._lock:
            self.cpu_seconds += cpu_seconds
            self.received += received
            self.emitted += emitted
            self.errors += errors
            self.dropped += dropped

    @property
    def lag_seconds(self) -> float:
        """Age of the oldest item still waiting in this stage's queue (0 when empty)."""
        t = self.oldest_enqueued
        return max(0.0, time.monotonic() - t) if t is not None else 0.0

    def snapshot(self) -> dict[str, float | int | str]:
        return {
            "name": self.name,
            "kind": self.kind,
            "received": self.received,
            "emitted": self.emitted,
            "errors": self.errors,
            "dropped": self.dropped,
            "queue_depth": self.queue_depth,
            "queue_capacity": self.queue_capacity,
            "lag_seconds": round(self.lag_seconds, 3),
        }


_LABEL_ESCAPE = re.compile(r'(["\\\n])')


def _label(value: str) -> str:
    return _LABEL_ESCAPE.sub(lambda m: "\\n" if m.group(1) == "\n" else "\\" + m.group(1), value)


def render_prometheus(counters: Iterable[StageCounters], extra: dict[str, float] | None = None,
                      labelled: dict[str, tuple[str, str, dict[str, float]]] | None = None) -> str:
    """Render counters in the Prometheus text format (version 0.0.4).

    ``extra``: plain gauges, ``citysoc_<key>``. ``labelled``: gauges with one label,
    ``{metric: (help, label name, {label value: value})}``, e.g. the detectors' tracked
    state keys (``citysoc_detector_state_keys{state="network.portscan.sources"}``).
    """
    rows = list(counters)
    lines: list[str] = []
    spec = [
        ("received", "counter", "Items received by the component"),
        ("emitted", "counter", "Items passed on by the component"),
        ("errors", "counter", "Items that failed in the component (dead-lettered)"),
        ("dropped", "counter", "Items lost by the component (e.g. UDP receive overflow)"),
        ("queue_depth", "gauge", "Items waiting in the component's input queue"),
        ("queue_capacity", "gauge", "Capacity of the component's input queue"),
        ("lag_seconds", "gauge", "Age of the oldest waiting item"),
        ("cpu_seconds", "counter", "CPU time the component's work took (all processes)"),
    ]
    for metric, mtype, help_text in spec:
        name = f"citysoc_component_{metric}" + ("_total" if mtype == "counter" else "")
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} {mtype}")
        for c in rows:
            value = c.lag_seconds if metric == "lag_seconds" else getattr(c, metric)
            if metric == "cpu_seconds":
                value = round(value, 6)
            lines.append(f'{name}{{component="{_label(c.name)}",kind="{_label(c.kind)}"}} {value}')
    for key, value in (extra or {}).items():
        lines.append(f"# TYPE citysoc_{key} gauge")
        lines.append(f"citysoc_{key} {value}")
    for metric, (help_text, label, values) in (labelled or {}).items():
        lines.append(f"# HELP citysoc_{metric} {help_text}")
        lines.append(f"# TYPE citysoc_{metric} gauge")
        for lv, value in values.items():
            lines.append(f'citysoc_{metric}{{{label}="{_label(lv)}"}} {value}')
    return "\n".join(lines) + "\n"
