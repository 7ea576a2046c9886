"""The Elasticsearch start-up calls shippers make before their first ``_bulk`` (issue 13 item 4).

Each test replays one shipper's request sequence as its output code sends it (read in
elastic/beats ``libbeat/esleg/eslegclient``, ``x-pack/libbeat/licenser``,
``libbeat/idxmgmt/lifecycle``, ``libbeat/template/load.go``; Logstash's and Vector's
Elasticsearch outputs) and checks the status and the fields that code parses.
"""
from __future__ import annotations

import base64
import gzip
import json

import pytest

from api.routers.es_compat import VERSION, EsResources

TEMPLATE = "filebeat-8.17.0"
#: What Filebeat 8.17 PUTs (abridged: its real mappings are about a megabyte, kept out by design).
TEMPLATE_BODY = {
    "index_patterns": [TEMPLATE], "data_stream": {}, "priority": 150,
    "template": {"settings": {"index": {"lifecycle": {"name": "filebeat"}, "number_of_shards": 1}},
                 "mappings": {"dynamic_templates": [], "properties": {"message": {"type": "match_only_text"}}}},
    "_meta": {"beat": "filebeat", "version": "8.17.0"},
}
ILM_BODY = {"policy": {"phases": {"hot": {"actions": {"rollover": {"max_age": "30d",
                                                                   "max_primary_shard_size": "50gb"}}}}}}
PIPELINE = "filebeat-8.17.0-system-auth-pipeline"
PIPELINE_BODY = {"description": "Pipeline for parsing system authentication logs.",
                 "processors": [{"grok": {"field": "message", "patterns": ["%{SYSLOGTIMESTAMP:x}"]}}]}


def _es_version_tuple(number: str) -> tuple[int, ...]:
    return tuple(int(p) for p in number.split("."))


def test_filebeat_8_start_up_sequence_then_restart(client, hdr) -> None:
    """The calls libbeat makes on connect, in order, and the answers it parses; then the
    same Beat started again finds everything in place and PUTs nothing."""
    h = hdr("ingest")
    r = client.get("/", headers=h)  # eslegclient Ping: version.number, build_flavor (serverless?)
    assert r.status_code == 200 and r.headers["x-elastic-product"] == "Elasticsearch"
    info = r.json()
    assert info["version"]["build_flavor"] != "serverless"
    # libbeat: "Elasticsearch is too old" when older than the Beat; ILM needs >= 7.0.
    assert _es_version_tuple(info["version"]["number"]) >= (8, 17, 0)
    assert info["version"]["number"] == VERSION

    r = client.get("/_license", params={"human": "false"}, headers=h)
    lic = r.json()["license"]
    assert r.status_code == 200
    assert lic["type"] == "basic" and lic["mode"] == "basic" and lic["status"] == "active"
    assert isinstance(lic["expiry_date_in_millis"], int)  # libbeat parses it with ParseInt

    assert client.get("/_ilm/policy/filebeat", headers=h).status_code == 404
    assert client.put("/_ilm/policy/filebeat", json=ILM_BODY, headers=h).json() == {"acknowledged": True}
    assert client.head(f"/_index_template/{TEMPLATE}", headers=h).status_code == 404
    r = client.put(f"/_index_template/{TEMPLATE}", json=TEMPLATE_BODY, headers=h)
    assert r.status_code == 200 and r.json() == {"acknowledged": True}
    assert client.get(f"/_data_stream/{TEMPLATE}", headers=h).status_code == 404
    assert client.put(f"/_data_stream/{TEMPLATE}", headers=h).status_code == 200  # no body, as libbeat sends it
    # filebeat/fileset/pipelines.go: GET, and PUT when missing.
    assert client.get(f"/_ingest/pipeline/{PIPELINE}", headers=h).status_code == 404
    assert client.put(f"/_ingest/pipeline/{PIPELINE}", json=PIPELINE_BODY, headers=h).status_code == 200

    # Restart: every check now answers 200, so the Beat loads nothing again.
    ilm = client.get("/_ilm/policy/filebeat", headers=h)
    assert ilm.status_code == 200 and ilm.json()["filebeat"]["policy"] == ILM_BODY["policy"]
    assert client.head(f"/_index_template/{TEMPLATE}", headers=h).status_code == 200
    got = client.get(f"/_index_template/{TEMPLATE}", headers=h).json()["index_templates"][0]
    assert got["name"] == TEMPLATE and got["index_template"]["index_patterns"] == [TEMPLATE]
    assert "mappings" not in got["index_template"]["template"]  # never applied, so never kept
    ds = client.get(f"/_data_stream/{TEMPLATE}", headers=h).json()["data_streams"][0]
    assert ds["name"] == TEMPLATE and ds["status"] == "GREEN"
    assert client.get(f"/_ingest/pipeline/{PIPELINE}", headers=h).json()[PIPELINE]["processors"]
    # A second data stream PUT is refused as Elasticsearch refuses it.
    again = client.put(f"/_data_stream/{TEMPLATE}", headers=h)
    assert again.status_code == 400 and again.json()["error"]["type"] == "resource_already_exists_exception"


