"""Fixtures for the API tests; the stack itself lives in ``api_stack.py``."""
from __future__ import annotations

from pathlib import Path

import pytest

from api_stack import LiveServer, Stack, make_stack


@pytest.fixture
def stack(tmp_path: Path):
    s = make_stack(tmp_path)
    yield s
    s.soc.close()
    s.state.store.close()


@pytest.fixture
def live(stack: Stack):
    srv = LiveServer(stack).start()
    yield srv
    srv.stop()


@pytest.fixture
def hdr(stack: Stack):
    """``hdr("analyst")`` -> the Authorization header of that role's API key."""
    return lambda role: {"Authorization": f"ApiKey {stack.keys[role]}"}


@pytest.fixture
def client(stack: Stack):
    """In-process client (no pipeline running: for routes that do not ingest)."""
    from fastapi.testclient import TestClient

    with TestClient(stack.app) as c:
        yield c
