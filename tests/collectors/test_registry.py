"""The format registry: every parser reachable the ways it declares, tables derived, ids validated.

Each parser declares its routes on its class (``programs``, ``body_sniff``, ``line_sniff``,
``json_claims``, ``program_prefixes``, ``datasets``, ``log_paths``; see
``collectors/parsers/_registry.py``). These tests walk the registry, so a new parser is
checked the moment it is listed: one that declares a syslog route needs a body in
:data:`BODIES` here, one that declares ``line_sniff`` a line in :data:`LINES`.
"""
from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import pytest

from collectors.parsers import FORMAT_IDS, PARSERS, ROUTES, check_format, parse_record
from collectors.parsers._registry import build
from collectors.parsers.json_generic import shipped_format
from core.protocols import RawRecord
from core.settings import Settings

NOW = dt.datetime(2026, 11, 25, 12, 0, 0, tzinfo=dt.timezone.utc)

BODIES = {
    "sshd": "Failed password for root from 203.0.113.7 port 40001 ssh2",
    "sudo": "   alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/id",
    "pam": "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=203.0.113.7  user=root",
    "accounts": "new user: name=backup2, UID=1002, GID=1002, home=/home/backup2, shell=/bin/bash, from=/dev/pts/0",
    "auditd": "type=USER_LOGIN msg=audit(1795600800.123:456): pid=2213 uid=0 auid=4294967295 ses=4294967295 "
              "msg='op=login acct=\"root\" exe=\"/usr/sbin/sshd\" hostname=? addr=203.0.113.7 terminal=sshd res=failed'",
    "hikvision": "Major Type: Operation, Minor Type: Remote: Login, Local/Remote User: admin, Remote Host IP: 10.20.1.15, "
                 "Channel No.: 1",
    "dahua": "[Account] User Login. User: admin, IP: 10.20.3.4, Client: Web",
    "postgres": "[1-1] etl_svc@warehouse LOG:  AUDIT: SESSION,1,1,READ,SELECT,TABLE,public.citizens,\"SELECT 1\",<not logged>",
    "mysql_audit": "dw-my-01,etl,10.30.0.5,9,0,CONNECT,warehouse,,0",
    "mysql_audit content": '{"timestamp":"2026-11-25 10:40:00","id":0,"class":"connection","event":"connect",'
                           '"connection_id":9,"account":{"user":"etl","host":"10.30.0.5"}}',
    "etl_json": '{"ts":"2026-11-25T03:00:00Z","level":"INFO","pipeline":"traffic_daily","run_id":"r-1","task":"extract",'
                '"event":"task_started","user":"etl_svc","host":"etl-01"}',
    "jobs_json": '{"time":"2026-11-25T01:00:00Z","scheduler":"slurm","event":"submit","job_id":"88231",'
                 '"job_name":"train","user":"fc_ml","queue":"gpu","command":"python train.py"}',
    "nginx": '10.20.0.15 - - [25/Nov/2026:10:00:01 +0700] "GET /login HTTP/1.1" 401 12 "-" "curl/8.0"',
    "apache": '10.20.0.15 - - [25/Nov/2026:10:00:01 +0700] "GET /login HTTP/1.1" 401 12 "-" "curl/8.0"',
    "haproxy": '203.0.113.46:51023 [25/Nov/2026:10:50:01.250] api-https~ warehouse_api/api1 0/0/0/9/9 401 210 - - ---- '
               '12/12/3/1/0 0/0 "POST /api/v1/login HTTP/1.1"',
    "mysql_error": "2026-11-25 10:40:02 31 [Warning] Access denied for user 'etl_svc'@'10.30.0.44' (using password: YES)",
    "ftpd": '[pid 4251] [admin] FAIL LOGIN: Client "203.0.113.60"',
    "leef": "LEEF:1.0|Example|Firewall|4.2|deny-in|src=203.0.113.9\tdst=10.20.0.5\tsrcPort=40000\tdstPort=3389",
    "panos": "1,2026/11/25 10:00:01,012801000001,THREAT,vulnerability,2561,2026/11/25 10:00:01,203.0.113.9,10.20.0.5,"
             "0.0.0.0,0.0.0.0,in-rule,,,web-browsing,vsys1,untrust,trust,ethernet1/1,ethernet1/2,fwd,"
             "2026/11/25 10:00:01,4242,1,40000,80,0,0,0x0,tcp,reset-both,\"x\",SQL Injection(30000),any,critical",
    "cef": "CEF:0|Example|WAF|2.1|1001|SQL injection blocked|9|src=203.0.113.9 spt=40001 dst=10.20.0.5 dpt=443",
    "cisco_asa": "%ASA-6-302013: Built inbound TCP connection 4242 for outside:203.0.113.7/51234 (203.0.113.7/51234) "
                 "to inside:10.20.0.5/443 (198.51.100.5/443)",
    "fortigate": 'date=2026-11-25 time=17:00:01 devname="FG-Q1" logid="0000000013" type="traffic" subtype="forward" '
                 'level="notice" devid="FGT60F0000000001" srcip=10.20.0.15 srcport=50000 dstip=192.0.2.80 dstport=443 proto=6 action="close"',
    "netfilter": "[WAN_LOCAL-default-D]IN=eth0 OUT= MAC=00:1b:21:3a:4f:10:00:0c:29:aa:bb:cc:08:00 SRC=203.0.113.45 "
                 "DST=198.51.100.1 LEN=60 TOS=0x00 PREC=0x00 TTL=51 ID=4242 DF PROTO=TCP SPT=51515 DPT=22 SYN URGP=0",
    "suricata": '{"timestamp":"2026-11-25T17:00:01.123456+0700","flow_id":1,"event_type":"alert","src_ip":"203.0.113.9",'
                '"src_port":40001,"dest_ip":"10.20.0.5","dest_port":80,"proto":"TCP","alert":{"action":"allowed",'
                '"signature_id":2034647,"signature":"ET EXPLOIT test","severity":1}}',
    "zeek": '{"ts":1795600801.5,"uid":"CQ1zeek000001","id.orig_h":"10.20.0.15","id.orig_p":50000,"id.resp_h":"192.0.2.80",'
            '"id.resp_p":443,"proto":"tcp","conn_state":"SF"}',
}
"""A syslog body each parser with a syslog route must understand (``"<name> content"``: the
body for its content route, when that differs)."""

