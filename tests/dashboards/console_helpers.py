"""Helpers for the console tests (imported by name: every test folder has its own
``conftest``, so tests never ``from conftest import``): the seeded data, script payloads,
the server handle, screenshots.

Screenshots go to ``tests/dashboards/artifacts/`` (git-ignored).
"""
from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from collections.abc import Iterator

import httpx

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(__file__).with_name("artifacts")
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
PASSWORDS = {"resp": "Responder-pass-123", "resp2": "Responder2-pass-123", "ana": "Analyst-pass-123",
             "view": "Viewer-pass-123", "audit": "Auditor-pass-123"}
ROLES = {"resp": "responder", "resp2": "responder", "ana": "analyst", "view": "viewer", "audit": "auditor"}
"""Two responders: four eyes (``playbooks.four_eyes``) wants a second one to approve a run."""

# Script payloads: each would set window.__pwned or the title if it ever ran.
XSS = [
    "<script>window.__pwned=1;document.title='PWNED'</script>",
    "<img src=x onerror=\"window.__pwned=2;document.title='PWNED'\">",
    "javascript:window.__pwned=3",
    "\"><svg onload=\"window.__pwned=4;document.title='PWNED'\">",
    "'><iframe srcdoc=\"<script>parent.__pwned=5</script>\"></iframe>",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Console:
    url: str
    data: Path
    proc: subprocess.Popen
    ingest_key: str
    alert_ids: dict[str, int] = field(default_factory=dict)

    @contextlib.contextmanager
    def login_api(self, user: str) -> Iterator[httpx.Client]:
        """An HTTP client holding ``user``'s console session (cookie + CSRF header)."""
        with httpx.Client(base_url=self.url, timeout=20) as c:
            r = c.post("/api/v1/auth/login", json={"username": user, "password": PASSWORDS[user]})
            r.raise_for_status()
            c.headers["X-CSRF-Token"] = r.json()["csrf_token"]
            yield c


def _netns() -> str | None:
    """A throwaway network namespace for the playbook's nft step, so approving a real
    isolate_host never touches this machine's own firewall."""
    if os.geteuid() != 0 or not shutil.which("ip") or not shutil.which("nft"):
        return None
    name = f"csconsole{os.getpid()}"
    if subprocess.run(["ip", "netns", "add", name], capture_output=True).returncode != 0:
        return None
    return name


def _events(n: int) -> list[dict[str, Any]]:
    now = time.time()
    out = []
    for i in range(n):
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now - 60 * i)) + "Z"
        out.append({"@timestamp": ts, "message": f"login failed for admin from 10.20.0.{i % 5 + 1}",
                    "event": {"action": "failed-login", "outcome": "failure", "dataset": "camera.hikvision"},
                    "host": {"name": f"cam-q1-{i % 3:03d}"}, "source": {"ip": f"10.20.0.{i % 5 + 1}"},
                    "user": {"name": "admin"}})
    for j, p in enumerate(XSS):
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now - 30 - j)) + "Z"
        out.append({"@timestamp": ts, "message": f"payload {p}", "event": {"action": p, "dataset": "xss.test"},
                    "host": {"name": p}, "user": {"name": p}, "source": {"ip": "10.66.6.6"}, "url": {"original": p}})
    return out


def _seed_alerts(data: Path) -> dict[str, int]:
    """Alerts written through the alert store (soc.db) with the default grouping policy, as
    the alert recorder does (each lands in its incident)."""
    sys.path.insert(0, str(ROOT))
    from citysoc.wiring import open_soc
    from core.alerts import Alert, Entities, GroupingPolicy, dedupe_key, events_query, risk_score
    from core.settings import Settings

    soc = open_soc(Settings(data=data))
    now = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
    made: list[tuple[str, Alert]] = []

    def alert(key: str, rule_id: str, title: str, level: str, ent: Entities, tags: list[str], desc: str,
              events: list[dict[str, Any]]) -> None:
        made.append((key, Alert(id=0, rule_id=rule_id, rule_title=title, level=level, tags=tags, engine="sigma",
                                description=desc, entities=ent, risk_score=risk_score(level, 4), status="new",
                                resolution=None, assignee=None, dedupe_key=dedupe_key(rule_id, ent),
                                first_seen=now, last_seen=now, count=max(1, len(events)), created_at=now,
                                updated_at=now, events=events, events_query=events_query(ent))))

    evs = _events(6)
    alert("brute", "cam-bruteforce", "Camera brute force", "high",
          Entities(host="cam-q1-000", user="admin", source_ip="10.20.0.1", center="camera-ops", asset_id="cam-q1-000"),
          ["attack.credential_access", "attack.t1110", "citysoc.camera.bruteforce"], "Many failed logins on a camera",
          evs[:3])
    alert("unknown", "cam-unknown-device", "Unknown device on the camera VLAN", "critical",
          Entities(host="cam-q3-777", source_ip="10.30.7.77", center="camera-ops"),
          ["attack.initial_access", "attack.t1200", "citysoc.camera.unknown_device"], "A device nobody knows", evs[3:4])
    alert("warehouse", "wh-mass-export", "Warehouse mass export", "medium",
          Entities(host="dwh-01", user="etl_bot", source_ip="10.40.0.9", center="warehouse"),
          ["attack.exfiltration", "attack.t1567"], "Large export", evs[4:5])
    xss_ev = _events(0)
    for k, p in enumerate(XSS):
        alert(f"xss{k}", f"xss-rule-{k}", f"Rule {p}", "high",
              Entities(host=p, user=p, source_ip="10.66.6.6", center=p, asset_id=p),
              ["attack.t1059", p], f"description {p}", xss_ev)
    ids: dict[str, int] = {}
    changes = soc.alerts.record([a for _, a in made], window_s=0, policy=GroupingPolicy())
    for (key, _), ch in zip(made, changes):
        ids[key] = ch.alert.id
    soc.close()
    return ids


def _settings_file(data: Path, netns: str | None) -> Path:
    prefix = f'["ip", "netns", "exec", "{netns}"]' if netns else '["/nonexistent-nft-wrapper"]'
    p = data / "citysoc.yml"
    # the camera network of the seeded alerts (10.30.0.0/16) is listed so playbooks may isolate
    # its devices: the city's internal ranges are refused unless listed (issue 18)
    # e-mail goes to a loopback port nothing listens on: notify_email steps really fail (the
    # console must show them failed and the run "completed with failures", never green)
    p.write_text(f"playbooks:\n  nft:\n    table: csconsoletest\n    command_prefix: {prefix}\n"
                 '    allow_block: ["0.0.0.0/0", "::/0", "10.30.0.0/16"]\n'
                 f"  smtp:\n    port: {free_port()}\n    default_to: [duty@hcmc.example]\n", encoding="utf-8")
    return p


class Watch:
    """Collects what must never happen on a page: dialogs, page errors, CSP violations."""

    def __init__(self, page: Any):
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        self.console: list[str] = []
        page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.on("console", lambda m: self.console.append(m.text) if m.type in ("error", "warning") else None)


def shot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    p = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(p), full_page=True)
    return p


def unique() -> str:
    return uuid.uuid4().hex[:8]
