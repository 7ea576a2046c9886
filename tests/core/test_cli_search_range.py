"""`citysoc search --from` later than `--to` is an error that says so, not an empty answer."""
from __future__ import annotations

from click.testing import CliRunner

from citysoc.cli import main as cli


def test_search_from_after_to_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setenv("CITYSOC_DATA", str(tmp_path))
    res = CliRunner().invoke(cli, ["search", "*", "--from", "2026-11-25T10:00:00Z", "--to", "2026-11-25T09:00:00Z",
                                   "--count"])
    assert res.exit_code == 2
    assert "later than --to" in res.output
