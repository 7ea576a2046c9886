"""A city's ordinary week, as the devices themselves write it.

Every line is in a real format our collectors parse (see ``tests/collectors/golden``):
Hikvision and Dahua syslog from cameras and recorders, sshd on servers, PostgreSQL with
pgaudit on the warehouse nodes, nginx access logs on the gateway, ETL task JSON, and
forecasting job JSON. Times are UTC; syslog lines carry RFC 3164 headers as devices send.
"""
from __future__ import annotations

import datetime as _dt
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass, field

from citysoc.demo.city import SOC_IP, VMS_IP, City

__all__ = ["Line", "normal_week", "syslog_ts", "hik", "dahua", "onvif", "sshd", "pg", "access", "job", "etl"]


@dataclass(order=True, slots=True)
class Line:
    """One raw log line at its time; ``scenario`` names the attack it belongs to (ground truth)."""

    ts: float
    text: str = field(compare=False)
    via: str = field(default="syslog", compare=False)
    """How a real deployment ships it: ``syslog`` (TCP), ``file`` (a shipper) or ``onvif``
    (the ONVIF event consumer's HTTP push); ``onvif`` lines are read with the onvif parser."""
    scenario: str | None = field(default=None, compare=False)
    addr: str | None = field(default=None, compare=False)
    """The sender's address as the collector sees it (``log.source.address``): how lines
    without a host name in them (Postgres, nginx) are attributed to their asset."""


def _dt_of(ts: float) -> _dt.datetime:
    return _dt.datetime.fromtimestamp(ts, _dt.timezone.utc)


def syslog_ts(ts: float) -> str:
    d = _dt_of(ts)
    return f"{d:%b} {d.day:2d} {d:%H:%M:%S}"


def hik(ts: float, host: str, body: str, pri: int = 134) -> str:
    return f"<{pri}>{syslog_ts(ts)} {host} HIKVISION: Major Type: {body}"


def dahua(ts: float, host: str, body: str, pri: int = 14) -> str:
    return f"<{pri}>{syslog_ts(ts)} {host} Dahua: {body}"


def sshd(ts: float, host: str, msg: str, pid: int = 2311) -> str:
    return f"<38>{syslog_ts(ts)} {host} sshd[{pid}]: {msg}"


def pg(ts: float, who: str, msg: str, pid: int = 4101) -> str:
    d = _dt_of(ts)
    return f"{d:%Y-%m-%d %H:%M:%S}.{d.microsecond // 1000:03d} UTC [{pid}] {who} {msg}"


def access(ts: float, ip: str, request: str, status: int = 200, size: int = 512, agent: str = "python-requests/2.31.0",
           user: str = "-") -> str:
    d = _dt_of(ts).astimezone(_dt.timezone(_dt.timedelta(hours=7)))
    return f'{ip} - {user} [{d:%d/%b/%Y:%H:%M:%S} +0700] "{request} HTTP/1.1" {status} {size} "-" "{agent}"'


def onvif(ts: float, ip: str, motion: bool) -> str:
    """An ONVIF motion notification (WS-BaseNotification Notify), on one line as the
    event consumer forwards it (one document per line over HTTP ingest)."""
    d = _dt_of(ts)
    utc = f"{d:%Y-%m-%dT%H:%M:%S}.{d.microsecond // 1000:03d}Z"
    return ('<?xml version="1.0" encoding="UTF-8"?><env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope" '
            'xmlns:wsnt="http://docs.oasis-open.org/wsn/b-2" xmlns:wsa="http://www.w3.org/2005/08/addressing" '
            'xmlns:tt="http://www.onvif.org/ver10/schema" xmlns:tns1="http://www.onvif.org/ver10/topics">'
            '<env:Header><wsa:Action>http://docs.oasis-open.org/wsn/bw-2/NotificationConsumer/Notify</wsa:Action>'
            '</env:Header><env:Body><wsnt:Notify><wsnt:NotificationMessage>'
            '<wsnt:Topic Dialect="http://www.onvif.org/ver10/tev/topicExpression/ConcreteSet">'
            'tns1:RuleEngine/CellMotionDetector/Motion</wsnt:Topic>'
            f'<wsnt:ProducerReference><wsa:Address>http://{ip}/onvif/event_service</wsa:Address>'
            f'</wsnt:ProducerReference><wsnt:Message><tt:Message UtcTime="{utc}" PropertyOperation="Changed">'
            '<tt:Source><tt:SimpleItem Name="VideoSourceConfigurationToken" Value="VideoSourceToken"/>'
            '<tt:SimpleItem Name="Rule" Value="MyMotionDetectorRule"/></tt:Source>'
            f'<tt:Data><tt:SimpleItem Name="IsMotion" Value="{"true" if motion else "false"}"/></tt:Data>'
            '</tt:Message></wsnt:Message></wsnt:NotificationMessage></wsnt:Notify></env:Body></env:Envelope>')


