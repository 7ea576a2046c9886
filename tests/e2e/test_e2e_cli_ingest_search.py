"""Issue 2's promise, as a user runs it: `citysoc ingest` 100k NDJSON events, then
`citysoc search` gives exact counts for field, range, wildcard, boolean and free-text
queries; bad lines are dead-lettered with a reason and lose nothing around them."""
import datetime as dt
import json
import os
import random
import subprocess
import sys

import pytest

CITYSOC = [sys.executable, "-m", "citysoc.cli"]
N = 100_000
WORDS = ["motion detected", "video loss", "tampering alarm", "login ok", "config saved", "firmware check"]


def _run(args, env, **kw):
    return subprocess.run(CITYSOC + args, env=env, capture_output=True, text=True, timeout=600, **kw)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    d = tmp_path_factory.mktemp("e2e")
    rng = random.Random(7)
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    docs = []
    for i in range(N):
        ts = now - dt.timedelta(seconds=rng.randrange(5 * 86400))
        docs.append({
            "@timestamp": ts.isoformat().replace("+00:00", "Z"),
            "host": {"name": f"cam-{rng.randrange(100):03d}"},
            "source": {"ip": f"10.{rng.randrange(4)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"},
            "destination": {"port": rng.randrange(1, 65536)},
            "event": {"outcome": rng.choice(["success", "failure"]), "dataset": "camera.test"},
            "user": {"name": rng.choice(["admin", "operator", "viewer", "root"])},
            "message": f"{rng.choice(WORDS)} seq {i}",
        })
    path = d / "events.ndjson"
    with path.open("w") as fh:
        for doc in docs:
            fh.write(json.dumps(doc) + "\n")
    env = dict(os.environ, CITYSOC_DATA=str(d / "data"))
    res = _run(["ingest", str(path)], env)
    assert res.returncode == 0, res.stderr
    return docs, env, res.stdout, now


def _count(env, query, *extra):
    res = _run(["search", query, "--count", *extra], env)
    assert res.returncode == 0, f"{query}: {res.stderr}"
    return int(res.stdout.strip())


def test_ingest_summary_reports_everything_stored(corpus):
    _docs, _env, stdout, _now = corpus
    assert str(N) in stdout
    assert "│ 0 " in stdout or "0  " in stdout  # no dead letters


@pytest.mark.parametrize("name, query, predicate", [
    ("all", "*", lambda d: True),
    ("field", "host.name:cam-007", lambda d: d["host"]["name"] == "cam-007"),
    ("range", "destination.port:[1000 TO 2000]", lambda d: 1000 <= d["destination"]["port"] <= 2000),
    ("open range", "destination.port:>=60000", lambda d: d["destination"]["port"] >= 60000),
    ("wildcard", "host.name:cam-00*", lambda d: d["host"]["name"].startswith("cam-00")),
    ("boolean", "event.outcome:failure AND NOT (user.name:admin OR user.name:root)",
     lambda d: d["event"]["outcome"] == "failure" and d["user"]["name"] not in ("admin", "root")),
    ("cidr", "source.ip:10.2.0.0/16", lambda d: d["source"]["ip"].startswith("10.2.")),
    ("free text word", "tampering", lambda d: "tampering" in d["message"]),
    ("phrase", '"video loss"', lambda d: "video loss" in d["message"]),
    ("exists", "_exists_:user.name AND message:firmware", lambda d: "firmware" in d["message"]),
])
def test_exact_counts(corpus, name, query, predicate):
    docs, env, _out, _now = corpus
    expected = sum(1 for d in docs if predicate(d))
    assert expected > 0, name
    assert _count(env, query) == expected


def test_time_bounds(corpus):
    docs, env, _out, now = corpus
    cutoff = now - dt.timedelta(days=2)
    expected = sum(1 for d in docs if dt.datetime.fromisoformat(d["@timestamp"].replace("Z", "+00:00")) >= cutoff)
    assert _count(env, "*", "--from", cutoff.isoformat()) == expected


def test_json_output_is_one_document_per_line(corpus):
    _docs, env, _out, _now = corpus
    res = _run(["search", "host.name:cam-042", "--json", "--limit", "5"], env)
    lines = res.stdout.strip().splitlines()
    assert len(lines) == 5
    assert all(json.loads(line)["host"]["name"] == "cam-042" for line in lines)


def test_bad_query_names_the_position(corpus):
    _docs, env, _out, _now = corpus
    res = _run(["search", "host.name:(a OR", "--count"], env)
    assert res.returncode != 0
    assert "invalid query" in res.stderr and "^" in res.stderr


def test_bad_input_is_dead_lettered_and_neighbours_survive(tmp_path):
    env = dict(os.environ, CITYSOC_DATA=str(tmp_path / "data"))
    future = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=400)).isoformat()
    deep = "[" * 5000 + "]" * 5000
    lines = [
        b'{"message": "good 1"}',
        b'{"message": "half a line',                                   # invalid JSON
        b'{"message": "bad utf8 \xff\xfe here"}',                     # invalid UTF-8: kept, tagged
        b'{"message": "' + b"x" * (10 * 1024 * 1024) + b'"}',          # a 10 MB line
        f'{{"nested": {deep}}}'.encode(),                            # deeply nested JSON
        json.dumps({"@timestamp": future, "message": "from the future"}).encode(),
        json.dumps({"@timestamp": "not-a-time", "message": "bad time"}).encode(),
        b'{"message": "good 2"}',
    ]
    path = tmp_path / "bad.ndjson"
    path.write_bytes(b"\n".join(lines) + b"\n")
    res = _run(["ingest", str(path)], env)
    assert res.returncode == 0, res.stderr
    assert _count(env, 'message:"good 1" OR message:"good 2"') == 2
    assert _count(env, "tags:timestamp_future") == 1
    assert _count(env, "tags:timestamp_invalid") == 1
    stored = _count(env, "*")
    dl = _run(["deadletters", "--json", "--limit", "100"], env)
    letters = [json.loads(line) for line in dl.stdout.splitlines()]
    # Every line is either stored or dead-lettered with a reason: nothing vanished.
    assert stored + len(letters) == len(lines)
    assert all(d["reason"] and d["stage"] for d in letters)
    raws = {d["raw_base64"] for d in letters}
    import base64
    assert base64.b64encode(b'{"message": "half a line').decode() in raws
