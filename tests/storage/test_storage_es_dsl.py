"""Elasticsearch DSL translation and the index template, checked without a cluster.

The goldens pin the exact Query DSL each AST node and each parsed Lucene query becomes;
the template checks prove the mappings cover what the rest of citysoc relies on (the
SQLite store's promoted columns, the Sigma pipelines' ``.caseless`` fields) with the
types the translation assumes.
"""
from __future__ import annotations

import json

import pytest

from storage import es_mappings
from storage.query import ast
from storage.query.es import to_es_query
from storage.query.parse import parse_query

FREE = ["message", "event.original"]

# --- every AST node, built by hand ------------------------------------------------------
NODE_GOLDENS: list[tuple[str, ast.Node, dict]] = [
    ("match_all", ast.MatchAll(), {"match_all": {}}),
    ("term_keyword", ast.Term("host.name", "cam-01"), {"term": {"host.name": {"value": "cam-01", "case_insensitive": True}}}),
    ("term_ip", ast.Term("source.ip", "10.0.0.5"), {"term": {"source.ip": "10.0.0.5"}}),
    ("term_ip_cidr", ast.Term("source.ip", "10.0.0.0/8"), {"term": {"source.ip": "10.0.0.0/8"}}),
    ("term_ip_v6", ast.Term("source.ip", "fe80::1"), {"term": {"source.ip": "fe80::1"}}),
    ("term_ip_not_an_address", ast.Term("source.ip", "cam-01"), {"match_none": {}}),
    (
        "term_number_is_lenient",
        ast.Term("destination.port", "abc"),
        {"match": {"destination.port": {"query": "abc", "lenient": True}}},
    ),
    (
        "term_date_is_lenient",
        ast.Term("@timestamp", "2026-05-01T00:00:00Z"),
        {"match": {"@timestamp": {"query": "2026-05-01T00:00:00Z", "lenient": True}}},
    ),
    (
        "term_unmapped_field_is_lenient",
        ast.Term("camera.bitrate_kbps", "1350"),
        {"match": {"camera.bitrate_kbps": {"query": "1350", "lenient": True}}},
    ),
    ("term_wildcard_type_field", ast.Term("process.command_line", "cmd /c x"), {"term": {"process.command_line": "cmd /c x"}}),
    ("term_text_field", ast.Term("message", "Failed"), {"match_phrase": {"message": "Failed"}}),
    (
        "term_free_text",
        ast.Term(None, "cam-01"),
        {"multi_match": {"query": "cam-01", "fields": FREE, "type": "phrase"}},
    ),
    ("phrase_keyword", ast.Phrase("user.name", "Nguyen Van A"), {"term": {"user.name": "Nguyen Van A"}}),
    ("phrase_text_field", ast.Phrase("message", "failed password"), {"match_phrase": {"message": "failed password"}}),
    (
        "phrase_free_text",
        ast.Phrase(None, "failed password"),
        {"multi_match": {"query": "failed password", "fields": FREE, "type": "phrase"}},
    ),
    ("wildcard_keyword", ast.Wildcard("host.name", "cam-*"), {"wildcard": {"host.name": {"value": "cam-*", "case_insensitive": True}}}),
    (
        "wildcard_keeps_escapes",
        ast.Wildcard("file.path", "C:\\\\Windows\\\\*.exe"),
        {"wildcard": {"file.path": {"value": "C:\\\\Windows\\\\*.exe"}}},
    ),
    (
        "wildcard_text_field",
        ast.Wildcard("message", "pass*"),
        {"wildcard": {"message": {"value": "pass*", "case_insensitive": True}}},
    ),
    (
        "wildcard_free_text",
        ast.Wildcard(None, "*denied*"),
        {
            "bool": {
                "should": [
                    {"wildcard": {"message": {"value": "*denied*", "case_insensitive": True}}},
                    {"wildcard": {"event.original": {"value": "*denied*", "case_insensitive": True}}},
                ],
                "minimum_should_match": 1,
            }
        },
    ),
    ("wildcard_star_is_exists", ast.Wildcard("user.name", "*"), {"exists": {"field": "user.name"}}),
    ("wildcard_unmapped_field", ast.Wildcard("camera.model", "AXIS*"), {"wildcard": {"camera.model": {"value": "AXIS*"}}}),
    ("wildcard_ip_octets_is_cidr", ast.Wildcard("source.ip", "10.0.1.*"), {"term": {"source.ip": "10.0.1.0/24"}}),
    ("wildcard_ip_one_octet", ast.Wildcard("destination.ip", "172.*"), {"term": {"destination.ip": "172.0.0.0/8"}}),
    ("range_closed", ast.Range("destination.port", "1", "1024"), {"range": {"destination.port": {"gte": "1", "lte": "1024"}}}),
    (
        "range_exclusive",
        ast.Range("destination.port", "1", "1024", include_low=False, include_high=False),
        {"range": {"destination.port": {"gt": "1", "lt": "1024"}}},
    ),
    ("range_open_high", ast.Range("event.severity", "3", None), {"range": {"event.severity": {"gte": "3"}}}),
    (
        "range_datemath_passes_through",
        ast.Range("@timestamp", "now-1h", "now", include_high=False),
        {"range": {"@timestamp": {"gte": "now-1h", "lt": "now"}}},
    ),
    ("range_unbounded_is_exists", ast.Range("user.name", None, None), {"exists": {"field": "user.name"}}),
    ("exists", ast.Exists("user.name"), {"exists": {"field": "user.name"}}),
    (
        "and",
        ast.And((ast.Term("host.name", "cam-01"), ast.Term("event.outcome", "failure"))),
        {"bool": {"filter": [{"term": {"host.name": {"value": "cam-01", "case_insensitive": True}}}, {"term": {"event.outcome": "failure"}}]}},
    ),
    (
        "and_with_not_goes_to_must_not",
        ast.And((ast.Term("host.name", "cam-01"), ast.Not(ast.Term("event.outcome", "success")))),
        {"bool": {"filter": [{"term": {"host.name": {"value": "cam-01", "case_insensitive": True}}}], "must_not": [{"term": {"event.outcome": "success"}}]}},
    ),
    (
        "or",
        ast.Or((ast.Term("host.name", "cam-01"), ast.Term("host.name", "cam-02"))),
        {
            "bool": {
                "should": [{"term": {"host.name": {"value": "cam-01", "case_insensitive": True}}}, {"term": {"host.name": {"value": "cam-02", "case_insensitive": True}}}],
                "minimum_should_match": 1,
            }
        },
    ),
    ("not", ast.Not(ast.Exists("user.name")), {"bool": {"must_not": [{"exists": {"field": "user.name"}}]}}),
    ("double_not_cancels", ast.Not(ast.Not(ast.Exists("user.name"))), {"exists": {"field": "user.name"}}),
]


