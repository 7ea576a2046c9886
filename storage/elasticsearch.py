"""The scale-out event store: an Elasticsearch data stream, through the official client.

``ElasticsearchEventStore(settings.storage)`` implements :class:`core.protocols.EventStore`
so the pipeline, the API and the CLI use it exactly as they use the SQLite store, and
one contract suite (``tests/storage/contract.py``) checks both.

Client version: we pin ``elasticsearch>=9,<10`` and target **Elasticsearch 9.x**. The
9.x client sends ``compatible-with=9`` on every request, which an 8.x server refuses, and
an 8.x client cannot use a 9.x server's newer APIs; client and server majors must match.
9 is the current major and the one ``docker-compose.yml`` runs. The templates use
nothing newer than 8.15 (``ignore_dynamic_beyond_limit``), and every call used here
exists in the 8.x client too, but :data:`TARGET_MAJOR` is checked against the server on
first use and a mismatch is refused with a plain message rather than half-working.

What happens where:

* **Setup** on first use (idempotent, safe when several citysoc processes start at once):
  put the ILM policy, the two component templates and the index template from
  :mod:`storage.es_mappings`, then create the data stream ``<prefix>-events`` if missing.
  Pass ``setup=False`` where an administrator installs them and citysoc's API key may
  only write and read (``create_doc``, ``read``, ``view_index_metadata``, ``delete`` on
  the stream). ``deploy/elasticsearch-setup.sh`` creates such a role (with setup rights).
* **ingest**: ``_bulk`` with ``create`` actions (the only kind a data stream accepts),
  chunked by count and bytes. Every event gets a time-ordered ``_id`` of ours before the
  first attempt, so a retry after a lost response cannot store an event twice: the
  second attempt answers ``409`` for events already stored, which counts as stored.
  (``_id`` uniqueness holds per backing index: only a rollover landing exactly between
  two attempts could still duplicate an event.)
  Whole requests are retried on connection errors, timeouts, ``429`` and ``5xx`` with
  exponential backoff and jitter; items are retried on ``429`` and ``5xx`` alone (a
  ``400`` mapping error will fail the same way again) and otherwise reported in
  :class:`IngestReport.errors` with their batch index, status and Elasticsearch's reason.
  When the cluster stays unreachable after the retries, ingest raises
  :class:`ElasticsearchUnavailable` (the pipeline dead-letters the batch; nothing is lost).
  ``refresh`` is passed to ``_bulk``: ``False`` in production (ES refreshes each second),
  ``"wait_for"`` in tests and wherever a write must be searchable on return.
* **search / count / terms / date_histogram**: Query DSL from :mod:`storage.query.es`,
  time bounds as a ``range`` filter on ``@timestamp``, aggregations for top-N and
  histograms. A query Elasticsearch rejects becomes :class:`QueryError` with its reason.
* **delete_before**: ``_delete_by_query`` on the stream. ILM deletes whole backing
  indices after ``retention_days``; this is for explicit purges (and the contract).

Example::

    store = ElasticsearchEventStore(load_settings().storage)
    store.ingest([new_event("sshd: Failed password", dataset="linux.auth")])
    store.search("event.dataset:linux.auth AND failed", limit=10)
"""
from __future__ import annotations

import base64
import datetime as _dt
import logging
import os
import random
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import PurePath
from typing import Any, Literal

import orjson
from elastic_transport import ConnectionError as TransportConnectionError
from elastic_transport import ConnectionTimeout, TlsError, TransportError
from elasticsearch import (
    ApiError,
    AuthenticationException,
    AuthorizationException,
    BadRequestError,
    Elasticsearch,
    NotFoundError,
    UnsupportedProductError,
)

from core.events import Event, TimestampError, expand_dots, parse_timestamp, to_utc_iso, utc_now_iso
from core.intervals import CALENDAR_UNITS, parse_interval
from core.protocols import IngestReport, ItemError, QueryError, SearchResult, check_page, check_terms
from core.settings import StorageSettings
from storage import es_mappings
from storage.query.ast import Node
from storage.query.es import to_es_query

