"""End-to-end ingest: syslog TCP, syslog UDP and `_bulk` (socket to committed store), each as
a ratio to the store-only rate measured in the same run, with detection off and with every
engine on, and with the parse stage in-process (``pipeline.workers: 0``, the old model), in
one worker process and in two.

A real `citysoc serve` runs as a subprocess with a fresh data directory per scenario; the
benchmark sends from this process and polls `/metrics` until the store (and, with
detection on, the detect stage) has taken everything. "Every engine on" is our Sigma pack
plus SigmaHQ's `rules/linux` and `rules/network` (from `../shared/corpora/sigma`), the
network detectors, asset health, and a CSV intel feed of 100k IOCs.

Figures per scenario: events/s, the ratio to store-only, CPU seconds of the whole serve
process tree (main + parse workers, read from /proc) and CPU microseconds per event for
each stage (from the stages' own ``cpu_seconds`` counters). ``scale_2_vs_1`` is the
parse+detect stage throughput with two workers over one. The machine is shared: compare
ratios within one run, and read CPU time beside wall time. Not measured here yet:
event-to-alert latency at 80 % rate, the RSS soak, the UDP 0-drop rate (see the issue-14 note).
"""
from __future__ import annotations

import datetime as dt
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import orjson

from storage.sqlite import SQLiteEventStore

ROOT = Path(__file__).resolve().parents[1]
_TICK = os.sysconf("SC_CLK_TCK")


