"""The bus seam: how parsed events travel from collectors to detectors and store writers.

One protocol, two implementations: the embedded bus (one machine, worker processes, no
server: the event-path work) and the NATS JetStream bus (``bus/nats.py``: collectors,
detectors and writers on different machines). Roles only ever talk to :class:`EventBus`.

The contract, which both implementations keep:

* **Publish is durable or it fails.** :meth:`EventBus.publish` returns only when every
  record of the batch is stored by the bus (JetStream: acknowledged by the stream's
  replicas); otherwise it raises :class:`BusUnavailable` and the caller must not
  acknowledge its sender. Records already carry their partition
  (:mod:`core.partitioning`); the bus never re-hashes.
* **Records have a stable id** (:attr:`BusRecord.id`). A bus may drop a re-publish of
  an id it has already stored (JetStream's duplicate window); consumers are idempotent by
  it anyway (writers store an id once; alert idempotency keys are built from ids).
* **Consumption is per partition, in order, at least once.** A member of a consumer
  *group* (``"detector"``, ``"writer"``) owns a set of partitions; for each owned
  partition the bus calls the group's :data:`BatchHandler` with batches in publish order.
  The bus acknowledges a batch only after the handler returned (the handler returns once
  its work is durable: alerts recorded, store committed). A handler that raises, or a
  member that dies before returning, gets the batch redelivered, to itself or to the
  partition's next owner, flagged :attr:`Batch.redelivered`.
* **Ownership moves.** Members of a group share the partitions; when one joins or dies
  the owners change and the bus tells each member through :data:`OwnershipHandler`
  (``assigned``, ``revoked``) *before* it delivers a newly owned partition's batches, so
  the member can rebuild that partition's state from its checkpoint first.
* **Checkpoints.** :meth:`EventBus.load_checkpoint`/:meth:`EventBus.save_checkpoint`
  keep one small blob per (group, partition) beside the stream (NATS: the KV store), so
  whoever owns a partition next can rebuild its detector state.

Example::

    await bus.publish([BusRecord(id="c1-42", partition=3, event=ev, source="c1")])
    member = await bus.join("detector", "node-a", handle_batch, on_ownership)
    ...
    await member.leave()
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from core.events import Event

__all__ = ["BusRecord", "Batch", "BatchHandler", "OwnershipHandler", "Membership", "EventBus",
           "BusUnavailable", "BusStats", "GROUPS"]

GROUPS = ("detector", "writer")
"""The consumer groups of a citysoc deployment; each sees every partition exactly once."""


class BusUnavailable(RuntimeError):
    """The bus could not store a batch (no quorum, link down, timeout): do not acknowledge."""


@dataclass(slots=True)
class BusRecord:
    """One parsed event on the bus.

    ``id`` is stable across re-sends (the collector's own id for it); ``source`` names
    the sender it came from, so order per source can be checked end to end.
    """

    id: str
    partition: int
    event: Event
    source: str = ""


@dataclass(slots=True)
class Batch:
    """Records of one partition, in publish order, handed to a consumer group member."""

    group: str
    partition: int
    records: list[BusRecord]
    redelivered: bool = False
    positions: list[int] = field(default_factory=list)
    """The bus's position of each record in its partition (JetStream stream sequence)."""


BatchHandler = Callable[[Batch], Awaitable[None]]
"""Does the group's work for one batch; returns once that work is durable."""

OwnershipHandler = Callable[[frozenset[int], frozenset[int]], Awaitable[None]]
"""Called with (assigned, revoked) partitions whenever this member's ownership changes."""


@dataclass(slots=True)
class BusStats:
    """What one member reports on ``/metrics`` and ``citysoc cluster status``."""

    group: str
    member: str
    owned: frozenset[int]
    lag: dict[int, int]
    """Per owned partition: records stored by the bus but not yet acknowledged."""
    delivered: int = 0
    redelivered: int = 0
    acked: int = 0


@runtime_checkable
class Membership(Protocol):
    """One member's place in a consumer group."""

    @property
    def owned(self) -> frozenset[int]: ...

    def stats(self) -> BusStats: ...

    async def leave(self) -> None:
        """Stop consuming and give the partitions back (the others take them at once)."""
        ...


@runtime_checkable
class EventBus(Protocol):
    """Publish parsed events durably; consume them per partition with ack after the work."""

    @property
    def partitions(self) -> int: ...

    async def publish(self, records: Sequence[BusRecord]) -> None:
        """Return when every record is durably stored; raise :class:`BusUnavailable` if not."""
        ...

    async def join(self, group: str, member: str, handler: BatchHandler,
                   on_ownership: OwnershipHandler | None = None) -> Membership:
        """Become a member of ``group``; ``handler`` then receives the owned partitions' batches."""
        ...

    async def load_checkpoint(self, group: str, partition: int) -> bytes | None: ...

    async def save_checkpoint(self, group: str, partition: int, data: bytes) -> None: ...

    async def close(self) -> None: ...