@pytest.mark.parametrize("name,node,expected", NODE_GOLDENS, ids=[g[0] for g in NODE_GOLDENS])
def test_storage_es_node_translation(name: str, node: ast.Node, expected: dict) -> None:
    assert to_es_query(node) == expected


# --- queries as analysts type them, through the shared parser ---------------------------
PARSED_GOLDENS: list[tuple[str, dict]] = [
    ("*", {"match_all": {}}),
    ("", {"match_all": {}}),
    (
        "host.name:cam-* AND event.outcome:failure",
        {"bool": {"filter": [{"wildcard": {"host.name": {"value": "cam-*", "case_insensitive": True}}}, {"term": {"event.outcome": "failure"}}]}},
    ),
    (
        'message:"failed password" AND NOT user.name:root',
        {"bool": {"filter": [{"match_phrase": {"message": "failed password"}}], "must_not": [{"term": {"user.name": "root"}}]}},
    ),
    (
        "host.name:(cam-01 OR cam-02) destination.port:[1 TO 1024}",
        {
            "bool": {
                "filter": [
                    {
                        "bool": {
                            "should": [{"term": {"host.name": {"value": "cam-01", "case_insensitive": True}}}, {"term": {"host.name": {"value": "cam-02", "case_insensitive": True}}}],
                            "minimum_should_match": 1,
                        }
                    },
                    {"range": {"destination.port": {"gte": "1", "lt": "1024"}}},
                ]
            }
        },
    ),
    ("destination.port:>=1024", {"range": {"destination.port": {"gte": "1024"}}}),
    ("@timestamp:[now-1h TO now]", {"range": {"@timestamp": {"gte": "now-1h", "lte": "now"}}}),
    ("_exists_:user.name", {"exists": {"field": "user.name"}}),
    ("-_exists_:user.name", {"bool": {"must_not": [{"exists": {"field": "user.name"}}]}}),
    ("failed", {"multi_match": {"query": "failed", "fields": FREE, "type": "phrase"}}),
    (
        'sshd "bad password"',
        {
            "bool": {
                "filter": [
                    {"multi_match": {"query": "sshd", "fields": FREE, "type": "phrase"}},
                    {"multi_match": {"query": "bad password", "fields": FREE, "type": "phrase"}},
                ]
            }
        },
    ),
    # An escaped '*' is literal: it reaches ES still escaped, which is ES's wildcard syntax.
    ("file.name:a\\*b*", {"wildcard": {"file.name": {"value": "a\\*b*"}}}),
    # Characters query_string would read as syntax are plain data in a term.
    ("user.name:a\\+b", {"term": {"user.name": "a+b"}}),
    (
        "process.command_line:*mimikatz* OR process.executable:*\\\\psexec.exe",
        {
            "bool": {
                "should": [
                    {"wildcard": {"process.command_line": {"value": "*mimikatz*"}}},
                    {"wildcard": {"process.executable": {"value": "*\\\\psexec.exe"}}},
                ],
                "minimum_should_match": 1,
            }
        },
    ),
]


