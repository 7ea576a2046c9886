"""Feed parsing goldens (STIX bundle, MISP feed folder, CSV) and clear errors for bad feeds."""
from __future__ import annotations

import datetime as _dt
import json
from pathlib import Path

import pytest

from detections.intel import FeedError, load_feed_bytes, load_feed_path

FIX = Path(__file__).parent / "fixtures_intel"
NOW = _dt.datetime(2026, 11, 25, tzinfo=_dt.timezone.utc)


def _golden(load) -> list[dict]:
    out = []
    for ind in load.indicators:
        d = ind.to_dict()
        d.pop("description")
        d.pop("feed")
        if load.format == "csv":
            d["id"] = "line " + d["id"].rsplit(":", 1)[1]
        out.append(d)
    return out


def _check_golden(load, name: str) -> None:
    golden = FIX / f"{name}.expected.json"
    assert _golden(load) == json.loads(golden.read_text()), f"differs from {golden}"


def test_stix_bundle_golden():
    load = load_feed_path(FIX / "cert_bundle.json", now=NOW)
    assert load.name == "cert_bundle" and load.format == "stix"
    _check_golden(load, "cert_bundle")
    assert load.skipped_expired == 1  # indicator--expired; indicator--revoked is dropped silently
    [warn] = load.problems
    assert warn.severity == "warning" and "indicator--snort" in warn.where and "snort" in warn.message


def test_misp_feed_folder_golden():
    load = load_feed_path(FIX / "misp_feed")
    assert load.name == "misp_feed" and load.format == "misp"
    _check_golden(load, "misp_feed")
    assert load.ignored == {"email-src": 1}
    assert load.problems == []
    mirai = next(i for i in load.indicators if i.value == "cnc.botnet.example")
    assert mirai.description == "Mirai variant targeting HCMC traffic cameras"
    sha = next(i for i in load.indicators if i.type == "sha256")
    assert "(file mips.bin)" in sha.description


def test_csv_golden():
    load = load_feed_path(FIX / "partner_iocs.csv", now=NOW)
    assert load.format == "csv"
    _check_golden(load, "partner_iocs")
    assert load.skipped_expired == 1 and load.problems == []


def test_single_misp_event_file_and_api_response_shape():
    doc = json.loads((FIX / "misp_feed" / "5f3a1c2e-2222-4a4a-9b9b-000000000002.json").read_text())
    one = load_feed_bytes(json.dumps(doc).encode(), name="x", origin="event.json")
    api = load_feed_bytes(json.dumps({"response": [doc]}).encode(), name="x", origin="api.json")
    assert one.format == api.format == "misp"
    assert [i.value for i in one.indicators] == [i.value for i in api.indicators] == [
        "https://data-hcmc.example/login.php", "data-hcmc.example", "198.18.0.9"]


def test_malformed_stix_indicators_are_named_and_the_rest_load():
    load = load_feed_path(FIX / "broken_bundle.json", now=NOW)
    assert [i.value for i in load.indicators] == ["ok.example"]
    by_id = {p.where.rsplit(": ", 1)[1]: p for p in load.problems}
    assert set(by_id) == {"indicator--unclosed", "indicator--badip", "indicator--followedby"}
    assert by_id["indicator--unclosed"].severity == "error"
    assert "position 29: expected ']'" in by_id["indicator--unclosed"].message
    assert by_id["indicator--badip"].severity == "error" and "10.1.1.300" in by_id["indicator--badip"].message
    assert by_id["indicator--followedby"].severity == "warning"
    assert all(p.where.startswith(str(FIX / "broken_bundle.json")) for p in load.problems)


def test_malformed_csv_lines_are_named():
    load = load_feed_path(FIX / "broken.csv")
    assert [i.value for i in load.indicators] == ["192.0.2.13"]
    where = [p.where.rsplit(":", 1)[1] for p in load.problems]
    assert where == ["2", "3", "4", "5", "6"]
    msgs = [p.message for p in load.problems]
    assert "192.0.2.300" in msgs[0] and "single-label" in msgs[1] and "unknown type 'email'" in msgs[2]
    assert "hex digest" in msgs[3] and "confidence 'high'" in msgs[4]


@pytest.mark.parametrize("content, message", [
    (b"{not json", "invalid JSON at line 1"),
    (b'{"type": "report"}', "neither a STIX bundle nor a MISP event"),
    (b'{"type": "bundle", "objects": {}}', "\"objects\" must be a list"),
    (b"value,kind\n1.2.3.4,ip\n", "header must name the columns \"type\" and \"value\""),
    (b"# only a comment\n", "empty CSV feed"),
])
def test_unusable_feeds_raise_feed_error_naming_the_file(tmp_path: Path, content: bytes, message: str):
    f = tmp_path / ("feed.csv" if not content.lstrip().startswith(b"{") else "feed.json")
    f.write_bytes(content)
    with pytest.raises(FeedError) as ei:
        load_feed_path(f)
    assert str(f) in str(ei.value) and message in str(ei.value)


def test_misp_manifest_listing_a_missing_event_is_a_problem(tmp_path: Path):
    uuid = "5f3a1c2e-3333-4a4a-9b9b-000000000003"
    (tmp_path / "manifest.json").write_text(json.dumps({uuid: {"info": "x"}}))
    load = load_feed_path(tmp_path)
    [p] = load.problems
    assert p.where == str(tmp_path / f"{uuid}.json") and "not readable" in p.message
    with pytest.raises(FeedError, match="MISP feed manifest"):
        load_feed_path(tmp_path / "manifest.json")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FeedError, match="must be a MISP feed with a manifest.json"):
        load_feed_path(tmp_path / "empty")


def test_misp_manifest_keys_must_be_uuids(tmp_path: Path):
    (tmp_path / "manifest.json").write_text(json.dumps({"../../etc/passwd": {"info": "x"}}))
    with pytest.raises(FeedError, match="is not an event uuid"):
        load_feed_path(tmp_path)