def test_elasticsearch_clients_api_key_header_is_accepted(client, stack) -> None:
    """Filebeat's ``api_key: id:key`` is sent as ``ApiKey base64(id:key)``."""
    key = stack.keys["ingest"]
    key_id = key.split("_")[1]
    encoded = base64.b64encode(f"{key_id}:{key}".encode()).decode()
    assert client.get("/_license", headers={"Authorization": f"ApiKey {encoded}"}).status_code == 200


def test_logstash_and_vector_checks(client, hdr) -> None:
    h = hdr("ingest")
    xpack = client.get("/_xpack", headers=h).json()  # Logstash's license and monitoring checks
    assert xpack["license"]["status"] == "active" and xpack["features"]["ilm"]["enabled"] is True
    assert client.head("/", headers=h).status_code == 200
    health = client.get("/_cluster/health", headers=h)  # Vector's healthcheck
    assert health.status_code == 200 and health.json()["status"] == "green"
    # Logstash's legacy template API (template_api => legacy).
    assert client.head("/_template/logstash", headers=h).status_code == 404
    assert client.put("/_template/logstash", json={"index_patterns": ["logstash-*"], "order": 0,
                                                   "mappings": {"properties": {}}}, headers=h).status_code == 200
    assert client.get("/_template/logstash", headers=h).json()["logstash"]["index_patterns"] == ["logstash-*"]
    nodes = client.get("/_nodes/_local/ingest", headers=h).json()
    assert nodes["_nodes"]["total"] == 1


@pytest.mark.parametrize("method,path", [
    ("GET", "/_license"), ("GET", "/_xpack"), ("HEAD", "/_index_template/x"), ("PUT", "/_index_template/x"),
    ("GET", "/_ilm/policy/x"), ("PUT", "/_ilm/policy/x"), ("GET", "/_ingest/pipeline/x"),
    ("PUT", "/_ingest/pipeline/x"), ("GET", "/_cluster/health"), ("PUT", "/_data_stream/x"),
])
def test_every_route_needs_an_ingest_key(client, hdr, method: str, path: str) -> None:
    assert client.request(method, path, json={}).status_code == 401
    assert client.request(method, path, json={}, headers=hdr("viewer")).status_code == 403


def test_bad_bodies_answer_in_elasticsearch_shape(client, hdr) -> None:
    h = hdr("ingest")
    for body in (b"", b"not json", b"[1, 2]"):
        r = client.put("/_index_template/x", content=body, headers={**h, "Content-Type": "application/json"})
        assert r.status_code == 400, body
        err = r.json()["error"]
        assert err["type"] in ("parse_exception", "x_content_parse_exception") and err["root_cause"]
    missing = client.get("/_index_template/nothing", headers=h)
    assert missing.status_code == 404 and missing.json()["status"] == 404


def test_body_limit_refuses_a_huge_template(client, hdr) -> None:
    big = b'{"index_patterns":["x"],"_meta":{"pad":"' + b"a" * (17 * 1024 * 1024) + b'"}}'
    r = client.put("/_index_template/x", content=big, headers={**hdr("ingest"), "Content-Type": "application/json"})
    assert r.status_code == 413


def test_resources_are_bounded_per_kind() -> None:
    res = EsResources(max_per_kind=2)
    assert res.put("ilm_policy", "a", {"policy": {}}) and res.put("ilm_policy", "b", {"policy": {}})
    assert not res.put("ilm_policy", "c", {"policy": {}})
    assert res.put("ilm_policy", "a", {"policy": {"x": 1}})  # replacing one is always allowed
    assert res.put("index_template", "c", {})  # another kind has its own budget
    big = {"index_patterns": ["x"], "priority": 1, "description": "d" * 200_000}
    res2 = EsResources()
    res2.put("index_template", "big", big)
    assert res2.get("index_template", "big") == {"index_patterns": ["x"], "priority": 1}


def test_gzipped_bodies_are_inflated_as_libbeat_sends_them(client, hdr) -> None:
    """libbeat compresses every body (``compression_level`` 1 by default in 8.x), template PUTs too."""
    body = gzip.compress(json.dumps(TEMPLATE_BODY).encode())
    r = client.put(f"/_index_template/{TEMPLATE}", content=body,
                   headers={**hdr("ingest"), "Content-Type": "application/json", "Content-Encoding": "gzip"})
    assert r.status_code == 200, r.text
    assert client.head(f"/_index_template/{TEMPLATE}", headers=hdr("ingest")).status_code == 200
    bomb = gzip.compress(b'{"a":"' + b"a" * (17 * 1024 * 1024) + b'"}')
    r = client.put("/_index_template/bomb", content=bomb,
                   headers={**hdr("ingest"), "Content-Type": "application/json", "Content-Encoding": "gzip"})
    assert r.status_code == 413