@pytest.mark.parametrize("query,expected", PARSED_GOLDENS, ids=[g[0] or "<empty>" for g in PARSED_GOLDENS])
def test_storage_es_parsed_query_translation(query: str, expected: dict) -> None:
    assert to_es_query(parse_query(query)) == expected


def test_storage_es_translation_never_uses_query_string() -> None:
    """No user text may reach a query-language-parsing query type."""
    tricky = [
        'a OR b AND "c d" -e +f',
        "message:(a OR b) AND host.name:x*",
        "user.name:\\(admin\\) OR NOT x",
        "_exists_:source.ip AND source.ip:10.0.0.0/8",
    ]
    for q in tricky:
        dumped = json.dumps(to_es_query(parse_query(q)))
        assert "query_string" not in dumped, q
        assert "simple_query_string" not in dumped, q


def test_storage_es_translation_rejects_foreign_nodes() -> None:
    with pytest.raises(TypeError, match="not a storage.query.ast node"):
        to_es_query("host.name:x")  # type: ignore[arg-type]


def test_storage_es_translation_field_types_are_configurable() -> None:
    node = ast.Term("winlog.event_data.CommandLine", "x y")
    assert to_es_query(node, field_types={"winlog.event_data.CommandLine": "keyword"}) == {
        "term": {"winlog.event_data.CommandLine": "x y"}
    }
    assert to_es_query(node, field_types={"winlog.event_data.CommandLine": "text"}) == {
        "match_phrase": {"winlog.event_data.CommandLine": "x y"}
    }


@pytest.mark.parametrize(
    "node,message",
    [
        (ast.Wildcard("source.ip", "10.0.1.1*"), "whole octets"),
        (ast.Wildcard("source.ip", "fe80::*"), "whole octets"),
        (ast.Wildcard("source.ip", "300.*"), "whole octets"),
        (ast.Wildcard("destination.port", "8*"), "use a range"),
        (ast.Wildcard("@timestamp", "2026-05*"), "use a range"),
    ],
)
def test_storage_es_translation_refuses_meaningless_wildcards(node: ast.Node, message: str) -> None:
    from core.protocols import QueryError

    with pytest.raises(QueryError, match=message):
        to_es_query(node)


