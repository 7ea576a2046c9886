"""The Kibana saved objects are well-formed NDJSON, every reference resolves inside the
file, and every field they name (aggregations, columns, sort, KQL queries, the data
view's time field) is one our Elasticsearch index template maps, with a type that suits
its use (terms on keyword/ip/number, histograms on dates)."""
from __future__ import annotations

import json
import re
from pathlib import Path

from dashboards.kibana.objects import DASHBOARDS, saved_objects, to_ndjson
from storage.es_mappings import FIELD_TYPES, TEXT_FIELDS, data_stream_name

NDJSON = Path(__file__).resolve().parents[2] / "dashboards" / "kibana" / "citysoc.ndjson"
AGGREGATABLE = {"keyword", "ip", "long", "integer", "short", "byte", "float", "double", "date", "boolean",
                "wildcard", "constant_keyword"}
_KQL_FIELD = re.compile(r"([A-Za-z@_][A-Za-z0-9@_.]*)\s*:")


def _objects() -> list[dict]:
    lines = NDJSON.read_text(encoding="utf-8").splitlines()
    assert lines and all(line.strip() for line in lines)
    return [json.loads(line) for line in lines]


def _kql_fields(query: str) -> set[str]:
    return set(_KQL_FIELD.findall(re.sub(r'"[^"]*"', '""', query)))


def test_file_is_what_the_generator_builds() -> None:
    assert NDJSON.read_text(encoding="utf-8") == to_ndjson(saved_objects()), \
        "regenerate: python -m dashboards.kibana.objects > dashboards/kibana/citysoc.ndjson"


def test_objects_are_well_formed_and_references_resolve() -> None:
    objs = _objects()
    ids = [(o["id"], o["type"]) for o in objs]
    assert len(ids) == len(set(ids))
    known = set(ids)
    for o in objs:
        assert {"id", "type", "attributes", "references"} <= set(o), o.get("id")
        assert o["attributes"]["title"].strip()
        for ref in o["references"]:
            assert (ref["id"], ref["type"]) in known, (o["id"], ref)
    assert {d for d, t in ids if t == "dashboard"} == set(DASHBOARDS)
    for o in objs:
        if o["type"] != "dashboard":
            continue
        panels = json.loads(o["attributes"]["panelsJSON"])
        names = {r["name"].split(":", 1)[1] for r in o["references"]}
        assert panels and {p["panelRefName"] for p in panels} == names, o["id"]


def test_every_field_is_in_our_index_template() -> None:
    objs = _objects()
    view = next(o for o in objs if o["type"] == "index-pattern")
    assert view["attributes"]["title"] == data_stream_name("citysoc") + "*"
    assert FIELD_TYPES[view["attributes"]["timeFieldName"]] == "date"
    checked = 0
    for o in objs:
        a = o["attributes"]
        meta = a.get("kibanaSavedObjectMeta", {}).get("searchSourceJSON")
        if meta:
            for f in _kql_fields(json.loads(meta)["query"]["query"]):
                assert f in FIELD_TYPES, (o["id"], f)
                checked += 1
        if o["type"] == "visualization":
            for agg in json.loads(a["visState"])["aggs"]:
                f = agg["params"].get("field")
                if f is None:
                    continue
                assert f in FIELD_TYPES, (o["id"], f)
                assert f not in TEXT_FIELDS and FIELD_TYPES[f] in AGGREGATABLE, (o["id"], f, FIELD_TYPES[f])
                if agg["type"] == "date_histogram":
                    assert FIELD_TYPES[f] == "date"
                checked += 1
        if o["type"] == "search":
            for f in a["columns"] + [s[0] for s in a["sort"]]:
                assert f in FIELD_TYPES, (o["id"], f)
                checked += 1
    assert checked > 60


def test_the_checker_catches_an_unknown_field() -> None:
    assert _kql_fields('event.dataset:(a or b) and host.nam:"x:y"') == {"event.dataset", "host.nam"}
    assert "host.nam" not in FIELD_TYPES
