"""Issue 18, items 1-2: one hostile ingest request must cost memory bounded by our limits.

Each attack goes to a real ``citysoc serve``; the server's peak resident memory
(``VmHWM`` from ``/proc``) is read before and after. Before the fix a 2 MB ``[0,0,...]``
cost +3.9 GB and a 1 MB gzip of newlines +2 GB; the bound asserted here is 256 MB.
"""
from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import httpx
import orjson
import pytest

from citysoc.testing import ServeProcess

pytestmark = [pytest.mark.timeout(240)]
BOUND = 256 * 1024 * 1024


def _hwm(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ingest-mem")
    cfg = tmp / "citysoc.yml"
    cfg.write_text("server:\n  ingest_inflight_bytes: 67108864\n")  # 64 MiB in flight across requests
    srv = ServeProcess(tmp / "data", config=cfg)
    srv.data.mkdir()
    srv.keys = {"ingest": srv.api_key("ingest"), "viewer": srv.api_key("viewer")}
    srv.start()
    # warm up every path once, so later growth is the attack's own
    h = {"Authorization": f"ApiKey {srv.keys['ingest']}"}
    httpx.post(f"{srv.url}/api/v1/ingest", content=b'[{"message":"warm"}]', headers=h, timeout=60).raise_for_status()
    httpx.post(f"{srv.url}/_bulk", content=b'{"index":{}}\n{"message":"warm"}\n', headers=h, timeout=60)
    yield srv
    srv.stop()


def _post(srv, path: str, body: bytes, **headers: str) -> tuple[httpx.Response, int]:
    before = _hwm(srv.proc.pid)
    r = httpx.post(f"{srv.url}{path}", content=body, timeout=120,
                   headers={"Authorization": f"ApiKey {srv.keys['ingest']}", **headers})
    return r, _hwm(srv.proc.pid) - before


def test_json_array_of_a_million_zeros_is_refused_before_it_is_built(server):
    body = b"[" + b",".join([b"0"] * 1_000_000) + b"]"  # 2 MB
    r, grew = _post(server, "/api/v1/ingest", body)
    assert r.status_code == 413 and "100000" in r.text
    assert grew < BOUND, f"peak RSS grew by {grew / 2**20:.0f} MiB"


def test_gzip_bomb_is_inflated_only_up_to_the_limit(server):
    comp = zlib.compressobj(9, zlib.DEFLATED, 31)
    chunk = b"\n" * (16 * 1024 * 1024)
    body = b"".join(comp.compress(chunk) for _ in range(64)) + comp.flush()  # 1 GiB of newlines
    assert len(body) < 2 * 1024 * 1024
    r, grew = _post(server, "/api/v1/ingest", body, **{"Content-Encoding": "gzip"})
    assert r.status_code in (413, 429), r.text
    assert grew < BOUND, f"peak RSS grew by {grew / 2**20:.0f} MiB"
    r, _ = _post(server, "/_bulk", body, **{"Content-Encoding": "gzip"})
    assert r.status_code in (413, 429)


def test_tiny_item_bulk_is_refused_at_the_item_limit(server):
    body = b'{"index":{}}\n{}\n' * 1_500_000  # 24 MB, 1.5M items
    r, grew = _post(server, "/_bulk", body)
    assert r.status_code == 413, r.text[:300]
    assert grew < BOUND, f"peak RSS grew by {grew / 2**20:.0f} MiB"


def test_deeply_nested_element_is_a_clear_error_not_a_500(server):
    deep = b"[" * 300 + b"]" * 300
    r, _ = _post(server, "/api/v1/ingest", b"[" + deep + b"]")
    assert r.status_code == 400 and "nested deeper" in r.text
    r, _ = _post(server, "/api/v1/ingest", b'{"a":' + deep + b"}\n")
    assert r.status_code == 200, r.text  # one NDJSON line: parsed or dead-lettered, never a 500
    assert r.json()["received"] == 1


def test_gzip_that_is_not_gzip_is_400_and_a_good_gzip_body_is_stored(server):
    r, _ = _post(server, "/api/v1/ingest", b"not gzip at all", **{"Content-Encoding": "gzip"})
    assert r.status_code == 400 and "gzip" in r.text
    good = gzip.compress(b"\n".join(orjson.dumps({"message": f"gz {i}", "labels": {"t": "gzok"}}) for i in range(50)))
    r, _ = _post(server, "/api/v1/ingest", good, **{"Content-Encoding": "gzip"})
    assert r.status_code == 200 and r.json()["stored"] == 50


def test_array_elements_keep_their_bytes_and_bad_ones_are_per_item(server):
    r, _ = _post(server, "/api/v1/ingest", b'[{"message":"a [x], {y}"}, 7, {"message":"b"}]')
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["received"] == 3 and body["stored"] >= 2
