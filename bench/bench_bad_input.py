"""Bad input against a real ``citysoc serve`` (issue 18 item 1): what one hostile request
costs in memory, beside an ordinary request of the same size in the same run.

For each pair the server's peak resident memory is reset (``/proc/PID/clear_refs`` = 5,
root) right before the request, and the growth is ``VmHWM`` after the answer minus
``VmRSS`` before it; the answer (status, and for attachments the scan verdict) and the
time to it are recorded. Without root the peak cannot be reset and growth is only the
rise of the lifetime peak (reported as ``peak_reset: false``).

| attack | the ordinary body it is compared with |
| --- | --- |
| JSON array of tiny items (``[0,0,...]``) to ``/api/v1/ingest`` | a JSON array of real log lines, same bytes |
| gzip bomb (newlines) to ``/api/v1/ingest`` | gzip of real NDJSON lines, same compressed bytes |
| ``_bulk`` of tiny items (``{"index":{}}`` / ``{}``) | ``_bulk`` of real log documents, same bytes, under the item cap |
| deeply nested JSON array | the JSON array of real lines, same bytes |
| oversized request header (1 MiB) | a POST of the same number of body bytes |
| ``.tar.bz2`` bomb as a case attachment (YARA-scanned) | a ``.tar.bz2`` of real log files |
| zip bomb (8 members of zeros, each under the file-size limit) as a case attachment | a zip of real log files |
| webshell inside 4 nested zips as a case attachment | one zip of real log files, same bytes |

Real log lines come from ``../shared/corpora/ecs-parity`` (never copied into the repo).
The aim (issue 18): attack growth < 2x the ordinary one's and < 256 MiB. Growth below
:data:`NOISE_MB` counts as within the aim whatever the ratio (allocator noise).
Beside it, ``within_limit_bound``: growth no more than what our limits let one request
hold (:func:`_limit_bounds`), the property the limits promise whatever the benign figure.
"""
from __future__ import annotations

import bz2
import gzip
import io
import socket
import tarfile
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import orjson

from citysoc.testing import ServeProcess
from citysoc.testing import corpora_dir

AIM_MB = 256
NOISE_MB = 16
SHELL = b"<?php if(isset($_REQUEST['cmd'])){ eval($_REQUEST['cmd']); } ?>"


def _corpus_lines() -> list[bytes]:
    d = corpora_dir() / "ecs-parity"
    lines = [ln for p in sorted(d.glob("*/*.log")) for ln in p.read_bytes().splitlines() if ln.strip()] if d.is_dir() else []
    if not lines:
        raise RuntimeError(f"{d} not found or empty: the benign bodies are real log lines from there (set CITYSOC_CORPORA)")
    return lines


def _status(pid: int) -> dict[str, int]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        k, _, v = line.partition(":")
        if k in ("VmHWM", "VmRSS"):
            out[k] = int(v.split()[0]) * 1024
    return out


def _reset_peak(pid: int) -> bool:
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        return True
    except OSError:
        return False


# -- bodies -------------------------------------------------------------------------------

def _fill(items: list[bytes], size: int, sep: bytes, start: bytes = b"", end: bytes = b"") -> bytes:
    out, n, i = [start], len(start) + len(end), 0
    while True:
        it = items[i % len(items)]
        if n + len(it) + len(sep) > size:
            break
        out.append(it if i == 0 else sep + it)
        n += len(it) + len(sep)
        i += 1
    out.append(end)
    return b"".join(out)


def _json_docs(lines: list[bytes], pad_to: int = 0) -> list[bytes]:
    docs = []
    for i, ln in enumerate(lines):
        msg = ln.decode(errors="replace")
        while pad_to and len(msg) < pad_to:  # several real lines in one document
            msg += " | " + lines[(i + len(msg)) % len(lines)].decode(errors="replace")
        docs.append(orjson.dumps({"message": msg, "event": {"dataset": "bench.benign"}}))
    return docs


