"""End to end with the real parts: logger -> syslog TCP source and a tailed file -> the
pipeline (our parsers, asset enrichment) -> the SQLite store and dead letters."""
from __future__ import annotations

import asyncio
import shutil
import socket
from pathlib import Path

import pytest

from citysoc.wiring import build_pipeline, open_deadletters, open_store
from collectors.sources.syslog import SyslogTCPSource
from collectors.sources.tail import FileTailSource
from core.settings import Settings

pytestmark = pytest.mark.timeout(120)

INVENTORY = """
- {id: srv-soc-01, name: SOC server, type: server, center: security, criticality: high, hostnames: [%s]}
- {id: api-gw-01, name: API gateway, type: api_gateway, center: warehouse, criticality: critical, ips: [10.40.0.0/24]}
"""


@pytest.mark.skipif(shutil.which("logger") is None, reason="logger (bsdutils) is not installed")
def test_syslog_and_tail_into_the_store(tmp_path: Path) -> None:
    inv = tmp_path / "inventory.yml"
    inv.write_text(INVENTORY % socket.gethostname())  # logger names the local host
    settings = Settings(data=tmp_path / "data", inventory=inv)
    store = open_store(settings)
    deadletters = open_deadletters(settings)
    access = tmp_path / "access.log"
    access.write_text("".join(
        f'10.40.0.{i % 200 + 1} - - [25/Nov/2026:17:45:01 +0700] "GET /api/v1/cameras?page={i} HTTP/1.1" 200 12 "-" "x"\n'
        for i in range(150)))

    async def main() -> None:
        pipeline = build_pipeline(settings, store, deadletters)
        await pipeline.start()
        tcp = SyslogTCPSource(port=0)
        tail = FileTailSource([str(access)], checkpoint=tmp_path / "data" / "tail.json", format="nginx",
                              poll_interval=0.02)
        tasks = [asyncio.create_task(s.run(pipeline.submit)) for s in (tcp, tail)]
        await asyncio.wait_for(tcp.ready.wait(), 5)
        lines = [f"Failed password for user{i} from 203.0.113.{i % 250} port {i + 1024} ssh2" for i in range(200)]
        proc = await asyncio.create_subprocess_exec(
            shutil.which("logger"), "-n", "127.0.0.1", "-P", str(tcp.port), "--tcp", "--octet-count",
            "--rfc5424", "-t", "sshd", stdin=asyncio.subprocess.PIPE)
        await proc.communicate(("\n".join(lines) + "\n").encode())
        assert proc.returncode == 0
        _, w = await asyncio.open_connection("127.0.0.1", tcp.port)
        w.write(b'{"broken json\n')
        await w.drain()
        w.close()

        async def settled() -> None:
            while tcp.counters()["emitted"] < 201 or tail.counters()["emitted"] < 150:
                await asyncio.sleep(0.05)
        await asyncio.wait_for(settled(), 30)
        await pipeline.drain()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await pipeline.stop()

    asyncio.run(main())
    try:
        assert store.count("event.action:ssh-login AND event.outcome:failure") == 200
        assert store.count("user.name:user7") == 1
        assert store.count("citysoc.center:security") == 200
        assert store.count("event.dataset:nginx.access") == 150
        assert store.count("citysoc.asset.id:api-gw-01") == 150
        letters = deadletters.list(stage="parse")
        assert len(letters) == 1 and b"broken json" in letters[0].raw and "invalid JSON" in letters[0].reason
    finally:
        store.close()
