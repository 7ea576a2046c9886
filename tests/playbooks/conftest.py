"""Fixtures for the playbook tests: a real soc.db (alerts, cases, audit) per test."""
from __future__ import annotations

from pathlib import Path

import pytest

from storage.socdb import open_socdb


@pytest.fixture
def soc(tmp_path: Path):
    s = open_socdb(tmp_path / "data")
    yield s
    s.close()
