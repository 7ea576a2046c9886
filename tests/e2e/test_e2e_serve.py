"""`citysoc serve` as a user runs it: a real process on loopback ports, fed by real senders
(`logger`, rsyslog's omelasticsearch, HTTP `_bulk`), searched through the API; and killed
with SIGKILL mid-stream to prove every acknowledged event survives."""
from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import httpx
import orjson
import pytest

from citysoc.testing import ServeProcess, free_port

pytestmark = [pytest.mark.timeout(240)]
LOGGER = shutil.which("logger")
RSYSLOGD = shutil.which("rsyslogd") or ("/usr/sbin/rsyslogd" if os.path.exists("/usr/sbin/rsyslogd") else None)
OMES = any(Path(p).exists() for p in ("/usr/lib/x86_64-linux-gnu/rsyslog/omelasticsearch.so",
                                      "/usr/lib/aarch64-linux-gnu/rsyslog/omelasticsearch.so"))


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = ServeProcess(tmp_path_factory.mktemp("serve") / "data")
    srv.data.mkdir(parents=True)
    keys = {"admin": srv.api_key("admin"), "ingest": srv.api_key("ingest"), "viewer": srv.api_key("viewer")}
    srv.start()
    srv.keys = keys
    yield srv
    srv.stop()


@pytest.mark.skipif(LOGGER is None, reason="logger (bsdutils) is not installed")
def test_logger_over_tcp_and_udp_is_parsed_and_searchable(server):
    lines = [f"Failed password for invalid user probe{i} from 10.77.{i // 200}.{i % 200 + 1} port {30000 + i} ssh2"
             for i in range(200)]
    base = [LOGGER, "-n", "127.0.0.1", "-P", str(server.syslog_port), "-t", "sshd", "-p", "auth.info"]
    subprocess.run(base + ["--tcp", "--rfc5424", "--octet-count"], input="\n".join(lines[:100]) + "\n", text=True,
                   check=True, timeout=30)
    subprocess.run(base + ["--udp", "--rfc3164"], input="\n".join(lines[100:]) + "\n", text=True, check=True, timeout=30)
    q = "user.name:probe* AND event.outcome:failure AND source.ip:10.77.0.0/16"
    assert server.wait_count(server.keys["viewer"], q, 200) == 200


def test_bulk_answers_like_elasticsearch_and_commits_before_answering(server):
    body = b"".join([
        b'{"create":{"_index":"logs-gateway.access-default"}}\n',
        orjson.dumps({"@timestamp": "2026-11-25T01:02:03Z", "message": "bulk-ok-1", "host": {"name": "gw-1"}}) + b"\n",
        b'{"index":{}}\n',
        b'{"message": "broken\n',
        b'{"index":{"_index":"syslog"}}\n',
        orjson.dumps({"message": "bulk-ok-2", "host": {"name": "gw-2"}}) + b"\n",
    ])
    r = httpx.post(f"{server.url}/_bulk", content=body, timeout=30,
                   headers={"Authorization": f"ApiKey {server.keys['ingest']}", "Content-Type": "application/x-ndjson"})
    assert r.status_code == 200
    doc = r.json()
    assert doc["errors"] is True
    statuses = [next(iter(i.values()))["status"] for i in doc["items"]]
    assert statuses == [201, 400, 201]
    assert "error" in doc["items"][1]["index"] and doc["items"][1]["index"]["error"]["reason"]
    # Acknowledged means committed: searchable at once, no waiting.
    assert server.count(server.keys["viewer"], 'message:"bulk-ok-1" OR message:"bulk-ok-2"') == 2
    assert server.count(server.keys["viewer"], "event.dataset:gateway.access") >= 1
    # A broken framing line rejects the whole request, as Elasticsearch does.
    r = httpx.post(f"{server.url}/_bulk", content=b"not json\n{}\n", timeout=30,
                   headers={"Authorization": f"ApiKey {server.keys['ingest']}"})
    assert r.status_code == 400 and r.json()["error"]["type"] == "illegal_argument_exception"


def test_ingest_role_cannot_search_and_anonymous_cannot_ingest(server):
    r = httpx.get(f"{server.url}/api/v1/events/count", headers={"Authorization": f"ApiKey {server.keys['ingest']}"})
    assert r.status_code == 403
    r = httpx.post(f"{server.url}/_bulk", content=b'{"index":{}}\n{"a":1}\n')
    assert r.status_code == 401


def test_metrics_show_every_stage_and_source(server):
    text = httpx.get(f"{server.url}/metrics", headers={"Authorization": f"Bearer {server.keys['viewer']}"}).text
    for comp in ("parse", "store", "detect"):
        assert f'citysoc_component_received_total{{component="{comp}",kind="stage"}}' in text
    assert re.search(r'component="syslog-udp:\d+",kind="source"', text)
    assert re.search(r'component="syslog-tcp:\d+",kind="source"', text)


