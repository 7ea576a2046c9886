"""The protocols that connect the floors.

Floor-2 packages (collectors, storage, detections, playbooks, api) implement or call
these and never import each other; ``citysoc/`` picks the implementations and wires
them. Keeping the seams here is what lets the SQLite and Elasticsearch stores pass one
contract suite, and lets the API trigger a playbook without importing the runner.
"""
from __future__ import annotations

import datetime as _dt
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from core.events import Event

__all__ = [
    "BatchDetector",
    "RawRecord",
    "Parser",
    "ParseError",
    "IngestReport",
    "ItemError",
    "SearchResult",
    "QueryError",
    "check_page",
    "check_terms",
    "EventStore",
    "DeadLetter",
    "DeadLetterStore",
    "Detection",
    "Detector",
    "AlertSink",
    "Emit",
    "Source",
    "RuleInfo",
    "RuleCatalog",
    "ScanFinding",
    "AttachmentScanner",
    "ScheduledRuleLog",
    "IncompleteScan",
]


@dataclass(slots=True)
class RawRecord:
    """One unit of input as a source received it, before parsing.

    ``data`` is kept as bytes so invalid UTF-8 can be dead-lettered byte for byte.
    ``format`` names the parser to use (``auto`` lets the parser registry sniff),
    ``meta`` carries transport facts (peer address, file path, offset) that parsers copy
    into ECS fields such as ``log.source.address`` or ``log.file.path``. ``meta`` is read,
    never written, after the record is made: a source may give the records of one read
    the same dict.
    """

    data: bytes
    format: str = "auto"
    source: str = "unknown"
    dataset: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)


class ParseError(ValueError):
    """Raised by a parser for input it recognises as its format but cannot use."""


@runtime_checkable
class Parser(Protocol):
    """Turns one raw record into one ECS event (or raises :class:`ParseError`)."""

    name: str

    def parse(self, record: RawRecord) -> Event: ...


@dataclass(slots=True)
class ItemError:
    """Why one item of a batch was not stored (its index within the batch)."""

    index: int
    reason: str
    status: int = 400


@dataclass(slots=True)
class IngestReport:
    """What a store did with a batch: how many it committed, and per-item failures."""

    stored: int
    errors: list[ItemError] = field(default_factory=list)


@dataclass(slots=True)
class SearchResult:
    total: int
    hits: list[Event]
    took_ms: float = 0.0


class QueryError(ValueError):
    """A query the analyst typed cannot be used; ``position`` is a 0-based offset."""

    def __init__(self, message: str, position: int | None = None, query: str | None = None):
        self.message = message
        self.position = position
        self.query = query
        where = f" at position {position}" if position is not None else ""
        super().__init__(f"{message}{where}")


def check_page(sort: str, limit: int, offset: int) -> None:
    """Check ``EventStore.search`` paging arguments the same way in every store."""
    if sort not in ("asc", "desc"):
        raise QueryError(f"sort must be 'asc' or 'desc', not {sort!r}")
    if limit < 0 or offset < 0:
        raise QueryError("limit and offset must not be negative")


def check_terms(field: str, size: int, text_fields: Collection[str]) -> None:
    """Check ``EventStore.terms`` arguments the same way in every store: ``@timestamp``
    and full-text fields (``text_fields``: ``message``, ``event.original``) are not
    counted by value, and ``size`` is at least 1 (Elasticsearch cannot do otherwise;
    the embedded store answers alike so a query moves between them unchanged)."""
    if field == "@timestamp":
        raise QueryError("terms on @timestamp makes no sense: use date_histogram")
    if field in text_fields:
        raise QueryError(f"{field} is full text and cannot be counted by value; use a keyword field "
                         "(e.g. event.dataset, host.name, source.ip)")
    if size < 1:
        raise QueryError("size must be at least 1")


@runtime_checkable
class EventStore(Protocol):
    """Where events live. Implementations: ``storage.sqlite``, ``storage.elasticsearch``.

    Every method is synchronous (callers in asyncio use ``asyncio.to_thread``).
    ``ingest`` returns only once the batch is durable: that is what lets a collector
    acknowledge a sender. Queries use the Lucene syntax of ``storage.query``; time
    bounds filter ``@timestamp`` (``start`` inclusive, ``end`` exclusive).
    """

    def ingest(self, events: Sequence[Event]) -> IngestReport: ...

    def search(
        self,
        query: str = "*",
        *,
        start: _dt.datetime | None = None,
        end: _dt.datetime | None = None,
        limit: int = 100,
        offset: int = 0,
        sort: str = "desc",
    ) -> SearchResult: ...

    def count(
        self, query: str = "*", *, start: _dt.datetime | None = None, end: _dt.datetime | None = None
    ) -> int: ...

    def terms(
        self,
        field: str,
        query: str = "*",
        *,
        start: _dt.datetime | None = None,
        end: _dt.datetime | None = None,
        size: int = 10,
    ) -> list[tuple[Any, int]]: ...

    def date_histogram(
        self,
        query: str = "*",
        *,
        start: _dt.datetime | None = None,
        end: _dt.datetime | None = None,
        interval: str = "1h",
    ) -> list[tuple[str, int]]: ...

    def delete_before(self, cutoff: _dt.datetime) -> int: ...

    def close(self) -> None: ...


