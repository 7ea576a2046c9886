"""A recorded Filebeat 8.17 session of auth.log lines against a real ``citysoc serve``,
and the same lines over syslog TCP to another: the same parsed events and the same
brute-force alert (issue 13 item 4, its Done-when line).

Filebeat itself cannot be installed here (no registry reachable from this machine ships it:
/work/shared/FACTS.md), so the session is rebuilt from its output code (elastic/beats
``libbeat/outputs/elasticsearch/client.go`` for the ``create`` action with ``_index`` and
``pipeline``, ``filter_path`` on ``POST /_bulk``, every body gzipped at level 1 as its 8.x default; the document fields its log input and the
system module's auth fileset add): start-up calls first, then ``_bulk``.

The lines are real: every line of Elastic's own system.auth pipeline test
(``corpora/ecs-parity/system.auth/test-auth.log``), and its real ``Failed password`` line
repeated as a brute force would repeat it (pid, port and second change, the text does not).
Each line's syslog timestamp is re-stamped to now in the site zone (Filebeat tails a live
auth.log; a February line would fall outside the correlation's five minutes of "now" only
in wall-clock terms, not for the test's question) and its text is kept byte for byte.
"""
from __future__ import annotations

import datetime as dt
import gzip
import json
import socket
import uuid
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest

from citysoc.testing import ServeProcess, corpora_dir, wait_for

CORPUS = corpora_dir() / "ecs-parity" / "system.auth" / "test-auth.log"
CORRELATION = "66476bbc-62e7-4b08-a2f3-26e9cf5abfb2"  # ssh brute force: 10 failures from one source in 5 min
ATTACKER = "89.160.20.156"
SITE_ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
FAILURES = 12
FILEBEAT_HEADERS = {"User-Agent": "Elastic-filebeat/8.17.0 (linux; amd64; 092a7ed; 2024-12-10 00:00:00 +0000 UTC)",
                    "Accept": "application/json", "Content-Type": "application/json"}
COMPARED = ("@timestamp", "message", "host.name", "source.ip", "source.port", "user.name", "event.outcome",
            "event.action", "event.category", "event.type", "event.dataset", "event.kind", "process.name",
            "process.pid", "related.ip", "related.user", "group.name", "group.id", "user.id", "user.effective.name",
            "process.command_line", "system.auth.ssh.event", "system.auth.ssh.method")

pytestmark = pytest.mark.skipif(not CORPUS.exists(), reason=f"corpus file {CORPUS} is missing")


def _session_lines() -> list[str]:
    """The corpus lines, then the brute force, each re-stamped to now (site zone), one second apart."""
    real = [ln for ln in CORPUS.read_text().splitlines() if ln.strip()]
    failed = next(ln for ln in real if "Failed password" in ln and ATTACKER in ln)
    brute = [failed.replace("sshd[5774]", f"sshd[{5774 + i}]").replace("port 29160", f"port {29160 + i}")
             for i in range(FAILURES)]
    start = dt.datetime.now(SITE_ZONE) - dt.timedelta(seconds=len(real) + len(brute) + 5)
    out = []
    for i, line in enumerate(real + brute):
        ts = (start + dt.timedelta(seconds=i)).strftime("%b %e %H:%M:%S")
        out.append(ts + line[15:])  # RFC 3164 timestamps are 15 characters wide
    return out


def _host(line: str) -> str:
    return line[16:].split(" ", 1)[0]


