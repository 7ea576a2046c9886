"""Send the demo city to a running ``citysoc serve`` through its real ingest paths.

Syslog lines (cameras, recorders, sshd) go over syslog TCP, newline-framed, exactly as
the devices send them; Postgres, nginx and scheduler-job lines go the same way inside an
RFC 3164 envelope naming their host (as rsyslog's imfile forwards a log file); ETL lines
(which name their host), ONVIF notifications and the decoded pcap / file-integrity
events go to ``POST /api/v1/ingest?format=...`` (the API key needs ``events:ingest``). The inventory is written with ``PUT /api/v1/assets``
(``assets:write``) first, so the server's enricher attributes what follows.
"""
from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

import httpx
import orjson

from citysoc.demo.normal import syslog_ts
from citysoc.demo.run import DemoWorld

__all__ = ["send_world"]


def _channel(world: DemoWorld, ts: float, data: bytes, fmt: str, meta: dict[str, Any],
             host_of: dict[str, str]) -> tuple[str, bytes]:
    if fmt in ("ecs", "onvif"):
        return fmt, data
    if data.startswith(b"<"):
        return "syslog", data
    addr = meta.get("log.source.address")
    if addr is None:  # a JSON line that names its own host: straight to the HTTP ingest API
        return ("jobs_json" if b'"job_id"' in data or b'"scheduler"' in data else "etl_json"), data
    host = host_of.get(addr, addr)
    if data.startswith(b"{"):
        app = "slurm"
    else:
        app = "postgres[4101]" if b" UTC [" in data[:40] else "nginx"
    return "syslog", f"<134>{syslog_ts(ts)} {host} {app}: ".encode() + data


def send_world(world: DemoWorld, url: str, api_key: str, syslog: tuple[str, int], *,
               progress: Callable[[int, int], None] | None = None, batch: int = 2000) -> dict[str, int]:
    """Push inventory and records; returns counts per channel."""
    headers = {"Authorization": f"ApiKey {api_key}"}
    counts = {"assets": 0, "syslog": 0, "jobs_json": 0, "etl_json": 0, "ecs": 0, "onvif": 0}
    host_of = {ip: a.hostnames[0] for a in world.city.assets for ip in a.ips if a.hostnames}
    with httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=120) as http:
        for a in world.city.assets:
            body = a.to_record()
            body["criticality"] = body.pop("criticality_level")
            r = http.put(f"/api/v1/assets/{a.id}", json=body)
            if r.status_code >= 300:
                raise RuntimeError(f"PUT /api/v1/assets/{a.id}: {r.status_code} {r.text[:300]}")
            counts["assets"] += 1
        sock = socket.create_connection(syslog, timeout=30)
        pending: dict[str, list[bytes]] = {}

        def flush(ch: str) -> None:
            items = pending.pop(ch, [])
            if not items:
                return
            if ch == "syslog":
                sock.sendall(b"".join(i.rstrip(b"\n") + b"\n" for i in items))
            else:
                r = http.post("/api/v1/ingest", params={"format": ch}, content=b"\n".join(items),
                              headers={"Content-Type": "application/x-ndjson"})
                if r.status_code >= 300:
                    raise RuntimeError(f"POST /api/v1/ingest?format={ch}: {r.status_code} {r.text[:300]}")
            counts[ch] += len(items)

        try:
            n = len(world.records)
            for i, (ts, rec) in enumerate(world.records):
                ch, data = _channel(world, ts, rec.data, rec.format, rec.meta, host_of)
                if ch == "ecs":
                    data = orjson.dumps(orjson.loads(data))
                pending.setdefault(ch, []).append(data)
                if len(pending[ch]) >= batch:
                    flush(ch)
                if progress is not None and i % 5000 == 0:
                    progress(i, n)
            for ch in list(pending):
                flush(ch)
        finally:
            sock.close()
    return counts
