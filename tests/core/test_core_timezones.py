"""Zone names in settings: checked at load (a typo is a start-up error), site default Ho Chi Minh City."""
import pytest

from core.settings import SettingsError, load_settings
from core.timezones import DEFAULT_SITE_ZONE, check_zone, effective_zone


def test_site_default_and_source_override(tmp_path) -> None:
    s = load_settings(None, environ={})
    assert s.site.timezone == DEFAULT_SITE_ZONE == "Asia/Ho_Chi_Minh"
    assert effective_zone(None, s.site.timezone) == "Asia/Ho_Chi_Minh"
    assert effective_zone("UTC", s.site.timezone) == "UTC"


@pytest.mark.parametrize("yml", [
    "site:\n  timezone: Asia/Saigonn\n",
    "syslog:\n  timezone: GMT+25\n",
    "tail:\n  - name: a\n    paths: [/tmp/x]\n    timezone: Mars/Olympus\n",
])
def test_invalid_zone_anywhere_is_a_settings_error(tmp_path, yml: str) -> None:
    cfg = tmp_path / "citysoc.yml"
    cfg.write_text(yml)
    with pytest.raises(SettingsError, match="time zone"):
        load_settings(cfg, environ={})


def test_check_zone() -> None:
    assert check_zone("Europe/Paris") == "Europe/Paris"
    with pytest.raises(ValueError):
        check_zone("Nowhere/Atlantis")
