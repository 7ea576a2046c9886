"""Settings: defaults, YAML, environment, precedence and clear errors."""
from pathlib import Path

import pytest

from core.settings import SettingsError, load_settings


def test_defaults_need_no_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    s = load_settings(environ={})
    assert s.server.port == 8000 and s.syslog.port == 5514 and s.storage.backend == "sqlite"
    assert s.data == Path("./data")


def test_yaml_then_env_then_overrides(tmp_path):
    cfg = tmp_path / "citysoc.yml"
    cfg.write_text("data: /srv/a\nsyslog:\n  port: 6000\nserver:\n  port: 9000\n")
    s = load_settings(cfg, environ={"CITYSOC_SYSLOG__PORT": "7000"}, overrides={"server": {"port": 9100}})
    assert str(s.data) == "/srv/a" and s.syslog.port == 7000 and s.server.port == 9100


def test_unknown_key_is_an_error_naming_it(tmp_path):
    cfg = tmp_path / "c.yml"
    cfg.write_text("sylog:\n  port: 1\n")
    with pytest.raises(SettingsError, match="sylog"):
        load_settings(cfg, environ={})


def test_tool_variables_sharing_the_prefix_are_not_settings_but_misspelt_keys_are_errors():
    """CITYSOC_CORPORA (the tests' corpora) or CITYSOC_API_KEY (a client's) in the shell
    must not stop `citysoc serve`; a misspelt key under a real section still does."""
    s = load_settings(environ={"CITYSOC_CORPORA": "/srv/corpora", "CITYSOC_API_KEY": "csk_x",
                               "CITYSOC_SYSLOG__PORT": "7001"})
    assert s.syslog.port == 7001
    with pytest.raises(SettingsError, match="prot"):
        load_settings(environ={"CITYSOC_SYSLOG__PROT": "7001"})


def test_bad_value_names_key(tmp_path):
    with pytest.raises(SettingsError, match="syslog.port"):
        load_settings(environ={"CITYSOC_SYSLOG__PORT": "seventy"})


def test_bad_yaml_names_file(tmp_path):
    cfg = tmp_path / "c.yml"
    cfg.write_text("a: [1,\n")
    with pytest.raises(SettingsError, match="c.yml"):
        load_settings(cfg, environ={})
