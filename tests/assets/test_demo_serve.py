"""The served demo (``citysoc serve --config <data>/citysoc-demo.yml``, issue 16 item 7,
issue 18 item 6): it does not flood itself with ``asset:silent`` once its recorded week
is over, and its playbooks act in a namespace it creates and removes, never on the host.

The city is replayed offline with its week ending two hours ago, so at serve start every
camera, NVR and database is already past its log interval: without background logs the
first asset check raises a silent alert for each of them (the control serve shows it).
"""
from __future__ import annotations

import os
import random
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from citysoc.demo.city import build_city
from citysoc.demo.live import PACE, LiveCity
from citysoc.demo.run import demo_config, run_offline
from citysoc.testing import ServeProcess, wait_for
from collectors.parsers import parse_record
from core.assets import AssetHealth, expected_interval
from core.events import get_field
from hostguard import normalise_ruleset
import itertools

pytestmark = [pytest.mark.slow]


def test_live_city_keeps_every_watched_asset_inside_its_interval_and_the_silent_one_silent() -> None:
    city = build_city(22, seed=7)
    t0 = 1_795_600_800.0
    health = {a.id: AssetHealth(asset_id=a.id, last_seen=t0 - random.Random(a.id).uniform(0, 300))
              for a in city.assets}
    health["wh-db-03"] = AssetHealth(asset_id="wh-db-03", last_seen=t0 - 4000)  # silent when the week ended
    live = LiveCity(city.assets, health, t0 + 7200)  # served two hours later
    assert live.quiet == ["wh-db-03"]
    fed = {a.id for a in city.assets if a.type in PACE} - {"wh-db-03"}
    assert set(live.assets) == fed
    seen: dict[str, list[float]] = {}
    now = t0 + 7200
    for _ in range(int(12 * 3600 / 30)):  # twelve hours, fed every 30 s
        for t, rec in live.due(now):
            ev = parse_record(rec)
            host = get_field(ev, "host.name") or rec.meta.get("log.source.address")
            assert host, rec.data
            seen.setdefault(host, []).append(t)
        now += 30
    by_key = {**{a.hostnames[0]: a for a in city.assets if a.hostnames}, **{a.ips[0]: a for a in city.assets if a.ips}}
    heard = {by_key[k].id for k in seen}
    assert heard == fed, (fed - heard, heard - fed)  # every fed asset talks, the silent database does not
    for key, times in seen.items():
        a = by_key[key]
        assert times[0] <= t0 + 7200 + 1  # heard again at once
        gaps = [b - x for x, b in itertools.pairwise(times)]
        assert max(gaps) <= 0.6 * expected_interval(a) + 30, (a.id, max(gaps))