def _corpora() -> Path | None:
    for base in (ROOT.parent / "shared" / "corpora", Path("/work/shared/corpora")):
        if (base / "sigma" / "rules" / "linux").is_dir():
            return base
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _syslog_lines(n: int, tag: str) -> list[bytes]:
    now = dt.datetime.now(dt.timezone.utc)
    out = []
    for i in range(n):
        ts = (now - dt.timedelta(seconds=n - i)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        out.append(f"<38>1 {ts} srv-{i % 50:02d} sshd 4242 - - Failed password for invalid user u{i % 97}{tag} "
                   f"from 10.{i % 4}.{i % 250}.{i % 200 + 1} port {1024 + i % 60000} ssh2".encode())
    return out


def _docs(n: int) -> list[dict]:
    now = dt.datetime.now(dt.timezone.utc)
    return [{
        "@timestamp": (now - dt.timedelta(seconds=n - i)).isoformat().replace("+00:00", "Z"),
        "event": {"dataset": "camera.access", "category": ["authentication"], "outcome": "failure" if i % 3 else "success"},
        "host": {"name": f"cam-{i % 500:03d}"}, "source": {"ip": f"10.{i % 4}.{i % 250}.{i % 200 + 1}"},
        "user": {"name": f"user{i % 97}"}, "message": f"login attempt {i} from the camera network",
    } for i in range(n)]


def _metric(text: str, metric: str, component: str) -> float:
    m = re.search(rf'citysoc_component_{metric}\{{component="{component}",kind="[a-z]+"\}} ([0-9.e+-]+)', text)
    return float(m.group(1)) if m else 0.0


def _tree_cpu(pid: int) -> float:
    """CPU seconds (user+system) of ``pid`` and its live children, from /proc."""
    total = 0.0
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / _TICK
            for task in Path(f"/proc/{p}/task").iterdir():
                kids = (task / "children").read_text().split()
                todo.extend(int(k) for k in kids)
        except (OSError, IndexError, ValueError):
            continue
    return total


def _store_only(tmp: Path, docs: list[dict], name: str) -> float:
    store = SQLiteEventStore(tmp / f"{name}.db")
    t0 = time.perf_counter()
    for i in range(0, len(docs), 1000):
        store.ingest(docs[i:i + 1000])
    rate = len(docs) / (time.perf_counter() - t0)
    store.close()
    return rate


def _config(tmp: Path, *, detection: bool, workers: int, corpora: Path | None) -> Path:
    lines = [f"pipeline: {{workers: {workers}}}"]
    if not detection:
        lines.append("detection: {enabled: false}")
    else:
        feed = tmp / "iocs.csv"
        if not feed.exists():
            rows = ["type,value,source"]
            rows += [f"ip,203.{i // 65536 % 256}.{i // 256 % 256}.{i % 256},bench" for i in range(50_000)]
            rows += [f"domain,bad{i}.example.net,bench" for i in range(50_000)]
            feed.write_text("\n".join(rows) + "\n")
        rules = []
        if corpora is not None:
            rules = [str(corpora / "sigma" / "rules" / "linux"), str(corpora / "sigma" / "rules" / "network")]
        lines.append(f"rules: {orjson.dumps(rules).decode()}")
        lines.append("detection:")
        lines.append("  enabled: true")
        lines.append(f"  intel: {{feeds: [{{name: bench, location: {feed}, format: csv}}]}}")
    path = tmp / f"citysoc-{'on' if detection else 'off'}-{workers}.yml"
    path.write_text("\n".join(lines) + "\n")
    return path


def _scenario(tmp: Path, name: str, cfg: Path, n: int, docs: list[dict]) -> dict:
    data = tmp / f"data-{name}"
    env = dict(os.environ, CITYSOC_DATA=str(data), CITYSOC_CONFIG=str(cfg))
    py = sys.executable
    key = subprocess.run([py, "-m", "citysoc.cli", "apikeys", "create", "bench", "--role", "admin"], env=env,
                         capture_output=True, text=True, check=True, cwd=ROOT).stdout
    key = re.search(r"(csk_\S+)", key).group(1)
    http_port, syslog_port = _free_port(), _free_port()
    log = open(tmp / f"serve-{name}.log", "wb")
    proc = subprocess.Popen([py, "-m", "citysoc.cli", "serve", "--port", str(http_port), "--syslog-port",
                             str(syslog_port), "--log-level", "warning"], env=env, stdout=log, stderr=log, cwd=ROOT)
    out: dict = {}
    client = httpx.Client(base_url=f"http://127.0.0.1:{http_port}", timeout=300)
    detect_on = "enabled: true" in cfg.read_text()

    def metrics() -> str:
        return client.get("/metrics", headers={"Authorization": f"Bearer {key}"}).text

    def wait_done(target: int) -> str:
        deadline = time.monotonic() + 1200
        while True:
            text = metrics()
            stored = _metric(text, "emitted_total", "store")
            detected = _metric(text, "received_total", "detect") if detect_on else stored
            if stored >= target and detected >= target:
                return text
            if time.monotonic() > deadline:
                raise TimeoutError(f"{name}: store reached {stored} of {target}")
            time.sleep(0.05)

    def stage_cpu(before: str, after: str) -> dict:
        return {st: round((_metric(after, "cpu_seconds_total", st) - _metric(before, "cpu_seconds_total", st)) * 1e6 / n, 1)
                for st in ("parse", "store", "detect")}

    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                if client.get("/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise TimeoutError(f"{name}: citysoc serve did not become ready (see {log.name})")
            time.sleep(0.2)
        time.sleep(1.0)  # let the intel feed's first load and the workers settle

        # syslog over TCP, newline framing, one connection.
        payload = b"\n".join(_syslog_lines(n, "t")) + b"\n"
        m0, c0, t0 = metrics(), _tree_cpu(proc.pid), time.perf_counter()
        with socket.create_connection(("127.0.0.1", syslog_port)) as s:
            s.sendall(payload)
        m1 = wait_done(n)
        wall = time.perf_counter() - t0
        out["syslog_tcp"] = {"events_per_s": round(n / wall), "cpu_s": round(_tree_cpu(proc.pid) - c0, 2),
                             "cpu_us_per_event": stage_cpu(m0, m1)}

        # _bulk, batches of 1,000, acknowledged after commit.
        bodies = []
        for i in range(0, n, 1000):
            body = bytearray()
            for d in docs[i:i + 1000]:
                body += b'{"create":{"_index":"logs-camera.access-default"}}\n' + orjson.dumps(d) + b"\n"
            bodies.append(bytes(body))
        c0, t0 = _tree_cpu(proc.pid), time.perf_counter()
        for body in bodies:
            r = client.post("/_bulk", content=body, headers={"Authorization": f"ApiKey {key}",
                                                              "Content-Type": "application/x-ndjson"})
            r.raise_for_status()
            assert not r.json()["errors"], r.text[:500]
        acked = time.perf_counter() - t0
        m2 = wait_done(2 * n)
        wall = time.perf_counter() - t0
        out["bulk"] = {"events_per_s": round(n / acked), "events_per_s_through_detect": round(n / wall),
                       "cpu_s": round(_tree_cpu(proc.pid) - c0, 2), "cpu_us_per_event": stage_cpu(m1, m2)}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
    return out


def run(quick: bool) -> dict:
    n = 20_000 if quick else 100_000
    corpora = _corpora()
    figures: dict = {"events": n, "sigmahq_rules": corpora is not None, "intel_iocs": 100_000}
    docs = _docs(n)
    scenarios = [("off-w0", False, 0), ("off-w2", False, 2), ("on-w0", True, 0), ("on-w1", True, 1),
                 ("on-w2", True, 2)]
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        before = _store_only(tmp, docs, "baseline-a")
        results = {}
        for name, detection, workers in scenarios:
            results[name] = _scenario(tmp, name, _config(tmp, detection=detection, workers=workers, corpora=corpora),
                                      n, docs)
        after = _store_only(tmp, docs, "baseline-b")
    store_rate = (before + after) / 2
    figures["store_only_events_per_s"] = {"before": round(before), "after": round(after), "mean": round(store_rate)}
    for name, r in results.items():
        for path in ("syslog_tcp", "bulk"):
            r[path]["vs_store_only"] = round(r[path]["events_per_s"] / store_rate, 3)
    figures["scenarios"] = results
    # Parse+detect scaling: CPU-bound stages' throughput, two workers over one.
    w1, w2 = results["on-w1"], results["on-w2"]
    figures["scale_2_vs_1"] = {p: round(w2[p]["events_per_s"] / w1[p]["events_per_s"], 2) for p in ("syslog_tcp", "bulk")}
    return figures


if __name__ == "__main__":
    import json

    print(json.dumps(run("--quick" in sys.argv), indent=2))
