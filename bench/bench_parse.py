"""Parse rate per log format, against a same-run baseline over the same lines.

Baselines: ``json.loads`` for JSON formats, ``xml.etree.ElementTree.fromstring`` for
ONVIF, one bare ``re.match`` of a header regex for line formats. The ratio says what
full ECS normalisation costs over merely tokenising; lines/s alone is machine noise.
Each format is also run through ``format=auto`` to show the cost of sniffing.
"""
from __future__ import annotations

import json
import random
import re
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

from collectors.parsers import parse_record
from core.protocols import RawRecord

_SYSLOG_RE = re.compile(rb"<(\d{1,3})>(?:1 )?(\S+ +\S+ \S+|\S+) (\S+) ([^:\[ ]+)")
_ACCESS_RE = re.compile(rb'(\S+) \S+ (\S+) \[([^\]]+)\] "([^"]*)" (\d{3}) (\d+|-)')
_PG_RE = re.compile(rb"(\S+ \S+ \S+) \[(\d+)\] (\S+) (\w+):  (.*)")
_AUDIT_RE = re.compile(rb"type=(\w+) msg=audit\(([\d.]+):(\d+)\): (.*)")
ONVIF = (Path(__file__).resolve().parent.parent / "tests" / "collectors" / "golden" / "onvif" / "motion.xml")


def _ip(r: random.Random) -> str:
    return f"10.{r.randint(0, 60)}.{r.randint(0, 255)}.{r.randint(1, 254)}"


