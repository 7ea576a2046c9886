"""ElasticsearchEventStore against a scripted Elasticsearch on loopback.

Elasticsearch cannot run on this machine (no Docker engine, no package), so these tests
stand up a **test double of the server**: a small stdlib HTTP server on 127.0.0.1 that
speaks just enough of the REST protocol (``GET /`` with ``X-Elastic-Product``, the
compatibility ``Accept`` header check, ILM/template/data-stream setup, ``_bulk`` with
per-item results, ``_search``/``_count``/``_delete_by_query`` answers). The store, the
official client and its HTTP stack run for real over real sockets; only the cluster's
behaviour is scripted, which is what lets us prove retries on 429, idempotent retries
after a lost response, per-item error mapping and the error messages. What a real
cluster does with the DSL and mappings is covered by the contract suite in
``test_storage_es.py`` when ELASTICSEARCH_URL points at one.
"""
from __future__ import annotations

import base64
import datetime as dt
import json
import re
import shutil
import socket
import ssl
import subprocess
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import pytest

from core.protocols import EventStore, ItemError, QueryError
from core.settings import StorageSettings
from storage import es_mappings
from storage.elasticsearch import ElasticsearchEventStore, ElasticsearchStoreError, ElasticsearchUnavailable

UTC = dt.timezone.utc


@dataclass
class Req:
    method: str
    path: str
    params: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    def ndjson(self) -> list[Any]:
        return [json.loads(line) for line in self.body.splitlines() if line.strip()]


@dataclass
class FakeElasticsearch:
    """The scripted cluster. ``bulk_script`` holds one step per ``_bulk`` request:
    ``{"status": 429}`` (whole request refused), ``{"drop": True}`` (store the documents,
    then close the connection without answering: a lost response), or
    ``{"items": {position: (status, type, reason)}}`` (those items fail). With no step
    left, every item is created (or 409 when its ``_id`` is already stored)."""

    version: str = "9.1.0"
    product: bool = True
    auth: str | None = None  # the Authorization header the cluster demands, if any
    bulk_script: list[dict[str, Any]] = field(default_factory=list)
    search_reply: dict[str, Any] | None = None
    status_for: dict[str, tuple[int, dict[str, Any]]] = field(default_factory=dict)
    requests: list[Req] = field(default_factory=list)
    docs: dict[str, Any] = field(default_factory=dict)
    data_streams: set[str] = field(default_factory=set)
    url: str = ""

    def bulk_requests(self) -> list[Req]:
        return [r for r in self.requests if r.path.endswith("/_bulk")]

    def paths(self, method: str | None = None) -> list[str]:
        return [r.path for r in self.requests if method is None or r.method == method]


def _error(kind: str, reason: str, status: int) -> dict[str, Any]:
    err = {"type": kind, "reason": reason}
    return {"error": {"root_cause": [err], **err}, "status": status}