# --- the template ------------------------------------------------------------------------
def _leaf(props: dict, path: str) -> dict:
    """The mapping of dotted ``path`` inside nested ``properties`` (sub-fields included)."""
    node: dict = {"properties": props}
    parts = path.split(".") if path != "@timestamp" else [path]
    for i, part in enumerate(parts):
        if "properties" in node and part in node["properties"]:
            node = node["properties"][part]
        elif "fields" in node and part in node["fields"] and i == len(parts) - 1:
            node = node["fields"][part]
        else:
            raise KeyError(f"{path} is not mapped (stopped at {part!r})")
    return node


def test_storage_es_template_maps_every_promoted_sqlite_column() -> None:
    from storage.query.sql import PROMOTED

    props = es_mappings.mappings_component()["mappings"]["properties"]
    kinds = {"ts": {"date"}, "int": {"long", "integer"}, "text": {"keyword", "ip", "wildcard"}}
    for field, column in PROMOTED.items():
        mapping = _leaf(props, field)
        assert mapping["type"] in kinds[column.kind], f"{field}: {mapping['type']} for a {column.kind} column"


@pytest.mark.parametrize(
    "field,expected",
    [
        ("@timestamp", "date"),
        ("event.ingested", "date"),
        ("source.ip", "ip"),
        ("destination.ip", "ip"),
        ("host.ip", "ip"),
        ("observer.ip", "ip"),
        ("related.ip", "ip"),
        ("citysoc.asset.ip", "ip"),
        ("source.port", "long"),
        ("destination.port", "long"),
        ("http.response.status_code", "long"),
        ("message", "match_only_text"),
        ("event.original", "match_only_text"),
        ("event.dataset", "keyword"),
        ("event.category", "keyword"),
        ("process.command_line", "wildcard"),
        ("process.command_line.text", "match_only_text"),
        ("process.executable.caseless", "keyword"),
        ("process.parent.executable.caseless", "keyword"),
        ("process.parent.name.caseless", "keyword"),
        ("file.hash.sha256", "keyword"),
        ("dns.question.name", "keyword"),
        ("url.original", "wildcard"),
        ("winlog.event_id", "keyword"),
        ("citysoc.center", "keyword"),
        ("citysoc.asset.id", "keyword"),
        ("user.name", "keyword"),
    ],
)
def test_storage_es_template_field_types(field: str, expected: str) -> None:
    props = es_mappings.mappings_component()["mappings"]["properties"]
    assert _leaf(props, field)["type"] == expected
    assert es_mappings.FIELD_TYPES[field] == expected


def test_storage_es_template_timestamp_is_never_ignore_malformed() -> None:
    """Index-wide ignore_malformed is on; a data stream's @timestamp must opt out."""
    settings = es_mappings.settings_component("citysoc")["settings"]["index"]
    assert settings["mapping"]["ignore_malformed"] is True
    props = es_mappings.mappings_component()["mappings"]["properties"]
    assert props["@timestamp"] == {"type": "date", "ignore_malformed": False}


def test_storage_es_template_caseless_uses_a_defined_normalizer() -> None:
    settings = es_mappings.settings_component("citysoc")["settings"]["index"]
    normalizers = settings["analysis"]["normalizer"]
    props = es_mappings.mappings_component()["mappings"]["properties"]
    for field in ("process.executable.caseless", "process.name.caseless", "user.name.caseless"):
        assert _leaf(props, field)["normalizer"] in normalizers


def test_storage_es_template_free_text_fields_are_text() -> None:
    for field in es_mappings.FREE_TEXT_FIELDS:
        assert field in es_mappings.TEXT_FIELDS
    # Nothing the translator sends `term` to may be analyzed text.
    for field, kind in es_mappings.FIELD_TYPES.items():
        if kind in ("text", "match_only_text"):
            assert field in es_mappings.TEXT_FIELDS


def test_storage_es_template_dynamic_strings_are_keywords() -> None:
    m = es_mappings.mappings_component()["mappings"]
    assert m["date_detection"] is False
    last = m["dynamic_templates"][-1]["strings_as_keyword"]
    assert last["match_mapping_type"] == "string"
    assert last["mapping"]["type"] == "keyword"
    templates = {next(iter(t)): next(iter(t.values())) for t in m["dynamic_templates"]}
    names = list(templates)
    # winlog.event_data values are keywords whatever their JSON type (Winlogbeat's choice),
    # and these templates come before the catch-all (the first match wins).
    for json_type in ("string", "long", "double", "boolean"):
        name = f"winlog_event_data_{json_type}_as_keyword"
        assert templates[name]["path_match"] == "winlog.event_data.*"
        assert templates[name]["match_mapping_type"] == json_type
        assert templates[name]["mapping"]["type"] == "keyword"
        assert names.index(name) < names.index("strings_as_keyword")
    for t in templates.values():  # single values only: lists need a recent Elasticsearch
        assert isinstance(t.get("match_mapping_type", ""), str) and isinstance(t.get("path_match", ""), str)