def _gzip_to(payload_of: Callable[[int], bytes], target: int) -> bytes:
    """Grow the inflated payload until its gzip reaches ``target`` bytes."""
    n = target * 4
    while True:
        z = gzip.compress(payload_of(n), 6)
        if len(z) >= target or n > 400 * 1024 * 1024:
            return z
        n = int(n * max(1.2, target / max(len(z), 1)))


def _bz2_tar_bomb(member_size: int) -> bytes:
    c = bz2.BZ2Compressor(9)
    info = tarfile.TarInfo("firmware.bin")
    info.size = member_size
    out = [c.compress(info.tobuf(format=tarfile.USTAR_FORMAT))]
    zeros = b"\x00" * (8 * 1024 * 1024)
    for _ in range(member_size // len(zeros)):
        out.append(c.compress(zeros))
    out.append(c.flush())
    return b"".join(out)


def _tar_bz2(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:bz2") as tf:
        for name, data in files.items():
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def _zip(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _zip_bomb(members: int, member_size: int) -> bytes:
    """``members`` entries of zeros: each under the scanner's file-size limit, together over
    its extraction budget."""
    buf = io.BytesIO()
    zeros = b"\x00" * member_size
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for i in range(members):
            zf.writestr(f"disk{i}.img", zeros)
    return buf.getvalue()


def _nested_zips(depth: int) -> bytes:
    inner = _zip({"shell.php": SHELL})
    for i in range(depth):
        inner = _zip({f"layer{i}.zip": inner})
    return inner


# -- requests -----------------------------------------------------------------------------

class Target:
    def __init__(self, srv: ServeProcess, ingest: str, admin: str):
        self.srv, self.ingest, self.admin = srv, ingest, admin
        self.case_id: int | None = None

    def post(self, path: str, body: bytes, headers: dict[str, str] | None = None) -> dict[str, Any]:
        r = httpx.post(f"{self.srv.url}{path}", content=body, timeout=300,
                       headers={"Authorization": f"ApiKey {self.ingest}", **(headers or {})})
        return {"status": r.status_code, "answer": r.text[:160]}

    def big_header(self, size: int) -> dict[str, Any]:
        with socket.create_connection(("127.0.0.1", self.srv.http_port), timeout=60) as s:
            req = (b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: " + b"a" * size + b"\r\n\r\n")
            try:
                s.sendall(req)
            except OSError as exc:  # the server may close before reading it all
                return {"status": None, "answer": f"connection closed while sending: {exc}"}
            try:
                head = s.recv(4096)
            except OSError as exc:
                return {"status": None, "answer": f"connection closed: {exc}"}
        line = head.split(b"\r\n", 1)[0].decode(errors="replace")
        parts = line.split()
        return {"status": int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None, "answer": line[:160]}

    def attach(self, name: str, data: bytes) -> dict[str, Any]:
        h = {"Authorization": f"ApiKey {self.admin}"}
        if self.case_id is None:
            r = httpx.post(f"{self.srv.url}/api/v1/cases", json={"title": "bench bad input"}, headers=h, timeout=60)
            r.raise_for_status()
            self.case_id = r.json()["id"]
        r = httpx.post(f"{self.srv.url}/api/v1/cases/{self.case_id}/attachments", headers=h, timeout=600,
                       files={"file": (name, data, "application/octet-stream")})
        out: dict[str, Any] = {"status": r.status_code}
        if r.status_code < 300:
            out["answer"] = f"scan_status={r.json().get('scan_status')}"
        else:
            out["answer"] = r.text[:160]
        return out


def _measure(t: Target, send: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    pid = t.srv.proc.pid  # type: ignore[union-attr]
    reset = _reset_peak(pid)
    before = _status(pid)
    t0 = time.perf_counter()
    ans = send()
    dt = time.perf_counter() - t0
    after = _status(pid)
    base = before["VmRSS"] if reset else before["VmHWM"]
    return {**ans, "seconds": round(dt, 2), "growth_mb": round(max(0, after["VmHWM"] - base) / 2**20, 1),
            "peak_reset": reset}


def _cases(t: Target, quick: bool, lines: list[bytes]) -> list[tuple[str, int, Callable[[], dict], Callable[[], dict]]]:
    """(name, body bytes, attack, benign)."""
    docs = _json_docs(lines)
    arr = 2 * 1024 * 1024
    zeros = b"[" + b",".join([b"0"] * (arr // 2)) + b"]"
    benign_arr = _fill(docs, len(zeros), b",", b"[", b"]")
    gz = 1024 * 1024 if not quick else 256 * 1024
    bomb = _gzip_to(lambda n: b"\n" * n, gz)
    ndjson = b"\n".join(docs)
    benign_gz = _gzip_to(lambda n: (ndjson * (n // len(ndjson) + 1))[:n], len(bomb))
    bulk = (50 if not quick else 5) * 1024 * 1024
    tiny = b'{"index":{}}\n{}\n'
    bulk_bomb = tiny * (bulk // len(tiny))
    per_item = len(bulk_bomb) // 80_000  # stay under the 100,000-item cap
    pairs = [b'{"index":{}}\n' + d for d in _json_docs(lines, pad_to=max(0, per_item - 60))]
    benign_bulk = _fill(pairs, len(bulk_bomb), b"\n", end=b"\n")
    depth = 1024 * 1024
    nested = b"[" * depth + b"]" * depth
    benign_nested = _fill(docs, len(nested), b",", b"[", b"]")
    hdr = 1024 * 1024
    benign_hdr = _fill(docs, hdr, b"\n")
    tbz = _bz2_tar_bomb((128 if not quick else 32) * 1024 * 1024)
    logs = {f"log{i}.txt": b"\n".join(lines[i * 40:(i + 1) * 40]) for i in range(4)}
    benign_tbz = _tar_bz2(logs)
    zb = _zip_bomb(8, (48 if not quick else 16) * 1024 * 1024)
    benign_zb = _zip({f"log{i}.txt": b"\n".join(lines)[: len(zb) // 4] for i in range(8)})
    nz = _nested_zips(4)
    benign_zip = _zip({"notes.txt": b"\n".join(lines)[: max(64, len(nz) * 2)]})
    ndj = {"Content-Type": "application/x-ndjson"}
    return [
        ("json_array_tiny_items", len(zeros), lambda: t.post("/api/v1/ingest", zeros, {"Content-Type": "application/json"}),
         lambda: t.post("/api/v1/ingest", benign_arr, {"Content-Type": "application/json"})),
        ("gzip_bomb", len(bomb), lambda: t.post("/api/v1/ingest", bomb, {"Content-Encoding": "gzip", **ndj}),
         lambda: t.post("/api/v1/ingest", benign_gz, {"Content-Encoding": "gzip", **ndj})),
        ("bulk_tiny_items", len(bulk_bomb), lambda: t.post("/_bulk", bulk_bomb, ndj),
         lambda: t.post("/_bulk", benign_bulk, ndj)),
        ("nested_json", len(nested), lambda: t.post("/api/v1/ingest", nested, {"Content-Type": "application/json"}),
         lambda: t.post("/api/v1/ingest", benign_nested, {"Content-Type": "application/json"})),
        ("oversized_header", hdr, lambda: t.big_header(hdr), lambda: t.post("/api/v1/ingest", benign_hdr, ndj)),
        ("tar_bz2_bomb_attachment", len(tbz), lambda: t.attach("update.tar.bz2", tbz),
         lambda: t.attach("logs.tar.bz2", benign_tbz)),
        ("zip_bomb_attachment", len(zb), lambda: t.attach("backup.zip", zb),
         lambda: t.attach("logs.zip", benign_zb)),
        ("nested_zip_attachment", len(nz), lambda: t.attach("evidence.zip", nz),
         lambda: t.attach("notes.zip", benign_zip)),
    ]


def _limit_bounds() -> dict[str, float]:
    """What our limits let one request hold, in MiB, per case.

    An ingest body is read whole up to the body limit (a gzip bomb inflates up to it, no
    further: a plain body of that size costs the same); a scanned archive member is read
    whole up to the scanner's file-size limit, once, and freed before the next one.
    Allocator noise (:data:`NOISE_MB`) is added to each.
    """
    from api.routers.ingest import MAX_BODY_BYTES
    from detections.yara.limits import ScanLimits

    body = MAX_BODY_BYTES / 2**20 + NOISE_MB
    member = ScanLimits().max_file_size / 2**20 + NOISE_MB
    return {"json_array_tiny_items": body, "gzip_bomb": body, "bulk_tiny_items": body, "nested_json": body,
            "oversized_header": NOISE_MB, "tar_bz2_bomb_attachment": member, "zip_bomb_attachment": member,
            "nested_zip_attachment": member}


def run(quick: bool = False) -> dict[str, Any]:
    lines = _corpus_lines()
    with tempfile.TemporaryDirectory(prefix="bench-bad-input-") as d:
        cfg = Path(d) / "citysoc.yml"
        cfg.write_text("syslog: {enabled: false}\nplaybooks: {enabled: false}\n")
        srv = ServeProcess(Path(d) / "data", config=cfg)
        srv.data.mkdir(parents=True)
        ingest, admin = srv.api_key("ingest"), srv.api_key("admin")
        srv.start()
        try:
            t = Target(srv, ingest, admin)
            t.post("/api/v1/ingest", b'[{"message":"warm"}]', {"Content-Type": "application/json"})
            t.post("/_bulk", b'{"index":{}}\n{"message":"warm"}\n', {"Content-Type": "application/x-ndjson"})
            t.attach("warm.txt", b"warm")
            rows: dict[str, Any] = {}
            for name, size, attack, benign in _cases(t, quick, lines):
                b = _measure(t, benign)
                a = _measure(t, attack)
                ratio = a["growth_mb"] / b["growth_mb"] if b["growth_mb"] > 0 else None
                ok = a["growth_mb"] < AIM_MB and (a["growth_mb"] <= NOISE_MB or (ratio is not None and ratio < 2))
                bound = _limit_bounds().get(name)
                rows[name] = {"bytes": size, "attack": a, "benign": b,
                              "ratio": round(ratio, 2) if ratio is not None else None, "within_aim": ok,
                              "limit_bound_mb": bound,
                              "within_limit_bound": a["growth_mb"] <= (bound or NOISE_MB)}
            final_rss = _status(srv.proc.pid)["VmRSS"]  # type: ignore[union-attr]
        finally:
            srv.stop()
    print(f"{'body':26} {'bytes':>10} {'attack':>24} {'MiB':>7} {'s':>6} | {'benign':>24} {'MiB':>7} {'s':>6} "
          f"{'ratio':>6} aim    bound")
    for name, r in rows.items():
        a, b = r["attack"], r["benign"]
        print(f"{name:26} {r['bytes']:>10,} {str(a['status']) + ' ' + a['answer'][:19]:>24} {a['growth_mb']:>7} "
              f"{a['seconds']:>6} | {str(b['status']) + ' ' + b['answer'][:19]:>24} {b['growth_mb']:>7} "
              f"{b['seconds']:>6} {r['ratio']!s:>6} {'ok' if r['within_aim'] else 'MISSED':6} "
              f"{'ok' if r['within_limit_bound'] else 'OVER'} {r['limit_bound_mb'] or ''}")
    return {"aim": f"attack growth < 2x benign and < {AIM_MB} MiB (growth <= {NOISE_MB} MiB counts as noise)",
            "bound": "attack growth <= what our limits let one request hold (limit_bound_mb: the "
                     f"limit plus {NOISE_MB} MiB of allocator noise)",
            "bodies": rows, "all_within_aim": all(r["within_aim"] for r in rows.values()),
            "all_within_limit_bound": all(r["within_limit_bound"] for r in rows.values()),
            "server_rss_at_end_mb": round(final_rss / 2**20, 1)}


if __name__ == "__main__":
    import json
    import sys

    print(json.dumps(run(quick="--quick" in sys.argv), indent=2))