def _handler(fake: FakeElasticsearch) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body go out as two writes

        def log_message(self, *args: Any) -> None:  # keep pytest output clean
            pass

        def _reply(self, status: int, doc: Any) -> None:
            body = json.dumps(doc).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            if fake.product:
                self.send_header("X-Elastic-Product", "Elasticsearch")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            path, _, query = self.path.partition("?")
            req = Req(self.command, path, parse_qs(query), {k.lower(): v for k, v in self.headers.items()}, body)
            fake.requests.append(req)
            major = fake.version.split(".")[0]
            wanted = re.search(r"compatible-with=(\d+)", req.headers.get("accept", ""))
            if wanted and wanted.group(1) != major:
                # What a server of another major says to a client asking for compatibility.
                return self._reply(
                    400,
                    _error(
                        "media_type_header_exception",
                        f"Invalid media-type value on headers [Accept]: Accept version must be either "
                        f"version {major} or {int(major) - 1}, but found {wanted.group(1)}",
                        400,
                    ),
                )
            if fake.auth is not None and req.headers.get("authorization") != fake.auth:
                return self._reply(401, _error("security_exception", "unable to authenticate user", 401))
            for prefix, (status, doc) in fake.status_for.items():
                if path.startswith(prefix):
                    return self._reply(status, doc)
            if self.command == "GET" and path == "/":
                return self._reply(
                    200,
                    {"name": "fake", "cluster_name": "test", "version": {"number": fake.version}, "tagline": "You Know, for Search"},
                )
            if self.command == "PUT" and path.startswith(("/_ilm/policy/", "/_component_template/", "/_index_template/")):
                return self._reply(200, {"acknowledged": True})
            if path.startswith("/_data_stream/"):
                name = path.rsplit("/", 1)[1]
                if self.command == "GET":
                    if name in fake.data_streams:
                        return self._reply(200, {"data_streams": [{"name": name}]})
                    return self._reply(404, _error("index_not_found_exception", f"no such index [{name}]", 404))
                if self.command == "PUT":
                    fake.data_streams.add(name)
                    return self._reply(200, {"acknowledged": True})
            if path.endswith("/_bulk"):
                return self._bulk(req)
            if path.endswith(("/_search", "/_count", "/_delete_by_query")):
                return self._reply(200, fake.search_reply or {})
            return self._reply(404, _error("no_handler", f"no handler for {self.command} {path}", 404))

        def _bulk(self, req: Req) -> None:
            lines = req.ndjson()
            pairs = list(zip(lines[0::2], lines[1::2]))
            step = fake.bulk_script.pop(0) if fake.bulk_script else {}
            if step.get("status"):
                status = step["status"]
                return self._reply(status, _error("es_rejected_execution_exception", "rejected execution of coordinating operation", status))
            failing = step.get("items", {})
            items = []
            for pos, (action, doc) in enumerate(pairs):
                op, meta = next(iter(action.items()))
                _id = meta["_id"]
                result: dict[str, Any] = {"_index": ".ds-citysoc-events-2026.11.25-000001", "_id": _id}
                if pos in failing:
                    status, kind, reason = failing[pos]
                    result.update(status=status, error={"type": kind, "reason": reason})
                elif _id in fake.docs:
                    result.update(
                        status=409,
                        error={"type": "version_conflict_engine_exception", "reason": f"[{_id}]: version conflict, document already exists"},
                    )
                else:
                    fake.docs[_id] = doc
                    result.update(status=201, result="created")
                items.append({op: result})
            if step.get("drop"):
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            self._reply(200, {"took": 3, "errors": any("error" in next(iter(i.values())) for i in items), "items": items})

        do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle

    return Handler


