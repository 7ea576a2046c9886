"""Asset attribution from YAML and CSV inventories."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from collectors.enrich import AssetIndex
from core.assets import AssetError
from collectors.parsers import parse_record
from core.protocols import RawRecord

NOW = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.timezone.utc)

YAML = """
assets:
  - id: cam-d1-0012
    name: Camera Nguyen Hue / Le Loi
    type: camera
    center: operations
    subsystem: cctv
    criticality: high
    zone: district-1
    ips: [10.20.1.12]
    hostnames: [CAM-D1-0012]
  - id: nvr-d1-01
    name: NVR District 1
    type: nvr
    center: operations
    criticality: critical
    ips: [10.20.1.2]
    hostnames: [nvr-d1-01.cam.hcmc.local]
  - id: cctv-d1-net
    name: District 1 camera network
    type: network_device
    center: operations
    criticality: medium
    ips: [10.20.0.0/16]
  - id: cctv-d1-rack
    name: District 1 rack segment
    type: network_device
    center: operations
    ips: [10.20.1.0/24, "2001:db8:20::/48"]
  - id: dw-pg-01
    name: Warehouse PostgreSQL primary
    type: db_node
    center: warehouse
    criticality: critical
    ips: [10.30.0.10]
    hostnames: [dw-pg-01]
