"""Runs converted Sigma queries against the event store on a schedule, with lookback,
dedupe and gap catch-up.

Each run of a rule queries ``[covered_end - lookback, now - ingest_delay)``:

* ``ingest_delay`` keeps the window clear of events still in the pipeline;
* ``lookback`` re-reads the end of the previous window, so an event that arrived late
  (a device that buffered its logs, a shipper that reconnected) but whose ``@timestamp``
  is at most ``lookback`` older than the last covered end is still found;
* every hit's key (a hash of the stored document) is recorded in the state file, so an
  event found again by the overlap, a catch-up chunk or a run after a restart never
  alerts twice. Keys older than any window the rule can still query are pruned, so the
  set is bounded by what the lookback horizon holds.

**Gaps.** When a run finds that more than two intervals passed since the covered end
(the server was down, or runs fell behind), the interval up to the last one is recorded
as a gap. The run itself covers the latest interval first (fresh attacks are not kept
waiting behind a backlog of old data), then catches up at most ``max_catchup_chunks``
intervals of the oldest open gap(s); each chunk is a run of kind ``catchup`` in the run
log. A gap closes when it is fully covered. A failed run (store unreachable) does not
advance the covered end, so what it missed is retried or becomes a gap: never lost.

The runner is synchronous (``run_due`` is called from ``asyncio.to_thread``);
:meth:`ScheduledRunner.run_forever` is the asyncio task ``citysoc serve`` starts.
"""
from __future__ import annotations

import asyncio
import contextlib
import datetime as _dt
import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from core.events import Event, TimestampError, parse_timestamp
from core.protocols import AlertSink, Detection, EventStore
from detections.scheduled.convert import ConversionFailure, ScheduledQuery, convert_file
from detections.scheduled.state import GapRecord, RunRecord, RunState

__all__ = ["ScheduledRule", "RunOutcome", "ScheduledRunner", "event_key", "ENGINE", "validate_queries", "list_runs",
           "list_gaps"]

ENGINE = "sigma-scheduled"
log = logging.getLogger("citysoc.scheduled")
_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)


def _ms(ts: _dt.datetime) -> int:
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=_dt.timezone.utc)
    return (ts - _EPOCH) // _dt.timedelta(milliseconds=1)


def _dt_of(ms: int) -> _dt.datetime:
    return _EPOCH + _dt.timedelta(milliseconds=ms)


def _iso(ms: int | None) -> str | None:
    return None if ms is None else _dt_of(ms).isoformat().replace("+00:00", "Z")


def event_key(event: Event) -> str:
    """The identity of a stored event: a hash of its document (keys sorted).

    Stores return documents without their own ids (SQLite rowids and Elasticsearch
    ``_id`` are not part of the ``EventStore`` contract); the whole document is what
    both return identically. Two byte-identical events count as one."""
    return hashlib.blake2b(orjson.dumps(event, option=orjson.OPT_SORT_KEYS), digest_size=16).hexdigest()


def _event_ms(event: Event) -> int:
    try:
        return _ms(parse_timestamp(event.get("@timestamp")))
    except (TimestampError, TypeError, ValueError):
        return 0


@dataclass(slots=True)
class ScheduledRule:
    """A converted rule with its schedule (milliseconds)."""

    query: ScheduledQuery
    interval_ms: int
    lookback_ms: int

    @property
    def id(self) -> str:
        return self.query.id


@dataclass(slots=True)
class RunOutcome:
    """What one window of one rule produced."""

    rule_id: str
    run_id: int
    kind: str
    window: tuple[int, int]
    hits: int
    alerts: int
    status: str
    error: str = ""


