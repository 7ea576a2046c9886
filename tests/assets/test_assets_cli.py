"""``citysoc assets import/export/list/summary`` round trip through a real data folder."""
from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from citysoc.cli import main
from citysoc.wiring import open_soc
from core.assets import Asset, Location, dump_csv, dump_yaml, load_inventory_text
from core.settings import Settings

ASSETS = [Asset(id=f"cam-q5-{i:04d}", name=f"Camera {i}", type="camera", center="operations", criticality=1 + i % 5,
                ips=[f"10.20.5.{i}"], hostnames=[f"CAM-Q5-{i:04d}"],
                location=Location(ward="Phuong 1", district="Quan 5", lat=10.755 + i / 1000, lon=106.66))
          for i in range(1, 6)]


def test_import_export_round_trip_and_audit(tmp_path: Path) -> None:
    env = {"CITYSOC_DATA": str(tmp_path / "data")}
    r = CliRunner()
    (tmp_path / "inv.yml").write_text(dump_yaml(ASSETS))
    res = r.invoke(main, ["assets", "import", str(tmp_path / "inv.yml")], env=env)
    assert res.exit_code == 0, res.output
    assert "5 created" in res.output
    res = r.invoke(main, ["assets", "import", str(tmp_path / "inv.yml")], env=env)
    assert "5 unchanged" in res.output
    for fmt in ("yaml", "csv"):
        res = r.invoke(main, ["assets", "export", "--format", fmt], env=env)
        assert res.exit_code == 0, res.output
        assert load_inventory_text(res.output, fmt=fmt) == ASSETS
    changed = [Asset(**{**ASSETS[0].to_dict(), "location": ASSETS[0].location, "owner": "district-5"})]
    (tmp_path / "one.csv").write_text(dump_csv(changed))
    res = r.invoke(main, ["assets", "import", str(tmp_path / "one.csv")], env=env)
    assert "1 updated" in res.output, res.output
    (tmp_path / "bad.csv").write_text("id,type,center,ips\nx,camera,operations,\ny,fridge,operations,1.2.3.4\n")
    res = r.invoke(main, ["assets", "import", str(tmp_path / "bad.csv")], env=env)
    assert res.exit_code != 0 and "row 2" in res.output and "row 3" in res.output
    res = r.invoke(main, ["assets", "list", "--center", "operations"], env=env)
    assert res.exit_code == 0 and "5 shown of 5 assets" in res.output and "unknown" in res.output
    res = r.invoke(main, ["assets", "summary"], env=env)
    assert res.exit_code == 0 and "operations" in res.output
    soc = open_soc(Settings(data=tmp_path / "data"))
    acts = [(e.action, e.target) for e in soc.audit.iter_all() if e.action.startswith("asset.")]
    soc.close()
    assert len(acts) == 6 and acts[-1] == ("asset.update", "cam-q5-0001".join(["asset:", ""]))
