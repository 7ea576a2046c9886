"""Zone-less timestamps read in the zone of the sender's group (issue 13 item 6).

Real listeners on loopback: datagrams and a TCP stream from 127.0.0.1 and 127.0.0.2,
with ``syslog.timezones`` groups for 127.0.0.0/8 (Asia/Tokyo) and 127.0.0.2/32 (UTC):
the most specific group wins, an address in no group gets the listener's zone (the site
default, Asia/Ho_Chi_Minh). Bad group settings are start-up errors naming the key.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import socket

import pytest
from pydantic import ValidationError

from citysoc.runtime import make_sources
from collectors.parsers import parse_record
from collectors.sources.peer_zones import PeerZones
from collectors.sources.syslog import SyslogTCPSource, SyslogUDPSource
from core.settings import Settings

NOW = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.timezone.utc)
LINE = b"<13>Nov 25 10:00:00 cam-d7-0001 camd: motion"
GROUPS = [("loopback", ["127.0.0.0/8"], "Asia/Tokyo"), ("one-host", ["127.0.0.2/32"], "UTC")]


class Collect:
    def __init__(self) -> None:
        self.records: list = []

    async def __call__(self, records) -> None:
        self.records.extend(records)


async def _wait(sink: Collect, n: int) -> None:
    async def poll() -> None:
        while len(sink.records) < n:
            await asyncio.sleep(0.01)
    await asyncio.wait_for(poll(), 10)


def _stamp(rec) -> str:
    return parse_record(rec, now=NOW)["@timestamp"]


def _can_bind(addr: str) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind((addr, 0))
        except OSError:
            return False
    return True


def test_peer_zones_most_specific_group_else_default() -> None:
    z = PeerZones(GROUPS + [("v6", ["2001:db8::/32"], "Europe/Paris")], default="Asia/Ho_Chi_Minh")
    assert z.zone_for("127.0.0.1") == "Asia/Tokyo"
    assert z.zone_for("127.0.0.2") == "UTC"
    assert z.zone_for("::ffff:127.0.0.2") == "UTC"  # dual-stack sockets give IPv4 peers mapped
    assert z.zone_for("2001:db8::5") == "Europe/Paris"
    assert z.zone_for("10.1.1.1") == "Asia/Ho_Chi_Minh"
    assert z.zone_for("not an address") == "Asia/Ho_Chi_Minh"


def test_udp_and_tcp_senders_read_in_their_group_zone() -> None:
    if not _can_bind("127.0.0.2"):
        pytest.skip("cannot bind 127.0.0.2 on this host")

    async def main() -> None:
        zones = PeerZones(GROUPS, default="Asia/Ho_Chi_Minh")
        udp_sink, tcp_sink = Collect(), Collect()
        udp = SyslogUDPSource(port=0, timezone=zones)
        tcp = SyslogTCPSource(port=0, timezone=zones)
        tasks = [asyncio.create_task(udp.run(udp_sink)), asyncio.create_task(tcp.run(tcp_sink))]
        await asyncio.wait_for(asyncio.gather(udp.ready.wait(), tcp.ready.wait()), 5)
        for src_addr in ("127.0.0.1", "127.0.0.2"):
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
                tx.bind((src_addr, 0))
                tx.sendto(LINE, ("127.0.0.1", udp.port))
        await _wait(udp_sink, 2)
        _, writer = await asyncio.open_connection("127.0.0.1", tcp.port, local_addr=("127.0.0.2", 0))
        writer.write(LINE + b"\n")
        await writer.drain()
        await _wait(tcp_sink, 1)
        writer.close()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        by_peer = {r.meta["log.source.address"].split(":")[0]: _stamp(r) for r in udp_sink.records}
        assert by_peer == {"127.0.0.1": "2026-11-25T01:00:00.000Z", "127.0.0.2": "2026-11-25T10:00:00.000Z"}
        assert _stamp(tcp_sink.records[0]) == "2026-11-25T10:00:00.000Z"

    asyncio.run(main())


def test_serve_builds_group_zones_over_the_site_default() -> None:
    settings = Settings.model_validate({"syslog": {"port": 0, "timezones": [
        {"name": "cameras-d7", "networks": ["10.27.3.1/16"], "timezone": "UTC"}]}})
    assert settings.syslog.timezones[0].networks == ["10.27.0.0/16"]
    sources = make_sources(settings)
    zones = {type(s.timezone) for s in sources}
    assert zones == {PeerZones}
    z = sources[0].timezone
    assert z.zone_for("10.27.200.9") == "UTC" and z.zone_for("10.28.0.1") == "Asia/Ho_Chi_Minh"
    plain = make_sources(Settings.model_validate({"syslog": {"port": 0}, "site": {"timezone": "Asia/Tokyo"}}))
    assert {s.timezone for s in plain} == {"Asia/Tokyo"}


@pytest.mark.parametrize("group,where", [
    ({"name": "c", "networks": ["10.0.0.0/33"], "timezone": "UTC"}, "syslog.timezones.0.networks.0"),
    ({"name": "c", "networks": ["10.0.0.0/8"], "timezone": "Asia/Saigon_Typo"}, "syslog.timezones.0.timezone"),
    ({"name": "c", "networks": [], "timezone": "UTC"}, "syslog.timezones.0.networks"),
    ({"name": "c", "networks": ["10.0.0.0/8"], "timezone": "UTC", "zone": "x"}, "syslog.timezones.0.zone"),
])
def test_bad_group_is_a_settings_error_naming_the_key(group: dict, where: str) -> None:
    with pytest.raises(ValidationError) as exc:
        Settings.model_validate({"syslog": {"timezones": [group]}})
    assert where in str(exc.value)
