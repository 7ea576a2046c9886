"""End-to-end ingest: syslog TCP, syslog UDP and `_bulk` (socket to committed store), each as
a ratio to the store-only rate measured in the same run, with detection off and with every
engine on, and with the parse stage in-process (``pipeline.workers: 0``, the old model), in
one worker process and in two, and with two workers and the stateful detectors in two
detector processes (``pipeline.detector_processes: 2``, scenario ``on-w2-dp2``).

A real `citysoc serve` runs as a subprocess with a fresh data directory per scenario; the
benchmark sends from this process and polls `/metrics` until the store (and, with
detection on, the detect stage) has taken everything. "Every engine on" is our Sigma pack
plus SigmaHQ's `rules/linux` and `rules/network` (from `../shared/corpora/sigma`), the
network detectors, asset health, and a CSV intel feed of 100k IOCs.

Figures per scenario: events/s, the ratio to store-only, CPU seconds of the whole serve
process tree (main + parse workers, read from /proc) and CPU microseconds per event for
each stage (from the stages' own ``cpu_seconds`` counters). ``scale_2_vs_1`` is the end-to-end
rate with two workers over one; ``worker_stage`` measures the worker stage alone (parse,
asset attribution and Sigma matching in 1 and 2 worker processes, no server beside them),
which is the parse+detect work the workers take: its ``scale_2_vs_1`` is issue 14's aim. The machine is shared: compare
ratios within one run, and read CPU time beside wall time.

Syslog UDP cannot push back, so its figure is the highest paced rate (3 s steps, 8 s
without ``--quick``, doubling from 500 ev/s) at which the UDP source counted 0 drops (our
queue and the kernel's, from ``/proc/net/udp``) and the store took every datagram; its
ratio is that rate over store-only. The bounded queues absorb a burst shorter than their
capacity, so a step also counts only if the server had stored everything within max(1 s,
a quarter of the step) of the last datagram (``drain_s``): a rate it only survived by
queueing is not a rate it sustains.

With every engine on and two workers (the default model), a paced phase sends the soak
mix over syslog TCP at 80 % of that mix's own highest rate (``soak_mix_max_events_per_s``:
40,000 of its lines sent at once, to stored and detected; its markers' alerts make it
dearer than the plain syslog lines, so 80 % of the plain rate would overload it and
measure queueing), for ``soak_seconds`` (``--soak-seconds``;
default 20 s with ``--quick``, 60 s otherwise: the issue asks 600 s, run
``python -m bench.run ingest_paths --soak-seconds 600`` for that). One line in 50 comes
from an address of the intel feed, so each of those makes its own alert: event-to-alert
latency is the alert's ``created_at`` (stamped by the alert recorder) minus the wall time
the line was sent, p50/p95 over all of them. RSS (serve and its parse workers, from
``/proc``) is sampled every second: first and last after a 10 % warm-up, maximum, and the
least-squares slope in MB per minute (flat: near 0), over the soak after the warm-up and over
its second half: SQLite's page caches (256 MiB for the writer) fill during the first
minutes and detector state holds the sources of its last two windows (each marker line is a
new source), so the second half says whether anything grows without bound. The main process's anonymous memory is reported beside it,
and the detectors' tracked state keys (``/metrics``) with the RSS growth per key over the
second half: about 2 KB per key (12-06b) is that bounded state filling.

``aims`` compares with issue 14's aims and says by how much each is missed.
"""
from __future__ import annotations

import datetime as dt
import os
import sqlite3
import statistics
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
from citysoc.testing import corpora_dir

ROOT = Path(__file__).resolve().parents[1]
_TICK = os.sysconf("SC_CLK_TCK")


def _corpora() -> Path | None:
    base = corpora_dir()
    return base if (base / "sigma" / "rules" / "linux").is_dir() else None


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


def _tree_rss_mb(pid: int) -> float:
    """Resident memory (MB) of ``pid`` and its live children, from /proc."""
    total = 0
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
                    break
            for task in Path(f"/proc/{p}/task").iterdir():
                todo.extend(int(k) for k in (task / "children").read_text().split())
        except (OSError, IndexError, ValueError):
            continue
    return total / 1024


