"""The demo city: Ho Chi Minh City's districts, its cameras, recorders and centers.

Deterministic for a seed, so a demo run and its check agree on every address. The
address plan is what the rest of the demo (normal logs, attacks, pcaps) relies on:

=================  ====================  ==========================================
network            zone                  holds
=================  ====================  ==========================================
10.20.0.0/24       camera-core           VMS (10.20.0.2), NVRs (10.20.0.10 + d)
10.20.<d>.0/24     camera-lan            cameras of district number d (1..24)
10.30.0.0/24       warehouse-db          database nodes, ETL hosts
10.40.0.0/24       warehouse-dmz         API gateway, its clients
10.50.0.0/24       forecasting           compute nodes, model store
10.10.0.0/24       soc                   the security center
=================  ====================  ==========================================
"""
from __future__ import annotations

import random
import unicodedata
from dataclasses import dataclass

from core.assets import Asset, Location

__all__ = ["DISTRICTS", "City", "build_city", "VMS_IP", "SOC_IP"]

# (name, ward, lat, lon): a ward of each district near its centre, named as the city writes
# them (with diacritics); asset ids and host names are the ASCII short form (``_short``).
DISTRICTS: list[tuple[str, str, float, float]] = [
    ("Quận 1", "Bến Nghé", 10.7769, 106.7009),
    ("Quận 3", "Võ Thị Sáu", 10.7840, 106.6844),
    ("Quận 4", "Phường 13", 10.7579, 106.7046),
    ("Quận 5", "Phường 11", 10.7540, 106.6634),
    ("Quận 6", "Phường 7", 10.7480, 106.6352),
    ("Quận 7", "Tân Phong", 10.7340, 106.7216),
    ("Quận 8", "Phường 4", 10.7241, 106.6286),
    ("Quận 10", "Phường 12", 10.7746, 106.6679),
    ("Quận 11", "Phường 5", 10.7629, 106.6500),
    ("Quận 12", "Tân Chánh Hiệp", 10.8672, 106.6413),
    ("Bình Thạnh", "Phường 25", 10.8106, 106.7091),
    ("Phú Nhuận", "Phường 9", 10.7992, 106.6803),
    ("Gò Vấp", "Phường 10", 10.8387, 106.6653),
    ("Tân Bình", "Phường 2", 10.8015, 106.6528),
    ("Tân Phú", "Tân Sơn Nhì", 10.7901, 106.6282),
    ("Bình Tân", "Bình Trị Đông", 10.7653, 106.6037),
    ("Thủ Đức", "Thảo Điền", 10.8031, 106.7390),
    ("Bình Chánh", "Tân Túc", 10.6880, 106.5938),
    ("Hóc Môn", "Thị trấn Hóc Môn", 10.8864, 106.5923),
    ("Nhà Bè", "Phú Xuân", 10.6957, 106.7397),
    ("Củ Chi", "Thị trấn Củ Chi", 10.9733, 106.4936),
    ("Cần Giờ", "Cần Thạnh", 10.4114, 106.9547),
]

VMS_IP = "10.20.0.2"
SOC_IP = "10.10.0.4"


@dataclass
class City:
    assets: list[Asset]
    cameras: list[Asset]
    nvrs: list[Asset]
    by_id: dict[str, Asset]

    def of_type(self, t: str) -> list[Asset]:
        return [a for a in self.assets if a.type == t]


def _ascii(text: str) -> str:
    """"Bình Thạnh" -> "Binh Thanh" (ids and host names stay ASCII)."""
    plain = unicodedata.normalize("NFKD", text.replace("Đ", "D").replace("đ", "d"))
    return "".join(c for c in plain if not unicodedata.combining(c))


def _short(district: str) -> str:
    """"Quận 7" -> "q7", "Bình Thạnh" -> "binhth": the district part of asset ids."""
    return _ascii(district).replace("Quan ", "q").replace(" ", "").lower()[:6]