def _lines(n: int) -> dict[str, tuple[str, list[bytes], Callable[[bytes], object]]]:
    r = random.Random(42)
    users = ["alice", "bob", "etl_svc", "root", "admin", "fc_ml"]
    out: dict[str, tuple[str, list[bytes], Callable[[bytes], object]]] = {}

    def sshd(i: int) -> bytes:
        verb = r.choice(["Accepted password", "Failed password", "Failed password for invalid user"])
        verb = verb if "invalid" in verb else verb + " for"
        return (f"<38>Nov 25 10:{i % 60:02d}:{i % 59:02d} srv-soc-0{i % 4} sshd[{1000 + i}]: {verb} {r.choice(users)} "
                f"from {_ip(r)} port {r.randint(1024, 65535)} ssh2").encode()
    out["sshd_rfc3164"] = ("rfc3164", [sshd(i) for i in range(n)], lambda b: _SYSLOG_RE.match(b))

    def hik(i: int) -> bytes:
        minor = r.choice(["Remote: Login", "Illegal Login", "Motion Detection Started", "Video Signal Loss"])
        return (f"<134>1 2026-11-25T10:{i % 60:02d}:00.{i % 1000:03d}Z CAM-D1-{i % 500:04d} HIKVISION - - - "
                f"Major Type: Alarm, Minor Type: {minor}, Local/Remote User: admin, Remote Host IP: {_ip(r)}, "
                f"Channel No.: {i % 16}").encode()
    out["hikvision_rfc5424"] = ("rfc5424", [hik(i) for i in range(n)], lambda b: _SYSLOG_RE.match(b))

    def dahua(i: int) -> bytes:
        return (f"<12>Nov 25 10:20:15 NVR-D3-{i % 40:02d} Dahua: [Account] Login Failed. User: admin, IP: {_ip(r)}, "
                f"Reason: Wrong Password").encode()
    out["dahua"] = ("dahua", [dahua(i) for i in range(n)], lambda b: _SYSLOG_RE.match(b))

    def access(i: int) -> bytes:
        return (f'{_ip(r)} - - [25/Nov/2026:17:{i % 60:02d}:01 +0700] "GET /api/v1/cameras?district=Q{i % 24}&page={i} '
                f'HTTP/1.1" {r.choice([200, 200, 200, 404, 500])} {r.randint(10, 90000)} "-" "python-requests/2.31.0"'
                ).encode()
    out["nginx"] = ("nginx", [access(i) for i in range(n)], lambda b: _ACCESS_RE.match(b))

    def pg(i: int) -> bytes:
        return (f"2026-11-25 10:30:{i % 60:02d}.101 UTC [{4000 + i % 50}] etl_svc@warehouse LOG:  AUDIT: SESSION,{i},1,"
                f"READ,SELECT,TABLE,public.citizens,\"SELECT id FROM public.citizens WHERE id = {i}\",<not logged>"
                ).encode()
    out["postgres_pgaudit"] = ("postgres", [pg(i) for i in range(n)], lambda b: _PG_RE.match(b))

    def audit(i: int) -> bytes:
        return (f"type=USER_LOGIN msg=audit(17956008{i % 100:02d}.123:{i}): pid={i} uid=0 auid=4294967295 ses=4294967295 "
                f"msg='op=login acct=\"{r.choice(users)}\" exe=\"/usr/sbin/sshd\" hostname=? addr={_ip(r)} "
                f"terminal=sshd res=failed'").encode()
    out["auditd"] = ("auditd", [audit(i) for i in range(n)], lambda b: _AUDIT_RE.match(b))

    def mysql(i: int) -> bytes:
        return json.dumps({"timestamp": "2026-11-25 10:40:02", "id": i, "class": "general", "event": "status",
                           "connection_id": i % 100, "account": {"user": "etl", "host": _ip(r)},
                           "login": {"user": "etl", "os": "", "ip": _ip(r), "proxy": ""},
                           "general_data": {"command": "Query", "sql_command": "select",
                                            "query": f"SELECT * FROM sensors WHERE id = {i}", "status": 0}}).encode()
    out["mysql_audit"] = ("mysql_audit", [mysql(i) for i in range(n)], json.loads)

    def etl(i: int) -> bytes:
        return json.dumps({"ts": "2026-11-25T03:00:05.250Z", "level": "INFO", "pipeline": "traffic_daily",
                           "run_id": f"r-{i}", "task": "load_stage", "event": "task_finished", "status": "success",
                           "rows_read": i * 10, "rows_written": i * 9, "duration_ms": 5321,
                           "target": "warehouse.traffic_daily", "host": "etl-01"}).encode()
    out["etl_json"] = ("etl_json", [etl(i) for i in range(n)], json.loads)

    def jobs(i: int) -> bytes:
        return json.dumps({"time": "2026-11-25T01:00:00Z", "scheduler": "slurm",
                           "event": r.choice(["submit", "start", "finish", "fail"]), "job_id": str(88000 + i),
                           "job_name": "flood-forecast-train", "user": "fc_ml", "queue": "gpu", "node": "gpu-03",
                           "exit_code": 0}).encode()
    out["jobs_json"] = ("jobs_json", [jobs(i) for i in range(n)], json.loads)

    def generic_json(i: int) -> bytes:
        return json.dumps({"time": "2026-11-25T18:00:02+07:00", "level": "WARNING", "msg": "queue depth high",
                           "host": "etl-03", "client_ip": _ip(r), "depth": i}).encode()
    out["json"] = ("ndjson", [generic_json(i) for i in range(n)], json.loads)

    if ONVIF.exists():
        doc = ONVIF.read_bytes()
        out["onvif"] = ("onvif", [doc] * max(1, n // 10), ET.fromstring)
    return out


def _rate(fn: Callable[[bytes], object], lines: list[bytes]) -> float:
    t0 = time.perf_counter()
    for line in lines:
        fn(line)
    return len(lines) / (time.perf_counter() - t0)


def run(quick: bool) -> dict:
    n = 2_000 if quick else 30_000
    figures: dict[str, dict[str, float]] = {}
    for name, (fmt, lines, baseline) in _lines(n).items():
        _rate(lambda b: parse_record(RawRecord(b, format=fmt)), lines[:200])  # warm up
        base = _rate(baseline, lines)
        named = _rate(lambda b: parse_record(RawRecord(b, format=fmt)), lines)
        auto = _rate(lambda b: parse_record(RawRecord(b, format="auto")), lines)
        figures[name] = {
            "lines": len(lines),
            "parse_lines_per_s": round(named),
            "auto_lines_per_s": round(auto),
            "baseline_lines_per_s": round(base),
            "baseline_over_parse": round(base / named, 1),
        }
        print(f"   {name:18s} {named:>9,.0f}/s  auto {auto:>9,.0f}/s  baseline {base:>11,.0f}/s  "
              f"(baseline {base / named:.1f}x faster)", flush=True)
    return figures