def _filebeat_bulk(lines: list[str]) -> bytes:
    """A ``_bulk`` body as Filebeat 8.17 sends it for the system module's auth fileset."""
    agent_id, ephemeral = str(uuid.uuid4()), str(uuid.uuid4())
    now = dt.datetime.now(dt.timezone.utc)
    parts, offset = [], 0
    for i, line in enumerate(lines):
        host = _host(line)
        parts.append({"create": {"_index": "filebeat-8.17.0", "pipeline": "filebeat-8.17.0-system-auth-pipeline"}})
        parts.append({
            "@timestamp": (now + dt.timedelta(milliseconds=i)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
            "message": line,
            "log": {"offset": offset, "file": {"path": "/var/log/auth.log"}},
            "input": {"type": "log"},
            "event": {"module": "system", "dataset": "system.auth", "timezone": "+07:00"},
            "fileset": {"name": "auth"},
            "service": {"type": "system"},
            "ecs": {"version": "1.12.0"},
            "host": {"name": host, "hostname": host, "architecture": "x86_64", "containerized": False,
                     "os": {"family": "debian", "name": "Debian GNU/Linux", "kernel": "6.1.0-28-amd64",
                            "platform": "debian", "type": "linux", "version": "12 (bookworm)"},
                     "ip": ["10.20.0.15"], "mac": ["52-54-00-12-34-56"]},
            "agent": {"type": "filebeat", "version": "8.17.0", "name": host, "id": agent_id,
                      "ephemeral_id": ephemeral},
        })
        offset += len(line.encode()) + 1
    return b"".join(json.dumps(p, separators=(",", ":")).encode() + b"\n" for p in parts)


def _filebeat_start_up(url: str, headers: dict[str, str]) -> list[tuple[str, str, int]]:
    """The calls libbeat and the fileset loader make on connect (see tests/api/test_es_compat.py)."""
    calls = [("GET", "/", None), ("GET", "/_license?human=false", None), ("GET", "/_ilm/policy/filebeat", None),
             ("PUT", "/_ilm/policy/filebeat", {"policy": {"phases": {"hot": {"actions": {"rollover": {
                 "max_age": "30d", "max_primary_shard_size": "50gb"}}}}}}),
             ("HEAD", "/_index_template/filebeat-8.17.0", None),
             ("PUT", "/_index_template/filebeat-8.17.0", {"index_patterns": ["filebeat-8.17.0"], "data_stream": {},
                                                          "priority": 150, "template": {"settings": {}, "mappings": {}}}),
             ("GET", "/_data_stream/filebeat-8.17.0", None), ("PUT", "/_data_stream/filebeat-8.17.0", None),
             ("GET", "/_ingest/pipeline/filebeat-8.17.0-system-auth-pipeline", None),
             ("PUT", "/_ingest/pipeline/filebeat-8.17.0-system-auth-pipeline", {"processors": []})]
    seen = []
    with httpx.Client(base_url=url, headers={**headers, **FILEBEAT_HEADERS}, timeout=30) as c:
        for method, path, body in calls:
            if body is None:
                r = c.request(method, path)
            else:  # libbeat gzips every body (compression_level 1, its 8.x default)
                r = c.request(method, path, content=gzip.compress(json.dumps(body).encode(), 1),
                              headers={"Content-Type": "application/json", "Content-Encoding": "gzip"})
            seen.append((method, path, r.status_code))
    return seen


def _events(srv: ServeProcess, key: str, n: int) -> list[dict]:
    srv.wait_count(key, "event.dataset:system.auth", n, timeout=60)
    r = srv.get(key, "/api/v1/events/search", q="event.dataset:system.auth", limit=500, sort="asc")
    r.raise_for_status()
    return r.json()["hits"]


def _get(doc: dict, dotted: str):
    if dotted in doc:
        return doc[dotted]
    cur = doc
    for part in dotted.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return None
        cur = cur[part]
    return cur


def _brute_alerts(srv: ServeProcess, key: str) -> list[dict]:
    r = srv.get(key, "/api/v1/alerts", limit=100)
    r.raise_for_status()
    return [a for a in r.json()["items"] if CORRELATION in (a.get("rules") or [a["rule_id"]])]


@pytest.fixture
def two_servers(tmp_path: Path):
    servers = [ServeProcess(tmp_path / name / "data") for name in ("bulk", "syslog")]
    keys = []
    try:
        for s in servers:
            keys.append({role: s.api_key(role) for role in ("ingest", "viewer")})
            s.start()
        yield list(zip(servers, keys))
    finally:
        for s in servers:
            s.stop()


def test_filebeat_bulk_session_parses_and_alerts_like_syslog(two_servers) -> None:
    (fb, fb_keys), (sl, sl_keys) = two_servers
    lines = _session_lines()
    ingest = {"Authorization": f"ApiKey {fb_keys['ingest']}"}

    seen = _filebeat_start_up(fb.url, ingest)
    assert [s for _m, _p, s in seen] == [200, 200, 404, 200, 404, 200, 404, 200, 404, 200], seen
    r = httpx.post(f"{fb.url}/_bulk", params={"filter_path": "errors,items.*.error,items.*.status"},
                   content=gzip.compress(_filebeat_bulk(lines), 1), timeout=60,
                   headers={**ingest, **FILEBEAT_HEADERS, "Content-Encoding": "gzip"})
    assert r.status_code == 200 and r.headers["x-elastic-product"] == "Elasticsearch", r.text
    answer = r.json()
    assert answer["errors"] is False and [i["create"]["status"] for i in answer["items"]] == [201] * len(lines)

    # The same lines as a syslog forwarder sends them: auth.info (<38>), one per line over TCP.
    with socket.create_connection(("127.0.0.1", sl.syslog_port), timeout=10) as s:
        s.sendall(b"".join(b"<38>" + ln.encode() + b"\n" for ln in lines))

    shipped = _events(fb, fb_keys["viewer"], len(lines))
    direct = _events(sl, sl_keys["viewer"], len(lines))
    assert len(shipped) == len(direct) == len(lines), (len(shipped), len(direct), fb.log_tail(), sl.log_tail())
    by_line = lambda evs: {_get(e, "event.original").removeprefix("<38>"): e for e in evs}  # noqa: E731
    s_by, d_by = by_line(shipped), by_line(direct)
    assert set(s_by) == set(d_by) == set(lines)
    diffs = {(ln, f): (_get(s_by[ln], f), _get(d_by[ln], f)) for ln in lines for f in COMPARED
             if _get(s_by[ln], f) != _get(d_by[ln], f)}
    assert diffs == {}
    # The detection fields are really there (not equal because both are missing).
    failed = [e for e in shipped if _get(e, "source.ip") == ATTACKER and _get(e, "event.outcome") == "failure"
              and "Failed password" in _get(e, "event.original")]
    assert len(failed) == FAILURES + 1  # the corpus line itself and its repetitions
    assert all(_get(e, "user.name") == "root" and _get(e, "event.dataset") == "system.auth" for e in failed)
    # ... and the shipper's own fields are kept beside them.
    assert all(_get(e, "agent.type") == "filebeat" and _get(e, "log.file.path") == "/var/log/auth.log"
               and _get(e, "fileset.name") == "auth" for e in shipped)

    fb_alerts = wait_for(lambda: _brute_alerts(fb, fb_keys["viewer"]), timeout=30)
    sl_alerts = wait_for(lambda: _brute_alerts(sl, sl_keys["viewer"]), timeout=30)
    assert len(fb_alerts) == len(sl_alerts) == 1, (fb_alerts, sl_alerts)
    a, b = fb_alerts[0], sl_alerts[0]
    assert (a["rule_id"], a["level"], a["entities"]["source_ip"], a["count"]) == \
           (b["rule_id"], b["level"], b["entities"]["source_ip"], b["count"])
    assert a["entities"]["source_ip"] == ATTACKER and a["level"] == "high"
    print(f"brute force: rule {a['rule_id']} count bulk={a['count']} syslog={b['count']}; "
          f"{len(lines)} events x {len(COMPARED)} fields equal")