def build_city(cameras: int = 240, *, seed: int = 7) -> City:
    """The inventory: ``cameras`` cameras spread over the districts, an NVR per district,
    the VMS, the warehouse, the forecasting center and the SOC's own servers."""
    rnd = random.Random(seed)
    assets: list[Asset] = [
        Asset(id="vms-01", name="Video management server", type="vms", center="operations", criticality=5,
              subsystem="cctv", zone="camera-core", ips=[VMS_IP], hostnames=["vms-01"], owner="operations-center",
              log_sources=["linux.auth"], location=Location(ward="Bến Nghé", district="Quận 1", lat=10.7769,
                                                           lon=106.7009)),
    ]
    nvrs: list[Asset] = []
    cams: list[Asset] = []
    for d, (district, ward, lat, lon) in enumerate(DISTRICTS, 1):
        vendor = "hikvision" if d % 3 else "dahua"
        nvr = Asset(id=f"nvr-{_short(district)}-01", name=f"NVR {district}", type="nvr", center="operations",
                    criticality=4, subsystem="cctv", zone="camera-core", ips=[f"10.20.0.{10 + d}"],
                    hostnames=[f"NVR-{_short(district).upper()}-01"], owner="operations-center",
                    location=Location(ward=ward, district=district, lat=lat, lon=lon),
                    log_sources=[f"{vendor}.log"], log_interval_s=1800, tags=[vendor])
        nvrs.append(nvr)
    for i in range(cameras):
        d = i % len(DISTRICTS) + 1
        district, ward, lat, lon = DISTRICTS[d - 1]
        n = i // len(DISTRICTS) + 1
        vendor = "hikvision" if d % 3 else "dahua"
        cid = f"cam-{_short(district)}-{n:04d}"
        cams.append(Asset(
            id=cid, name=f"Camera {district} #{n}", type="camera", center="operations",
            criticality=3 if n % 5 else 4, subsystem="cctv", zone="camera-lan", ips=[f"10.20.{d}.{n + 10}"],
            hostnames=[cid.upper()], owner="operations-center",
            location=Location(ward=ward, district=district, lat=round(lat + rnd.uniform(-0.012, 0.012), 5),
                              lon=round(lon + rnd.uniform(-0.012, 0.012), 5)),
            log_sources=[f"{vendor}.log"], log_interval_s=3600, tags=[vendor]))
    assets += nvrs + cams
    wh = [Asset(id=f"wh-db-{k:02d}", name=f"Warehouse PostgreSQL node {k}", type="db_node", center="warehouse",
                criticality=5, subsystem="warehouse", zone="warehouse-db", ips=[f"10.30.0.{10 + k}"],
                hostnames=[f"wh-db-{k:02d}"], owner="data-warehouse", log_sources=["postgresql.log"],
                log_interval_s=900, location=Location(ward="Thảo Điền", district="Thủ Đức"))
          for k in (1, 2, 3)]
    wh += [Asset(id=f"etl-{k:02d}", name=f"ETL runner {k}", type="etl", center="warehouse", criticality=4,
                 subsystem="warehouse", zone="warehouse-db", ips=[f"10.30.0.{20 + k}"], hostnames=[f"etl-{k:02d}"],
                 owner="data-warehouse", log_sources=["etl.json"]) for k in (1, 2)]
    wh.append(Asset(id="wh-gw-01", name="Warehouse API gateway", type="api_gateway", center="warehouse",
                    criticality=4, subsystem="warehouse", zone="warehouse-dmz", ips=["10.40.0.5"],
                    hostnames=["wh-gw-01"], owner="data-warehouse", log_sources=["nginx.access"]))
    fc = [Asset(id=f"fc-gpu-{k:02d}", name=f"Forecasting GPU node {k}", type="compute_node", center="forecasting",
                criticality=3, subsystem="forecasting", zone="forecasting", ips=[f"10.50.0.{10 + k}"],
                hostnames=[f"fc-gpu-{k:02d}"], owner="forecasting-center", log_sources=["jobs.json", "linux.auth"])
          for k in (1, 2, 3, 4)]
    fc.append(Asset(id="fc-models-01", name="Model store", type="model_store", center="forecasting", criticality=5,
                    subsystem="forecasting", zone="forecasting", ips=["10.50.0.5"], hostnames=["fc-models-01"],
                    owner="forecasting-center", log_sources=["jobs.json"]))
    soc = [Asset(id="soc-01", name="SOC server", type="server", center="security", criticality=5, subsystem="soc",
                 zone="soc", ips=[SOC_IP], hostnames=["soc-01"], owner="security-center",
                 log_sources=["linux.auth"])]
    assets += wh + fc + soc
    return City(assets=assets, cameras=cams, nvrs=nvrs, by_id={a.id: a for a in assets})