def _anon_mb(pid: int) -> float:
    """Anonymous resident memory (MB) of ``pid`` alone: the Python heap and SQLite's page
    caches (malloc'd), as opposed to file pages mapped from the databases."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Anonymous:"):
                return int(line.split()[1]) / 1024
    except (OSError, IndexError, ValueError):
        pass
    return 0.0


def _slope_per_min(samples: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, MB) samples, in MB per minute."""
    if len(samples) < 2:
        return 0.0
    mt = statistics.fmean(t for t, _ in samples)
    mv = statistics.fmean(v for _, v in samples)
    den = sum((t - mt) ** 2 for t, _ in samples)
    return 60 * sum((t - mt) * (v - mv) for t, v in samples) / den if den else 0.0


def _pct(values: list[float], q: float) -> float:
    vals = sorted(values)
    return vals[min(len(vals) - 1, int(q * len(vals)))]


def _iso_epoch(ts: str) -> float:
    return dt.datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()


def _marker_ip(j: int) -> str:
    """The ``j``-th address of the bench intel feed (see ``_config``)."""
    return f"203.{j // 65536 % 256}.{j // 256 % 256}.{j % 256}"


def _paced_line(i: int, ip: str) -> bytes:
    ts = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return (f"<38>1 {ts} srv-{i % 50:02d} sshd 4242 - - Failed password for invalid user p{i % 97} "
            f"from {ip} port {1024 + i % 60000} ssh2\n").encode()


def _stage_rate(tmp: Path, lines: list[bytes], workers: int, corpora: Path | None) -> dict:
    """The worker stage alone (parse + attribute + Sigma match in ``workers`` processes, the
    rules of "every engine on"), no server: records/s and the worker CPU per record. This is
    what adding a worker process scales; end to end, the server process shares the cores."""
    import asyncio
    import functools

    from citysoc.detection import SIGMA_PACK
    from citysoc.wiring import worker_stage
    from core.protocols import RawRecord
    from core.workers import ParseWorkers
    from detections.sigma import load_rules

    folders = [str(SIGMA_PACK)]
    if corpora is not None:
        folders += [str(corpora / "sigma" / "rules" / "linux"), str(corpora / "sigma" / "rules" / "network")]
    cache = tmp / "stage-plans"
    load_rules(folders, cache_dir=cache)
    pool = ParseWorkers(functools.partial(worker_stage, folders, str(cache), str(tmp / "no-assets.db")), workers)
    recs = [RawRecord(line, source="syslog-tcp:bench", meta={"log.source.address": "127.0.0.1:5000"}) for line in lines]
    step = 500

    async def go() -> tuple[float, float]:
        sem = asyncio.Semaphore(2 * workers)  # as the pipeline keeps 2 calls per worker in flight

        async def one(part: list[RawRecord]) -> float:
            async with sem:
                return (await pool.parse(part)).cpu_seconds

        t0 = time.perf_counter()
        cpu = sum(await asyncio.gather(*(one(recs[i:i + step]) for i in range(0, len(recs), step))))
        return time.perf_counter() - t0, cpu

    pool.start()
    try:
        asyncio.run(go())  # warm: lazy rule compiles, route caches
        wall, cpu = asyncio.run(go())
    finally:
        pool.stop()
    return {"records_per_s": round(len(recs) / wall), "worker_cpu_us_per_record": round(cpu * 1e6 / len(recs), 1)}


def _store_only(tmp: Path, docs: list[dict], name: str) -> float:
    store = SQLiteEventStore(tmp / f"{name}.db")
    t0 = time.perf_counter()
    for i in range(0, len(docs), 1000):
        store.ingest(docs[i:i + 1000])
    rate = len(docs) / (time.perf_counter() - t0)
    store.close()
    return rate


def _config(tmp: Path, *, detection: bool, workers: int, corpora: Path | None, detector_processes: int = 0) -> Path:
    lines = [f"pipeline: {{workers: {workers}, detector_processes: {detector_processes}}}"]
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
    path = tmp / f"citysoc-{'on' if detection else 'off'}-{workers}-{detector_processes}.yml"
    path.write_text("\n".join(lines) + "\n")
    return path