LINES = {
    "onvif": '<?xml version="1.0"?><s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body/></s:Envelope>',
    "syslog": "<38>Nov 25 10:00:01 gw sshd[77]: " + BODIES["sshd"],
    "auditd": BODIES["auditd"],
    "mysql_audit": "20261125 10:41:00," + BODIES["mysql_audit"],
    "access": BODIES["nginx"],
    "postgres": "2026-11-25 10:30:00.101 UTC [4101] LOG:  connection received: host=10.30.0.5 port=51234",
    "nginx": "2026/11/25 10:00:01 [error] 811#811: *1 open() \"/x\" failed (2: No such file), client: 10.20.0.15",
    "apache": "[Wed Nov 25 10:00:01.123456 2026] [core:error] [pid 811] [client 10.20.0.15:40000] AH00126: bad URI",
    **{k: BODIES[k] for k in ("leef", "panos", "cef", "cisco_asa", "fortigate", "netfilter", "haproxy", "mysql_error")},
    **{k: "Nov 25 10:00:01 gw-q1 " + BODIES[k] for k in ("cisco_asa",)},
}
"""A bare line (``format=auto``) each parser declaring ``line_sniff`` must be picked for."""


def _syslog(program: str, body: str) -> dict:
    line = f"<134>Nov 25 10:00:01 host-1 {program}[42]: {body}".encode()
    return parse_record(RawRecord(line, format="syslog", source="test"), now=NOW)


def _routed(name: str) -> list[str]:
    p = PARSERS[name]
    routes = [f"program {prog}" for prog in sorted(getattr(p, "programs", ()))]
    routes += [f"prefix {prefix}" for prefix in getattr(p, "program_prefixes", ())]
    if p in ROUTES.body_sniffers or p in ROUTES.json_claimers:
        routes.append("content")
    return routes


SYSLOG_REACHABLE = sorted(n for n in PARSERS if _routed(n))


def test_every_parser_with_a_syslog_route_has_a_sample_body() -> None:
    missing = sorted(set(SYSLOG_REACHABLE) - set(BODIES))
    assert not missing, f"add a syslog body for {missing} to BODIES"
    assert len(SYSLOG_REACHABLE) >= 21


@pytest.mark.parametrize("name", SYSLOG_REACHABLE)
def test_every_app_parser_is_reachable_from_syslog(name: str) -> None:
    """By each program name it declares, by a declared prefix, and by content under an unknown program."""
    parser = PARSERS[name]
    for route in _routed(name):
        kind, _, arg = route.partition(" ")
        program = {"program": arg, "prefix": arg + "-x", "content": "someapp"}[kind]
        ev = _syslog(program, BODIES.get(f"{name} {kind}", BODIES[name]))
        assert ev["event"]["module"] == parser.module, f"{name} via {route}: got module {ev['event']['module']}"
        assert "parser_failure" not in ev.get("tags", []), ev.get("error")
        assert ev["log"]["syslog"]["hostname"] == "host-1"  # the envelope was read: this came through syslog


