"""Live alert push: a broadcaster the pipeline's alert thread publishes to, and the
Server-Sent Events framing the ``/alerts/stream`` route sends. Playbook runs' status
changes ride the same stream (``run.updated``, ``run.awaiting_approval``), so an open
console page sees another person's approval without a reload.

``publish`` is called from the pipeline's detect worker thread. It serializes there
(off the event loop) and hands the payloads to the loop with
``loop.call_soon_threadsafe``; on the loop each subscriber has a bounded queue, and a
subscriber whose queue is full loses the event, counted in ``dropped`` (its own and the
total). Nothing here ever blocks the pipeline.
"""
from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from core.alerts import AlertChange

__all__ = ["AlertBroadcaster", "Subscriber", "sse_frame"]


def sse_frame(event: str, data: bytes, event_id: str | None = None) -> bytes:
    """One SSE message. ``data`` is single-line JSON, so one ``data:`` line suffices."""
    head = f"id: {event_id}\n" if event_id else ""
    return f"{head}event: {event}\n".encode() + b"data: " + data + b"\n\n"


@dataclass(eq=False)
class Subscriber:
    queue: asyncio.Queue[bytes]
    dropped: int = 0
    unreported_drops: int = 0
    delivered: int = 0
    ended: bool = False
    filters: dict[str, object] = field(default_factory=dict)


class AlertBroadcaster:
    """Fan-out of alert changes to SSE subscribers (one per open stream)."""

    def __init__(self, queue_size: int = 1000):
        self.queue_size = queue_size
        self._subs: set[Subscriber] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()
        self.published = 0
        self.dropped = 0
        self.closed = False

    @property
    def subscribers(self) -> int:
        return len(self._subs)

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """The loop subscribers live on (set by the first subscriber if not bound earlier)."""
        self._loop = loop

    def close(self) -> None:
        """End every open stream (server shutdown): each subscriber gets an end marker,
        so its response finishes instead of holding the shutdown up. Thread-safe."""
        self.closed = True
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            loop.call_soon_threadsafe(self._end_all)
        except RuntimeError:
            pass

    def _end_all(self) -> None:
        for sub in list(self._subs):
            sub.ended = True
            try:
                sub.queue.put_nowait(b"")
            except asyncio.QueueFull:
                pass  # the reader checks ``ended`` on its next wake-up

    def subscribe(self, **filters: object) -> Subscriber:
        """Call on the event loop."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._loop = loop
        sub = Subscriber(queue=asyncio.Queue(maxsize=self.queue_size), filters=filters)
        sub.ended = self.closed
        self._subs.add(sub)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        self._subs.discard(sub)

    def publish(self, changes: Sequence[AlertChange]) -> None:
        """Thread-safe; never blocks. Used as a :class:`core.alerts.AlertRecorder` listener."""
        loop = self._loop
        if loop is None or not self._subs or loop.is_closed():
            return
        items: list[tuple[str, int | None, bytes]] = []
        for ch in changes:
            a = ch.alert
            data = orjson.dumps(a.to_dict(with_events=False))
            name = "alert.created" if ch.created else "alert.updated"
            items.append((a.level, a.risk_score, sse_frame(name, data, f"{a.id}-{a.count}")))
        try:
            loop.call_soon_threadsafe(self._deliver, items)
        except RuntimeError:
            return  # the loop closed between the check and the call: server is stopping
        with self._lock:
            self.published += len(items)

    def run_listener(self, run: Any, event: str) -> None:
        """A :class:`playbooks.runner.Runner` run listener: a run's status change as an
        ``event: run.updated`` / ``run.awaiting_approval`` frame (the run without inputs
        and outputs of steps, which can be large; pages fetch the run when they show it).
        Every subscriber gets it, whatever its ``min_risk``. Thread-safe; never blocks."""
        loop = self._loop
        if loop is None or not self._subs or loop.is_closed():
            return
        body = {"id": run.id, "playbook": run.playbook, "status": run.status, "alert_id": run.alert_id,
                "actor": run.actor, "current_step": run.current_step, "dry_run": run.dry_run,
                "reason": run.reason[:500],
                "steps": [{"name": s.name, "status": s.status, "approved_by": s.approved_by} for s in run.steps]}
        frame = sse_frame(event, orjson.dumps(body), f"run-{run.id}-{run.status}")
        try:
            batch: list[tuple[str, int | None, bytes]] = [("run", None, frame)]
            loop.call_soon_threadsafe(self._deliver, batch)
        except RuntimeError:
            return
        with self._lock:
            self.published += 1

    def _deliver(self, items: list[tuple[str, int | None, bytes]]) -> None:
        for sub in list(self._subs):
            min_risk = sub.filters.get("min_risk")
            for _level, risk, frame in items:
                if isinstance(min_risk, int) and risk is not None and risk < min_risk:
                    continue
                try:
                    sub.queue.put_nowait(frame)
                except asyncio.QueueFull:
                    sub.dropped += 1
                    sub.unreported_drops += 1
                    self.dropped += 1