def _scenario(tmp: Path, name: str, cfg: Path, n: int, docs: list[dict], *, quick: bool,
              paced_s: float | None) -> dict:
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
        total = 2 * n
        out["syslog_udp"], total = _udp_steps(metrics, syslog_port, total, quick, detect_on)
        if paced_s:
            mix_n = 10_000 if quick else 40_000
            mix_rate, mk = _mix_max(wait_done, syslog_port, total, mix_n, 0)
            total += mix_n
            out["soak_mix_max_events_per_s"] = round(mix_rate)
            out["paced_80pct"] = _paced(metrics, wait_done, proc.pid, data, syslog_port, total, 0.8 * mix_rate,
                                        paced_s, mk0=mk)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
    return out


def _udp_steps(metrics, port: int, total: int, quick: bool, detect_on: bool) -> tuple[dict, int]:
    """Paced UDP at doubling rates until a step loses a datagram; returns the figures and
    the new count of events the server should have stored."""
    comp = f"syslog-udp:{port}"
    step_s = 3.0 if quick else 8.0  # the bounded queues absorb shorter bursts: a step must outlast them
    steps = []
    best = 0
    rate = 500
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        while rate <= 64_000:
            m = int(rate * step_s)
            lines = _syslog_lines(m, f"u{rate}")
            before = metrics()
            dropped0 = _metric(before, "dropped_total", comp)
            t0 = time.perf_counter()
            sent = 0
            tick = 0.01
            while sent < m:
                due = min(m, int((time.perf_counter() - t0) * rate) + 1)
                while sent < due:
                    s.sendto(lines[sent], ("127.0.0.1", port))
                    sent += 1
                time.sleep(tick)
            send_s = time.perf_counter() - t0
            t_sent = time.perf_counter()
            # wait until every datagram is stored or counted as dropped (and detected, when on)
            deadline = time.monotonic() + 120
            stable, last = 0, -1.0
            while True:
                text = metrics()
                stored = _metric(text, "emitted_total", "store")
                dropped = _metric(text, "dropped_total", comp) - dropped0
                detected = _metric(text, "received_total", "detect") if detect_on else stored
                if stored + dropped >= total + m and detected >= stored:
                    break
                stable = stable + 1 if stored == last else 0
                last = stored
                if stable > 100 or time.monotonic() > deadline:  # 5 s without progress: the rest was lost
                    break
                time.sleep(0.05)
            drain_s = time.perf_counter() - t_sent
            lost = int(total + m - stored)
            total = int(stored)
            steps.append({"rate": rate, "sent": m, "send_s": round(send_s, 2), "dropped": int(dropped),
                          "not_stored": lost, "drain_s": round(drain_s, 2)})
            if dropped > 0 or lost > 0:
                break
            if drain_s > max(1.0, step_s / 4):  # 0 drops only because the queues held the backlog
                break
            best = rate
            rate *= 2
    return {"highest_rate_0_drops": best, "events_per_s": best, "steps": steps,
            "rule": "0 drops and stored within max(1 s, step/4) of the last datagram"}, total


def _state_keys(text: str) -> float:
    """The stateful detectors' tracked keys, all together (``citysoc_detector_state_keys``)."""
    return sum(float(v) for v in re.findall(r'^citysoc_detector_state_keys\{[^}]*\} (\S+)$', text, re.M))


def _mix_line(i: int, mk: int) -> tuple[bytes, str | None]:
    """Line ``i`` of the soak mix and the marker address it carries (one line in 50), if any."""
    if i % 50 == 0:
        ip = _marker_ip(mk)
        return _paced_line(i, ip), ip
    return _paced_line(i, f"10.{i % 4}.{i % 250}.{i % 200 + 1}"), None


def _mix_max(wait_done, port: int, total: int, n: int, mk0: int) -> tuple[float, int]:
    """The soak mix's own highest rate: ``n`` of its lines (each marker a new intel alert)
    sent at once over syslog TCP, to stored and detected. The soak paces at 80 % of this,
    not of the plain syslog rate: the mix's alerts cost more than its events."""
    payload = bytearray()
    mk = mk0
    for i in range(n):
        line, ip = _mix_line(i, mk)
        mk += ip is not None
        payload += line
    t0 = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(payload)
    wait_done(total + n)
    return n / (time.perf_counter() - t0), mk


