"""Client-side cost of ElasticsearchEventStore.ingest, against the official bulk helper.

No Elasticsearch runs on this machine, so both contestants send to the same minimal
stand-in on loopback that answers every ``_bulk`` item ``201 created`` without parsing
documents: what is timed is the client side (preparing events, serializing, HTTP,
reading per-item results), which is where the store adds work of its own (``_id``
generation, timestamp checks, per-item bookkeeping for retries).

* ``helpers_bulk``: ``elasticsearch.helpers.bulk`` with ``create`` actions (the baseline
  most integrations use);
* ``citysoc_ingest``: ``ElasticsearchEventStore.ingest`` in batches of 1,000 (the
  pipeline's batch size).

Also timed: translating parsed queries to DSL against parsing them (the baseline), to
show translation is negligible next to parsing.

The figure that matters is ``ratio_vs_helpers`` (events/s ours / theirs; goal >= 1).
"""
from __future__ import annotations

import json
import multiprocessing
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["run"]

_CREATED = b'{"create":{"_index":".ds-bench-events-000001","_id":"x","status":201,"result":"created"}}'


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, *args: Any) -> None:
        pass

    def _reply(self, body: bytes, status: int = 200) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-Elastic-Product", "Elasticsearch")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _handle(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        path = self.path.split("?", 1)[0]
        if path.endswith("/_bulk"):
            n = body.count(b"\n") // 2
            return self._reply(b'{"took":1,"errors":false,"items":[' + b",".join([_CREATED] * n) + b"]}")
        if path == "/":
            return self._reply(b'{"version":{"number":"9.1.0"},"tagline":"You Know, for Search"}')
        if path.startswith("/_data_stream/") and self.command == "GET":
            return self._reply(b'{"data_streams":[{"name":"bench-events"}]}')
        return self._reply(b'{"acknowledged":true}')

    do_GET = do_PUT = do_POST = _handle


def _serve(ports: Any) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    ports.put(server.server_address[1])
    server.serve_forever(poll_interval=0.05)


def _events(n: int) -> list[dict[str, Any]]:
    out = []
    for i in range(n):
        out.append(
            {
                "@timestamp": f"2026-11-25T10:{(i // 60) % 60:02d}:{i % 60:02d}.{i % 1000:03d}Z",
                "message": f"Failed password for user{i % 50} from 10.0.{i % 256}.{i % 200 + 1} port {40000 + i % 20000} ssh2",
                "event": {"dataset": "linux.auth", "category": ["authentication"], "outcome": "failure", "original": f"<38>sshd[{i}]: Failed password"},
                "host": {"name": f"cam-{i % 300:03d}", "ip": [f"10.1.{i % 256}.{i % 250 + 1}"]},
                "source": {"ip": f"10.0.{i % 256}.{i % 200 + 1}", "port": 40000 + i % 20000},
                "user": {"name": f"user{i % 50}"},
                "citysoc": {"center": "camera-ops", "asset": {"id": f"asset-{i % 300}", "criticality": "high"}},
            }
        )
    return out


def run(quick: bool) -> dict[str, Any]:
    from elasticsearch import Elasticsearch, helpers

    from core.settings import StorageSettings
    from storage.elasticsearch import ElasticsearchEventStore
    from storage.query.es import to_es_query
    from storage.query.parse import parse_query

    n = 5_000 if quick else 50_000
    events = _events(n)
    # The stand-in runs in its own process, so it does not compete with the client for the GIL.
    ctx = multiprocessing.get_context("spawn")
    ports: Any = ctx.Queue()
    server = ctx.Process(target=_serve, args=(ports,), daemon=True)
    server.start()
    url = f"http://127.0.0.1:{ports.get(timeout=30)}"
    try:
        store = ElasticsearchEventStore(
            StorageSettings(backend="elasticsearch", elasticsearch_url=url, elasticsearch_prefix="bench")
        )
        store.setup()
        client = Elasticsearch(url)

        def ours() -> float:
            t0 = time.perf_counter()
            for k in range(0, n, 1000):
                report = store.ingest(events[k : k + 1000])
                assert report.stored == len(events[k : k + 1000]) and not report.errors
            return time.perf_counter() - t0

        def theirs() -> float:
            t0 = time.perf_counter()
            ok, errors = helpers.bulk(
                client,
                ({"_op_type": "create", "_index": "bench-events", "_source": ev} for ev in events),
                chunk_size=1000,
            )
            assert ok == n and not errors
            return time.perf_counter() - t0

        ours(), theirs()  # warm up connections and caches
        rounds = 3 if quick else 5
        t_ours, t_theirs = float("inf"), float("inf")
        for _ in range(rounds):  # interleaved, so a busy moment hurts both alike
            t_ours = min(t_ours, ours())
            t_theirs = min(t_theirs, theirs())

        queries = [
            "host.name:cam-* AND event.outcome:failure",
            'message:"failed password" AND NOT user.name:root',
            "source.ip:10.0.0.0/8 AND destination.port:[1 TO 1024]",
            "@timestamp:[now-1h TO now] AND (sshd OR rtsp) AND _exists_:user.name",
        ] * 250
        t0 = time.perf_counter()
        parsed = [parse_query(q) for q in queries]
        t_parse = time.perf_counter() - t0
        t0 = time.perf_counter()
        dsl = [to_es_query(p) for p in parsed]
        t_dsl = time.perf_counter() - t0
        assert len(json.dumps(dsl)) > 0
        store.close()
        client.close()
    finally:
        server.terminate()
        server.join(10)

    return {
        "events": n,
        "rounds": rounds,
        "citysoc_ingest_events_per_s": round(n / t_ours),
        "helpers_bulk_events_per_s": round(n / t_theirs),
        "ratio_vs_helpers": round(t_theirs / t_ours, 2),
        "queries": len(queries),
        "parse_us_per_query": round(t_parse / len(queries) * 1e6, 1),
        "to_es_query_us_per_query": round(t_dsl / len(queries) * 1e6, 1),
        "translate_vs_parse": round(t_dsl / t_parse, 3),
    }
