"""The embedded event store: SQLite in WAL mode, one table per UTC day.

Why this layout:

* **Promoted columns.** The ECS fields analysts filter and aggregate on most
  (:data:`storage.query.sql.PROMOTED`) get their own column with an index on
  ``(column, ts)``, so ``host.name:cam-01`` sorted by time is an index range scan. The
  whole document is kept as JSON (``doc``) and every other field is read with
  ``json_extract``: nothing an event carries is lost, only slower to query.
* **Full text.** A contentless FTS5 table per partition indexes ``message`` and
  ``event.original`` (the ``unicode61`` tokenizer by default: token semantics like
  Elasticsearch's ``text`` fields, and smaller and faster to fill than ``trigram``; see
  ``bench/bench_store.py`` for the measurement). Its rowids are the event ids.
* **Day partitions.** ``ev_YYYYMMDD`` and ``fts_YYYYMMDD``, listed in
  ``citysoc_partitions``. Retention (:meth:`SQLiteEventStore.delete_before`) drops whole
  days with ``DROP TABLE`` instead of deleting millions of rows and their index entries;
  queries visit only the days their time range touches. Event ids come from a counter in
  the catalog, never reused, so full-text entries of deleted rows can never point at a
  new event.
* **Durability.** ``ingest`` returns after ``COMMIT``. In WAL mode with
  ``synchronous=NORMAL`` (``durability="process"``, the default) a committed batch
  survives the process crashing or being killed; after a power cut or kernel crash the
  last batches committed since the previous checkpoint can be lost, but the database is
  never corrupt. ``durability="power"`` uses ``synchronous=FULL`` (an fsync of the WAL
  per commit) for sites that must also survive power loss, at a cost in ingest rate.
* **Concurrency.** One writer connection behind a lock (the server calls from
  ``asyncio.to_thread``); readers take a connection from a pool and read one WAL
  snapshot per call, so a search never sees half a batch or a half-dropped day. Other
  processes (``citysoc search`` while ``citysoc serve`` writes) may open the same file.

Example::

    store = SQLiteEventStore("data/events.db")
    store.ingest([{"@timestamp": "2026-05-01T10:00:00Z", "host": {"name": "cam-01"}}])
    store.count("host.name:cam-*")            # -> 1
"""
from __future__ import annotations

import collections
import datetime as _dt
import queue
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal, TypeVar

import orjson

from core.events import Event, StampedEvent, TimestampError, expand_dots, stamp, to_utc_iso
from core.intervals import calendar_start, parse_interval
from core.sqlitedb import connect, transaction
from core.protocols import IngestReport, ItemError, QueryError, SearchResult, check_page, check_terms
from storage.es_mappings import TEXT_FIELDS
from storage.query import ast
from storage.query.parse import parse_query, validate_field
from storage.query.sql import (
    MULTI,
    PROMOTED,
    SqlFragment,
    compile_query,
    epoch_ms,
    json_path,
    register_functions,
    resolve_datemath,
)

__all__ = ["SQLiteEventStore", "TOKENIZERS", "partition_name", "encode_row"]

TOKENIZERS = {
    "unicode61": "unicode61 remove_diacritics 2",
    "trigram": "trigram",
}
"""FTS5 tokenizers the store can use. ``remove_diacritics 2`` lets ``loi`` find ``lỗi``."""

DAY_MS = 86_400_000
SCHEMA_VERSION = "1"
_T = TypeVar("_T")

_COLUMNS = [c for c in PROMOTED.values() if c.kind != "ts"]
_PATHS = [(tuple(f.split(".")), c.kind == "int") for f, c in PROMOTED.items() if c.kind != "ts"]


def partition_name(day: int, kind: str = "ev") -> str:
    """``ev_20260501`` for epoch day ``day`` (days since 1970-01-01, UTC)."""
    d = _dt.date(1970, 1, 1) + _dt.timedelta(days=day)
    return f"{kind}_{d.year:04d}{d.month:02d}{d.day:02d}"


def _regexp(pattern: str | None, value: Any) -> bool:
    if pattern is None or value is None:
        return False
    return re.search(pattern, str(value)) is not None