@pytest.mark.parametrize("name", [p.name for p in ROUTES.line_sniffers])
def test_every_line_sniffer_is_picked_by_auto(name: str) -> None:
    assert name in LINES, f"add a bare line for {name} to LINES"
    ev = parse_record(RawRecord(LINES[name].encode(), format="auto", source="test"), now=NOW)
    assert ev["event"]["module"] == PARSERS[name].module  # type: ignore[attr-defined]


def test_sniff_order_follows_the_declared_order() -> None:
    for chain in (ROUTES.body_sniffers, ROUTES.line_sniffers, ROUTES.json_claimers):
        orders = [p.order for p in chain]
        assert orders == sorted(orders)
    assert [p.name for p in ROUTES.line_sniffers][:2] == ["onvif", "syslog"]  # markup before <PRI>, before the rest


def test_two_parsers_cannot_claim_one_program_or_dataset() -> None:
    class A:
        name, programs, datasets = "a", frozenset({"sshd"}), ("x.log",)

    class B:
        name, programs, datasets = "b", frozenset({"sshd"}), ("x.log",)

    with pytest.raises(ValueError) as exc:
        build([A(), B()])
    assert "syslog program 'sshd' is declared by both a and b" in str(exc.value)
    assert "dataset 'x.log'" in str(exc.value)


def test_shipper_tables_come_from_the_declarations() -> None:
    for ds, fmt in ROUTES.by_dataset.items():
        assert ds in getattr(PARSERS[fmt], "datasets", ())
        assert shipped_format({"message": "x", "event": {"dataset": ds}}) == fmt
    assert shipped_format({"message": "x", "data_stream": {"dataset": "zeek.dns"}}) == "zeek"
    assert shipped_format({"message": "x", "log": {"file": {"path": "/var/log/nginx/access.log"}}}) == "nginx"
    assert shipped_format({"message": "x", "log": {"file": {"path": "/srv/app.log"}}}) is None


def test_ecs_passthrough_is_a_registered_format() -> None:
    ev = parse_record(RawRecord(b'{"event.code":"4625","source.ip":"10.0.0.1"}', format="ecs"), now=NOW)
    assert ev["event"]["code"] == "4625" and ev["source"]["ip"] == "10.0.0.1"
    assert ev["@timestamp"] == "2026-11-25T12:00:00.000Z"


def test_check_format_lists_the_valid_ids() -> None:
    assert check_format("AUTO", "syslog.format") is None
    assert all(check_format(f, "x") is None for f in FORMAT_IDS)
    err = check_format("sshd_log", "tail[0].format")
    assert err is not None and err.startswith("tail[0].format: unknown format 'sshd_log'; valid ids: auto, ")
    assert "cisco_asa" in err and "ecs" in err


def test_settings_with_misspelt_formats_are_all_reported() -> None:
    from citysoc.wiring import FormatConfigError, check_formats, format_errors

    s = Settings.model_validate({"syslog": {"format": "rfc3146"},
                                 "tail": [{"name": "auth", "paths": ["/tmp/x"], "format": "sshd"},
                                          {"name": "web", "paths": ["/tmp/y"], "format": "ngnix"}]})
    errors = format_errors(s)
    assert [e.split(":")[0] for e in errors] == ["syslog.format", "tail[1].format (web)"]
    with pytest.raises(FormatConfigError):
        check_formats(s)


def test_serve_refuses_to_start_on_an_unknown_format(tmp_path: Path) -> None:
    """A real ``citysoc serve`` exits at once with the setting and the valid ids, before listening."""
    cfg = tmp_path / "citysoc.yml"
    cfg.write_text("syslog:\n  format: fortigat\n", encoding="utf-8")
    import os

    env = dict(os.environ, CITYSOC_DATA=str(tmp_path / "data"), CITYSOC_CONFIG=str(cfg))
    res = subprocess.run([sys.executable, "-m", "citysoc.cli", "serve", "--port", "0", "--syslog-port", "0"], env=env,
                         capture_output=True, text=True, timeout=60)
    assert res.returncode != 0
    assert "syslog.format: unknown format 'fortigat'" in res.stderr
    assert "fortigate" in res.stderr