log = logging.getLogger(__name__)

__all__ = [
    "ElasticsearchEventStore",
    "ElasticsearchStoreError",
    "ElasticsearchUnavailable",
    "TARGET_MAJOR",
    "RETRY_STATUSES",
]

TARGET_MAJOR = 9
"""The Elasticsearch major version this client (elasticsearch-py 9.x) talks to."""

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
"""Statuses worth retrying: the cluster is busy or a node is briefly missing."""

Refresh = bool | Literal["wait_for", "true", "false"]



class ElasticsearchStoreError(RuntimeError):
    """The cluster refused an operation; the message says what to check."""


class ElasticsearchUnavailable(ElasticsearchStoreError):
    """The cluster cannot be reached (down, wrong URL, TLS or network trouble).

    Deliberately not an ``OSError``: callers that catch socket errors of their own (a
    listener's port in use) must not mistake an unreachable cluster for one of those."""


def _parse_query(text: str) -> Node:
    # Imported late: the parser pulls in luqum's PLY tables, which only queries need.
    from storage.query.parse import parse_query

    return parse_query(text)


def _json_default(value: Any) -> Any:
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", "replace")
    raise TypeError(f"value of type {type(value).__name__} cannot be stored as JSON")


_ID_LOCK = threading.Lock()
_ID_LAST = 0