def _paced(metrics, wait_done, pid: int, data: Path, port: int, total: int, rate: float, seconds: float,
           mk0: int = 0) -> dict:
    """Syslog TCP at ``rate`` for ``seconds``: event-to-alert latency of the intel markers
    (one line in 50, addresses from ``mk0`` on) and the RSS of the serve tree over the run,
    beside the detectors' tracked state keys."""
    sent_at: dict[str, float] = {}
    rss: list[tuple[float, float]] = []
    anon: list[tuple[float, float]] = []  # the main process's anonymous memory (heap, SQLite caches)
    keys: list[tuple[float, float]] = []  # tracked detector state keys (citysoc_detector_state_keys)
    i = 0
    mk = mk0
    carry = 0.0
    tick = 0.02
    with socket.create_connection(("127.0.0.1", port)) as s:
        t0 = time.perf_counter()
        next_rss = 0.0
        while (el := time.perf_counter() - t0) < seconds:
            carry += rate * tick
            k, carry = int(carry), carry - int(carry)
            chunk = bytearray()
            now = time.time()
            for _ in range(k):
                line, ip = _mix_line(i, mk)
                if ip is not None:
                    mk += 1
                    sent_at[ip] = now
                chunk += line
                i += 1
            s.sendall(chunk)
            if el >= next_rss:
                rss.append((el, _tree_rss_mb(pid)))
                anon.append((el, _anon_mb(pid)))
                keys.append((el, _state_keys(metrics())))
                next_rss += 1.0
            time.sleep(max(0.0, tick - (time.perf_counter() - t0 - el)))
        send_s = time.perf_counter() - t0
    wait_done(total + i)
    conn = sqlite3.connect(f"file:{data / 'soc.db'}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT source_ip, created_at FROM alerts WHERE rule_id LIKE 'intel:%'").fetchall()
    finally:
        conn.close()
    lat = [_iso_epoch(created) - sent_at[ip] for ip, created in rows if ip in sent_at]
    warm = [(t, v) for t, v in rss if t >= 0.1 * seconds] or rss
    late = [(t, v) for t, v in rss if t >= 0.5 * seconds] or rss
    warm_keys = [(t, v) for t, v in keys if t >= 0.1 * seconds] or keys
    late_keys = [(t, v) for t, v in keys if t >= 0.5 * seconds] or keys
    key_slope = _slope_per_min(late_keys)
    rss_late = _slope_per_min(late)
    return {
        "rate_target": round(rate), "rate_sent": round(i / send_s), "seconds": round(send_s, 1), "events": i,
        "latency_s": {"markers": len(sent_at), "alerts": len(lat),
                      "p50": round(_pct(lat, 0.5), 3) if lat else None,
                      "p95": round(_pct(lat, 0.95), 3) if lat else None,
                      "max": round(max(lat), 3) if lat else None},
        "rss_mb": {"first": round(warm[0][1], 1), "last": round(warm[-1][1], 1),
                   "max": round(max(v for _, v in rss), 1), "slope_mb_per_min": round(_slope_per_min(warm), 2),
                   "slope_last_half_mb_per_min": round(rss_late, 2),
                   "main_anonymous_first_last": [round(anon[0][1], 1), round(anon[-1][1], 1)] if anon else None,
                   "samples": len(rss)},
        # Per-source state is bounded (max_keys, idle expiry after two windows) but fills for
        # those windows: each marker is a new source. Growth per tracked key says whether the
        # RSS rise is that state filling (about 2 KB per key measured) or something else.
        "detector_state_keys": {"first": warm_keys[0][1] if warm_keys else None,
                                "last": warm_keys[-1][1] if warm_keys else None,
                                "slope_last_half_per_min": round(key_slope, 1),
                                "rss_bytes_per_key_last_half": round(rss_late * 1e6 / key_slope) if key_slope > 0 else None},
    }


