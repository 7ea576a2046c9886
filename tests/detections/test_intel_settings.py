"""Intel settings: validated as data, and built into a working manager and matcher."""
from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from detections.intel.settings import IntelSettings, build_feed_manager, build_matcher

FIX = Path(__file__).parent / "fixtures_intel"


def test_settings_build_a_manager_and_matcher():
    s = IntelSettings.model_validate({"feeds": [{"name": "circl", "location": str(FIX / "misp_feed")},
                                                {"name": "partners", "location": str(FIX / "partner_iocs.csv"),
                                                 "format": "csv", "refresh_s": 60}]})
    mgr = build_feed_manager(s)
    try:
        assert mgr.refresh() == {"circl": "loaded", "partners": "loaded"}
        m = build_matcher(s, mgr)
        assert [d.rule_id for d in m.process({"destination": {"ip": "192.0.2.10"}})] == ["intel:partners"]
    finally:
        mgr.close()


@pytest.mark.parametrize("doc, where", [
    ({"feeds": [{"name": "a", "location": "x", "colour": "red"}]}, "colour"),
    ({"feeds": [{"name": "a:b", "location": "x"}]}, "name"),
    ({"feeds": [{"name": "a", "location": "x", "format": "xml"}]}, "format"),
    ({"check_every_s": 0}, "check_every_s"),
])
def test_bad_settings_are_errors(doc: dict, where: str):
    with pytest.raises(ValidationError) as ei:
        IntelSettings.model_validate(doc)
    assert where in str(ei.value)