def _new_id() -> str:
    """A 22-character, time-ordered, random-tailed id (like ES's own auto ids, which are
    time-based so Lucene's id lookups on ``create`` stay cheap)."""
    global _ID_LAST
    with _ID_LOCK:
        now = max(time.time_ns() // 1000, _ID_LAST + 1)  # microseconds, strictly increasing
        _ID_LAST = now
    raw = now.to_bytes(8, "big") + os.urandom(8)
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _reason(error: Any) -> str:
    """Elasticsearch's error object (type, reason, caused_by) as one readable line."""
    if not isinstance(error, dict):
        return str(error)
    parts: list[str] = []
    node: Any = error
    while isinstance(node, dict) and len(parts) < 4:
        kind, why = node.get("type"), node.get("reason")
        parts.append(f"{kind}: {why}" if kind and why else str(why or kind or node))
        node = node.get("caused_by")
    return " <- ".join(parts)


def _api_reason(exc: ApiError) -> str:
    body = exc.body
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        err = body["error"]
        root = err.get("root_cause")
        if isinstance(root, list) and root and isinstance(root[0], dict) and root[0].get("reason"):
            return _reason(root[0]) if err.get("type") == root[0].get("type") else f"{_reason(err)} ({_reason(root[0])})"
        return _reason(err)
    return str(exc.message)


class ElasticsearchEventStore:
    """Events in the data stream ``<prefix>-events`` of an Elasticsearch 9.x cluster.

    Parameters beyond ``settings`` are for tests and tuning: ``refresh`` for ``_bulk``
    (``"wait_for"`` makes a write searchable on return), ``max_retries`` and the
    backoff bounds (seconds) for ingest, ``chunk_size``/``chunk_bytes`` per ``_bulk``
    request, ``request_timeout`` per HTTP request, and ``setup=False`` to skip
    installing templates (an administrator did it).
    """

    def __init__(
        self,
        settings: StorageSettings,
        *,
        refresh: Refresh = False,
        max_retries: int = 5,
        initial_backoff: float = 0.5,
        max_backoff: float = 30.0,
        chunk_size: int = 1000,
        chunk_bytes: int = 10 * 1024 * 1024,
        request_timeout: float = 30.0,
        setup: bool = True,
    ) -> None:
        storage = getattr(settings, "storage", settings)  # a whole Settings is fine too
        if not storage.elasticsearch_url:
            raise ElasticsearchStoreError(
                "storage.elasticsearch_url is not set: set it (e.g. https://es:9200) in citysoc.yml "
                "or CITYSOC_STORAGE__ELASTICSEARCH_URL, or use storage.backend: sqlite"
            )
        if max_retries < 0 or chunk_size < 1 or chunk_bytes < 1:
            raise ValueError("max_retries must be >= 0, chunk_size and chunk_bytes >= 1")
        self.url = storage.elasticsearch_url.rstrip("/")
        self.prefix = storage.elasticsearch_prefix
        self.retention_days = storage.retention_days
        self.data_stream = es_mappings.data_stream_name(self.prefix)
        self.bulk_refresh = refresh
        self.max_retries = max_retries
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        self.chunk_size = chunk_size
        self.chunk_bytes = chunk_bytes
        self._setup_wanted = setup
        self._ready = False
        self._lock = threading.Lock()

        kwargs: dict[str, Any] = {
            "request_timeout": request_timeout,
            # Reads: the transport retries other nodes and busy answers itself.
            "max_retries": 3,
            "retry_on_timeout": True,
            "retry_on_status": (502, 503, 504),
            "verify_certs": storage.elasticsearch_verify_certs,
        }
        if not storage.elasticsearch_verify_certs:
            kwargs["ssl_show_warn"] = False
        if storage.elasticsearch_ca_certs:
            kwargs["ca_certs"] = storage.elasticsearch_ca_certs
        if storage.elasticsearch_api_key:
            kwargs["api_key"] = storage.elasticsearch_api_key
        elif storage.elasticsearch_username:
            kwargs["basic_auth"] = (storage.elasticsearch_username, storage.elasticsearch_password or "")
        try:
            self._es = Elasticsearch(self.url, **kwargs)
        except (ValueError, TypeError) as exc:
            raise ElasticsearchStoreError(
                f"cannot use storage.elasticsearch_url {self.url!r}: {exc}; "
                "give a URL such as https://es:9200 (and storage.elasticsearch_ca_certs for a private CA)"
            ) from exc
        # Writes: no transport retries; _bulk decides what to retry, per item.
        self._writer = self._es.options(max_retries=0)

    # --- errors --------------------------------------------------------------------
    def _unavailable(self, exc: Exception) -> ElasticsearchUnavailable:
        if isinstance(exc, TlsError):
            return ElasticsearchUnavailable(
                f"TLS failure talking to Elasticsearch at {self.url}: {exc}; set storage.elasticsearch_ca_certs "
                "to the cluster's CA certificate (storage.elasticsearch_verify_certs: false only for testing)"
            )
        return ElasticsearchUnavailable(
            f"cannot reach Elasticsearch at {self.url}: {exc}; check storage.elasticsearch_url "
            "(CITYSOC_STORAGE__ELASTICSEARCH_URL) and that the cluster is up"
        )

    def _refused(self, exc: ApiError, doing: str) -> ElasticsearchStoreError:
        if isinstance(exc, AuthenticationException):
            return ElasticsearchStoreError(
                f"Elasticsearch at {self.url} refused the credentials while {doing}: check "
                "storage.elasticsearch_api_key, or storage.elasticsearch_username and _password"
            )
        if isinstance(exc, AuthorizationException):
            return ElasticsearchStoreError(
                f"Elasticsearch at {self.url} denied {doing}: {_api_reason(exc)}; the user needs the "
                "manage_ilm and manage_index_templates cluster privileges for setup, and create_doc, "
                f"read, view_index_metadata and delete on {self.data_stream} (or set setup=False)"
            )
        if isinstance(exc, UnsupportedProductError):
            return ElasticsearchStoreError(
                f"the server at {self.url} is not Elasticsearch (no X-Elastic-Product header); "
                "check storage.elasticsearch_url"
            )
        if isinstance(exc, BadRequestError) and any(
            hint in _api_reason(exc).lower() for hint in ("media_type_header_exception", "compatible", "accept version")
        ):
            return ElasticsearchStoreError(
                f"Elasticsearch at {self.url} does not speak version {TARGET_MAJOR} of the API: "
                f"{_api_reason(exc)}; citysoc targets Elasticsearch {TARGET_MAJOR}.x "
                "(for an 8.x cluster install elasticsearch>=8.19,<9)"
            )
        return ElasticsearchStoreError(f"Elasticsearch at {self.url} failed while {doing}: {exc.meta.status} {_api_reason(exc)}")

    def _call(self, doing: str, fn: Any, /, **kwargs: Any) -> Any:
        try:
            return fn(**kwargs)
        except (TransportConnectionError, ConnectionTimeout) as exc:
            raise self._unavailable(exc) from exc
        except BadRequestError as exc:
            if doing.startswith("querying"):
                raise QueryError(f"Elasticsearch rejected the query: {_api_reason(exc)}") from exc
            raise self._refused(exc, doing) from exc
        except ApiError as exc:
            raise self._refused(exc, doing) from exc

    # --- setup ---------------------------------------------------------------------
    def setup(self) -> None:
        """Install the ILM policy and templates and create the data stream (idempotent)."""
        info = self._call("reading the cluster version", self._es.info)
        number = str(info.get("version", {}).get("number", "?"))
        major = number.split(".", 1)[0]
        if major != str(TARGET_MAJOR):
            raise ElasticsearchStoreError(
                f"Elasticsearch at {self.url} is version {number}; citysoc's client (elasticsearch-py "
                f"{TARGET_MAJOR}.x) needs a {TARGET_MAJOR}.x cluster"
            )
        if not self._setup_wanted:
            return
        if self._installed_template_version() > es_mappings.TEMPLATE_VERSION:
            # A newer citysoc (rolling upgrade) installed newer templates: do not downgrade.
            log.warning(
                "index template %s on %s is newer than this citysoc's (version %d); leaving it as it is",
                es_mappings.index_template_name(self.prefix), self.url, es_mappings.TEMPLATE_VERSION,
            )
        else:
            self._install_templates()
        self._ensure_data_stream()

    def _installed_template_version(self) -> int:
        resp = self._call(
            "reading the index template",
            self._es.options(ignore_status=404).indices.get_index_template,
            name=es_mappings.index_template_name(self.prefix),
        )
        for item in resp.body.get("index_templates", []) if isinstance(resp.body, dict) else []:
            version = item.get("index_template", {}).get("version")
            if isinstance(version, int):
                return version
        return 0

    def _install_templates(self) -> None:
        settings_name, mappings_name = es_mappings.component_template_names(self.prefix)
        self._call(
            "installing the ILM policy",
            self._es.ilm.put_lifecycle,
            name=es_mappings.ilm_policy_name(self.prefix),
            policy=es_mappings.ilm_policy(self.retention_days),
        )
        self._call(
            "installing the settings component template",
            self._es.cluster.put_component_template,
            name=settings_name,
            template=es_mappings.settings_component(self.prefix),
            version=es_mappings.TEMPLATE_VERSION,
        )
        self._call(
            "installing the mappings component template",
            self._es.cluster.put_component_template,
            name=mappings_name,
            template=es_mappings.mappings_component(),
            version=es_mappings.TEMPLATE_VERSION,
        )
        tpl = es_mappings.index_template(self.prefix)
        self._call(
            "installing the index template",
            self._es.indices.put_index_template,
            name=es_mappings.index_template_name(self.prefix),
            index_patterns=tpl["index_patterns"],
            data_stream=tpl["data_stream"],
            composed_of=tpl["composed_of"],
            priority=tpl["priority"],
            version=tpl["version"],
            meta=tpl["_meta"],
        )

    def _ensure_data_stream(self) -> None:
        try:
            self._es.indices.get_data_stream(name=self.data_stream)
        except NotFoundError:
            try:
                self._es.indices.create_data_stream(name=self.data_stream)
            except BadRequestError as exc:  # another process created it first
                if "already_exists" not in _api_reason(exc) and "already exists" not in _api_reason(exc):
                    raise self._refused(exc, f"creating data stream {self.data_stream}") from exc
            except (TransportConnectionError, ConnectionTimeout) as exc:
                raise self._unavailable(exc) from exc
            except ApiError as exc:
                raise self._refused(exc, f"creating data stream {self.data_stream}") from exc
        except (TransportConnectionError, ConnectionTimeout) as exc:
            raise self._unavailable(exc) from exc
        except ApiError as exc:
            raise self._refused(exc, f"reading data stream {self.data_stream}") from exc

    def _ensure_ready(self) -> None:
        if self._ready:
            return
        with self._lock:
            if not self._ready:
                self.setup()
                self._ready = True

    # --- ingest --------------------------------------------------------------------
    def ingest(self, events: Sequence[Event]) -> IngestReport:
        """Store ``events``; return once Elasticsearch has them (translog-durable)."""
        report = IngestReport(stored=0)
        if not events:
            return report
        self._ensure_ready()
        lines: list[tuple[int, bytes]] = []  # (batch index, action line + source line)
        for i, event in enumerate(events):
            try:
                doc = self._prepare(event)
            except (TypeError, ValueError) as exc:  # orjson's errors are TypeErrors
                report.errors.append(ItemError(i, f"cannot store event: {exc}", 400))
                continue
            except RecursionError:
                report.errors.append(ItemError(i, "cannot store event: nested too deeply", 400))
                continue
            action = b'{"create":{"_id":"' + _new_id().encode() + b'"}}\n'
            lines.append((i, action + doc + b"\n"))
        for chunk in self._chunks(lines):
            self._bulk(chunk, report)
        report.errors.sort(key=lambda e: e.index)
        return report

    @staticmethod
    def _prepare(event: Event) -> bytes:
        """The ``_source`` line for one event, stored in the canonical nested form.

        As in the SQLite store: dotted keys are expanded, a missing ``@timestamp`` becomes
        the time of ingest (a data stream refuses documents without one), and a timestamp
        Elasticsearch's ``date`` would misread (epoch seconds, a space for ``T``) is
        rewritten as ISO 8601 UTC; ISO text is kept as the sender wrote it.
        """
        if not isinstance(event, Mapping):
            raise TypeError(f"an event must be a JSON object, not {type(event).__name__}")
        try:
            doc = expand_dots(event) if _has_dotted_keys(event) else dict(event)
        except TypeError as exc:
            raise TypeError(f"keys of an event must be text ({exc})") from None
        ts = doc.get("@timestamp")
        if ts is None or ts == "":
            doc["@timestamp"] = utc_now_iso()
        elif not (isinstance(ts, str) and len(ts) > 10 and ts[10] == "T" and ts[:4].isdigit()):
            try:
                doc["@timestamp"] = to_utc_iso(parse_timestamp(ts))
            except TimestampError as exc:
                raise ValueError(f"@timestamp {ts!r} is not a timestamp: {exc}") from exc
        return orjson.dumps(doc, default=_json_default, option=orjson.OPT_NON_STR_KEYS)

    def _chunks(self, lines: list[tuple[int, bytes]]) -> list[list[tuple[int, bytes]]]:
        chunks: list[list[tuple[int, bytes]]] = []
        current: list[tuple[int, bytes]] = []
        size = 0
        for item in lines:
            if current and (len(current) >= self.chunk_size or size + len(item[1]) > self.chunk_bytes):
                chunks.append(current)
                current, size = [], 0
            current.append(item)
            size += len(item[1])
        if current:
            chunks.append(current)
        return chunks

    def _backoff(self, attempt: int) -> float:
        """Exponential backoff with jitter: ~initial * 2^(attempt-1), capped."""
        delay = min(self.max_backoff, self.initial_backoff * (2 ** (attempt - 1)))
        return delay * random.uniform(0.5, 1.0)

    def _bulk(self, chunk: list[tuple[int, bytes]], report: IngestReport) -> None:
        todo = chunk
        attempt = 0
        last_status, last_reason = 0, ""
        while todo:
            if attempt:
                if attempt > self.max_retries:
                    if last_status == 0:  # no answer at all: the cluster is unreachable
                        raise ElasticsearchUnavailable(
                            f"cannot reach Elasticsearch at {self.url}: {last_reason} "
                            f"(gave up after {self.max_retries} retries); check storage.elasticsearch_url "
                            "(CITYSOC_STORAGE__ELASTICSEARCH_URL) and that the cluster is up"
                        )
                    for i, _ in todo:
                        report.errors.append(
                            ItemError(i, f"{last_reason} (gave up after {self.max_retries} retries)", last_status)
                        )
                    return
                time.sleep(self._backoff(attempt))
            attempt += 1
            params: dict[str, Any] = {"index": self.data_stream, "operations": [line for _, line in todo]}
            if self.bulk_refresh not in (False, "false"):
                params["refresh"] = self.bulk_refresh
            try:
                resp = self._writer.bulk(**params)
            except (TransportConnectionError, ConnectionTimeout) as exc:
                last_status, last_reason = 0, str(exc)
                if isinstance(exc, TlsError):
                    raise self._unavailable(exc) from exc  # retrying will not fix a certificate
                continue
            except ApiError as exc:
                status = exc.meta.status
                if status in RETRY_STATUSES:
                    last_status, last_reason = status, f"bulk request failed: {status} {_api_reason(exc)}"
                    continue
                if isinstance(exc, (AuthenticationException, AuthorizationException)):
                    raise self._refused(exc, "writing events") from exc
                for i, _ in todo:  # e.g. 400 / 413: the same request would fail again
                    report.errors.append(ItemError(i, f"bulk request refused: {_api_reason(exc)}", status))
                return
            except TransportError as exc:  # serialization and other client-side failures
                for i, _ in todo:
                    report.errors.append(ItemError(i, f"bulk request failed: {exc}", 500))
                return
            items = resp.body.get("items", [])
            if len(items) != len(todo):
                raise ElasticsearchStoreError(
                    f"Elasticsearch at {self.url} answered {len(items)} bulk items for {len(todo)} events; "
                    "is storage.elasticsearch_url pointing at Elasticsearch itself (not a proxy that rewrites _bulk)?"
                )
            retry: list[tuple[int, bytes]] = []
            for (i, line), item in zip(todo, items):
                result: dict[str, Any] = item.get("create") or next(iter(item.values()), {})
                status = int(result.get("status", 500))
                if 200 <= status < 300 or (status == 409 and attempt > 1):
                    # 409 on a retry: our own earlier attempt stored it (the _id is ours).
                    report.stored += 1
                elif status in RETRY_STATUSES:
                    retry.append((i, line))
                    last_status, last_reason = status, _reason(result.get("error"))
                else:
                    report.errors.append(ItemError(i, _reason(result.get("error")), status))
            todo = retry

    # --- queries -------------------------------------------------------------------
    def _filter(self, query: str, start: _dt.datetime | None, end: _dt.datetime | None) -> dict[str, Any]:
        q = to_es_query(_parse_query(query if query is not None else "*"))
        if start is None and end is None:
            return q
        bounds: dict[str, Any] = {"format": "strict_date_optional_time"}
        if start is not None:
            bounds["gte"] = to_utc_iso(start)
        if end is not None:
            bounds["lt"] = to_utc_iso(end)
        clauses = [{"range": {"@timestamp": bounds}}]
        if q != {"match_all": {}}:
            clauses.insert(0, q)
        return {"bool": {"filter": clauses}}

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
        check_page(sort, limit, offset)
        if limit + offset > 10_000:
            raise QueryError(
                f"offset + limit is {offset + limit}; Elasticsearch pages at most 10,000 events deep: "
                "narrow the time range or the query"
            )
        dsl = self._filter(query, start, end)
        self._ensure_ready()
        t0 = time.perf_counter()
        resp = self._call(
            "querying events",
            self._es.search,
            index=self.data_stream,
            query=dsl,
            size=limit,
            from_=offset,
            sort=[{"@timestamp": {"order": sort, "unmapped_type": "date"}}, {"_doc": {"order": sort}}],
            track_total_hits=True,
            ignore_unavailable=True,
        )
        hits = resp["hits"]
        return SearchResult(
            total=int(hits["total"]["value"]),
            hits=[h.get("_source", {}) for h in hits["hits"]],
            took_ms=(time.perf_counter() - t0) * 1000.0,
        )

    def count(self, query: str = "*", *, start: _dt.datetime | None = None, end: _dt.datetime | None = None) -> int:
        dsl = self._filter(query, start, end)
        self._ensure_ready()
        resp = self._call("querying the count", self._es.count, index=self.data_stream, query=dsl, ignore_unavailable=True)
        return int(resp["count"])

    def terms(
        self,
        field: str,
        query: str = "*",
        *,
        start: _dt.datetime | None = None,
        end: _dt.datetime | None = None,
        size: int = 10,
    ) -> list[tuple[Any, int]]:
        from storage.query.parse import validate_field

        validate_field(field)
        check_terms(field, size, es_mappings.TEXT_FIELDS)
        dsl = self._filter(query, start, end)
        self._ensure_ready()
        resp = self._call(
            "querying top values",
            self._es.search,
            index=self.data_stream,
            query=dsl,
            size=0,
            aggs={"top": {"terms": {"field": field, "size": size, "order": [{"_count": "desc"}, {"_key": "asc"}]}}},
            ignore_unavailable=True,
        )
        out: list[tuple[Any, int]] = []
        for b in resp.get("aggregations", {}).get("top", {}).get("buckets", []):
            out.append((_bucket_key(b), int(b["doc_count"])))
        return out

    def date_histogram(
        self,
        query: str = "*",
        *,
        start: _dt.datetime | None = None,
        end: _dt.datetime | None = None,
        interval: str = "1h",
    ) -> list[tuple[str, int]]:
        iv = parse_interval(interval)
        spec: dict[str, Any]
        if iv.unit == "w":  # n weeks, starting on Monday (1970-01-05) as the SQLite store does
            spec = {"fixed_interval": f"{7 * iv.n}d", "offset": "+4d"}
        elif iv.calendar:
            spec = {"calendar_interval": CALENDAR_UNITS[iv.unit]}
        else:
            spec = {"fixed_interval": str(iv)}
        dsl = self._filter(query, start, end)
        self._ensure_ready()
        resp = self._call(
            "querying the histogram",
            self._es.search,
            index=self.data_stream,
            query=dsl,
            size=0,
            aggs={"over_time": {"date_histogram": {"field": "@timestamp", "min_doc_count": 1, **spec}}},
            ignore_unavailable=True,
        )
        out: list[tuple[str, int]] = []
        for b in resp.get("aggregations", {}).get("over_time", {}).get("buckets", []):
            key = _dt.datetime.fromtimestamp(int(b["key"]) / 1000.0, tz=_dt.timezone.utc)
            out.append((to_utc_iso(key), int(b["doc_count"])))
        return out

    def delete_before(self, cutoff: _dt.datetime) -> int:
        self._ensure_ready()
        resp = self._call(
            "deleting old events",
            self._es.delete_by_query,
            index=self.data_stream,
            query={"range": {"@timestamp": {"lt": to_utc_iso(cutoff), "format": "strict_date_optional_time"}}},
            conflicts="proceed",
            refresh=True,
            wait_for_completion=True,
            ignore_unavailable=True,
        )
        return int(resp.get("deleted", 0))

    def refresh(self) -> None:
        """Make everything ingested so far searchable now (tests; ES refreshes each second)."""
        self._ensure_ready()
        self._call("refreshing the data stream", self._es.indices.refresh, index=self.data_stream, ignore_unavailable=True)

    def close(self) -> None:
        self._es.close()

    def __enter__(self) -> ElasticsearchEventStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _has_dotted_keys(node: Mapping[str, Any]) -> bool:
    for k, v in node.items():
        if isinstance(k, str) and "." in k:
            return True
        if isinstance(v, Mapping) and _has_dotted_keys(v):
            return True
    return False


def _bucket_key(bucket: dict[str, Any]) -> Any:
    """A terms bucket's value as the event held it: booleans as bool, dates as ISO text."""
    key = bucket["key"]
    as_string = bucket.get("key_as_string")
    if as_string is None:
        return key
    if as_string in ("true", "false") and key in (0, 1):
        return as_string == "true"
    return as_string
