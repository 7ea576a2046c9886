"""AST -> SQL: analyst text only ever travels as parameters; date math and wildcards."""
from __future__ import annotations

import datetime as dt
import json
import sqlite3

import pytest

from core.protocols import QueryError
from storage.query import ast
from storage.query.parse import parse_query
from storage.query.sql import compile_query, json_path, lucene_wildcard_to_glob, resolve_datemath

UTC = dt.timezone.utc
NOW = dt.datetime(2026, 5, 13, 10, 17, 42, 123000, tzinfo=UTC)  # a Wednesday

HOSTILE = [
    "host.name:\"x' OR 1=1 --\"",
    "user.name:\"'; DROP TABLE ev; --\"",
    "zz_custom.field:\"); DELETE FROM ev; --\"",
    "\"') UNION SELECT 1 --\"",
    "tags:*'--*",
    "n:[\"1' OR 1\" TO 2]",
    "message:\"x\\\" OR 1=1\"",
    "qqq_unlikely_word_with_sql",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_no_analyst_text_in_sql(text):
    frag = compile_query(parse_query(text), now=NOW)
    sql = frag.where.lower()
    for bad in ("'1'", "drop", "delete", "union", "--", "or 1", "qqq", "custom", "1=1"):
        assert bad not in sql, (bad, frag.where)
    assert frag.where.count("?") == len(frag.params)


def test_field_names_become_paths_or_our_columns():
    frag = compile_query(parse_query("host.name:a AND zz.y_1:b"), now=NOW)
    assert "host_name" in frag.where and "zz" not in frag.where
    assert '$."zz"."y_1"' in frag.params
    assert json_path("@timestamp") == '$."@timestamp"'
    with pytest.raises(QueryError):
        json_path('a"b')
    with pytest.raises(QueryError):
        compile_query(ast.Term('x" OR 1', "a"))


def test_fts_table_name_is_checked():
    frag = compile_query(parse_query("word"), now=NOW)
    assert frag.uses_fts and "{fts}" in frag.where
    assert "fts_20260501" in frag.bind("fts_20260501")
    with pytest.raises(ValueError):
        frag.bind("fts; DROP TABLE x")


@pytest.mark.parametrize(
    "pattern,glob",
    [("cam-*", "cam-*"), ("a?c", "a?c"), (r"a\*b", "a[*]b"), (r"a\?*", "a[?]*"), ("[x]*", "[[]x]*"), (r"a\\*", "a\\*")],
)
def test_wildcard_to_glob(pattern, glob):
    assert lucene_wildcard_to_glob(pattern) == glob


@pytest.mark.parametrize(
    "text,round_up,expected",
    [
        ("now", False, "2026-05-13T10:17:42.123000"),
        ("now-1h", False, "2026-05-13T09:17:42.123000"),
        ("now+15m", False, "2026-05-13T10:32:42.123000"),
        ("now-1d/d", False, "2026-05-12T00:00:00"),
        ("now/d", True, "2026-05-13T23:59:59.999000"),
        ("now/w", False, "2026-05-11T00:00:00"),
        ("now-1M/M", False, "2026-04-01T00:00:00"),
        ("now-1y", False, "2025-05-13T10:17:42.123000"),
        ("2026-01-31||+1M", False, "2026-02-28T00:00:00"),
        ("2026-05-01T10:00:00Z", False, "2026-05-01T10:00:00"),
        ("2026-05-01", False, "2026-05-01T00:00:00"),
        ("1777629600000", False, "2026-05-01T10:00:00"),
    ],
)
def test_date_math(text, round_up, expected):
    assert resolve_datemath(text, NOW, round_up=round_up).replace(tzinfo=None).isoformat() == expected


def test_bad_dates_are_query_errors():
    for q in ("@timestamp:[yesterday TO now]", "@timestamp:>now-1x", "@timestamp:banana"):
        with pytest.raises(QueryError, match="not a date"):
            compile_query(parse_query(q), now=NOW)


def test_compiled_sql_runs_against_the_schema():
    """Every kind of node compiles to SQL SQLite accepts on a partition-shaped table, and
    selects the one stored event exactly when the query describes it."""
    from storage.query.sql import PROMOTED
    from storage.sqlite import register_functions

    cols = ", ".join(f"{c.name}" for c in PROMOTED.values() if c.kind != "ts")
    db = sqlite3.connect(":memory:")
    register_functions(db)
    db.execute(f"CREATE TABLE ev (id INTEGER PRIMARY KEY, ts INTEGER, {cols}, doc TEXT)")
    db.execute("CREATE VIRTUAL TABLE fts USING fts5(message, original, content='')")
    ts = int((NOW - dt.timedelta(minutes=30)).timestamp() * 1000)
    doc = {"message": "a b", "host": {"name": "x", "ip": "1.2.3.4"}, "destination": {"port": 22}, "n": 2,
           "flag": True, "b": {"c": "other"}}
    db.execute("INSERT INTO ev (id, ts, host_name, host_ip, destination_port, doc) VALUES (1, ?, 'x', '1.2.3.4', 22, ?)",
               (ts, json.dumps(doc)))
    db.execute("INSERT INTO fts (rowid, message, original) VALUES (1, 'a b', '')")
    expected = {
        "*": 1, "a": 1, '"a b"': 1, "a*": 1, "*a*": 1, "message:x*": 0, "host.name:x": 1, "destination.port:22": 1,
        "destination.port:x": 0, "n:[1 TO 2]": 1, "n:[a TO b]": 0, "host.name:[a TO b]": 0, "host.name:[w TO y]": 1,
        "@timestamp:[now-1h TO now]": 1, "@timestamp:[now-10m TO now]": 0, "_exists_:x": 0, "_exists_:host.name": 1,
        "flag:true": 1, "flag:false": 0, "host.ip:1.2.*": 1, "destination.port:2*": 1, "NOT (a OR b:c)": 0,
        "NOT b:c": 1, "n:>=2.5": 0, "n:>=1.5": 1, "message:\"x\"": 0,
    }
    got = {}
    for q in expected:
        frag = compile_query(parse_query(q), now=NOW)
        got[q] = db.execute(f"SELECT count(*) FROM ev WHERE {frag.bind('fts')}", frag.params).fetchone()[0]
    assert got == expected


def test_free_text_terms_share_one_fts_query():
    frag = compile_query(parse_query('tamper AND "night mode" AND host.name:cam-01'), now=NOW)
    assert frag.where.count("MATCH") == 1
    assert '("tamper") AND ("night mode")' in frag.params
    frag = compile_query(parse_query("a OR message:b*"), now=NOW)
    assert frag.where.count("MATCH") == 1 and '("a") OR (message : "b" *)' in frag.params


def test_intersect_for_counts_needs_no_arrays_and_the_event_table():
    q = parse_query("host.name:cam-01 AND event.outcome:failure AND destination.port:22 AND rtsp")
    plain = compile_query(q, now=NOW, multi_columns=frozenset(), intersect=False)
    assert "INTERSECT" not in plain.where
    inter = compile_query(q, now=NOW, multi_columns=frozenset(), intersect=True)
    assert inter.where.count("INTERSECT") == 2 and inter.where.count("?") == len(inter.params)
    with pytest.raises(ValueError, match="ev_table"):
        inter.bind("fts_1")
    assert "FROM ev_1 WHERE" in inter.bind("fts_1", "ev_1")
    # a column holding arrays on that day, or unknown array state, keeps the JSON fallback
    assert "INTERSECT" not in compile_query(q, now=NOW, multi_columns=None, intersect=True).where
    some = compile_query(q, now=NOW, multi_columns=frozenset({"host_name"}), intersect=True)
    assert some.where.count("INTERSECT") == 1 and "json_each" in some.where
