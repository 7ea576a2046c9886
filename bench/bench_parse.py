"""Parse rate per log format, against a same-run baseline over the same lines.

Baselines: ``json.loads`` for JSON formats, ``xml.etree.ElementTree.fromstring`` for
ONVIF, one bare ``re.match`` of a header regex for line formats. The ratio says what
full ECS normalisation costs over merely tokenising; lines/s alone is machine noise.
Each format is also run through ``format=auto`` to show the cost of sniffing.
"""
from __future__ import annotations

import csv
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
_HAPROXY_RE = re.compile(rb"(\S+):(\d+) \[([^\]]+)\] (\S+) ([^/\s]+)/(\S+) (\S+) (\d+) (\d+)")
_MYSQL_ERR_RE = re.compile(rb"(\d{4}-\d\d-\d\d +\d+:\d\d:\d\d) (\d+) \[(\w+)\] (.*)")
_PG_CSV_RE = re.compile(rb'([^,]+),("[^"]*"|),("[^"]*"|),(\d+),')
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

    def honeypot(i: int) -> bytes:
        # The pre-auth noise of an internet-facing sshd (the forms read by the generic peer search included).
        body = r.choice([f"Received disconnect from {_ip(r)} port {r.randint(1024, 65535)}:11: Bye Bye [preauth]",
                         f"Connection closed by authenticating user root {_ip(r)} port {r.randint(1024, 65535)} [preauth]",
                         f"Invalid user {r.choice(users)} from {_ip(r)}",
                         f"Unable to negotiate with {_ip(r)} port {r.randint(1024, 65535)}: no matching host key type found",
                         f"drop connection #1 from [{_ip(r)}]:{r.randint(1024, 65535)} on [10.0.0.1]:22 past MaxStartups"])
        return f"<38>Nov 25 10:{i % 60:02d}:{i % 59:02d} honeypot sshd[{2000 + i}]: {body}".encode()
    out["sshd_preauth"] = ("syslog", [honeypot(i) for i in range(n)], lambda b: _SYSLOG_RE.match(b))

    def ftp(i: int) -> bytes:
        verb = r.choice(["OK LOGIN", "FAIL LOGIN", "OK UPLOAD"])
        tail = f', "/srv/ftp/cam{i % 90:02d}/{i}.jpg", {r.randint(1000, 900000)} bytes, 800.0Kbyte/sec' if "UPLOAD" in verb else ""
        return (f'<30>Nov 25 10:{i % 60:02d}:00 nvr-d{i % 24}-01 vsftpd[{3000 + i}]: [pid {3001 + i}] [cam{i % 90:02d}] '
                f'{verb}: Client "::ffff:{_ip(r)}"{tail}').encode()
    out["vsftpd"] = ("syslog", [ftp(i) for i in range(n)], lambda b: _SYSLOG_RE.match(b))

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

    def pg_csv(i: int) -> bytes:
        return (f'2026-11-25 10:31:{i % 60:02d}.600 UTC,"{r.choice(users)}","warehouse",{4000 + i % 50},'
                f'"{_ip(r)}:{r.randint(1024, 65535)}",6805f351.627c6,{i},"authentication",2026-11-25 10:31:10 UTC,'
                f'4/{i},0,FATAL,28P01,"password authentication failed for user ""{r.choice(users)}""",'
                f'"Connection matched pg_hba.conf line 99",,,,,,,,"","client backend",,0').encode()
    out["postgres_csvlog"] = ("postgres", [pg_csv(i) for i in range(n)], lambda b: _PG_CSV_RE.match(b))

    def haproxy_http(i: int) -> bytes:
        return (f"<134>Nov 25 10:50:{i % 60:02d} lb-dw-01 haproxy[2201]: {_ip(r)}:{r.randint(1024, 65535)} "
                f"[25/Nov/2026:10:50:{i % 60:02d}.125] api-https~ warehouse_api/api{i % 3} 0/0/1/12/13 "
                f"{r.choice([200, 200, 304, 401, 503])} {r.randint(100, 90000)} - - ---- 12/12/3/1/0 0/0 "
                f'"GET /api/v1/datasets?page={i} HTTP/1.1"').encode()
    out["haproxy_http"] = ("syslog", [haproxy_http(i) for i in range(n)], lambda b: _HAPROXY_RE.search(b))

    def mysql_error(i: int) -> bytes:
        if i % 3:
            return (f"2026-11-25 {i % 24:2d}:40:{i % 60:02d} {i} [Warning] Access denied for user '{r.choice(users)}'@"
                    f"'{_ip(r)}' (using password: YES)").encode()
        return f"2026-11-25 10:40:{i % 60:02d} 0 [Note] InnoDB: Buffer pool(s) load completed at 261125 10:40:{i % 60:02d}".encode()
    out["mysql_error"] = ("mysql_error", [mysql_error(i) for i in range(n)], lambda b: _MYSQL_ERR_RE.match(b))

    def haproxy_tcp(i: int) -> bytes:
        return (f"{_ip(r)}:{r.randint(1024, 65535)} [25/Nov/2026:10:50:{i % 60:02d}.443] pg_front pg_back/pg{i % 2} "
                f"0/0/{r.randint(1, 90000)} {r.randint(10, 90000)} {r.choice(['--', '--', 'cD', 'SC'])} 0/0/0/0/0 0/0"
                ).encode()
    out["haproxy_tcp"] = ("haproxy", [haproxy_tcp(i) for i in range(n)], lambda b: _HAPROXY_RE.match(b))

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

    out.update(_appliance_lines(n, r))
    if ONVIF.exists():
        doc = ONVIF.read_bytes()
        out["onvif"] = ("onvif", [doc] * max(1, n // 10), ET.fromstring)
    return out


_KV_RE = re.compile(rb'(\w+)=("(?:[^"\\]|\\.)*"|\S*)')
_ASA_RE = re.compile(rb"%ASA-(\d)-(\d{6}): (.*)")
_NF_RE = re.compile(rb"SRC=(\S+) DST=(\S+) .*?PROTO=(\S+)(?: SPT=(\d+) DPT=(\d+))?")
_CEF_RE = re.compile(rb"CEF:(\d+)\|([^|]*)\|([^|]*)\|([^|]*)\|([^|]*)\|([^|]*)\|([^|]*)\|(.*)")


def _appliance_lines(n: int, r: random.Random) -> dict[str, tuple[str, list[bytes], Callable[[bytes], object]]]:
    """Firewall/IDS formats (parsers-appliance), each beside one bare regex or ``json.loads``."""
    out: dict[str, tuple[str, list[bytes], Callable[[bytes], object]]] = {}

    def forti(i: int) -> bytes:
        return (f'<189>date=2026-11-25 time=17:00:{i % 60:02d} devname="FG-Q1" devid="FGT60F0000000001" tz="+0700" '
                f'logid="0000000013" type="traffic" subtype="forward" level="notice" vd="root" srcip={_ip(r)} '
                f'srcport={r.randint(1024, 65535)} srcintf="lan" dstip=192.0.2.{i % 250 + 1} dstport=443 dstintf="wan1" '
                f'proto=6 action="{r.choice(["accept", "close", "deny"])}" policyid=3 service="HTTPS" duration=12 '
                f'sentbyte={i} rcvdbyte={i * 3} sentpkt=10 rcvdpkt=30').encode()
    out["fortigate"] = ("fortigate", [forti(i) for i in range(n)], lambda b: _KV_RE.findall(b))

    def asa(i: int) -> bytes:
        return (f"<166>Nov 25 2026 10:00:{i % 60:02d} asa-q1 : %ASA-6-302013: Built inbound TCP connection {i} for "
                f"outside:203.0.113.{i % 250}/{r.randint(1024, 65535)} (203.0.113.{i % 250}/1) to inside:{_ip(r)}/443 "
                f"(198.51.100.5/443)").encode()
    out["cisco_asa"] = ("cisco_asa", [asa(i) for i in range(n)], lambda b: _ASA_RE.search(b))

    def nf(i: int) -> bytes:
        return (f"<4>Nov 25 10:00:{i % 60:02d} gw-q1 kernel: [WAN_LOCAL-default-D]IN=eth0 OUT= "
                f"MAC=00:1b:21:3a:4f:10:00:0c:29:aa:bb:cc:08:00 SRC=203.0.113.{i % 250} DST={_ip(r)} LEN=60 TOS=0x00 "
                f"PREC=0x00 TTL=51 ID={i} DF PROTO=TCP SPT={r.randint(1024, 65535)} DPT=22 WINDOW=64240 RES=0x00 SYN "
                f"URGP=0").encode()
    out["netfilter"] = ("netfilter", [nf(i) for i in range(n)], lambda b: _NF_RE.search(b))

    def cef(i: int) -> bytes:
        return (f"CEF:0|Example|WAF|2.1|1001|SQL injection blocked|9|src=203.0.113.{i % 250} spt={1024 + i % 60000} "
                f"dst={_ip(r)} dpt=443 proto=TCP act=blocked request=https://portal.example.vn/search?q\\={i} "
                f"requestMethod=GET suser=guest msg=Detected SQL injection").encode()
    out["cef"] = ("cef", [cef(i) for i in range(n)], lambda b: _CEF_RE.match(b))

    def leef(i: int) -> bytes:
        return (f"LEEF:1.0|Example|Firewall|4.2|deny-in|src=203.0.113.{i % 250}\tdst={_ip(r)}\tsrcPort="
                f"{1024 + i % 60000}\tdstPort=3389\tproto=TCP\taction=deny\tpolicy=OUTSIDE_IN\tsev=7").encode()
    out["leef"] = ("leef", [leef(i) for i in range(n)], lambda b: b.split(b"|", 5)[5].split(b"\t"))

    def pan(i: int) -> bytes:
        return (f"<14>Nov 25 10:00:01 PA-Q1 1,2026/11/25 10:00:01,012801000001,TRAFFIC,end,2561,2026/11/25 10:00:01,"
                f"{_ip(r)},192.0.2.80,198.51.100.2,192.0.2.80,allow-web,,,ssl,vsys1,trust,untrust,ethernet1/2,"
                f"ethernet1/1,fwd,2026/11/25 10:00:01,{i},1,50000,443,61000,443,0x400064,tcp,allow,35200,1200,34000,40,"
                f"2026/11/25 09:59:49,12,computer-and-internet-info,0,{i},0x0,10.0.0.0-10.255.255.255,Viet Nam,0,10,30,"
                f"tcp-fin,0,0,0,0,,PA-Q1,from-policy").encode()
    out["panos"] = ("panos", [pan(i) for i in range(n)], lambda b: next(csv.reader([b.decode()])))

    def eve(i: int) -> bytes:
        return json.dumps({"timestamp": "2026-11-25T17:00:01.123456+0700", "flow_id": i, "in_iface": "eth1",
                           "event_type": "alert", "src_ip": f"203.0.113.{i % 250}", "src_port": 40000 + i % 20000,
                           "dest_ip": _ip(r), "dest_port": 80, "proto": "TCP", "app_proto": "http",
                           "alert": {"action": "allowed", "gid": 1, "signature_id": 2034647, "rev": 2,
                                     "signature": "ET EXPLOIT Apache log4j RCE Attempt", "category": "Attempted "
                                     "Administrator Privilege Gain", "severity": 1},
                           "http": {"hostname": "portal.example.vn", "url": f"/?q={i}", "http_method": "GET",
                                    "status": 200}}).encode()
    out["suricata"] = ("suricata", [eve(i) for i in range(n)], json.loads)

    def zeek(i: int) -> bytes:
        return json.dumps({"ts": 1795600801.5 + i, "uid": f"CQ{i:012d}", "id.orig_h": _ip(r), "id.orig_p": 50000,
                           "id.resp_h": "192.0.2.80", "id.resp_p": 443, "proto": "tcp", "service": "ssl",
                           "duration": 1.25, "orig_bytes": 500, "resp_bytes": 4000, "conn_state": "SF",
                           "local_orig": True, "local_resp": False, "missed_bytes": 0, "history": "ShADadFf",
                           "orig_pkts": 10, "orig_ip_bytes": 1020, "resp_pkts": 12, "resp_ip_bytes": 4640,
                           "tunnel_parents": []}).encode()
    out["zeek_conn_json"] = ("zeek", [zeek(i) for i in range(n)], json.loads)
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
        _rate(lambda b, fmt=fmt: parse_record(RawRecord(b, format=fmt)), lines[:200])  # warm up
        base = _rate(baseline, lines)
        named = _rate(lambda b, fmt=fmt: parse_record(RawRecord(b, format=fmt)), lines)
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