class ScheduledRunner:
    """Runs :class:`ScheduledRule` queries through an :class:`EventStore` into an :class:`AlertSink`.

    ``clock`` returns now in epoch milliseconds (tests pass a fixed one).
    """

    def __init__(
        self,
        rules: list[ScheduledRule],
        store: EventStore,
        sink: AlertSink,
        state: RunState,
        *,
        ingest_delay_ms: int = 30_000,
        max_catchup_chunks: int = 12,
        max_hits: int = 1000,
        page_size: int = 500,
        clock: Callable[[], int] | None = None,
    ):
        self.rules = {r.id: r for r in rules}
        self.store = store
        self.sink = sink
        self.state = state
        self.ingest_delay_ms = ingest_delay_ms
        self.max_catchup_chunks = max_catchup_chunks
        self.max_hits = max_hits
        self.page_size = page_size
        self.clock = clock or (lambda: int(time.time() * 1000))
        self.failures: list[ConversionFailure] = []
        self.stopping = False
        """Set on shutdown: the pass in progress ends after its current window."""

    # -- validation -------------------------------------------------------------------
    def validate(self) -> list[ConversionFailure]:
        """Drop (and report) rules whose query the store refuses; see :func:`validate_queries`."""
        ok, bad = validate_queries(self.store, [r.query for r in self.rules.values()])
        keep = {q.id for q in ok}
        self.rules = {rid: r for rid, r in self.rules.items() if rid in keep}
        self.failures.extend(bad)
        for f in bad:
            log.warning("scheduled rule %s (%s) not scheduled: %s", f.rule_id, f.path, f.reason)
        return bad

    # -- scheduling -------------------------------------------------------------------
    def next_due(self, rule: ScheduledRule) -> int:
        """Wall-clock ms when ``rule`` should run next (now if it never ran)."""
        ce = self.state.covered_end(rule.id)
        if ce is None:
            return 0
        return ce + rule.interval_ms + self.ingest_delay_ms

    def run_due(self, now_ms: int | None = None) -> list[RunOutcome]:
        """Run every rule that is due (and its gap catch-up). Returns what each window did."""
        now = self.clock() if now_ms is None else now_ms
        out: list[RunOutcome] = []
        for rule in list(self.rules.values()):
            if self.stopping:
                break
            if self.next_due(rule) <= now:
                out.extend(self.run_rule(rule, now))
        return out

    def seconds_to_next(self, now_ms: int | None = None) -> float:
        now = self.clock() if now_ms is None else now_ms
        if not self.rules:
            return 60.0
        due = min(self.next_due(r) for r in self.rules.values())
        return max(0.0, (due - now) / 1000)

    def run_rule(self, rule: ScheduledRule, now_ms: int) -> list[RunOutcome]:
        """One scheduled run of ``rule`` at ``now_ms``: the latest window, then catch-up."""
        end = now_ms - self.ingest_delay_ms
        ce = self.state.covered_end(rule.id)
        if ce is None:
            begin = end - rule.lookback_ms  # a new rule looks back once, it does not backfill history
        else:
            if end - ce > 2 * rule.interval_ms:
                gap_end = end - rule.interval_ms
                self.state.add_gap(rule.id, ce, gap_end, now_ms)
                self.state.set_covered_end(rule.id, gap_end)  # the gap owns [ce, gap_end) from now on
                log.warning("scheduled rule %s: gap %s .. %s (%d min) recorded; catching up",
                            rule.id, _iso(ce), _iso(gap_end), (gap_end - ce) // 60_000)
                ce = gap_end
            begin = ce - rule.lookback_ms
        outcomes = [self._window(rule, "run", begin, end, now_ms)]
        if outcomes[0].status != "error":
            self.state.set_covered_end(rule.id, end)
        outcomes.extend(self._catch_up(rule, now_ms))
        self._prune(rule, end)
        return outcomes

    def _catch_up(self, rule: ScheduledRule, now_ms: int) -> list[RunOutcome]:
        out: list[RunOutcome] = []
        budget = self.max_catchup_chunks
        for gap in self.state.open_gaps(rule.id):
            done = gap.covered_until
            while budget > 0 and done < gap.gap_end and not self.stopping:
                chunk_end = min(done + rule.interval_ms, gap.gap_end)
                res = self._window(rule, "catchup", done - rule.lookback_ms, chunk_end, now_ms, gap_id=gap.id)
                out.append(res)
                budget -= 1
                if res.status == "error":
                    return out  # retried on the next run, from where it stopped
                done = chunk_end
                self.state.advance_gap(gap.id, done, now_ms)
            if budget <= 0:
                break
        return out

    def _prune(self, rule: ScheduledRule, end: int) -> None:
        horizon = self.state.covered_end(rule.id) or end
        for gap in self.state.open_gaps(rule.id):
            horizon = min(horizon, gap.covered_until)
        self.state.prune_seen(rule.id, horizon - rule.lookback_ms)

    # -- one window -------------------------------------------------------------------
    def _fetch(self, rule: ScheduledRule, begin: int, end: int) -> tuple[dict[str, Event], int]:
        """Hits of every branch in ``[begin, end)``, by event key; and the total matched."""
        start, stop = _dt_of(begin), _dt_of(end)
        hits: dict[str, Event] = {}
        total = 0
        for branch in rule.query.branches:
            offset = 0
            while len(hits) < self.max_hits:
                want = min(self.page_size, self.max_hits - len(hits))
                res = self.store.search(branch.query, start=start, end=stop, limit=want, offset=offset, sort="asc")
                if offset == 0:
                    total += res.total
                for ev in res.hits:
                    hits.setdefault(event_key(ev), ev)
                offset += len(res.hits)
                if not res.hits or offset >= res.total:
                    break
        return hits, total

    def _window(self, rule: ScheduledRule, kind: str, begin: int, end: int, now_ms: int,
                gap_id: int | None = None) -> RunOutcome:
        run_id = self.state.start_run(rule.id, kind, now_ms, (begin, end), gap_id)
        try:
            hits, total = self._fetch(rule, begin, end)
        except Exception as exc:
            msg = f"{type(exc).__name__}: {exc}"
            log.error("scheduled rule %s: %s run over %s .. %s failed: %s", rule.id, kind, _iso(begin), _iso(end), msg)
            self.state.finish_run(run_id, self.clock(), hits=0, alerts=0, status="error", error=msg)
            return RunOutcome(rule.id, run_id, kind, (begin, end), 0, 0, "error", msg)
        fresh = self.state.unseen(rule.id, ((k, _event_ms(ev)) for k, ev in hits.items()))
        q = rule.query
        meta = {"run_id": run_id, "kind": kind, "window_start": _iso(begin), "window_end": _iso(end)}
        detections = [
            Detection(rule_id=q.id, title=q.title, level=q.level, events=[hits[k]], tags=list(q.tags),
                      engine=ENGINE, description=q.description, extra={"scheduled": meta})
            for k, _ts in fresh
        ]
        try:
            if detections:
                self.sink.emit(detections)
        except Exception as exc:
            self.state.forget(rule.id, [k for k, _ in fresh])
            msg = f"alert sink failed: {type(exc).__name__}: {exc}"
            self.state.finish_run(run_id, self.clock(), hits=len(hits), alerts=0, status="error", error=msg)
            return RunOutcome(rule.id, run_id, kind, (begin, end), len(hits), 0, "error", msg)
        status, note = "ok", ""
        if total > len(hits) and len(hits) >= self.max_hits:
            status, note = "truncated", f"{total} events matched; only the first {len(hits)} were fetched (max_hits)"
        self.state.finish_run(run_id, self.clock(), hits=len(hits), alerts=len(detections), status=status, error=note)
        return RunOutcome(rule.id, run_id, kind, (begin, end), len(hits), len(detections), status, note)

    # -- what the API / CLI shows -----------------------------------------------------
    def describe(self) -> dict[str, Any]:
        """The scheduled rules (with covered end and open gaps) and the rules not scheduled."""
        rules = []
        for r in self.rules.values():
            rules.append({
                "id": r.id, "title": r.query.title, "level": r.query.level, "path": r.query.path,
                "interval_s": r.interval_ms / 1000, "lookback_s": r.lookback_ms / 1000,
                "covered_end": _iso(self.state.covered_end(r.id)),
                "open_gaps": len(self.state.open_gaps(r.id)),
                "case_variants": r.query.case_variants,
                "queries": [b.query for b in r.query.branches],
            })
        failures = [{"id": f.rule_id, "title": f.title, "path": f.path, "reason": f.reason} for f in self.failures]
        return {"rules": rules, "not_scheduled": failures}

    def list_runs(self, rule_id: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        return list_runs(self.state, rule_id, limit=limit)

    def list_gaps(self, rule_id: str | None = None, *, open_only: bool = False, limit: int = 100) -> list[dict[str, Any]]:
        return list_gaps(self.state, rule_id, open_only=open_only, limit=limit)

    # -- asyncio ----------------------------------------------------------------------
    async def run_forever(self, *, max_sleep: float = 30.0) -> None:
        """Sleep until the next rule is due, run what is due in a thread, repeat.

        Plain asyncio rather than apscheduler: what to run is decided from the persisted
        covered ends (which also detect gaps after a restart), so a scheduler's own
        misfire bookkeeping would only duplicate it."""
        while True:
            pass_ = asyncio.ensure_future(asyncio.to_thread(self.run_due))
            try:
                await asyncio.shield(pass_)
            except asyncio.CancelledError:
                # Shutdown: let the thread finish its current query (it stops before the
                # next window) so the store and state file are not closed under it.
                self.stopping = True
                with contextlib.suppress(Exception):
                    await pass_
                raise
            except Exception:
                log.exception("scheduled rules: a pass failed; will retry")
            await asyncio.sleep(min(max_sleep, max(1.0, self.seconds_to_next())))


_TOO_LARGE = ("parts;", "characters long")


def validate_queries(store: EventStore, queries: list[ScheduledQuery]) -> tuple[list[ScheduledQuery], list[ConversionFailure]]:
    """Ask the store to compile every branch over an empty time range (cheap: no day is
    visited). Rules whose query it refuses (regular expressions, too many parts, too
    long) are returned as failures with the store's reason.

    A rule whose case-variant query is too large for the store is converted again with
    values as written and kept when that fits (``case_variants`` False, shown by the API
    and ``citysoc scheduled check``): a case-sensitive query beats none."""
    ok: list[ScheduledQuery] = []
    bad: list[ConversionFailure] = []
    for q in queries:
        reason = _refusal(store, q)
        if reason and q.case_variants and any(t in reason for t in _TOO_LARGE):
            plain = next((r for r in convert_file(q.path, case_variants=False)
                          if isinstance(r, ScheduledQuery) and r.id == q.id), None)
            if plain is not None and _refusal(store, plain) is None:
                q, reason = plain, None
        if reason:
            bad.append(ConversionFailure(q.path, f"the store refuses the query: {reason}", q.id, q.title))
        else:
            ok.append(q)
    return ok, bad


def _refusal(store: EventStore, q: ScheduledQuery) -> str | None:
    probe = _dt.datetime(2000, 1, 1, tzinfo=_dt.timezone.utc)
    for branch in q.branches:
        try:
            store.count(branch.query, start=probe, end=probe)
        except Exception as exc:  # QueryError mostly; any refusal makes the rule unusable
            return str(exc)
    return None


def list_runs(state: RunState, rule_id: str | None = None, *, limit: int = 100) -> list[dict[str, Any]]:
    """The run log, newest first, times as ISO UTC (what the CLI and an API show)."""
    return [_run_view(r) for r in state.list_runs(rule_id, limit=limit)]


def list_gaps(state: RunState, rule_id: str | None = None, *, open_only: bool = False,
              limit: int = 100) -> list[dict[str, Any]]:
    """Recorded gaps, newest first, with their catch-up progress and length in minutes."""
    return [_gap_view(g) for g in state.list_gaps(rule_id, open_only=open_only, limit=limit)]


def _run_view(r: RunRecord) -> dict[str, Any]:
    d = r.to_dict()
    for k in ("started", "finished", "window_start", "window_end"):
        d[k] = _iso(d[k])
    return d


def _gap_view(g: GapRecord) -> dict[str, Any]:
    d = g.to_dict()
    d["minutes"] = round((g.gap_end - g.gap_start) / 60_000, 1)
    for k in ("gap_start", "gap_end", "detected", "covered_until", "closed"):
        d[k] = _iso(d[k])
    return d