def test_metrics_show_the_state_each_stateful_detector_tracks(server):
    """Failed logins from new sources over syslog TCP: the brute-force detector's tracked
    keys rise on /metrics by at least the number of sources (what its max_keys bounds)."""
    def state() -> dict[str, float]:
        text = httpx.get(f"{server.url}/metrics", headers={"Authorization": f"Bearer {server.keys['viewer']}"}).text
        return {m.group(1): float(m.group(2))
                for m in re.finditer(r'^citysoc_detector_state_keys\{state="([^"]+)"\} (\S+)$', text, re.M)}

    before = state()
    assert "network.brute_force.keys" in before and "sigma.correlation_groups" in before, before
    lines = b"".join(f"<38>1 2026-12-06T10:00:{i:02d}Z srv-1 sshd 42 - - Failed password for invalid user st{i} "
                     f"from 10.88.0.{i + 1} port 4{i:04d} ssh2\n".encode() for i in range(40))
    with socket.create_connection(("127.0.0.1", server.syslog_port)) as s:
        s.sendall(lines)
    deadline = time.monotonic() + 30
    while state()["network.brute_force.keys"] < before["network.brute_force.keys"] + 40:
        assert time.monotonic() < deadline, state()
        time.sleep(0.2)


@pytest.mark.skipif(RSYSLOGD is None or not OMES or LOGGER is None,
                    reason="rsyslogd with omelasticsearch (Debian rsyslog-elasticsearch) and logger are needed")