@pytest.fixture()
def fake() -> Any:
    state = FakeElasticsearch()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A private CA and a server certificate for 127.0.0.1, made by the openssl tool."""
    if not shutil.which("openssl"):
        pytest.skip("the openssl command is not installed (Debian package openssl)")
    d = tmp_path_factory.mktemp("tls")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)

    openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=citysoc test CA")
    openssl("req", *ec, "-keyout", "es.key", "-out", "es.csr", "-subj", "/CN=127.0.0.1")
    (d / "ext.cnf").write_text(
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n"
    )
    openssl("x509", "-req", "-in", "es.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "es.crt", "-days", "2", "-extfile", "ext.cnf")
    return {"ca": str(d / "ca.crt"), "cert": str(d / "es.crt"), "key": str(d / "es.key")}


@pytest.fixture()
def tls_fake(tls_files: dict[str, str]) -> Any:
    state = FakeElasticsearch()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    server.daemon_threads = True
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(tls_files["cert"], tls_files["key"])
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    state.url = f"https://127.0.0.1:{server.server_address[1]}"
    yield state
    server.shutdown()
    server.server_close()


def _store(url: str, **kwargs: Any) -> ElasticsearchEventStore:
    settings_kw = {k: kwargs.pop(k) for k in list(kwargs) if k.startswith("elasticsearch_")}
    settings = StorageSettings(backend="elasticsearch", elasticsearch_url=url, **settings_kw)
    opts = {"refresh": "wait_for", "initial_backoff": 0.01, "max_backoff": 0.05, "request_timeout": 5.0}
    opts.update(kwargs)
    return ElasticsearchEventStore(settings, **opts)


def _events(n: int) -> list[dict[str, Any]]:
    return [
        {"@timestamp": f"2026-11-25T10:00:0{i}.000Z", "message": f"event {i}", "host": {"name": f"cam-0{i}"}}
        for i in range(n)
    ]


# --- setup -------------------------------------------------------------------------------
def test_storage_es_store_is_an_event_store(fake: FakeElasticsearch) -> None:
    assert isinstance(_store(fake.url), EventStore)


def test_storage_es_setup_installs_policy_templates_and_stream_once(fake: FakeElasticsearch) -> None:
    store = _store(fake.url)
    assert store.ingest(_events(1)).stored == 1
    assert store.ingest(_events(1)).stored == 1  # setup runs once per store
    puts = {r.path: r.json() for r in fake.requests if r.method == "PUT" and not r.path.endswith("/_bulk")}
    assert puts["/_ilm/policy/citysoc-events"] == {"policy": es_mappings.ilm_policy(30)}
    assert puts["/_component_template/citysoc-events-settings"]["template"] == es_mappings.settings_component("citysoc")
    assert puts["/_component_template/citysoc-events-mappings"]["template"] == es_mappings.mappings_component()
    tpl = puts["/_index_template/citysoc-events"]
    assert tpl["composed_of"] == ["citysoc-events-settings", "citysoc-events-mappings"]
    assert tpl["data_stream"] == {} and tpl["index_patterns"] == ["citysoc-events"]
    assert tpl["_meta"]["managed_by"] == "citysoc"
    assert "/_data_stream/citysoc-events" in puts
    assert fake.paths("GET").count("/") == 1

    # A second process finds the data stream and does not create it again.
    before = len([p for p in fake.paths("PUT") if p.startswith("/_data_stream/")])
    _store(fake.url).setup()
    assert len([p for p in fake.paths("PUT") if p.startswith("/_data_stream/")]) == before


def test_storage_es_setup_never_downgrades_newer_templates(fake: FakeElasticsearch) -> None:
    fake.status_for["/_index_template/citysoc-events"] = (
        200,
        {"index_templates": [{"name": "citysoc-events", "index_template": {"version": es_mappings.TEMPLATE_VERSION + 1}}]},
    )
    _store(fake.url).setup()
    assert not [p for p in fake.paths("PUT") if p.startswith(("/_ilm", "/_component_template", "/_index_template"))]
    assert "/_data_stream/citysoc-events" in fake.paths("PUT")  # the stream is still made


def test_storage_es_setup_false_only_checks_the_version(fake: FakeElasticsearch) -> None:
    store = _store(fake.url, setup=False)
    store.ingest(_events(1))
    assert not [p for p in fake.paths() if p.startswith(("/_ilm", "/_component_template", "/_index_template", "/_data_stream"))]


def test_storage_es_retention_days_reach_the_ilm_policy(fake: FakeElasticsearch) -> None:
    settings = StorageSettings(backend="elasticsearch", elasticsearch_url=fake.url, retention_days=90, elasticsearch_prefix="hcm")
    ElasticsearchEventStore(settings).setup()
    put = next(r for r in fake.requests if r.path == "/_ilm/policy/hcm-events")
    assert put.json()["policy"]["phases"]["delete"]["min_age"] == "90d"


# --- bulk ----------------------------------------------------------------------------------
def test_storage_es_bulk_retries_429_and_maps_item_errors(fake: FakeElasticsearch) -> None:
    fake.bulk_script = [
        {"status": 429},
        {
            "items": {
                1: (429, "es_rejected_execution_exception", "rejected execution of primary operation"),
                2: (400, "document_parsing_exception", "[1:30] failed to parse field [source.port] of type [long]"),
            }
        },
    ]
    report = _store(fake.url).ingest(_events(4))
    assert report.stored == 3
    assert [(e.index, e.status) for e in report.errors] == [(2, 400)]
    assert "document_parsing_exception" in report.errors[0].reason
    assert "source.port" in report.errors[0].reason

    bulks = fake.bulk_requests()
    assert len(bulks) == 3
    first, second, third = (b.ndjson() for b in bulks)
    assert first == second  # the whole request again, same ids
    assert all(next(iter(a)) == "create" for a in first[0::2])  # data streams take `create` only
    assert third == first[2:4]  # only the item refused with 429, same _id, same source
    assert all(b.params.get("refresh") == ["wait_for"] for b in bulks)
    assert all(b.path == "/citysoc-events/_bulk" for b in bulks)
    assert bulks[0].headers["content-type"].startswith("application/vnd.elasticsearch+x-ndjson")
    assert len(fake.docs) == 3


def test_storage_es_bulk_retry_after_lost_response_stores_once(fake: FakeElasticsearch) -> None:
    fake.bulk_script = [{"drop": True}]
    report = _store(fake.url).ingest(_events(3))
    assert report.stored == 3 and report.errors == []
    assert len(fake.docs) == 3  # the retry met 409 for every id: no duplicates
    assert len(fake.bulk_requests()) == 2


def test_storage_es_bulk_retries_5xx_then_gives_up_per_item(fake: FakeElasticsearch) -> None:
    fake.bulk_script = [{"status": 503}] * 3
    report = _store(fake.url, max_retries=2).ingest(_events(2))
    assert report.stored == 0
    assert [(e.index, e.status) for e in report.errors] == [(0, 503), (1, 503)]
    assert "gave up after 2 retries" in report.errors[0].reason
    assert len(fake.bulk_requests()) == 3


def test_storage_es_bulk_does_not_retry_a_bad_request(fake: FakeElasticsearch) -> None:
    fake.bulk_script = [{"status": 400}]
    report = _store(fake.url).ingest(_events(2))
    assert report.stored == 0
    assert [(e.index, e.status) for e in report.errors] == [(0, 400), (1, 400)]
    assert "bulk request refused" in report.errors[0].reason
    assert len(fake.bulk_requests()) == 1


def test_storage_es_bulk_chunks_keep_batch_indexes(fake: FakeElasticsearch) -> None:
    fake.bulk_script = [{}, {}, {"items": {0: (400, "document_parsing_exception", "bad value")}}]
    report = _store(fake.url, chunk_size=2).ingest(_events(5))
    assert len(fake.bulk_requests()) == 3
    assert report.stored == 4
    assert report.errors == [ItemError(4, "document_parsing_exception: bad value", 400)]


def test_storage_es_ingest_prepares_events_like_the_sqlite_store(fake: FakeElasticsearch) -> None:
    events: list[Any] = [
        {"message": "no timestamp"},
        {"@timestamp": "not a time", "message": "bad"},
        "not an object",
        {"@timestamp": 1764064800, "host.name": "cam-01", "source": {"geo.city_name": "HCMC"}},
        {"@timestamp": "2026-11-25 10:00:00", "message": "space instead of T"},
        {"@timestamp": "2026-11-25T10:00:00+07:00", "message": "kept as written", "tags": {"a", "b"} - {"b"}},
    ]
    report = _store(fake.url).ingest(events)
    assert report.stored == 4
    assert [(e.index, e.status) for e in report.errors] == [(1, 400), (2, 400)]
    assert "not a timestamp" in report.errors[0].reason
    assert "JSON object" in report.errors[1].reason
    sent = list(fake.bulk_requests()[0].ndjson()[1::2])
    assert len(sent) == 4
    no_ts, epoch, spaced, offset = sent
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", no_ts["@timestamp"])
    assert epoch == {"@timestamp": "2025-11-25T10:00:00.000Z", "host": {"name": "cam-01"}, "source": {"geo": {"city_name": "HCMC"}}}
    assert spaced["@timestamp"] == "2026-11-25T10:00:00.000Z"
    assert offset["@timestamp"] == "2026-11-25T10:00:00+07:00"
    assert offset["tags"] == ["a"]


def test_storage_es_hostile_documents_become_item_errors(fake: FakeElasticsearch) -> None:
    deep: dict[str, Any] = {}
    node = deep
    for _ in range(5000):
        node["a"] = {}
        node = node["a"]
    ts = "2026-11-25T10:00:00Z"
    events: list[Any] = [
        {"@timestamp": ts, "n": 2**70},
        {"@timestamp": ts, "s": "\ud800"},
        {"@timestamp": ts, 1: "x", "a.b": 2},
        {"@timestamp": ts, "deep": deep, "x.y": 1},
        {"@timestamp": ts, "deep": deep},
        {"@timestamp": ts, "ok": True, 7: "non-string key without dots"},
    ]
    report = _store(fake.url).ingest(events)
    assert report.stored == 1
    assert [e.index for e in report.errors] == [0, 1, 2, 3, 4]
    assert all(e.status == 400 and e.reason.startswith("cannot store event") for e in report.errors)
    assert "64-bit" in report.errors[0].reason
    assert "keys of an event must be text" in report.errors[2].reason
    assert "nested too deeply" in report.errors[3].reason
    (stored,) = fake.docs.values()
    assert stored == {"@timestamp": ts, "ok": True, "7": "non-string key without dots"}


def test_storage_es_ingest_empty_batch_sends_nothing(fake: FakeElasticsearch) -> None:
    report = _store(fake.url).ingest([])
    assert report.stored == 0 and report.errors == []
    assert fake.requests == []


# --- connection and credentials ----------------------------------------------------------
def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_storage_es_unreachable_cluster_says_what_to_check() -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    store = _store(url, max_retries=1)
    with pytest.raises(ElasticsearchUnavailable) as info:
        store.ingest(_events(1))
    msg = str(info.value)
    assert f"cannot reach Elasticsearch at {url}" in msg
    assert "check storage.elasticsearch_url" in msg
    with pytest.raises(ElasticsearchUnavailable, match="cannot reach Elasticsearch"):
        store.count()


def test_storage_es_cluster_lost_during_bulk_raises_after_retries(fake: FakeElasticsearch) -> None:
    fake.bulk_script = [{"drop": True}] * 3
    fake.docs.clear()
    store = _store(fake.url, max_retries=2)
    with pytest.raises(ElasticsearchUnavailable, match="gave up after 2 retries"):
        store.ingest(_events(1))
    assert len(fake.bulk_requests()) == 3


def test_storage_es_missing_url_is_a_clear_error() -> None:
    with pytest.raises(ElasticsearchStoreError, match="storage.elasticsearch_url is not set"):
        ElasticsearchEventStore(StorageSettings(backend="elasticsearch"))


def test_storage_es_refuses_a_server_that_is_not_elasticsearch(fake: FakeElasticsearch) -> None:
    fake.product = False
    with pytest.raises(ElasticsearchStoreError, match="is not Elasticsearch"):
        _store(fake.url).setup()


def test_storage_es_refuses_another_major_version(fake: FakeElasticsearch) -> None:
    fake.version = "8.15.3"
    with pytest.raises(ElasticsearchStoreError, match=r"targets Elasticsearch 9\.x"):
        _store(fake.url).setup()


def test_storage_es_tls_with_the_cluster_ca(tls_fake: FakeElasticsearch, tls_files: dict[str, str]) -> None:
    store = _store(tls_fake.url, elasticsearch_ca_certs=tls_files["ca"])
    assert store.ingest(_events(2)).stored == 2
    assert len(tls_fake.docs) == 2


def test_storage_es_tls_unknown_ca_is_explained(tls_fake: FakeElasticsearch) -> None:
    with pytest.raises(ElasticsearchUnavailable) as info:
        _store(tls_fake.url).setup()
    assert "TLS failure" in str(info.value)
    assert "storage.elasticsearch_ca_certs" in str(info.value)
    assert tls_fake.requests == []  # nothing was sent to an unverified server


def test_storage_es_tls_verification_can_be_turned_off(tls_fake: FakeElasticsearch) -> None:
    store = _store(tls_fake.url, elasticsearch_verify_certs=False)
    assert store.ingest(_events(1)).stored == 1


def test_storage_es_api_key_is_sent(fake: FakeElasticsearch) -> None:
    fake.auth = "ApiKey c2VjcmV0OmtleQ=="
    _store(fake.url, elasticsearch_api_key="c2VjcmV0OmtleQ==").setup()
    assert all(r.headers["authorization"] == fake.auth for r in fake.requests)


def test_storage_es_basic_auth_is_sent_and_refusal_explained(fake: FakeElasticsearch) -> None:
    fake.auth = "Basic " + base64.b64encode(b"citysoc:s3cret").decode()
    _store(fake.url, elasticsearch_username="citysoc", elasticsearch_password="s3cret").setup()
    with pytest.raises(ElasticsearchStoreError, match="refused the credentials"):
        _store(fake.url, elasticsearch_username="citysoc", elasticsearch_password="wrong").setup()


def test_storage_es_missing_privileges_are_named(fake: FakeElasticsearch) -> None:
    fake.status_for["/_ilm/"] = (403, _error("security_exception", "action [cluster:admin/ilm/put] is unauthorized", 403))
    with pytest.raises(ElasticsearchStoreError, match="manage_ilm") as info:
        _store(fake.url).setup()
    assert "cluster:admin/ilm/put" in str(info.value)


# --- queries ------------------------------------------------------------------------------
def test_storage_es_search_request_and_result(fake: FakeElasticsearch) -> None:
    fake.data_streams.add("citysoc-events")
    fake.search_reply = {
        "took": 2,
        "hits": {
            "total": {"value": 42, "relation": "eq"},
            "hits": [{"_id": "a", "_source": {"@timestamp": "2026-11-25T10:00:00.000Z", "host": {"name": "cam-01"}}}],
        },
    }
    store = _store(fake.url)
    start, end = dt.datetime(2026, 11, 25, 9, tzinfo=UTC), dt.datetime(2026, 11, 25, 11, tzinfo=UTC)
    result = store.search("host.name:cam-01", start=start, end=end, limit=5, offset=10, sort="asc")
    assert result.total == 42
    assert result.hits == [{"@timestamp": "2026-11-25T10:00:00.000Z", "host": {"name": "cam-01"}}]
    req = [r for r in fake.requests if r.path == "/citysoc-events/_search"][-1]
    body = req.json()
    assert body["query"] == {
        "bool": {
            "filter": [
                {"term": {"host.name": {"value": "cam-01", "case_insensitive": True}}},  # host names: any case
                {
                    "range": {
                        "@timestamp": {
                            "format": "strict_date_optional_time",
                            "gte": "2026-11-25T09:00:00.000Z",
                            "lt": "2026-11-25T11:00:00.000Z",
                        }
                    }
                },
            ]
        }
    }
    assert body["size"] == 5 and body["from"] == 10 and body["track_total_hits"] is True
    assert body["sort"][0] == {"@timestamp": {"order": "asc", "unmapped_type": "date"}}


def test_storage_es_count_and_delete_before(fake: FakeElasticsearch) -> None:
    fake.search_reply = {"count": 7, "deleted": 3}
    store = _store(fake.url)
    assert store.count("event.outcome:failure") == 7
    count_req = [r for r in fake.requests if r.path == "/citysoc-events/_count"][-1]
    assert count_req.json() == {"query": {"term": {"event.outcome": "failure"}}}
    assert store.delete_before(dt.datetime(2026, 10, 1, tzinfo=UTC)) == 3
    dbq = [r for r in fake.requests if r.path == "/citysoc-events/_delete_by_query"][-1]
    assert dbq.json()["query"] == {
        "range": {"@timestamp": {"lt": "2026-10-01T00:00:00.000Z", "format": "strict_date_optional_time"}}
    }
    assert dbq.params["conflicts"] == ["proceed"]


def test_storage_es_terms_request_and_bucket_keys(fake: FakeElasticsearch) -> None:
    fake.search_reply = {
        "hits": {"total": {"value": 9, "relation": "eq"}, "hits": []},
        "aggregations": {
            "top": {
                "buckets": [
                    {"key": "cam-01", "doc_count": 5},
                    {"key": 22, "doc_count": 3},
                    {"key": 1, "key_as_string": "true", "doc_count": 1},
                ]
            }
        },
    }
    store = _store(fake.url)
    assert store.terms("host.name", size=3) == [("cam-01", 5), (22, 3), (True, 1)]
    body = [r for r in fake.requests if r.path == "/citysoc-events/_search"][-1].json()
    assert body["size"] == 0
    assert body["aggs"]["top"]["terms"] == {"field": "host.name", "size": 3, "order": [{"_count": "desc"}, {"_key": "asc"}]}
    with pytest.raises(QueryError, match="full text"):
        store.terms("message")
    with pytest.raises(QueryError, match="date_histogram"):
        store.terms("@timestamp")
    with pytest.raises(QueryError, match="invalid field name"):
        store.terms("host name")


def test_storage_es_date_histogram_request_and_keys(fake: FakeElasticsearch) -> None:
    fake.search_reply = {
        "hits": {"total": {"value": 3, "relation": "eq"}, "hits": []},
        "aggregations": {
            "over_time": {"buckets": [{"key": 1764064800000, "doc_count": 2}, {"key": 1764068400000, "doc_count": 1}]}
        },
    }
    store = _store(fake.url)
    assert store.date_histogram("*", interval="1h") == [("2025-11-25T10:00:00.000Z", 2), ("2025-11-25T11:00:00.000Z", 1)]
    aggs = [r for r in fake.requests if r.path == "/citysoc-events/_search"][-1].json()["aggs"]
    assert aggs["over_time"]["date_histogram"] == {"field": "@timestamp", "min_doc_count": 1, "fixed_interval": "1h"}
    store.date_histogram(interval="2w")
    aggs = [r for r in fake.requests if r.path == "/citysoc-events/_search"][-1].json()["aggs"]
    assert aggs["over_time"]["date_histogram"]["fixed_interval"] == "14d"
    assert aggs["over_time"]["date_histogram"]["offset"] == "+4d"  # weeks start on Monday
    with pytest.raises(QueryError, match="not understood"):
        store.date_histogram(interval="soon")


def test_storage_es_rejected_query_becomes_query_error(fake: FakeElasticsearch) -> None:
    fake.status_for["/citysoc-events/_search"] = (
        400,
        _error("search_phase_execution_exception", "failed to create query: 'abc' is not an IP string literal.", 400),
    )
    store = _store(fake.url)
    with pytest.raises(QueryError, match="not an IP string literal"):
        store.search("source.ip:abc")
    with pytest.raises(QueryError, match="syntax error"):
        store.search("host.name:(cam-01")
    with pytest.raises(QueryError, match="10,000"):
        store.search("*", offset=9_999, limit=2)


# --- end to end: the real CLI configured by environment, over loopback -------------------
def test_storage_es_citysoc_ingest_cli_writes_to_elasticsearch(fake: FakeElasticsearch, tmp_path: Any) -> None:
    """``citysoc ingest`` with CITYSOC_STORAGE__BACKEND=elasticsearch (as docker-compose sets
    it) sets up the data stream and bulk-writes every event, in another process."""
    import os
    import sys

    lines = [
        json.dumps({"@timestamp": f"2026-11-25T10:00:0{i}Z", "message": f"login failed {i}", "host": {"name": "cam-07"}})
        for i in range(5)
    ]
    src = tmp_path / "events.ndjson"
    src.write_text("\n".join(lines) + "\n")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("CITYSOC_")},
        "CITYSOC_DATA": str(tmp_path / "data"),
        "CITYSOC_STORAGE__BACKEND": "elasticsearch",
        "CITYSOC_STORAGE__ELASTICSEARCH_URL": fake.url,
        "CITYSOC_STORAGE__ELASTICSEARCH_PREFIX": "e2e",
    }
    proc = subprocess.run(
        [sys.executable, "-m", "citysoc.cli", "ingest", "--format", "json", str(src)],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert "/_data_stream/e2e-events" in fake.paths("PUT")
    assert {r.path for r in fake.bulk_requests()} == {"/e2e-events/_bulk"}
    stored = sorted(fake.docs.values(), key=lambda d: d["@timestamp"])
    assert [d["message"] for d in stored] == [f"login failed {i}" for i in range(5)]
    assert all(d["host"]["name"] == "cam-07" for d in stored)
