"""The Lucene parser: exact trees for what Kibana users type, and errors with positions."""
from __future__ import annotations

import threading

import pytest

from core.protocols import QueryError
from storage.query import ast
from storage.query.parse import MAX_DEPTH, MAX_NODES, parse_query

T, P, W, R, E = ast.Term, ast.Phrase, ast.Wildcard, ast.Range, ast.Exists


@pytest.mark.parametrize(
    "text,tree",
    [
        ("", ast.MatchAll()),
        ("   ", ast.MatchAll()),
        ("*", ast.MatchAll()),
        ("host.name:cam-01", T("host.name", "cam-01")),
        ("@timestamp:2026-05-01", T("@timestamp", "2026-05-01")),
        ('message:"failed password"', P("message", "failed password")),
        ('"a \\" b"', P(None, 'a " b')),
        ("failed", T(None, "failed")),
        ("host.name:cam-*", W("host.name", "cam-*")),
        ("user.name:ad?in", W("user.name", "ad?in")),
        (r"file.name:a\*b", T("file.name", "a*b")),
        (r"file.name:a\**", W("file.name", r"a\**")),
        (r"path:C\:\\Windows", T("path", "C:\\Windows")),
        ("x:*", E("x")),
        ("_exists_:user.name", E("user.name")),
        ("destination.port:[1 TO 1024]", R("destination.port", "1", "1024")),
        ("destination.port:{1 TO 1024}", R("destination.port", "1", "1024", False, False)),
        ("destination.port:[1 TO 1024}", R("destination.port", "1", "1024", True, False)),
        ("destination.port:[1024 TO *]", R("destination.port", "1024", None)),
        ("destination.port:[* TO *]", E("destination.port")),
        ("n:>=5", R("n", "5", None, True)),
        ("n:>5", R("n", "5", None, False)),
        ("n:<5", R("n", None, "5", True, False)),
        ("n:<=5", R("n", None, "5", True, True)),
        ("@timestamp:[now-1h TO now]", R("@timestamp", "now-1h", "now")),
        ("@timestamp:>=2026-05-01T10:00:00", R("@timestamp", "2026-05-01T10:00:00", None)),
        ('@timestamp:<"2026-05-01T10:00:00Z"', R("@timestamp", None, "2026-05-01T10:00:00Z", True, False)),
        ("a AND b", ast.And((T(None, "a"), T(None, "b")))),
        ("a b", ast.And((T(None, "a"), T(None, "b")))),
        ("a OR b", ast.Or((T(None, "a"), T(None, "b")))),
        ("a OR b AND c", ast.Or((T(None, "a"), ast.And((T(None, "b"), T(None, "c")))))),
        ("a AND b AND c", ast.And((T(None, "a"), T(None, "b"), T(None, "c")))),
        ("NOT a", ast.Not(T(None, "a"))),
        ("-a +b", ast.And((ast.Not(T(None, "a")), T(None, "b")))),
        ("host.name:(cam-01 OR cam-02)", ast.Or((T("host.name", "cam-01"), T("host.name", "cam-02")))),
        ("host.name:(cam-* -cam-01)", ast.And((W("host.name", "cam-*"), ast.Not(T("host.name", "cam-01"))))),
        ("(a OR b) AND NOT (c OR d)", ast.And((ast.Or((T(None, "a"), T(None, "b"))), ast.Not(ast.Or((T(None, "c"), T(None, "d"))))))),
        ("x:a^2", T("x", "a")),
    ],
)
def test_parse_trees(text, tree):
    assert parse_query(text) == tree


@pytest.mark.parametrize(
    "text,position,fragment",
    [
        ("a AND", 5, "end of query"),
        ("(a", 2, "end of query"),
        ("a)", 1, "unexpected ')'"),
        ("host.name:[1 TO", 15, "end of query"),
        ("x:/re/", 2, "regular expressions"),
        ("x:a~", 2, "fuzzy"),
        ('x:"a b"~2', 2, "proximity"),
        ("a && b", 2, "AND / OR"),
        ("!a", 0, "NOT"),
        ("bad$field:1", 0, "invalid field name"),
        ("a:b:c", 2, "one field per value"),
        ("_exists_:(a b)", 9, "one field name"),
        ("*:x", 0, "invalid field name"),
        ("[1 TO 2]", 0, "needs a field"),
        (">5", 0, "needs a field"),
        ("x..y:1", 0, "invalid field name"),
    ],
)
def test_errors_name_the_position(text, position, fragment):
    with pytest.raises(QueryError) as info:
        parse_query(text)
    assert info.value.position == position
    assert fragment in info.value.message
    assert info.value.query == text
    assert f"position {position}" in str(info.value)


def test_limits():
    ok = " OR ".join(f"f:{i}" for i in range(MAX_NODES // 3))
    assert isinstance(parse_query(ok), ast.Or)
    with pytest.raises(QueryError, match="more than 200 parts"):
        parse_query(" OR ".join(f"f:{i}" for i in range(MAX_NODES)))
    with pytest.raises(QueryError, match="nested more than"):
        parse_query("(" * (MAX_DEPTH + 1) + "a" + ")" * (MAX_DEPTH + 1))
    with pytest.raises(QueryError, match="characters long"):
        parse_query("a" * 20_000)
    assert parse_query('"((((((((((((((((((((((((((("') == P(None, "(" * 27)


def test_parsing_from_many_threads_gives_the_same_trees():
    queries = [f"host.name:cam-{i} AND (x:[{i} TO {i + 5}] OR \"phrase {i}\")" for i in range(50)]
    expected = [parse_query(q) for q in queries]
    results: dict[int, list] = {}

    def work(k: int) -> None:
        results[k] = [parse_query(q) for q in queries for _ in range(5)][::5]

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(r == expected for r in results.values())