def test_rsyslog_omelasticsearch_ships_into_bulk(server, tmp_path):
    """rsyslog's own Elasticsearch output, unchanged, with HTTP basic auth carrying an API key."""
    in_port = free_port()
    work = tmp_path / "work"
    work.mkdir()
    conf = tmp_path / "rsyslog.conf"
    conf.write_text(f"""
global(workDirectory="{work}")
module(load="imtcp")
module(load="omelasticsearch")
template(name="ecs" type="list" option.json="on") {{
  constant(value="{{\\"@timestamp\\":\\"")  property(name="timereported" dateFormat="rfc3339")
  constant(value="\\",\\"message\\":\\"")    property(name="msg")
  constant(value="\\",\\"host\\":{{\\"name\\":\\"") property(name="hostname")
  constant(value="\\"}},\\"process\\":{{\\"name\\":\\"") property(name="programname")
  constant(value="\\"}}}}")
}}
input(type="imtcp" port="{in_port}" address="127.0.0.1" ruleset="toes")
ruleset(name="toes") {{
  action(type="omelasticsearch" server="127.0.0.1" serverport="{server.http_port}"
         searchIndex="logs-rsyslog.forwarded-default" template="ecs" bulkmode="on"
         uid="apikey" pwd="{server.keys['ingest']}" errorFile="{tmp_path}/es-errors.json"
         action.resumeRetryCount="-1" queue.type="linkedList" queue.timeoutEnqueue="0")
}}
""")
    proc = subprocess.Popen([RSYSLOGD, "-n", "-f", str(conf), "-i", str(tmp_path / "rsyslog.pid")],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", in_port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        n = 150
        lines = [f"omes-check {i} camera CAM-Q{i % 24:02d} heartbeat" for i in range(n)]
        subprocess.run([LOGGER, "-n", "127.0.0.1", "-P", str(in_port), "--tcp", "-t", "vms", "--rfc3164"],
                       input="\n".join(lines) + "\n", text=True, check=True, timeout=30)
        got = server.wait_count(server.keys["viewer"], "message:omes-check AND event.dataset:rsyslog.forwarded", n, 60)
        errors = (tmp_path / "es-errors.json").read_text() if (tmp_path / "es-errors.json").exists() else ""
        assert got == n, f"rsyslog shipped {got} of {n}; rsyslog errors: {errors[:2000]}"
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_sigkill_mid_stream_loses_no_acknowledged_event(tmp_path):
    """A sender posts `_bulk` batches without pause; the server is killed with SIGKILL;
    after a restart every batch the sender saw acknowledged is stored. At least once:
    a batch in flight at the kill may be stored without its answer reaching the sender,
    and a shipper would resend it (we count those too: they may appear, never vanish)."""
    srv = ServeProcess(tmp_path / "data")
    srv.data.mkdir()
    ingest_key, viewer_key = srv.api_key("ingest"), srv.api_key("viewer")
    srv.start()
    acked: list[int] = []
    attempted: list[int] = []
    stop = threading.Event()

    def sender() -> None:
        client = httpx.Client(timeout=10)
        seq = 0
        while not stop.is_set():
            batch = seq
            body = b"".join(b'{"create":{"_index":"logs-crash.test-default"}}\n'
                            + orjson.dumps({"message": f"crash-test b{batch} n{i}", "labels": {"batch": batch}}) + b"\n"
                            for i in range(200))
            attempted.append(batch)
            try:
                r = client.post(f"{srv.url}/_bulk", content=body, headers={"Authorization": f"ApiKey {ingest_key}"})
                if r.status_code == 200 and not r.json()["errors"]:
                    acked.append(batch)
            except httpx.TransportError:
                return
            seq += 1

    t = threading.Thread(target=sender)
    t.start()
    deadline = time.monotonic() + 30
    while len(acked) < 15 and time.monotonic() < deadline:
        time.sleep(0.05)
    srv.proc.send_signal(signal.SIGKILL)
    srv.proc.wait(timeout=30)
    stop.set()
    t.join(timeout=30)
    assert len(acked) >= 15, "the sender never got going"

    srv.start()  # same data directory
    try:
        missing = [b for b in acked if srv.count(viewer_key, f"labels.batch:{b} AND event.dataset:crash.test") != 200]
        assert missing == [], f"acknowledged batches lost or partial after SIGKILL: {missing}"
        total = srv.count(viewer_key, "event.dataset:crash.test")
        assert len(acked) * 200 <= total <= len(attempted) * 200
    finally:
        srv.stop()


def test_configured_tail_intel_and_yara_reach_alerts_through_serve(tmp_path):
    """What `citysoc.yml` turns on is really running in `serve`: a tailed file is stored
    with its path; an event touching an address from a CSV intel feed and a file event
    naming a webshell in the watched ingest folder both become alerts on the API."""
    logs = tmp_path / "logs"
    ingest_dir = tmp_path / "warehouse-ingest"
    logs.mkdir()
    ingest_dir.mkdir()
    feed = tmp_path / "ioc.csv"
    feed.write_text("type,value,source,confidence\nip,198.51.100.77,cert-vn,90\n")
    access = logs / "gateway-access.log"
    access.write_text("")
    cfg = tmp_path / "citysoc.yml"
    cfg.write_text(f"""
tail:
  - {{name: gateway, paths: ["{logs}/*.log"], format: nginx}}
detection:
  intel: {{feeds: [{{name: cert-vn, location: "{feed}"}}]}}
  yara: {{watch_prefixes: ["{ingest_dir}"]}}
""")
    srv = ServeProcess(tmp_path / "data", config=cfg)
    srv.data.mkdir()
    ingest_key, viewer_key = srv.api_key("ingest"), srv.api_key("viewer")
    srv.start()
    try:
        lines = [f'10.20.{i}.9 - - [25/Nov/2026:08:00:{i:02d} +0700] "GET /api/v1/datasets/{i} HTTP/1.1" 200 512 "-" "etl/1.0"'
                 for i in range(30)]
        with access.open("a") as fh:
            fh.write("\n".join(lines) + "\n")
        q = f'log.file.path:"{access}" AND http.response.status_code:200'
        assert srv.wait_count(viewer_key, q, 30) == 30

        shell = ingest_dir / "report.php"
        shell.write_text("<?php if(isset($_POST['c'])) { eval($_POST['c']); } ?>")
        events = [
            {"@timestamp": "2026-11-25T01:00:00Z", "message": "connection to known bad host",
             "source": {"ip": "10.20.3.4"}, "destination": {"ip": "198.51.100.77", "port": 443},
             "event": {"category": ["network"]}},
            {"@timestamp": "2026-11-25T01:00:01Z", "message": "file created in ingest folder",
             "event": {"category": ["file"], "type": ["creation"], "action": "file-created"},
             "file": {"path": str(shell)}, "host": {"name": "wh-etl-01"}},
        ]
        r = httpx.post(f"{srv.url}/api/v1/ingest", content=b"\n".join(orjson.dumps(e) for e in events),
                       headers={"Authorization": f"ApiKey {ingest_key}"}, timeout=30)
        assert r.status_code == 200 and r.json()["stored"] == 2, r.text
        deadline = time.monotonic() + 30
        rules: set[str] = set()
        while time.monotonic() < deadline:
            page = httpx.get(f"{srv.url}/api/v1/alerts", params={"limit": 100},
                             headers={"Authorization": f"ApiKey {viewer_key}"}, timeout=30).json()
            rules = {a["rule_id"] for a in page["items"]}
            if "intel:cert-vn" in rules and any(r.startswith("yara:") for r in rules):
                break
            time.sleep(0.3)
        assert "intel:cert-vn" in rules, rules
        assert any(r.startswith("yara:") and "webshell" in r for r in rules), rules
    finally:
        srv.stop()