def _iso(ts: float) -> str:
    return _dt_of(ts).strftime("%Y-%m-%dT%H:%M:%SZ")


def job(ts: float, **fields: object) -> str:
    return json.dumps({"time": _iso(ts), **fields})


def etl(ts: float, **fields: object) -> str:
    return json.dumps({"ts": _iso(ts), **fields})


def _camera_lines(city: City, start: float, end: float, rnd: random.Random) -> Iterator[Line]:
    for k, cam in enumerate(city.cameras):
        vendor = cam.tags[0]
        host = cam.hostnames[0]
        t = start + rnd.uniform(0, 900)
        while t < end:
            if k % 4 == 0:  # ONVIF-profile cameras also notify the event consumer
                yield Line(t + 1, onvif(t + 1, cam.ips[0], True), via="onvif")
                yield Line(t + 21, onvif(t + 21, cam.ips[0], False), via="onvif")
            if vendor == "hikvision":
                yield Line(t, hik(t, host, "Alarm, Minor Type: Motion Detection Started, Channel No.: 1"))
                yield Line(t + 20, hik(t + 20, host, "Alarm, Minor Type: Motion Detection Stopped, Channel No.: 1"))
            else:
                yield Line(t, dahua(t, host, "[Event] Motion Detect Start. Channel: 1"))
                yield Line(t + 20, dahua(t + 20, host, "[Event] Motion Detect End. Channel: 1"))
            if rnd.random() < 0.05:  # the VMS operator checks the device
                if vendor == "hikvision":
                    yield Line(t + 40, hik(t + 40, host, f"Operation, Minor Type: Remote: Login, Local/Remote User: "
                                                         f"admin, Remote Host IP: {VMS_IP}, Channel No.: 1"))
                else:
                    yield Line(t + 40, dahua(t + 40, host, f"[Account] User Login. User: admin, IP: {VMS_IP}, "
                                                           "Client: Web"))
            t += rnd.uniform(1200, 2400)


def _nvr_lines(city: City, start: float, end: float, rnd: random.Random) -> Iterator[Line]:
    for nvr in city.nvrs:
        vendor = nvr.tags[0]
        host = nvr.hostnames[0]
        t = start + rnd.uniform(0, 300)
        while t < end:
            ch = rnd.randint(1, 16)
            if vendor == "hikvision":
                yield Line(t, hik(t, host, f"Alarm, Minor Type: Motion Detection Started, Channel No.: {ch}"))
            else:
                yield Line(t, dahua(t, host, f"[Event] Motion Detect Start. Channel: {ch}"))
            t += rnd.uniform(300, 900)


_TABLES = ["public.traffic_counts", "public.air_quality", "public.bus_positions", "public.flood_sensors"]