@dataclass(slots=True)
class DeadLetter:
    """An input that failed a stage, kept with the reason so nothing is lost."""

    stage: str
    reason: str
    raw: bytes
    source: str = "unknown"
    time: str = ""
    id: int | None = None
    meta: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class DeadLetterStore(Protocol):
    def put(self, letters: Sequence[DeadLetter]) -> None: ...

    def list(self, *, limit: int = 100, offset: int = 0, stage: str | None = None) -> list[DeadLetter]: ...

    def count(self, *, stage: str | None = None) -> int: ...


@dataclass(slots=True)
class Detection:
    """A rule matched: what a detector hands to the alert stage."""

    rule_id: str
    title: str
    level: str
    events: list[Event]
    tags: list[str] = field(default_factory=list)
    engine: str = "sigma"
    description: str = ""
    group_key: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class Detector(Protocol):
    """Checks events as they flow; returns the detections they complete."""

    name: str

    def process(self, event: Event) -> list[Detection]: ...


@runtime_checkable
class BatchDetector(Protocol):
    """A detector fed a stage's whole batch at once, with processes of its own that the
    pipeline starts and stops (``core.detector_processes``: the stateful detectors
    partitioned over N processes, which must see a batch together to work in parallel)."""

    name: str

    def process_batch(self, events: Sequence[Event]) -> list[Detection]: ...

    def start(self) -> None: ...

    def stop(self) -> None: ...


@runtime_checkable
class AlertSink(Protocol):
    def emit(self, detections: Sequence[Detection]) -> None: ...


Emit = Callable[[Sequence[RawRecord]], Awaitable[None]]
"""What a source calls with a batch. It returns once the batch is accepted by the
pipeline (``wait=False`` semantics) and blocks while queues are full: backpressure."""


@runtime_checkable
class Source(Protocol):
    """A long-running producer of raw records (syslog listener, file tail, capture)."""

    name: str

    async def run(self, emit: Emit) -> None: ...

    def counters(self) -> dict[str, int]: ...


@dataclass(slots=True)
class RuleInfo:
    """What the API shows about one detection rule."""

    id: str
    title: str
    level: str
    enabled: bool
    tags: list[str] = field(default_factory=list)
    engine: str = "sigma"
    description: str = ""
    source: str = ""
    """Where the rule came from (file path or pack name)."""
    title_vi: str = ""
    """Vietnamese title where the rule declares one (our detectors and our Sigma/YARA packs
    do; SigmaHQ rules do not, and the console then shows them in English, labelled as such)."""
    description_vi: str = ""
    """Vietnamese description (empty when the rule has none)."""


@runtime_checkable
class RuleCatalog(Protocol):
    """The running detection engine's rules, as the API lists and toggles them.

    Implemented by the Sigma engine side; the ``/api/v1/rules`` router answers 503
    when none is wired. ``set_enabled`` raises ``KeyError`` for an unknown id and takes
    effect for the next event; it returns the rule as it is now.
    """

    def list_rules(self) -> list[RuleInfo]: ...

    def get_rule(self, rule_id: str) -> RuleInfo | None: ...

    def set_enabled(self, rule_id: str, enabled: bool) -> RuleInfo: ...


@dataclass(slots=True)
class ScanFinding:
    """One match of a content scanner (a YARA rule) in a file."""

    rule: str
    namespace: str = ""
    tags: list[str] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)


class IncompleteScan(Exception):
    """A scan that could not see everything (a member skipped, too deep, over budget).

    Carries what it did find; the attachment is then ``flagged`` (findings) or
    ``incomplete`` (none), never ``clean``.
    """

    def __init__(self, reasons: list[str], findings: list[ScanFinding]):
        super().__init__("; ".join(reasons[:5]) or "scan incomplete")
        self.reasons = reasons
        self.findings = findings


@runtime_checkable
class AttachmentScanner(Protocol):
    """Scans a file stored as a case attachment (YARA, with its own size/time limits).

    Called by the case store's API after the file is written; raising marks the
    attachment's scan as ``error`` with the message, never loses the attachment.
    """

    def scan_file(self, path: str) -> list[ScanFinding]: ...


@runtime_checkable
class ScheduledRuleLog(Protocol):
    """Scheduled Sigma query rules as the API shows them (``detections.scheduled``'s runner):
    the rules with their covered end and open gaps plus the rules not scheduled
    (``describe``), the run log and the gaps, newest first, as JSON-ready dicts."""

    def describe(self) -> dict[str, Any]: ...

    def list_runs(self, rule_id: str | None = None, limit: int = 100) -> list[dict[str, Any]]: ...

    def list_gaps(self, rule_id: str | None = None, *, open_only: bool = False,
                  limit: int = 100) -> list[dict[str, Any]]: ...