class SQLiteEventStore:
    """:class:`core.protocols.EventStore` on one SQLite file.

    ``tokenizer`` is fixed when the file is created (``unicode61`` or ``trigram``);
    reopening uses the stored choice. ``durability``: ``"process"`` (WAL +
    ``synchronous=NORMAL``) or ``"power"`` (``synchronous=FULL``), see the module docs.
    ``query_timeout`` (seconds) stops a read that runs longer (a wildcard over a JSON
    field of millions of events) with a :class:`QueryError`, so one analyst's query
    cannot hold a server thread for minutes.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        tokenizer: str | None = None,
        durability: Literal["process", "power"] = "process",
        max_idle_readers: int = 4,
        query_timeout: float = 30.0,
        cache_mib: int = 256,
    ):
        if cache_mib < 1:
            raise ValueError(f"cache_mib must be at least 1, got {cache_mib}")
        self._cache_kib = cache_mib * 1024
        if durability not in ("process", "power"):
            raise ValueError(f"durability must be 'process' or 'power', not {durability!r}")
        if tokenizer is not None and tokenizer not in TOKENIZERS:
            raise ValueError(f"tokenizer must be one of {sorted(TOKENIZERS)}, not {tokenizer!r}")
        self.path = str(path)
        if self.path == ":memory:" or self.path.startswith("file:"):
            raise ValueError(
                "SQLiteEventStore needs a file path: its reader connections cannot share an in-memory "
                "database with the writer (use a file under a temporary directory for throwaway stores)"
            )
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._durability = durability
        self._write_lock = threading.Lock()
        self._readers: queue.SimpleQueue[sqlite3.Connection] = queue.SimpleQueue()
        self._all_readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        self._max_idle = max_idle_readers
        self.query_timeout = query_timeout
        self._closed = False
        self._writer = self._connect(writer=True)
        self.tokenizer = self._init_schema(tokenizer)

    # -- connections -------------------------------------------------------------------
    def _connect(self, *, writer: bool) -> sqlite3.Connection:
        # auto_vacuum only takes effect on a new file (before the first table).
        conn = connect(self.path, writer=writer, synchronous="FULL" if self._durability == "power" else "NORMAL",
                       pragmas=("auto_vacuum = INCREMENTAL",) if writer else ())
        # The writer keeps a day's index pages cached (inserts touch 14 B-trees at random
        # places); readers mostly stream, so they share the OS cache through mmap and get a
        # quarter of it. Both are filled as the day's tables grow: the RSS of a fresh serve
        # rises by up to cache_mib + readers x cache_mib/4 before it levels.
        kib = self._cache_kib if writer else max(1024, self._cache_kib // 4)
        conn.execute(f"PRAGMA cache_size = {-kib}")
        conn.execute("PRAGMA temp_store = MEMORY")
        conn.execute("PRAGMA mmap_size = 268435456")
        conn.create_function("REGEXP", 2, _regexp, deterministic=True)
        register_functions(conn)
        return conn

    @contextmanager
    def _reader(self) -> Iterator[sqlite3.Connection]:
        """A pooled read connection inside one read transaction (one WAL snapshot)."""
        if self._closed:
            raise RuntimeError("the event store is closed")
        try:
            conn = self._readers.get_nowait()
        except queue.Empty:
            conn = self._connect(writer=False)
            with self._readers_lock:
                self._all_readers.append(conn)
        deadline = time.monotonic() + self.query_timeout
        conn.set_progress_handler(lambda: 1 if time.monotonic() > deadline else 0, 20_000)
        try:
            conn.execute("BEGIN")
            try:
                yield conn
            finally:
                conn.set_progress_handler(None, 0)  # COMMIT must not be interrupted
                conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        finally:
            conn.set_progress_handler(None, 0)
            if self._readers.qsize() < self._max_idle and not self._closed:
                self._readers.put(conn)
            else:
                with self._readers_lock:
                    if conn in self._all_readers:
                        self._all_readers.remove(conn)
                conn.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        if self._closed:
            raise RuntimeError("the event store is closed")
        with transaction(self._writer, self._write_lock) as conn:
            yield conn

    def _init_schema(self, tokenizer: str | None) -> str:
        with self._write() as c:
            c.execute("CREATE TABLE IF NOT EXISTS citysoc_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            c.execute(
                "CREATE TABLE IF NOT EXISTS citysoc_partitions "
                "(day INTEGER PRIMARY KEY, next_id INTEGER NOT NULL, multi INTEGER NOT NULL DEFAULT 0)"
            )
            meta = dict(c.execute("SELECT key, value FROM citysoc_meta").fetchall())
            if not meta:
                meta = {"schema_version": SCHEMA_VERSION, "tokenizer": tokenizer or "unicode61"}
                c.executemany("INSERT INTO citysoc_meta VALUES (?, ?)", list(meta.items()))
        if meta.get("schema_version") != SCHEMA_VERSION:
            raise RuntimeError(f"{self.path}: event store schema {meta.get('schema_version')} is not {SCHEMA_VERSION}; use a new file")
        stored = meta["tokenizer"]
        if tokenizer is not None and tokenizer != stored:
            raise ValueError(f"{self.path} was created with the {stored!r} tokenizer; open it with tokenizer={stored!r} or use a new file")
        return stored

    def _ensure_partition(self, c: sqlite3.Connection, day: int) -> None:
        ev, fts = partition_name(day), partition_name(day, "fts")
        cols = ", ".join(f"{col.name} {'INTEGER' if col.kind == 'int' else 'TEXT'}" for col in _COLUMNS)
        c.execute(f"CREATE TABLE {ev} (id INTEGER PRIMARY KEY, ts INTEGER NOT NULL, {cols}, doc TEXT NOT NULL)")
        c.execute(f"CREATE INDEX {ev}_ts ON {ev} (ts)")
        for col in _COLUMNS:
            c.execute(f"CREATE INDEX {ev}_{col.name} ON {ev} ({col.name}, ts)")
        tok = TOKENIZERS[self.tokenizer]
        c.execute(f"CREATE VIRTUAL TABLE {fts} USING fts5(message, original, content='', tokenize='{tok}')")
        c.execute("INSERT INTO citysoc_partitions (day, next_id) VALUES (?, 1)", (day,))

    # -- ingest --------------------------------------------------------------------------
    def ingest(self, events: Sequence[Event]) -> IngestReport:
        """Store ``events``; returns once they are committed. Bad items are reported, not raised."""
        errors: list[ItemError] = []
        by_day: dict[int, list[tuple[tuple[Any, ...], tuple[str, str]]]] = collections.defaultdict(list)
        multi: dict[int, int] = collections.defaultdict(int)  # day -> bitmask of columns holding MULTI
        now_ms = int(time.time() * 1000)
        for i, ev in enumerate(events):
            try:
                day, row, text = self._prepare(ev, now_ms)
            except (TypeError, ValueError, TimestampError, orjson.JSONEncodeError, RecursionError, OverflowError) as exc:
                errors.append(ItemError(i, str(exc), 400))
                continue
            by_day[day].append((row, text))
            if MULTI in row:
                multi[day] |= sum(1 << k for k, v in enumerate(row[1 : 1 + len(_COLUMNS)]) if v == MULTI)
        stored = 0
        if by_day:
            placeholders = ", ".join("?" * (len(_COLUMNS) + 3))
            with self._write() as c:
                known = {d for (d,) in c.execute("SELECT day FROM citysoc_partitions")}
                for day, items in by_day.items():
                    if day not in known:
                        self._ensure_partition(c, day)
                    (next_id,) = c.execute("SELECT next_id FROM citysoc_partitions WHERE day = ?", (day,)).fetchone()
                    ev_table, fts = partition_name(day), partition_name(day, "fts")
                    c.executemany(
                        f"INSERT INTO {ev_table} VALUES ({placeholders})",
                        [(next_id + k, *row) for k, (row, _) in enumerate(items)],
                    )
                    c.executemany(
                        f"INSERT INTO {fts} (rowid, message, original) VALUES (?, ?, ?)",
                        [(next_id + k, *text) for k, (_, text) in enumerate(items) if text[0] or text[1]],
                    )
                    c.execute(
                        "UPDATE citysoc_partitions SET next_id = ?, multi = multi | ? WHERE day = ?",
                        (next_id + len(items), multi.get(day, 0), day),
                    )
                    stored += len(items)
        return IngestReport(stored=stored, errors=errors)

    @staticmethod
    def _prepare(ev: Any, now_ms: int) -> tuple[int, tuple[Any, ...], tuple[str, str]]:
        if ev.__class__ is StampedEvent:
            # Through the edge: nested and stamped (core.events invariants 2 and 3), and
            # perhaps already encoded by the worker that parsed it (invariant 6).
            enc = getattr(ev, "encoded", None)
            if enc is None or enc[1] is None:
                enc = encode_row(ev)
        elif isinstance(ev, Mapping):  # a direct caller (tests, imports): nested and stamped here, once
            enc = encode_row(stamp(expand_dots(ev) if _has_dotted_keys(ev) else ev, now_ms=now_ms))
        else:
            raise TypeError(f"an event must be a JSON object, not {type(ev).__name__}")
        doc_text, (day, values, text) = enc
        return day, (*values, doc_text), text

    # -- queries -------------------------------------------------------------------------
    def _fragments(
        self, node: ast.Node, now: _dt.datetime, masks: dict[int, int], lo: int | None, hi: int | None
    ) -> Callable[..., SqlFragment]:
        """The compiled query for each day; days whose columns hold no arrays get plain
        column conditions (compiled once per distinct mask). ``intersect=True`` is the
        variant for counting and aggregating (see :func:`compile_query`); it is used only
        on days the time window covers whole, since its id lists ignore the window."""
        cache: dict[tuple[int, bool], SqlFragment] = {}

        def for_day(day: int, intersect: bool = False) -> SqlFragment:
            mask = masks.get(day, -1)
            whole_day = (lo is None or lo <= day * DAY_MS) and (hi is None or hi >= (day + 1) * DAY_MS)
            intersect = intersect and whole_day
            if (mask, intersect) not in cache:
                cols = None if mask < 0 else frozenset(col.name for k, col in enumerate(_COLUMNS) if mask >> k & 1)
                cache[mask, intersect] = compile_query(
                    node, now=now, tokenizer=self.tokenizer, multi_columns=cols, intersect=intersect
                )
            return cache[mask, intersect]

        return for_day

    def _plan(
        self, c: sqlite3.Connection, node: ast.Node, start: _dt.datetime | None, end: _dt.datetime | None, now: _dt.datetime
    ) -> tuple[list[int], dict[int, int], str, list[Any], int | None, int | None]:
        """The partitions to visit and the time-bound SQL shared by every query."""
        lo = _ms(start) if start is not None else None
        hi = _ms(end) if end is not None else None  # exclusive
        where, params = [], []
        if lo is not None:
            where.append("ts >= ?")
            params.append(lo)
        if hi is not None:
            where.append("ts < ?")
            params.append(hi)
        plo, phi = _ts_bounds(node, now)
        lo = plo if lo is None else (lo if plo is None else max(lo, plo))
        hi = phi if hi is None else (hi if phi is None else min(hi, phi))
        days_sql = "SELECT day, multi FROM citysoc_partitions WHERE day >= ? AND day <= ? ORDER BY day"
        dlo = (lo // DAY_MS) if lo is not None else -(10**9)
        dhi = ((hi - 1) // DAY_MS) if hi is not None else 10**9
        masks = dict(c.execute(days_sql, (dlo, dhi)).fetchall())
        return sorted(masks), masks, (" AND ".join(where) if where else "1"), params, lo, hi

    def _run(self, query: str, start: _dt.datetime | None, end: _dt.datetime | None, fn: Callable[..., _T]) -> _T:
        """Parse once, then call ``fn(conn, days, time_sql, time_params, frag_for_day)``
        inside one read snapshot."""
        now = _dt.datetime.now(_dt.timezone.utc)
        node = parse_query(query)
        compile_query(node, now=now, tokenizer=self.tokenizer)  # report query errors before touching the file
        with self._reader() as c:
            days, masks, tsql, tparams, lo, hi = self._plan(c, node, start, end, now)
            return fn(c, days, tsql, tparams, self._fragments(node, now, masks, lo, hi))

    def count(self, query: str = "*", *, start: _dt.datetime | None = None, end: _dt.datetime | None = None) -> int:
        def fn(c, days, tsql, tparams, frag):
            return sum(self._count_day(c, d, tsql, tparams, frag) for d in days)

        return self._run(query, start, end, fn)

    @staticmethod
    def _count_day(c: sqlite3.Connection, day: int, tsql: str, tparams: list[Any], frag: Callable[..., SqlFragment]) -> int:
        f = frag(day, intersect=True)
        sql = f"SELECT count(*) FROM {partition_name(day)} WHERE {tsql} AND {_bind(f, day)}"
        return _exec(c, sql, [*tparams, *f.params]).fetchone()[0]

    def search(
        self,
        query: str = "*",
        *,
        start: _dt.datetime | None = None,
        end: _dt.datetime | None = None,
        limit: int = 100,
        offset: int = 0,
        sort: str = "desc",
    ) -> SearchResult:
        """Events matching ``query``, newest first (``sort="asc"``: oldest first), paged."""
        check_page(sort, limit, offset)
        t0 = time.perf_counter()

        def fn(c, days, tsql, tparams, frag):
            if sort == "desc":
                days = list(reversed(days))
            counts = [self._count_day(c, d, tsql, tparams, frag) for d in days]
            hits: list[Event] = []
            skip = offset
            for day, n in zip(days, counts):
                if len(hits) >= limit:
                    break
                if skip >= n:
                    skip -= n
                    continue
                want = limit - len(hits)
                f = frag(day)
                sql = (
                    f"SELECT doc FROM {partition_name(day)} WHERE {tsql} AND {_bind(f, day)} "
                    f"ORDER BY ts {sort.upper()}, id {sort.upper()} LIMIT ? OFFSET ?"
                )
                rows = _exec(c, sql, [*tparams, *f.params, want, skip]).fetchall()
                hits.extend(orjson.loads(r[0]) for r in rows)
                skip = 0
            return sum(counts), hits

        total, hits = self._run(query, start, end, fn)
        return SearchResult(total=total, hits=hits, took_ms=round((time.perf_counter() - t0) * 1000, 3))

    def terms(
        self,
        field: str,
        query: str = "*",
        *,
        start: _dt.datetime | None = None,
        end: _dt.datetime | None = None,
        size: int = 10,
    ) -> list[tuple[Any, int]]:
        """The ``size`` most frequent values of ``field`` (array elements count each)."""
        validate_field(field)
        check_terms(field, size, TEXT_FIELDS)
        col = PROMOTED.get(field)
        path = json_path(field)

        def fn(c, days, tsql, tparams, frag):
            counter: collections.Counter[Any] = collections.Counter()
            for day in days:
                ev = partition_name(day)
                f = frag(day, intersect=True)
                cond = f"{tsql} AND {_bind(f, day)}"
                base = [*tparams, *f.params]
                if col is not None:
                    sql = f"SELECT {col.name}, count(*) FROM {ev} WHERE {cond} AND {col.name} IS NOT NULL AND {col.name} != ? GROUP BY 1"
                    for value, n in _exec(c, sql, [*base, MULTI]):
                        counter[value] += n
                    (mask,) = c.execute("SELECT multi FROM citysoc_partitions WHERE day = ?", (day,)).fetchone()
                    if not mask >> _COLUMNS.index(col) & 1:
                        continue  # no arrays in this column on this day: nothing to unpack
                    multi = f"AND {col.name} = ?"
                    extra = [MULTI]
                else:
                    multi, extra = "", []
                sql = (
                    f"SELECT j.value, j.type, count(*) FROM (SELECT doc FROM {ev} WHERE {cond} {multi}) e, "
                    "json_each(e.doc, ?) j WHERE j.type NOT IN ('object', 'array', 'null') GROUP BY 1, 2"
                )
                for value, typ, n in _exec(c, sql, [*base, *extra, path]):
                    counter[True if typ == "true" else False if typ == "false" else value] += n
            return counter

        counter = self._run(query, start, end, fn)
        ranked = sorted(counter.items(), key=lambda kv: (-kv[1], str(kv[0])))
        return ranked[:size]

    def date_histogram(
        self,
        query: str = "*",
        *,
        start: _dt.datetime | None = None,
        end: _dt.datetime | None = None,
        interval: str = "1h",
    ) -> list[tuple[str, int]]:
        """Counts per time bucket (:mod:`core.intervals`: ``30s``, ``5m``, ``1h``, ``1d``,
        ``1w``, or calendar ``1M``, ``1q``, ``1y``), oldest first.

        Keys are the bucket starts in UTC ISO form; only buckets holding events are listed.
        Weeks start on Monday. A calendar bucket holds whole UTC days, so it is the sum of
        one count per day table.
        """
        spec = parse_interval(interval)
        if spec.calendar:
            def per_day(c, days, tsql, tparams, frag):
                buckets: collections.Counter[int] = collections.Counter()
                for day in days:
                    f = frag(day, intersect=True)
                    sql = f"SELECT count(*) FROM {partition_name(day)} WHERE {tsql} AND {_bind(f, day)}"
                    for (n,) in _exec(c, sql, [*tparams, *f.params]):
                        if n:
                            buckets[calendar_start(spec, day * DAY_MS)] += n
                return buckets

            found = self._run(query, start, end, per_day)
            return [(to_utc_iso(_dt.datetime.fromtimestamp(b / 1000, _dt.timezone.utc)), n) for b, n in sorted(found.items())]
        iv = spec.fixed_ms
        off = spec.offset_ms

        def fn(c, days, tsql, tparams, frag):
            buckets: collections.Counter[int] = collections.Counter()
            for day in days:
                f = frag(day, intersect=True)
                sql = (
                    f"SELECT ts - ((((ts - ?) % ?) + ?) % ?) AS b, count(*) FROM {partition_name(day)} "
                    f"WHERE {tsql} AND {_bind(f, day)} GROUP BY b"
                )
                for b, n in _exec(c, sql, [off, iv, iv, iv, *tparams, *f.params]):
                    buckets[b] += n
            return buckets

        buckets = self._run(query, start, end, fn)
        return [(to_utc_iso(_dt.datetime.fromtimestamp(b / 1000, _dt.timezone.utc)), n) for b, n in sorted(buckets.items())]

    # -- retention -----------------------------------------------------------------------
    def delete_before(self, cutoff: _dt.datetime) -> int:
        """Delete events with ``@timestamp`` < ``cutoff``; whole days are dropped as tables."""
        cut = _ms(cutoff)
        deleted = 0
        with self._write() as c:
            days = [d for (d,) in c.execute("SELECT day FROM citysoc_partitions WHERE day <= ? ORDER BY day", (cut // DAY_MS,))]
            for day in days:
                ev, fts = partition_name(day), partition_name(day, "fts")
                if (day + 1) * DAY_MS <= cut:
                    deleted += c.execute(f"SELECT count(*) FROM {ev}").fetchone()[0]
                    c.execute(f"DROP TABLE {ev}")
                    c.execute(f"DROP TABLE {fts}")
                    c.execute("DELETE FROM citysoc_partitions WHERE day = ?", (day,))
                else:
                    deleted += c.execute(f"DELETE FROM {ev} WHERE ts < ?", (cut,)).rowcount
        with self._write_lock:
            self._writer.execute("PRAGMA incremental_vacuum")
        return deleted

    def partitions(self) -> list[str]:
        """Names of the day tables, oldest first (for operators and tests)."""
        with self._reader() as c:
            return [partition_name(d) for (d,) in c.execute("SELECT day FROM citysoc_partitions ORDER BY day")]

    def close(self) -> None:
        """Close every connection; the store cannot be used afterwards."""
        if self._closed:
            return
        self._closed = True
        with self._write_lock:
            try:
                self._writer.execute("PRAGMA optimize")
            except sqlite3.Error:
                pass
            self._writer.close()
        with self._readers_lock:
            for conn in self._all_readers:
                conn.close()
            self._all_readers.clear()

    def __enter__(self) -> SQLiteEventStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _bind(frag: SqlFragment, day: int) -> str:
    return frag.bind(partition_name(day, "fts"), partition_name(day))


def _exec(c: sqlite3.Connection, sql: str, params: Sequence[Any]) -> sqlite3.Cursor:
    try:
        return c.execute(sql, params)
    except sqlite3.OperationalError as exc:
        if "interrupted" in str(exc):
            raise QueryError(
                "the query ran longer than the store's query timeout: narrow the time range, "
                "or filter on an indexed field (host.name, event.dataset, source.ip, ...)"
            ) from None
        # Our SQL is generated and parameterized, so this is a value SQLite refuses at
        # run time (e.g. an FTS5 query it cannot use). Say so instead of leaking SQL.
        raise QueryError(f"the store could not run this query: {exc}") from None


def _has_dotted_keys(node: Mapping[str, Any]) -> bool:
    for k, v in node.items():
        if k.__class__ is str and "." in k:
            return True
        if v.__class__ is dict and _has_dotted_keys(v):
            return True
    return False


def encode_row(doc: StampedEvent) -> tuple[str, tuple[int, tuple[Any, ...], tuple[str, str]]]:
    """An event as this store writes it: its JSON text, and the row without it (partition
    day, epoch and indexed column values, full-text fields). A parse worker calls this
    (``citysoc.wiring.worker_stage``) so the server's store thread only inserts
    (``core.events`` invariant 6); :meth:`SQLiteEventStore.ingest` calls it for an event
    that was not encoded there. Raises ``TypeError``/``orjson.JSONEncodeError`` for a
    document JSON cannot hold."""
    ts_ms = doc.ts_ms
    values: list[Any] = [ts_ms]
    for parts, is_int in _PATHS:
        node: Any = doc.get(parts[0])
        for part in parts[1:]:
            if node.__class__ is not dict:
                node = None
                break
            node = node.get(part)
        values.append(node if node.__class__ is str else _promoted(node, is_int))
    text = orjson.dumps(doc, option=orjson.OPT_NON_STR_KEYS).decode()
    message = doc.get("message")
    event = doc.get("event")
    original = event.get("original") if isinstance(event, dict) else None
    return text, (ts_ms // DAY_MS, tuple(values), (_text(message), _text(original)))


def _promoted(value: Any, is_int: bool) -> Any:
    if isinstance(value, list):
        scalars = [v for v in value if v is not None]
        if not scalars:
            return None
        if len(scalars) > 1:
            return MULTI
        value = scalars[0]
    if value is None or isinstance(value, (dict, list)):
        return None
    if isinstance(value, bool):
        return int(value) if is_int else ("true" if value else "false")
    if isinstance(value, int) and not -(2**63) <= value < 2**63:
        return str(value)  # SQLite integers are 64-bit; the document keeps the number
    if isinstance(value, (int, float)) and not is_int:
        return str(value)
    return value


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "\n".join(v for v in value if isinstance(v, str))
    return ""


def _ms(ts: _dt.datetime) -> int:
    if not isinstance(ts, _dt.datetime):
        raise QueryError(f"time bounds must be datetimes, not {type(ts).__name__}")
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=_dt.timezone.utc)
    return epoch_ms(ts)


def _ts_bounds(node: ast.Node, now: _dt.datetime) -> tuple[int | None, int | None]:
    """@timestamp bounds implied by the query (top-level AND only), to skip partitions.

    Returns (inclusive low, exclusive high) in ms; loose bounds are fine, the SQL filters
    exactly.
    """
    lo = hi = None
    parts = node.children if isinstance(node, ast.And) else (node,)
    for part in parts:
        if isinstance(part, ast.Range) and part.field == "@timestamp":
            try:
                if part.low is not None:
                    v = epoch_ms(resolve_datemath(part.low, now))
                    lo = v if lo is None else max(lo, v)
                if part.high is not None:
                    v = epoch_ms(resolve_datemath(part.high, now, round_up=True)) + 1
                    hi = v if hi is None else min(hi, v)
            except (ValueError, TimestampError):
                continue  # compile_query reports the bad date
    return lo, hi
