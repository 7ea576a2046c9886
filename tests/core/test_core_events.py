"""ECS helpers: nested/dotted access and timestamp parsing pinned."""
import datetime as dt

import pytest

from core.events import (
    TimestampError,
    expand_dots,
    flatten,
    get_field,
    has_field,
    new_event,
    parse_timestamp,
    set_field,
    to_utc_iso,
)


def test_get_field_nested_and_literal_dotted_keys():
    ev = {"host": {"name": "cam-01"}, "source.ip": "10.0.0.1", "a": {"b.c": {"d": 1}}}
    assert get_field(ev, "host.name") == "cam-01"
    assert get_field(ev, "source.ip") == "10.0.0.1"
    assert get_field(ev, "a.b.c.d") == 1
    assert get_field(ev, "host.ip") is None
    assert get_field(ev, "host.name.x", "dflt") == "dflt"


def test_has_field_sees_none_values():
    ev = {"user": {"name": None}}
    assert has_field(ev, "user.name")
    assert not has_field(ev, "user.id")


def test_set_field_creates_and_replaces_scalars():
    ev = {"host": "flat-string"}
    set_field(ev, "host.name", "x")
    assert ev == {"host": {"name": "x"}}


def test_expand_dots_merges_both_forms():
    doc = {"host.name": "a", "host": {"ip": ["1.2.3.4"]}, "event": {"dataset.x": 1}}
    assert expand_dots(doc) == {"host": {"name": "a", "ip": ["1.2.3.4"]}, "event": {"dataset": {"x": 1}}}


def test_flatten_round_trips_with_expand():
    doc = {"a": {"b": 1, "c": {"d": [1, 2]}}, "e": "x", "empty": {}}
    flat = flatten(doc)
    assert flat == {"a.b": 1, "a.c.d": [1, 2], "e": "x", "empty": {}}
    assert expand_dots(flat) == doc


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("2024-03-01T10:00:00Z", "2024-03-01T10:00:00.000Z"),
        ("2024-03-01T17:00:00+07:00", "2024-03-01T10:00:00.000Z"),
        ("2024-03-01 10:00:00.123456789", "2024-03-01T10:00:00.123Z"),
        (1709287200, "2024-03-01T10:00:00.000Z"),
        (1709287200123, "2024-03-01T10:00:00.123Z"),
        ("1709287200", "2024-03-01T10:00:00.000Z"),
    ],
)
def test_parse_timestamp_forms(raw, expected):
    assert to_utc_iso(parse_timestamp(raw)) == expected


@pytest.mark.parametrize("raw", ["", "yesterday", None, True, "2024-13-45T00:00:00Z", 10**20])
def test_parse_timestamp_rejects(raw):
    with pytest.raises(TimestampError):
        parse_timestamp(raw)


def test_new_event_sets_ecs_basics():
    ev = new_event("line", dataset="camera.hikvision")
    assert ev["event"]["original"] == "line"
    assert ev["event"]["module"] == "camera"
    assert ev["@timestamp"].endswith("Z")
    parse_timestamp(ev["event"]["ingested"])
    assert isinstance(parse_timestamp(ev["@timestamp"]), dt.datetime)
