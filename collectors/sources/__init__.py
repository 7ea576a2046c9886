"""Sources: long-running producers of :class:`core.protocols.RawRecord` batches.

One module per transport (``syslog`` for UDP/TCP/TLS listeners, ``tail`` for files).
Sources never parse: they frame bytes into records, attach transport facts in
``RawRecord.meta`` under ECS names (``log.source.address``, ``log.file.path``,
``log.offset``, ``network.transport``) and call ``emit``. ``emit`` returns once the
pipeline accepted the batch and blocks while it is full; a source that can push back
(TCP, files) simply stops reading meanwhile, one that cannot (UDP) counts what it drops.

Every source reports the same counters through ``counters()``: ``received`` (messages
framed from the transport), ``emitted`` (records the pipeline accepted), ``errors``
(connections or reads that failed) and ``dropped`` (records lost, UDP only), plus
source-specific extras.
"""
from __future__ import annotations

from dataclasses import dataclass, fields

__all__ = ["SourceCounters"]


@dataclass
class SourceCounters:
    """The four counters every source reports; subclasses add their own."""

    received: int = 0
    emitted: int = 0
    errors: int = 0
    dropped: int = 0

    def as_dict(self) -> dict[str, int]:
        return {f.name: int(getattr(self, f.name)) for f in fields(self)}
