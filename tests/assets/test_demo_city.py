"""The demo city's inventory and logs: real districts and coordinates, every line parses
with our parsers and is attributed to an inventory asset, pcaps decode."""
from __future__ import annotations

from pathlib import Path

from collectors.enrich import AssetIndex
from collectors.network.pcapfile import pcap_events
from citysoc.demo.city import DISTRICTS, build_city
from citysoc.demo.run import build_world
from citysoc.wiring import make_parse
from core.assets import dump_yaml
from core.events import get_field

END = 1_795_600_800.0  # 2026-11-25T08:00:00Z, fixed so the test does not depend on the clock


def test_city_inventory_is_real_and_loads_in_the_enricher(tmp_path: Path) -> None:
    city = build_city(300)
    cams = city.of_type("camera")
    assert len(cams) == 300 and len(city.nvrs) == len(DISTRICTS) and city.of_type("vms")
    assert {c.location.district for c in cams} == {d[0] for d in DISTRICTS}
    assert all(10.3 < c.location.lat < 11.2 and 106.3 < c.location.lon < 107.1 for c in cams)
    assert {a.center for a in city.assets} == {"operations", "warehouse", "forecasting", "security"}
    assert {"db_node", "api_gateway", "etl", "compute_node", "model_store"} <= {a.type for a in city.assets}
    p = tmp_path / "inventory.yml"
    p.write_text(dump_yaml(city.assets))
    assert len(AssetIndex.load(p)) == len(city.assets)


def test_every_generated_line_parses_and_is_attributed(tmp_path: Path) -> None:
    world = build_world(tmp_path, cameras=22, days=3, end=END)
    parse = make_parse()
    index = AssetIndex(world.city.assets)
    unattributed: list[str] = []
    datasets: set[str] = set()
    for _ts, rec in world.records:
        ev = parse(rec)
        assert "parser_failure" not in (ev.get("tags") or []), ev
        index.enrich(ev)
        datasets.add(get_field(ev, "event.dataset"))
        if get_field(ev, "citysoc.asset.id") is None and get_field(ev, "labels.demo_scenario") is None:
            unattributed.append(get_field(ev, "event.original") or str(ev)[:200])
    assert not unattributed, unattributed[:5]
    assert {"hikvision.log", "dahua.log", "postgresql.log", "web.access", "scheduler.job", "etl.job", "network.flow", "file_integrity", "onvif.event"} <= datasets, datasets
    assert world.records == sorted(world.records, key=lambda r: r[0])
    assert all(world.start <= ts < world.end + 3600 for ts, _r in world.records)
    for p in world.pcaps:
        assert sum(1 for _ in pcap_events(p)) > 0


def test_place_names_are_written_as_the_city_writes_them_ids_stay_ascii(tmp_path: Path) -> None:
    """Issue 16: the demo's places read "Quan 7", "Thu Duc"; they are "Quận 7", "Thủ Đức".
    Asset ids and host names (what logs and queries use) stay ASCII and unchanged."""
    city = build_city(44)
    by = city.by_id
    assert by["cam-q7-0001"].name == "Camera Quận 7 #1" and by["cam-q7-0001"].hostnames == ["CAM-Q7-0001"]
    assert by["cam-binhth-0001"].location.district == "Bình Thạnh"
    assert by["nvr-thuduc-01"].name == "NVR Thủ Đức" and by["nvr-thuduc-01"].location.ward == "Thảo Điền"
    assert by["wh-db-01"].location.district == "Thủ Đức" and by["vms-01"].location.ward == "Bến Nghé"
    assert all(a.id.isascii() and all(h.isascii() for h in a.hostnames) for a in city.assets)
    # every district and ward name carries its diacritics (only "Phường n" wards are plain digits)
    plain = [n for d in DISTRICTS for n in d[:2] if n.isascii()]
    assert plain == [], plain
    p = tmp_path / "inventory.yml"
    p.write_text(dump_yaml(city.assets), encoding="utf-8")
    assert AssetIndex.load(p).lookup_ip(by["cam-q7-0001"].ips[0]).name == "Camera Quận 7 #1"