def _warehouse_lines(city: City, start: float, end: float, rnd: random.Random) -> Iterator[Line]:
    for db in city.of_type("db_node"):
        who = "etl_svc@warehouse"
        t = start + rnd.uniform(0, 60)
        seq = 0
        while t < end:
            pid = rnd.randint(4000, 9000)
            seq += 1
            if rnd.random() < 0.3:
                yield Line(t, pg(t, who, "LOG:  connection authorized: user=etl_svc database=warehouse "
                                         "application_name=loader", pid), via="file",
                           addr=db.ips[0])
            else:
                tbl = rnd.choice(_TABLES)
                yield Line(t, pg(t, who, f'LOG:  AUDIT: SESSION,{seq},1,READ,SELECT,TABLE,{tbl},"SELECT * FROM '
                                         f"{tbl} WHERE day = current_date\",<not logged>", pid), via="file",
                           addr=db.ips[0])
            t += rnd.uniform(120, 400)
    gw = "10.40.0.12"
    t = start
    paths = ["/api/v1/cameras?district=Q1&limit=50", "/api/v1/traffic/counts?day=today", "/api/v1/air/latest",
             "/api/v1/flood/sensors?status=alert"]
    while t < end:
        yield Line(t, access(t, gw, f"GET {rnd.choice(paths)}", 200, rnd.randint(400, 9000)), via="file",
                   addr="10.40.0.5")
        t += rnd.uniform(60, 180)
    for etl_host in city.of_type("etl"):
        t = start + 300 + rnd.uniform(0, 600)
        while t < end:
            pipe = rnd.choice(["traffic_daily", "air_quality", "bus_gtfs"])
            run = f"r-{int(t)}"
            yield Line(t, etl(t, level="INFO", pipeline=pipe, run_id=run, task="extract", event="task_started",
                              user="etl_svc", host=etl_host.hostnames[0]), via="file")
            rows = rnd.randint(20_000, 150_000)
            yield Line(t + 60, etl(t + 60, level="INFO", pipeline=pipe, run_id=run, task="load_stage",
                                   event="task_finished", status="success", rows_read=rows, rows_written=rows,
                                   duration_ms=rnd.randint(3000, 60000), source=f"s3://raw/{pipe}/",
                                   target=f"warehouse.{pipe}", user="etl_svc", host=etl_host.hostnames[0]), via="file")
            t += rnd.uniform(1800, 3600)


def _forecasting_lines(city: City, start: float, end: float, rnd: random.Random) -> Iterator[Line]:
    job_id = 88000
    for node in city.of_type("compute_node"):
        t = start + rnd.uniform(0, 1800)
        while t < end:
            job_id += 1
            model = rnd.choice(["flood-v3", "traffic-v7", "air-v2"])
            name = f"{model}-train"
            host = node.hostnames[0]
            yield Line(t, job(t, scheduler="slurm", event="submit", job_id=str(job_id), job_name=name, user="fc_ml",
                              queue="gpu", command=f"python train.py --model {model}"), via="file", addr=node.ips[0])
            yield Line(t + 60, job(t + 60, scheduler="slurm", event="start", job_id=str(job_id), job_name=name,
                                   user="fc_ml", queue="gpu", node=host), via="file", addr=node.ips[0])
            dur = rnd.uniform(1200, 3000)
            yield Line(t + dur, job(t + dur, event="artifact_written", job_id=str(job_id), model=model, user="fc_ml",
                                    node=host, artifact={"path": f"/models/{model}/model.onnx", "size": 48211456,
                                                         "sha256": f"{rnd.getrandbits(256):064x}"}), via="file", addr=node.ips[0])
            yield Line(t + dur + 5, job(t + dur + 5, scheduler="slurm", event="finish", job_id=str(job_id),
                                        job_name=name, user="fc_ml", node=host, exit_code=0), via="file", addr=node.ips[0])
            t += dur + rnd.uniform(600, 2400)


def _server_lines(city: City, start: float, end: float, rnd: random.Random) -> Iterator[Line]:
    hosts = [a.hostnames[0] for a in city.assets if a.type in ("server", "vms", "model_store")]
    for host in hosts:
        t = start + rnd.uniform(0, 1200)
        while t < end:
            pid = rnd.randint(2000, 30000)
            yield Line(t, sshd(t, host, f"Accepted publickey for ops from {SOC_IP} port {rnd.randint(40000, 60000)} "
                                        "ssh2: RSA SHA256:Yw8H2QOJm0mNTvw0E6Xr5oZcJ1mM7ugkYlS2eQ6oZ8c", pid))
            t += rnd.uniform(900, 2400)


def normal_week(city: City, start: float, end: float, *, seed: int = 7, silent: dict[str, float] | None = None
                ) -> list[Line]:
    """Every ordinary line between ``start`` and ``end`` (epoch seconds), sorted by time.

    ``silent`` maps an asset id to the time it stops logging (a scenario)."""
    rnd = random.Random(seed)
    lines: list[Line] = []
    for gen in (_camera_lines, _nvr_lines, _warehouse_lines, _forecasting_lines, _server_lines):
        lines.extend(ln for ln in gen(city, start, end, rnd) if ln.ts < end)
    if silent:
        quiet = {}
        for aid, t in silent.items():
            a = city.by_id[aid]
            for key in [*a.ips, *a.hostnames]:
                quiet[key] = t
        lines = [ln for ln in lines if not any((ln.addr == k or f" {k} " in ln.text) and ln.ts >= t
                                               for k, t in quiet.items())]
    lines.sort()
    return lines