@pytest.fixture(scope="module")
def replayed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small demo city whose recorded week ended two hours ago."""
    folder = tmp_path_factory.mktemp("demo-city")
    run_offline(folder, cameras=22, days=3, end=float(int(time.time() - 7200) // 60 * 60))
    return folder


def _serve(replayed: Path, where: Path, **demo: Any) -> tuple[ServeProcess, str]:
    data = where / "data"
    shutil.copytree(replayed, data)
    cfg = demo_config(data, data / "warehouse-ingest")
    cfg["assets"]["check_interval_s"] = 1.0
    cfg["demo"].update({"background_interval_s": 1.0, **demo})
    cfg["syslog"] = {"host": "127.0.0.1"}
    (where / "citysoc.yml").write_text(yaml.safe_dump(cfg))
    srv = ServeProcess(data, config=where / "citysoc.yml")
    return srv, srv.api_key("admin")


def _silent(srv: ServeProcess, key: str) -> int:
    return srv.get(key, "/api/v1/alerts", rule_id="asset:silent", limit=1).json()["total"]


def test_served_demo_keeps_logging_and_does_not_flood_itself(replayed: Path, tmp_path: Path) -> None:
    (tmp_path / "on").mkdir()
    (tmp_path / "off").mkdir()
    live, key = _serve(replayed, tmp_path / "on")
    control, ckey = _serve(replayed, tmp_path / "off", background_logs=False)
    before = _silent_offline(replayed)
    try:
        live.start()
        control.start()
        # the control proves the checks run and everything is past its interval
        flood = wait_for(lambda: (n := _silent(control, ckey)) > before + 20 and n, timeout=60)
        assert flood, (_silent(control, ckey), control.log_tail())
        time.sleep(3)  # several more checks in the live one (every 1 s)
        assert "demo: background logs for" in live.log_tail(20_000)
        assert _silent(live, key) <= before + 1, live.log_tail()  # at most the scenario's database again
        fed = live.count(key, "event.original:* AND NOT labels.demo_scenario:*")
        assert fed > 0
    finally:
        live.stop()
        control.stop()


def _silent_offline(folder: Path) -> int:
    from citysoc.wiring import open_soc
    from core.alerts import AlertFilter
    from core.settings import Settings

    soc = open_soc(Settings(data=folder))
    try:
        return soc.alerts.list(AlertFilter(rule_id="asset:silent"))[0]
    finally:
        soc.close()


LINE = "<14>Dec  2 17:00:00 NVR-D3-02 Dahua: [Account] User Login. User: 888888, IP: {ip}, Client: Web"


def _host_ruleset() -> str:
    # the host's own (absolute path: not the session's nft sandbox), expiry countdowns taken out
    return normalise_ruleset(subprocess.run(["/usr/sbin/nft", "list", "ruleset"], capture_output=True, text=True,
                                            check=True).stdout)


@pytest.mark.network
def test_served_demo_blocks_in_its_own_namespace_and_removes_it(replayed: Path, tmp_path: Path) -> None:
    if os.geteuid() != 0 or shutil.which("ip") is None or not Path("/usr/sbin/nft").exists():
        pytest.skip("the demo sandbox needs root, ip and nft (without them the demo runs dry: see the next test)")
    host_before = _host_ruleset()
    srv, key = _serve(replayed, tmp_path)
    try:
        srv.start()
        assert srv.proc is not None
        ns = f"citysoc-demo-{srv.proc.pid}"
        assert ns in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(LINE.format(ip="198.51.100.77").encode(), ("127.0.0.1", srv.syslog_port))

        def held() -> dict | None:
            items = srv.get(key, "/api/v1/playbook-runs", playbook="camera-bruteforce", limit=50).json()["items"]
            return next((r for r in items if r["inputs"].get("source_ip") == "198.51.100.77"
                         and r["status"] == "awaiting_approval"), None)

        run = wait_for(held, timeout=60)
        assert run, srv.log_tail()
        r = httpx.post(f"{srv.url}/api/v1/playbook-runs/{run['id']}/approve", json={"comment": "demo"},
                       headers={"Authorization": f"ApiKey {key}"}, timeout=60)
        assert r.status_code == 200, r.text
        block = next(s for s in r.json()["steps"] if s["name"] == "block")
        assert block["status"] == "succeeded", r.json()
        inside = subprocess.run(["ip", "netns", "exec", ns, "/usr/sbin/nft", "list", "set", "inet", "citysoc",
                                 "blocked4"], capture_output=True, text=True)
        assert "198.51.100.77" in inside.stdout, inside.stderr
        assert _host_ruleset() == host_before  # the machine's own firewall is as it was
    finally:
        srv.stop()
    assert ns not in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert "citysoc-demo" in srv.log_tail(50_000)


def test_served_demo_without_a_sandbox_runs_every_playbook_dry(replayed: Path, tmp_path: Path) -> None:
    srv, key = _serve(replayed, tmp_path, sandbox="dry-run")
    try:
        srv.start()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(LINE.format(ip="198.51.100.78").encode(), ("127.0.0.1", srv.syslog_port))

        def ran() -> dict | None:
            items = srv.get(key, "/api/v1/playbook-runs", playbook="camera-bruteforce", limit=50).json()["items"]
            return next((r for r in items if r["inputs"].get("source_ip") == "198.51.100.78"
                         and r["status"] not in ("queued", "running")), None)

        run = wait_for(ran, timeout=60)
        assert run, srv.log_tail()
        assert run["dry_run"] is True, run
        assert "every playbook run is a dry run" in srv.log_tail(50_000)
        # asked again as a real run: a dry run all the same
        r = httpx.post(f"{srv.url}/api/v1/playbook-runs/{run['id']}/rerun", json={"dry_run": False},
                       headers={"Authorization": f"ApiKey {key}"}, timeout=60)
        assert r.status_code in (200, 201), r.text
        assert r.json()["dry_run"] is True and r.json()["id"] != run["id"]
    finally:
        srv.stop()