def run(quick: bool, soak_seconds: float | None = None) -> dict:
    n = 20_000 if quick else 100_000
    soak = soak_seconds if soak_seconds is not None else (20.0 if quick else 60.0)
    corpora = _corpora()
    figures: dict = {"events": n, "sigmahq_rules": corpora is not None, "intel_iocs": 100_000}
    docs = _docs(n)
    # on-w2-dp2: the stateful detectors in two detector processes (pipeline.detector_processes).
    scenarios = [("off-w0", False, 0, 0), ("off-w2", False, 2, 0), ("on-w0", True, 0, 0), ("on-w1", True, 1, 0),
                 ("on-w2", True, 2, 0), ("on-w2-dp2", True, 2, 2)]
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        before = _store_only(tmp, docs, "baseline-a")
        results = {}
        for name, detection, workers, dp in scenarios:
            paced = soak if name == "on-w2" else None
            cfg = _config(tmp, detection=detection, workers=workers, corpora=corpora, detector_processes=dp)
            results[name] = _scenario(tmp, name, cfg, n, docs, quick=quick, paced_s=paced)
        after = _store_only(tmp, docs, "baseline-b")
    store_rate = (before + after) / 2
    figures["store_only_events_per_s"] = {"before": round(before), "after": round(after), "mean": round(store_rate)}
    for r in results.values():
        for path in ("syslog_tcp", "bulk", "syslog_udp"):
            r[path]["vs_store_only"] = round(r[path]["events_per_s"] / store_rate, 3)
    figures["scenarios"] = results
    # Scaling with worker processes: end to end (the server process shares the cores) and
    # the worker stage alone (parse + attribute + Sigma match), two workers over one.
    w1, w2 = results["on-w1"], results["on-w2"]
    figures["scale_2_vs_1"] = {p: round(w2[p]["events_per_s"] / w1[p]["events_per_s"], 2) for p in ("syslog_tcp", "bulk")}
    with tempfile.TemporaryDirectory() as tmp_s:
        lines = _syslog_lines(n, "s")
        stage = {w: _stage_rate(Path(tmp_s), lines, w, corpora) for w in (1, 2)}
    figures["worker_stage"] = {f"workers_{w}": r for w, r in stage.items()}
    figures["worker_stage"]["scale_2_vs_1"] = round(stage[2]["records_per_s"] / stage[1]["records_per_s"], 2)
    figures["aims"] = _aims(figures)
    return figures


def _aims(f: dict) -> dict:
    """Issue 14's aims beside what this run measured: met or missed, and by how much."""
    out: dict = {}
    on = f["scenarios"]["on-w2"]
    for path in ("syslog_tcp", "bulk"):
        got = on[path]["vs_store_only"]
        out[f"{path}_every_engine_vs_store_only"] = {"aim": ">= 0.7", "got": got, "met": got >= 0.7,
                                                     "factor_short": round(0.7 / got, 2) if got else None}
    for path, got in f["scale_2_vs_1"].items():
        out[f"{path}_2_workers_vs_1_end_to_end"] = {"aim": ">= 1.6", "got": got, "met": got >= 1.6}
    got = f["worker_stage"]["scale_2_vs_1"]
    out["parse_detect_stage_2_workers_vs_1"] = {"aim": ">= 1.6", "got": got, "met": got >= 1.6}
    paced = on.get("paced_80pct")
    if paced:
        p95 = paced["latency_s"]["p95"]
        out["event_to_alert_p95_s"] = {"aim": "< 1", "got": p95, "met": p95 is not None and p95 < 1}
        slope = paced["rss_mb"]["slope_mb_per_min"]
        late = paced["rss_mb"]["slope_last_half_mb_per_min"]
        # Bounded caches fill first (SQLite's writer page cache is 256 MiB, each reader's 64 MiB;
        # detector state holds the sources of its last two windows, up to 10 minutes for the
        # brute-force correlations): the aim is judged on the second half of the soak, and the
        # whole-window slope is reported beside it.
        out["rss_slope_mb_per_min"] = {"aim": "flat (|slope| < 1 MB/min over the soak's second half)", "got": late,
                                       "whole_soak_after_warmup": slope, "met": abs(late) < 1,
                                       "seconds": paced["seconds"]}
    return out


if __name__ == "__main__":
    import json

    soak_arg = next((a.split("=", 1)[1] for a in sys.argv if a.startswith("--soak-seconds=")), None)
    print(json.dumps(run("--quick" in sys.argv, float(soak_arg) if soak_arg else None), indent=2))
