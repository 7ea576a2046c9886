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
from typing import Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from core.events import Event

__all__ = ["BusRecord", "Batch", "BatchHandler", "OwnershipHandler", "Membership", "EventBus",
           "BusUnavailable", "BusStats", "GROUPS", "ROLES", "BusSettings"]

GROUPS = ("detector", "writer")
"""The consumer groups of a citysoc deployment; each sees every partition exactly once."""


Role = Literal["collector", "detector", "writer", "api"]
ROLES: tuple[Role, ...] = ("collector", "detector", "writer", "api")
"""What one ``citysoc serve`` node may do; one process may hold several (default: all)."""


class BusSettings(BaseModel):
    """``bus:``: the embedded bus (one machine, the default) or NATS JetStream, and this node's roles.

    With ``backend: nats`` a ``collector`` publishes parsed events (acknowledging its sender
    only once JetStream stored them), a ``detector`` consumes its partitions and records
    alerts, a ``writer`` stores events; ``api`` serves the console and API over this node's
    data folder. Partitions are fixed for a deployment; ownership moves between nodes.
    """

    model_config = ConfigDict(extra="forbid")
    backend: Literal["embedded", "nats"] = "embedded"
    servers: list[str] = Field(default_factory=lambda: ["nats://127.0.0.1:4222"])
    """NATS URLs of the cluster (any subset; the client learns the rest)."""
    roles: list[Role] = Field(default_factory=lambda: list(ROLES))
    node: str = ""
    """This node's name in consumer groups and ``citysoc cluster status`` (default: host name + port)."""
    partitions: int = Field(16, ge=1, le=4096)
    """Partition count of the event stream: fixed for a deployment (it decides where state lives)."""
    replicas: int = Field(3, ge=1, le=5)
    stream: str = Field("CITYSOC_EVENTS", pattern=r"^[A-Za-z0-9_-]{1,64}$")
    lease_s: float = Field(10.0, gt=0.5, le=300)
    """A node silent this long loses its partitions to the others."""
    publish_timeout_s: float = Field(10.0, gt=0)
    replay_window_s: float = Field(3600.0, ge=0)
    """How far back a detector taking over a partition replays it to rebuild correlation
    and network-detector state (at least the longest correlation timespan)."""
    checkpoint_interval_s: float = Field(5.0, gt=0)
    spool: bool = True
    """A ``collector`` that cannot reach the core spools batches in ``<data>/spool`` (fsynced
    before the sender is acknowledged) and forwards them in order when the link returns
    (``bus/spool.py``). Off: a batch the core does not confirm fails back to the sender."""
    spool_max_bytes: int = Field(1 << 30, ge=4096)
    """Disk budget of the spool (default 1 GiB: about 2.5 M events of 400 B, i.e. a district
    sending 500 events/s rides out 80 minutes). When full the spool refuses the newest
    events (drop-newest, counted as ``citysoc_bus_spool_dropped_total``) and raises one
    ``bus:spool_full`` alert per episode."""


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