"""


@pytest.fixture()
def index(tmp_path: Path) -> AssetIndex:
    p = tmp_path / "inventory.yml"
    p.write_text(YAML)
    return AssetIndex.load(p)


def _ev(line: bytes, **meta) -> dict:
    return parse_record(RawRecord(line, meta=meta), now=NOW)


def test_lookups_exact_cidr_longest_prefix_and_names(index: AssetIndex) -> None:
    assert len(index) == 5
    assert index.lookup_ip("10.20.1.12").id == "cam-d1-0012"
    assert index.lookup_ip("10.20.1.99").id == "cctv-d1-rack"  # /24 beats /16
    assert index.lookup_ip("10.20.77.1").id == "cctv-d1-net"
    assert index.lookup_ip("10.21.0.1") is None
    assert index.lookup_ip("2001:db8:20::7").id == "cctv-d1-rack"
    assert index.lookup_ip("[2001:db8:20::7]:514").id == "cctv-d1-rack"
    assert index.lookup_ip("10.20.1.12:40001").id == "cam-d1-0012"
    assert index.lookup_ip("not-an-ip") is None
    assert index.lookup_host("cam-d1-0012").id == "cam-d1-0012"
    assert index.lookup_host("CAM-D1-0012.cam.hcmc.local").id == "cam-d1-0012"
    assert index.lookup_host("NVR-D1-01").id == "nvr-d1-01"
    assert index.lookup_host("unknown") is None


def test_reporter_wins_over_peers(index: AssetIndex) -> None:
    # A Hikvision camera reports a login from an address inside the NVR's network.
    ev = _ev(b"<134>Nov 25 10:15:02 CAM-D1-0012 HIKVISION: Major Type: Operation, Minor Type: Remote: Login, "
             b"Local/Remote User: admin, Remote Host IP: 10.20.1.2", **{"log.source.address": "10.20.9.9:514"})
    index.enrich(ev)
    assert ev["citysoc"]["asset"] == {"id": "cam-d1-0012", "name": "Camera Nguyen Hue / Le Loi", "type": "camera",
                                      "matched": "observer.hostname", "criticality": "high", "subsystem": "cctv",
                                      "zone": "district-1"}
    assert ev["citysoc"]["center"] == "operations"


def test_transport_address_then_peer_fallback(index: AssetIndex) -> None:
    ev = _ev(b"<38>Nov 25 10:00:03 unknown-host sshd[1]: Failed password for root from 10.30.0.10 port 1 ssh2",
             **{"log.source.address": "10.20.1.12:40001"})
    index.enrich(ev)
    assert ev["citysoc"]["asset"]["id"] == "cam-d1-0012" and ev["citysoc"]["asset"]["matched"] == "log.source.address"
    ev2 = _ev(b"<38>Nov 25 10:00:03 unknown-host sshd[1]: Failed password for root from 10.30.0.10 port 1 ssh2")
    index.enrich(ev2)
    assert ev2["citysoc"]["asset"]["id"] == "dw-pg-01" and ev2["citysoc"]["asset"]["matched"] == "source.ip"
    assert ev2["citysoc"]["center"] == "warehouse"


def test_no_match_leaves_event_alone(index: AssetIndex) -> None:
    ev = _ev(b"<13>Nov 25 10:00:00 elsewhere app: hi")
    before = repr(ev)
    index.enrich(ev)
    assert repr(ev) == before


def test_csv_inventory(tmp_path: Path) -> None:
    p = tmp_path / "inv.csv"
    p.write_text("id,name,type,center,criticality,ips,hostnames\n"
                 "srv-soc-01,SOC server,server,security,high,10.10.0.5;10.10.0.6,srv-soc-01 soc.hcmc.local\n"
                 "gw-api,API gateway,api_gateway,warehouse,,10.40.0.0/24,\n")
    idx = AssetIndex.load(p)
    assert idx.lookup_ip("10.10.0.6").id == "srv-soc-01" and idx.lookup_host("soc").id == "srv-soc-01"
    # one asset model: no criticality is the default level 3, which events carry as "medium"
    assert idx.lookup_ip("10.40.0.12").type == "api_gateway" and idx.assets["gw-api"].criticality == 3


def test_every_problem_is_reported_with_its_row(tmp_path: Path) -> None:
    p = tmp_path / "bad.csv"
    p.write_text("id,type,center,criticality,ips,hostnames\n"
                 ",camera,operations,high,10.0.0.1,\n"
                 "a,camera,operations,extreme,10.0.0.2,\n"
                 "b,camera,operations,low,,\n"
                 "c,camera,operations,low,10.0.0.300,\n"
                 "d,gateway,,low,10.0.0.4,\n")
    with pytest.raises(AssetError) as exc:
        AssetIndex.load(p)
    msg = str(exc.value)
    assert "row 2: asset '': missing id" in msg and "row 3: asset 'a': criticality 'extreme'" in msg
    assert "row 4: asset 'b': neither ips nor hostnames" in msg and "row 5: asset 'c': '10.0.0.300'" in msg
    # the same rules as the asset store and the API (one model): a known type and center
    assert "row 6: asset 'd': missing center; type 'gateway' is not one of" in msg
    dup = tmp_path / "dup.yml"
    dup.write_text("- {id: a, type: camera, center: operations, ips: [10.0.0.1]}\n"
                   "- {id: c, type: camera, center: operations, ips: [10.0.0.400]}\n")
    with pytest.raises(AssetError, match=r"item 2: asset 'c': '10\.0\.0\.400' is not an IP"):
        AssetIndex.load(dup)
    with pytest.raises(AssetError, match="cannot read inventory"):
        AssetIndex.load(tmp_path / "missing.yml")


def test_address_claimed_twice_is_an_error(tmp_path: Path) -> None:
    dup = tmp_path / "dup.yml"
    dup.write_text("- {id: a, type: camera, center: operations, ips: [10.0.0.1]}\n"
                   "- {id: b, type: camera, center: operations, ips: [10.0.0.1]}\n"
                   "- {id: a, type: nvr, center: operations, hostnames: [x]}\n")
    with pytest.raises(AssetError) as exc:
        AssetIndex.load(dup)
    assert "item 2: 10.0.0.1 already belongs to 'a'" in str(exc.value)
    assert "item 3: duplicate id 'a'" in str(exc.value)


def test_index_over_store_assets_refuses_conflicts() -> None:
    """The live index is built from store assets, not a file: its own checks still hold."""
    from core.assets import Asset

    a = Asset(id="a", name="a", type="camera", center="operations", ips=["10.0.0.1"])
    b = Asset(id="b", name="b", type="camera", center="operations", ips=["10.0.0.1"])
    with pytest.raises(AssetError, match="address 10.0.0.1 already belongs to 'a'"):
        AssetIndex([a, b])
    assert AssetIndex([a]).lookup_ip("10.0.0.1") is a