def test_storage_es_template_composes_a_data_stream_with_ilm() -> None:
    tpl = es_mappings.index_template("hcm")
    assert tpl["index_patterns"] == ["hcm-events"]
    assert tpl["data_stream"] == {}
    assert tpl["composed_of"] == ["hcm-events-settings", "hcm-events-mappings"]
    assert tpl["priority"] > 100  # above the built-in logs-*-* template
    settings = es_mappings.settings_component("hcm")["settings"]["index"]
    assert settings["lifecycle"]["name"] == es_mappings.ilm_policy_name("hcm") == "hcm-events"
    assert es_mappings.data_stream_name("hcm") == "hcm-events"


def test_storage_es_ilm_policy_rolls_over_and_deletes_after_retention() -> None:
    policy = es_mappings.ilm_policy(45)
    assert policy["phases"]["hot"]["actions"]["rollover"]["max_age"] == "1d"
    assert policy["phases"]["delete"]["min_age"] == "45d"
    assert policy["phases"]["delete"]["actions"] == {"delete": {}}
    with pytest.raises(ValueError, match="retention_days"):
        es_mappings.ilm_policy(0)


def test_storage_es_mapping_properties_refuses_conflicts() -> None:
    with pytest.raises(ValueError, match="leaf"):
        es_mappings.mapping_properties({"a.b": {"type": "keyword"}, "a.b.c": {"type": "keyword"}})


def test_storage_es_mappings_cli_prints_installable_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert es_mappings._main(["--prefix", "x", "--retention-days", "7"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert set(doc) == {
        "_ilm/policy/x-events",
        "_component_template/x-events-settings",
        "_component_template/x-events-mappings",
        "_index_template/x-events",
    }
    assert doc["_ilm/policy/x-events"]["policy"]["phases"]["delete"]["min_age"] == "7d"


def _all_query_names(q: object) -> set[str]:
    """Query type names in a DSL dict (keys of objects that sit where a query sits)."""
    names: set[str] = set()
    if isinstance(q, dict) and len(q) == 1:
        (name, body), = q.items()
        names.add(name)
        if name == "bool":
            for clause in ("filter", "must", "must_not", "should"):
                for sub in body.get(clause, []):
                    names |= _all_query_names(sub)
    return names


def test_storage_es_goldens_are_queries_the_official_client_knows() -> None:
    """Each golden goes through elasticsearch-py's own DSL classes and comes back equal:
    every query type name exists in the client's model of Elasticsearch 9's Query DSL."""
    from elasticsearch.dsl import Q

    seen: set[str] = set()
    for expected in [g[2] for g in NODE_GOLDENS] + [g[1] for g in PARSED_GOLDENS]:
        assert Q(expected).to_dict() == expected
        seen |= _all_query_names(expected)
    assert {"term", "match", "match_phrase", "multi_match", "wildcard", "range", "exists", "bool", "match_none"} <= seen


def test_storage_es_template_mappings_parse_with_the_official_client() -> None:
    """The mappings go through elasticsearch-py's Mapping model and come back the same
    (it only spells out ``type: object`` on objects): every field type exists there."""
    from elasticsearch.dsl import Mapping

    def strip_objects(node: object) -> object:
        if isinstance(node, dict):
            out = {k: strip_objects(v) for k, v in node.items()}
            if "properties" in out and out.get("type") == "object":
                del out["type"]
            return out
        return node

    source = es_mappings.mappings_component()["mappings"]
    mapping = Mapping()
    mapping._update_from_dict(source)
    assert strip_objects(mapping.to_dict()) == source
