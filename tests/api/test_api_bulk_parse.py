"""The Elasticsearch `_bulk` body splitter: framing errors reject the request, documents do not."""
import pytest

from api.routers.ingest import BulkError, _dataset_from_index, parse_bulk_body, split_ingest_body


def test_index_and_create_pairs_with_default_index():
    body = b'{"index":{}}\n{"message":"a"}\n{"create":{"_index":"logs-nginx.access-default","_id":"7"}}\n{"message":"b"}\n'
    items = parse_bulk_body(body, "camera")
    assert [(a, m["_index"], s) for a, m, s in items] == [
        ("index", "camera", b'{"message":"a"}'),
        ("create", "logs-nginx.access-default", b'{"message":"b"}'),
    ]
    assert items[1][1]["_id"] == "7"


def test_delete_has_no_source_line_and_blank_lines_are_skipped():
    body = b'\n{"delete":{"_index":"x","_id":"1"}}\n\n{"index":{"_index":"x"}}\n\n{"a":1}\n'
    items = parse_bulk_body(body, None)
    assert [(a, s) for a, _m, s in items] == [("delete", None), ("index", b'{"a":1}')]


def test_bad_document_is_kept_for_per_item_failure():
    items = parse_bulk_body(b'{"index":{}}\n{not json\n', "x")
    assert items[0][2] == b"{not json"


@pytest.mark.parametrize("body, fragment", [
    (b'garbage\n{"a":1}\n', "line [1]"),
    (b'{"index":{}, "create":{}}\n{"a":1}\n', "single action"),
    (b'{"upsert":{}}\n{"a":1}\n', "[upsert]"),
    (b'{"index":{}}\n', "no document line"),
    (b'{"index":[]}\n{}\n', "metadata must be an object"),
])
def test_framing_errors_reject_whole_request(body, fragment):
    with pytest.raises(BulkError) as exc:
        parse_bulk_body(body, None)
    assert fragment in str(exc.value)


def test_dataset_from_data_stream_names():
    assert _dataset_from_index("logs-nginx.access-default") == "nginx.access"
    assert _dataset_from_index("logs-camera-hikvision-prod") == "camera-hikvision"
    assert _dataset_from_index("syslog") == "syslog"
    assert _dataset_from_index(None) is None


def test_split_ingest_body_ndjson_keeps_bytes_and_array_splits():
    assert split_ingest_body(b'{"a":1}\n\n{bad\n') == [b'{"a":1}', b"{bad"]
    assert split_ingest_body(b' [{"a":1},{"b":2}]') == [b'{"a":1}', b'{"b":2}']


def test_split_array_keeps_element_bytes_skips_strings_and_counts_before_building():
    from api.bodies import TooManyItems, split_array

    assert split_array(b'[{"a":"x,]}"} , [1,2],"s\\"," ]', 10) == [b'{"a":"x,]}"}', b"[1,2]", b'"s\\","']
    assert split_array(b"[]", 10) == []
    with pytest.raises(TooManyItems):
        split_array(b"[" + b",".join([b"0"] * 11) + b"]", 10)
    for bad in (b"[1,,2]", b"[1,2", b"[1,2]x", b"[1,]", b"[1}", b"[" + b"[" * 70 + b"]" * 70 + b"]"):
        with pytest.raises(ValueError):
            split_array(bad, 10)


def test_inflight_budget_refuses_past_its_limit_and_releases():
    from fastapi import HTTPException

    from api.bodies import BodyLease, InflightBudget

    budget = InflightBudget(100)
    a, b = BodyLease(budget), BodyLease(budget)
    a.take(80)
    with pytest.raises(HTTPException) as exc:
        b.take(30)
    assert exc.value.status_code == 429 and exc.value.headers["Retry-After"] == "1"
    a.release()
    b.take(30)
    assert budget.used == 30


def test_bulk_item_limit_stops_counting_early():
    from api.bodies import TooManyItems

    with pytest.raises(TooManyItems):
        parse_bulk_body(b'{"index":{}}\n{}\n' * 11, None, max_items=10)
